/**
 * The MeshAPI (port 7777): NewMeshCert for attested workloads, and Recover for peer
 * Coordinator replicas (they attest with the Coordinator's own policy, a Role "coordinator"
 * entry of the current manifest, and receive the state: seed, salt, mesh CA). The client's evidence arrives
 * as an aTLS certificate in gRPC metadata, bound to this connection's TLS exporter and to the
 * client's TLS key; it must verify against the current manifest's reference values and report
 * a policy hash listed in the manifest. All of that is checked from the call's HEADERS: the
 * request body is read only once the evidence was admitted (docs/protocol.md §4).
 */
import type { TLSSocket } from 'node:tls';
import { AttestationError, CollateralUnavailableError } from '../attestation/errors.js';
import { decodeBase64Strict } from '../util/encoding.js';
import type { DispatchOptions } from '../attestation/dispatch.js';
import { parseAtlsCert, type AtlsPeer } from '../atls/cert.js';
import { clientEvidenceNonce, tlsPeer } from '../atls/server.js';
import { admitPeer } from '../atls/validate.js';
import { CLIENT_EVIDENCE_HEADER, reportData } from '../atls/binding.js';
import { octetString } from '../atls/der.js';
import type { Admission } from '../atls/validate.js';
import type { Authority, IssuingSnapshot } from './authority.js';
import { coordinatorPolicyHashes } from './client.js';
import type { Metrics } from './metrics.js';
import { decode, encode } from '../util/protobuf.js';
import {
  MESHAPI_SERVICE,
  MeshRecoverRequestSchema,
  MeshRecoverResponseSchema,
  NewMeshCertRequestSchema,
  NewMeshCertResponseSchema,
} from './api/messages.js';
import { RpcError, Status, type RequestLimits, type UnaryMethod } from './api/grpc.js';

/** Claims copied into mesh certificates: the policy hash (HOSTDATA) and measurement, under upstream's SNP arc. */
const OID_CLAIM_MEASUREMENT = '1.3.9901.2.1.22';
const OID_CLAIM_HOSTDATA = '1.3.9901.2.1.23';

/** NewMeshCertRequest and RecoverRequest are empty; the evidence travels in the HEADERS. */
const NEW_MESH_CERT_LIMITS: RequestLimits = { maxBytes: 4 * 1024, maxOtherFields: 16 };
const RECOVER_LIMITS: RequestLimits = NEW_MESH_CERT_LIMITS;

/**
 * A gRPC binary header: base64 with or without padding (gRPC's wire spec lets senders omit it),
 * otherwise canonical, so one header value has one reading.
 */
function decodeGrpcBinaryHeader(text: string): Buffer | undefined {
  return decodeBase64Strict(text.includes('=') ? text : text.padEnd(Math.ceil(text.length / 4) * 4, '='));
}

type Headers = Record<string, string | string[] | undefined>;

/**
 * The caller's evidence from the HEADERS, bound to this connection and to its TLS key, admitted
 * against the snapshot's reference values with one of `policyHashes`. AttestationError when not.
 */
async function admitCaller(
  socket: TLSSocket,
  headers: Headers,
  snapshot: IssuingSnapshot,
  policy: { hashes: readonly string[]; what: string },
  metrics: Metrics,
  dispatch: DispatchOptions,
): Promise<{ admission: Admission; peer: AtlsPeer }> {
  const header = headers[CLIENT_EVIDENCE_HEADER];
  if (typeof header !== 'string' || header.length === 0) {
    metrics.inc('contrast_meshapi_attestation_failures_total');
    throw new RpcError(
      Status.UNAUTHENTICATED,
      `no client evidence: the MeshAPI requires an aTLS certificate in the ${CLIENT_EVIDENCE_HEADER} metadata`,
    );
  }
  const tls = tlsPeer(socket);
  if (!tls) throw new AttestationError('atls.clientcert', 'the client presented no TLS certificate');
  const der = decodeGrpcBinaryHeader(header);
  if (!der)
    throw new AttestationError('atls.certificate', `the ${CLIENT_EVIDENCE_HEADER} metadata is not canonical base64`);
  const peer = parseAtlsCert(der);
  // The same key (type, parameters and value), compared without exporting either.
  if (!peer.publicKey.equals(tls.publicKey))
    throw new AttestationError(
      'atls.binding',
      'the evidence certificate is for another key than the TLS client certificate',
    );
  const admission = await admitPeer(peer, reportData(peer.spki, clientEvidenceNonce(socket)), {
    refs: snapshot.manifest.ReferenceValues,
    policyHashes: policy.hashes,
    what: policy.what,
    ...dispatch,
    onSimulated: () => metrics.inc('contrast_simulated_evidence_total'),
  });
  return { admission, peer };
}

/** Attestation errors as gRPC codes: collateral that cannot be fetched now is retryable, a verdict is PERMISSION_DENIED. */
function attestationRpcError(err: unknown, metrics: Metrics): unknown {
  // Collateral that cannot be fetched now (AMD KDS unreachable, its queue full) is no
  // verdict on the evidence: UNAVAILABLE makes the caller retry.
  if (err instanceof CollateralUnavailableError) return new RpcError(Status.UNAVAILABLE, err.message);
  if (err instanceof AttestationError) {
    metrics.inc('contrast_meshapi_attestation_failures_total');
    return new RpcError(Status.PERMISSION_DENIED, err.message);
  }
  return err;
}

export function meshApiHandlers(
  authority: Authority,
  metrics: Metrics,
  dispatch: DispatchOptions = {},
): Map<string, UnaryMethod> {
  return new Map<string, UnaryMethod>([
    [
      `/${MESHAPI_SERVICE}/NewMeshCert`,
      {
        limits: NEW_MESH_CERT_LIMITS,
        handle: async ({ headers, stream, read }) => {
          // Runs when the HEADERS arrive: the body is read only after the evidence was admitted.
          const socket = stream.session!.socket as TLSSocket;
          const snapshot = authority.snapshot();
          if (!snapshot) {
            throw new RpcError(
              Status.FAILED_PRECONDITION,
              authority.mode === 'recovery'
                ? 'the Coordinator waits for recovery (kubectl contrast recover); no certificates until then'
                : 'no manifest has been set yet (kubectl contrast set)',
            );
          }
          try {
            const { admission, peer } = await admitCaller(
              socket,
              headers,
              snapshot,
              { hashes: Object.keys(snapshot.manifest.Policies), what: 'workload policy' },
              metrics,
              dispatch,
            );
            decode(NewMeshCertRequestSchema, (await read()).bytes);
            const claims = [
              { oid: OID_CLAIM_HOSTDATA, value: octetString(admission.hostData) },
              { oid: OID_CLAIM_MEASUREMENT, value: octetString(Buffer.from(admission.measurement, 'hex')) },
            ];
            // The key the evidence binds (equal to the TLS client key, checked above), exported once.
            const res = await authority.newMeshCert(snapshot, peer.publicKey, admission.policyHash, claims);
            metrics.inc('contrast_meshapi_certificates_issued_total');
            return encode(NewMeshCertResponseSchema, {
              MeshCACert: Buffer.from(res.meshCA),
              CertChain: Buffer.from(res.certChain),
              RootCACert: Buffer.from(res.rootCA),
              WorkloadSecret: res.workloadSecret,
            });
          } catch (err) {
            throw attestationRpcError(err, metrics);
          }
        },
      },
    ],
    [
      `/${MESHAPI_SERVICE}/Recover`,
      {
        limits: RECOVER_LIMITS,
        handle: async ({ headers, stream, read }) => {
          const socket = stream.session!.socket as TLSSocket;
          const snapshot = authority.snapshot();
          if (!snapshot)
            throw new RpcError(
              Status.FAILED_PRECONDITION,
              `this replica holds no state to hand over (it is ${authority.replicaState}); ask another peer`,
            );
          try {
            // Only the Coordinator's own policy of the current manifest: the state is everything.
            await admitCaller(
              socket,
              headers,
              snapshot,
              { hashes: coordinatorPolicyHashes(snapshot.manifest), what: 'Coordinator policy (Role "coordinator")' },
              metrics,
              dispatch,
            );
          } catch (err) {
            if (err instanceof AttestationError) metrics.inc('contrast_meshapi_peer_recoveries_refused_total');
            throw attestationRpcError(err, metrics);
          }
          decode(MeshRecoverRequestSchema, (await read()).bytes);
          const state = await authority.peerState(snapshot);
          metrics.inc('contrast_meshapi_peer_recoveries_served_total');
          return encode(MeshRecoverResponseSchema, {
            Seed: state.seed,
            Salt: state.salt,
            MeshCAKey: Buffer.from(state.meshKey.export({ type: 'sec1', format: 'pem' }) as string),
            LatestManifest: state.manifest,
            MeshCACert: Buffer.from(state.meshCAPem),
            IntermediateCert: Buffer.from(state.intermediatePem),
          });
        },
      },
    ],
  ]);
}
