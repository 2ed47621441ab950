/** The UserAPI (port 1313): SetManifest, GetManifests, Recover. Clients are authenticated by their TLS key. */
import type { TLSSocket } from 'node:tls';
import type { ServerHttp2Stream } from 'node:http2';
import { tlsPeer } from '../atls/server.js';
import type { Authority } from './authority.js';
import { decode, encode } from './api/proto.js';
import {
  GetManifestsResponseSchema, RecoverRequestSchema, RecoverResponseSchema, SetManifestRequestSchema, SetManifestResponseSchema, USERAPI_SERVICE,
  type RecoverRequest, type SetManifestRequest,
} from './api/messages.js';
import type { UnaryHandler } from './api/grpc.js';

function callerKey(stream: ServerHttp2Stream) {
  return tlsPeer(stream.session!.socket as TLSSocket)?.publicKey;
}

export function userApiHandlers(authority: Authority, log: (msg: string) => void): Map<string, UnaryHandler> {
  return new Map<string, UnaryHandler>([
    [`/${USERAPI_SERVICE}/SetManifest`, async (req, _h, stream) => {
      const r = decode<SetManifestRequest>(SetManifestRequestSchema, req);
      const res = await authority.setManifest(r.Manifest, r.Policies, callerKey(stream));
      log(`manifest set (${r.Manifest.length} bytes, ${r.Policies.length} policies)${res.seedShares ? ', first manifest: seed shares issued' : ''}`);
      return encode(SetManifestResponseSchema, {
        RootCA: Buffer.from(res.rootCA), MeshCA: Buffer.from(res.meshCA),
        ...(res.seedShares ? { SeedSharesDoc: res.seedShares } : {}),
      });
    }],
    [`/${USERAPI_SERVICE}/GetManifests`, async () => {
      const h = await authority.getManifests();
      return encode(GetManifestsResponseSchema, {
        Manifests: h.manifests, Policies: h.policies, RootCA: Buffer.from(h.rootCA), MeshCA: Buffer.from(h.meshCA),
        LatestTransition: { TransitionHash: h.latest.transitionHash, Signature: h.latest.signature },
        ...(h.seedShares ? { SeedSharesDoc: h.seedShares } : {}),
      });
    }],
    [`/${USERAPI_SERVICE}/Recover`, async (req, _h, stream) => {
      const r = decode<RecoverRequest>(RecoverRequestSchema, req);
      await authority.recover(r.Seed, r.Salt, callerKey(stream));
      log('recovered: the history is verified and certificates are issued again (new mesh CA)');
      return encode(RecoverResponseSchema, {});
    }],
  ]);
}
