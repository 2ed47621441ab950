/**
 * The Coordinator's gRPC messages, field numbers and names as upstream Contrast
 * (`userapi.proto`, package edgelesssys.contrast.userapi; `meshapi.proto`, package meshapi),
 * plus GetManifestsResponse.SeedSharesDoc (field 100) and the MeshAPI RecoverResponse's
 * MeshCACert and IntermediateCert (fields 100, 101), which upstream does not have.
 */
import type { Schema } from '../../util/protobuf.js';

export const USERAPI_SERVICE = 'edgelesssys.contrast.userapi.UserAPI';
export const MESHAPI_SERVICE = 'meshapi.MeshAPI';

/** Field number of GetManifestsResponse.SeedSharesDoc (our extension). */
export const GET_MANIFESTS_SEED_SHARES_FIELD = 100;

export const SeedShareSchema: Schema = [
  { no: 1, name: 'PublicKey', type: 'string' },
  { no: 2, name: 'EncryptedSeed', type: 'bytes' },
];
export const SeedShareDocumentSchema: Schema = [
  { no: 1, name: 'SeedShares', type: 'message', repeated: true, message: SeedShareSchema },
  { no: 2, name: 'salt', type: 'bytes' },
];
export const SetManifestRequestSchema: Schema = [
  { no: 1, name: 'Manifest', type: 'bytes' },
  { no: 2, name: 'Policies', type: 'bytes', repeated: true },
];
export const SetManifestResponseSchema: Schema = [
  { no: 1, name: 'RootCA', type: 'bytes' },
  { no: 2, name: 'MeshCA', type: 'bytes' },
  { no: 3, name: 'SeedSharesDoc', type: 'message', message: SeedShareDocumentSchema },
];
export const LatestTransitionSchema: Schema = [
  { no: 1, name: 'TransitionHash', type: 'bytes' },
  { no: 2, name: 'Signature', type: 'bytes' },
];
export const GetManifestsRequestSchema: Schema = [];
export const GetManifestsResponseSchema: Schema = [
  { no: 1, name: 'Manifests', type: 'bytes', repeated: true },
  { no: 2, name: 'Policies', type: 'bytes', repeated: true },
  { no: 3, name: 'RootCA', type: 'bytes' },
  { no: 4, name: 'MeshCA', type: 'bytes' },
  { no: 5, name: 'LatestTransition', type: 'message', message: LatestTransitionSchema },
  // Our addition, outside upstream's numbers (1-5) so a later upstream field cannot collide; upstream
  // clients skip it. The seed-share document, encrypted to the seed-share owners: from the
  // Coordinator's memory when it is ready, from its store (unverified) while it waits for recovery.
  { no: GET_MANIFESTS_SEED_SHARES_FIELD, name: 'SeedSharesDoc', type: 'message', message: SeedShareDocumentSchema },
];
export const RecoverRequestSchema: Schema = [
  { no: 1, name: 'Seed', type: 'bytes' },
  { no: 2, name: 'Salt', type: 'bytes' },
  { no: 3, name: 'Force', type: 'bool' },
];
export const RecoverResponseSchema: Schema = [];
export const NewMeshCertRequestSchema: Schema = [];
export const NewMeshCertResponseSchema: Schema = [
  { no: 1, name: 'MeshCACert', type: 'bytes' },
  { no: 2, name: 'CertChain', type: 'bytes' },
  { no: 3, name: 'RootCACert', type: 'bytes' },
  { no: 4, name: 'WorkloadSecret', type: 'bytes' },
];

/** MeshAPI Recover (peer recovery between Coordinator replicas): the request is empty, the caller's evidence travels in the HEADERS. */
export const MeshRecoverRequestSchema: Schema = [];
/** Field numbers of MeshAPI RecoverResponse that upstream does not have. */
export const MESH_RECOVER_MESH_CA_CERT_FIELD = 100;
export const MESH_RECOVER_INTERMEDIATE_CERT_FIELD = 101;
export const MeshRecoverResponseSchema: Schema = [
  { no: 1, name: 'Seed', type: 'bytes' },
  { no: 2, name: 'Salt', type: 'bytes' },
  // PEM "EC PRIVATE KEY" (SEC 1), as upstream.
  { no: 3, name: 'MeshCAKey', type: 'bytes' },
  { no: 4, name: 'LatestManifest', type: 'bytes' },
  // Ours: the mesh CA and intermediate certificates themselves, so every replica serves the same
  // mesh-ca.pem and certificate chains byte for byte (upstream rebuilds them from the key).
  { no: MESH_RECOVER_MESH_CA_CERT_FIELD, name: 'MeshCACert', type: 'bytes' },
  { no: MESH_RECOVER_INTERMEDIATE_CERT_FIELD, name: 'IntermediateCert', type: 'bytes' },
];

export interface SeedShareMsg {
  PublicKey: string;
  EncryptedSeed: Buffer;
}
export interface SeedShareDocumentMsg {
  SeedShares: SeedShareMsg[];
  salt: Buffer;
}
export interface SetManifestRequest {
  Manifest: Buffer;
  Policies: Buffer[];
}
export interface SetManifestResponse {
  RootCA: Buffer;
  MeshCA: Buffer;
  SeedSharesDoc?: SeedShareDocumentMsg;
}
export interface LatestTransitionMsg {
  TransitionHash: Buffer;
  Signature: Buffer;
}
export interface GetManifestsResponse {
  Manifests: Buffer[];
  Policies: Buffer[];
  RootCA: Buffer;
  MeshCA: Buffer;
  LatestTransition?: LatestTransitionMsg;
  SeedSharesDoc?: SeedShareDocumentMsg;
}
export interface RecoverRequest {
  Seed: Buffer;
  Salt: Buffer;
  Force: boolean;
}
export interface NewMeshCertResponse {
  MeshCACert: Buffer;
  CertChain: Buffer;
  RootCACert: Buffer;
  WorkloadSecret: Buffer;
}
export interface MeshRecoverResponse {
  Seed: Buffer;
  Salt: Buffer;
  MeshCAKey: Buffer;
  LatestManifest: Buffer;
  MeshCACert: Buffer;
  IntermediateCert: Buffer;
}
