/**
 * The UserAPI (port 1313): SetManifest, GetManifests, Recover. Clients are authenticated by their
 * TLS key. Request limits (docs/protocol.md, "Limits and deadlines") fit the largest legitimate
 * request: a manifest of 10,000 entries is 2-3 MB of JSON, a policy (initdata TOML) typically
 * 40-60 KiB; the other requests are a few dozen bytes.
 */
import type { TLSSocket } from 'node:tls';
import type { ServerHttp2Stream } from 'node:http2';
import { tlsPeer } from '../atls/server.js';
import type { Authority } from './authority.js';
import { decode, encode } from '../util/protobuf.js';
import {
  GetManifestsRequestSchema,
  GetManifestsResponseSchema,
  RecoverRequestSchema,
  RecoverResponseSchema,
  SetManifestResponseSchema,
  USERAPI_SERVICE,
  type RecoverRequest,
  type SetManifestRequest,
} from './api/messages.js';
import type { RequestBody, RequestLimits, UnaryMethod } from './api/grpc.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Requests that carry no more than a seed and a salt. */
const SMALL_REQUEST_BYTES = 4 * KiB;

const SET_MANIFEST_LIMITS: RequestLimits = {
  maxBytes: 64 * MiB,
  fields: {
    1: { name: 'Manifest', maxBytes: 8 * MiB, maxCount: 1 },
    // Twice the 10,000 workloads we promise; each costs a Buffer and a hash.
    2: { name: 'Policies', maxBytes: 1 * MiB, maxCount: 20_000 },
  },
  maxOtherFields: 16,
};

const GET_MANIFESTS_LIMITS: RequestLimits = { maxBytes: SMALL_REQUEST_BYTES, maxOtherFields: 16 };

const RECOVER_LIMITS: RequestLimits = {
  maxBytes: SMALL_REQUEST_BYTES,
  fields: { 1: { name: 'Seed', maxBytes: 1 * KiB, maxCount: 1 }, 2: { name: 'Salt', maxBytes: 1 * KiB, maxCount: 1 } },
  maxOtherFields: 16,
};

/**
 * SetManifestRequest from the body's checked field spans: the policies are views into the body
 * (hashed and written to the store, not kept); the manifest, which the Coordinator keeps, is
 * copied. Decoding with copies would hold every request twice (64 MiB more at the peak).
 */
function setManifestRequest(body: RequestBody): SetManifestRequest {
  const manifest = body.fields(1).at(-1);
  return { Manifest: manifest ? Buffer.from(manifest) : Buffer.alloc(0), Policies: body.fields(2) };
}

/** Tag and length of a length-delimited protobuf field numbered 1 to 15 (a one-byte tag). */
function bytesFieldHeader(no: 1 | 2, length: number): Buffer {
  const out: number[] = [no * 8 + 2];
  for (let v = length; ; v = Math.floor(v / 128)) {
    if (v < 128) {
      out.push(v);
      break;
    }
    out.push((v % 128) | 128);
  }
  return Buffer.from(out);
}

function callerKey(stream: ServerHttp2Stream) {
  return tlsPeer(stream.session!.socket as TLSSocket)?.publicKey;
}

export interface UserApiOptions {
  /** Time to receive a SetManifest body (up to 64 MiB, possibly through a slow port-forward). */
  setManifestBodyTimeoutMs?: number;
}

export function userApiHandlers(
  authority: Authority,
  log: (msg: string) => void,
  opts: UserApiOptions = {},
): Map<string, UnaryMethod> {
  let lastAnswerBytes: number | undefined;
  return new Map<string, UnaryMethod>([
    [
      `/${USERAPI_SERVICE}/SetManifest`,
      {
        limits: {
          ...SET_MANIFEST_LIMITS,
          ...(opts.setManifestBodyTimeoutMs !== undefined ? { bodyTimeoutMs: opts.setManifestBodyTimeoutMs } : {}),
        },
        handle: async (call) => {
          // Whether this key may replace the manifest is known before the body arrives: a
          // stranger's 64 MiB are refused unread. setManifest checks again under its lock.
          authority.checkManifestUpdater(callerKey(call.stream));
          const r = setManifestRequest(await call.read());
          const res = await authority.setManifest(r.Manifest, r.Policies, callerKey(call.stream));
          log(
            `manifest set (${r.Manifest.length} bytes, ${r.Policies.length} policies)${res.seedShares ? ', first manifest: seed shares issued' : ''}`,
          );
          return encode(SetManifestResponseSchema, {
            RootCA: Buffer.from(res.rootCA),
            MeshCA: Buffer.from(res.meshCA),
            ...(res.seedShares ? { SeedSharesDoc: res.seedShares } : {}),
          });
        },
      },
    ],
    [
      `/${USERAPI_SERVICE}/GetManifests`,
      {
        limits: GET_MANIFESTS_LIMITS,
        handle: async (call) => {
          decode(GetManifestsRequestSchema, (await call.read()).bytes);
          // Anyone may call it, and its answer is the whole history: reserve the size of the last
          // answer in the body budget before reading the history, or the whole budget while that
          // size is unknown (the first call after a start runs alone).
          await call.reserve(lastAnswerBytes ?? Infinity);
          const h = await authority.getManifests();
          // The history's manifests and policies go out as they came from the store, unjoined.
          const parts: Uint8Array[] = [];
          for (const m of h.manifests) parts.push(bytesFieldHeader(1, m.length), m);
          for (const p of h.policies) parts.push(bytesFieldHeader(2, p.length), p);
          parts.push(
            encode(GetManifestsResponseSchema, {
              RootCA: Buffer.from(h.rootCA),
              MeshCA: Buffer.from(h.meshCA),
              LatestTransition: { TransitionHash: h.latest.transitionHash, Signature: h.latest.signature },
              ...(h.seedShares ? { SeedSharesDoc: h.seedShares } : {}),
            }),
          );
          lastAnswerBytes = parts.reduce((n, p) => n + p.length, 0);
          return parts;
        },
      },
    ],
    [
      `/${USERAPI_SERVICE}/Recover`,
      {
        limits: RECOVER_LIMITS,
        handle: async (call) => {
          const r = decode<RecoverRequest>(RecoverRequestSchema, (await call.read()).bytes);
          await authority.recover(r.Seed, r.Salt, callerKey(call.stream));
          log('recovered: the history is verified and certificates are issued again (new mesh CA)');
          return encode(RecoverResponseSchema, {});
        },
      },
    ],
  ]);
}
