/**
 * A Store in Kubernetes ConfigMaps, one ConfigMap per key, in the Coordinator's namespace.
 *
 * Name: `contrast-store-<key with "/" → "-">` when that is a valid, unambiguous object name;
 * otherwise `contrast-store-h-<sha256 of the key, 40 hex>`. The key itself is kept in an
 * annotation and checked on every read, so two keys can never silently share a ConfigMap.
 * The value is in `binaryData[<last key segment>]`.
 *
 * Compare-and-swap: read, compare the bytes, then update with the read `resourceVersion`
 * (create when the key must not exist). The API server rejects the update with 409 when anybody
 * wrote in between; then the comparison is made again on a fresh read. A watch on the store's
 * ConfigMaps reports keys that another writer changed (`onStale`), so a Coordinator can tell
 * that its cached view of the history is out of date.
 *
 * Large values: a ConfigMap holds at most about 1 MiB, and a 10,000-policy manifest is more
 * than that. Content-addressed values (`manifests/<sha256>`, `policies/<sha256>`, whose key is
 * the SHA-256 of the value) larger than that are split into 512 KiB chunks, each in its own
 * ConfigMap `contrast-store-chunk-<sha256 of the chunk>` (`binaryData.chunk`); the key's
 * ConfigMap then holds no value but the annotation `contrast.edgeless.systems/store-chunks`,
 * `{"size": n, "sha256": "<hex>", "chunks": ["<hex>", …]}`. Chunks are written first, the index
 * last, so a reader sees the whole value or none; every chunk and the whole are checked against
 * their hashes on read. Other keys (the compare-and-swap pointer, the root certificate, the
 * seed-share document) are small; a large value there is refused.
 *
 * Permissions needed (the Coordinator's Role): configmaps get, create, update, watch.
 */
import { createHash } from 'node:crypto';
import { CoreV1Api, Watch, type KubeConfig, type V1ConfigMap, type V1OwnerReference } from '@kubernetes/client-node';
import { checkKey, type Store } from './interface.js';
import { mapLimit } from '../history.js';

const STORE_LABEL = 'app.kubernetes.io/managed-by';
const STORE_LABEL_VALUE = 'contrast.edgeless.systems';
const STORE_KEY_ANNOTATION = 'contrast.edgeless.systems/store-key';
const STORE_NAME_PREFIX = 'contrast-store-';
export const STORE_CHUNKS_ANNOTATION = 'contrast.edgeless.systems/store-chunks';
const CHUNK_NAME_PREFIX = `${STORE_NAME_PREFIX}chunk-`;
/** ConfigMaps are limited to 1 MiB in total; leave room for metadata. */
const MAX_VALUE_BYTES = 1024 * 1024 - 16 * 1024;
const CHUNK_BYTES = 512 * 1024;
/** At most this many chunks per value (a 64 MiB gRPC message is the largest manifest anyway). */
const MAX_CHUNKS = 256;
const CHUNK_CONCURRENCY = 4;
const CONTENT_ADDRESSED = /^(?:manifests|policies)\/([0-9a-f]{64})$/;

interface ChunkIndex {
  size: number;
  sha256: string;
  chunks: string[];
}

function sha256hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
const MAX_CONFLICT_RETRIES = 100;

export function configMapName(key: string): string {
  checkKey(key);
  const direct = `${STORE_NAME_PREFIX}${key.replaceAll('/', '-')}`;
  // Plain lower-case segments without "-" map one-to-one; anything else is hashed.
  // ("chunk/…" and "h/…" would look like chunk ConfigMaps and hashed names.)
  const simple = key.split('/').every((s) => /^[a-z0-9]+$/.test(s)) && !/^(?:chunk|h)\//.test(key);
  if (simple && direct.length <= 253) return direct;
  return `${STORE_NAME_PREFIX}h-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

function dataKey(key: string): string {
  return key.split('/').pop()!;
}

function statusOf(err: unknown): number | undefined {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'number' ? c : undefined;
}

export interface ConfigMapStoreOptions {
  kc: KubeConfig;
  namespace: string;
  /** Usually the Coordinator StatefulSet, so the history goes away with it. */
  owner?: V1OwnerReference;
  /** Called when the watch sees another writer change a key. */
  onStale?: (key: string) => void;
}

export class ConfigMapStore implements Store {
  private readonly api: CoreV1Api;
  /** resourceVersion of each key as this store last read or wrote it. */
  private readonly seen = new Map<string, string>();
  private readonly staleKeys = new Set<string>();
  /** The change last reported as stale, per key. */
  private readonly reported = new Map<string, string>();
  /** resourceVersions this store itself wrote, so the watch does not report our own writes. */
  private readonly own = new Map<string, Set<string>>();
  /** Writes in flight per key: a watch event may arrive before the write's response. */
  private readonly inflight = new Map<string, Promise<unknown>>();
  private abort: AbortController | undefined;

  constructor(private readonly opts: ConfigMapStoreOptions) {
    this.api = opts.kc.makeApiClient(CoreV1Api);
  }

  get namespace(): string {
    return this.opts.namespace;
  }

  private async read(key: string): Promise<{ cm: V1ConfigMap; value: Buffer | undefined } | undefined> {
    const name = configMapName(key);
    let cm: V1ConfigMap;
    try {
      cm = await this.api.readNamespacedConfigMap({ name, namespace: this.opts.namespace });
    } catch (err) {
      if (statusOf(err) === 404) {
        this.seen.delete(key);
        return undefined;
      }
      throw err;
    }
    const owner = cm.metadata?.annotations?.[STORE_KEY_ANNOTATION];
    if (owner !== undefined && owner !== key)
      throw new Error(
        `ConfigMap ${this.opts.namespace}/${name} holds store key ${JSON.stringify(owner)}, not ${JSON.stringify(key)}`,
      );
    const b64 = cm.binaryData?.[dataKey(key)];
    const indexText = cm.metadata?.annotations?.[STORE_CHUNKS_ANNOTATION];
    const value =
      indexText !== undefined && b64 === undefined
        ? await this.readChunks(key, indexText)
        : b64 === undefined
          ? undefined
          : Buffer.from(b64, 'base64');
    if (cm.metadata?.resourceVersion) this.seen.set(key, cm.metadata.resourceVersion);
    this.staleKeys.delete(key);
    return { cm, value };
  }

  /** A chunked value: every chunk and the whole checked against their hashes. */
  private async readChunks(key: string, indexText: string): Promise<Buffer> {
    let index: ChunkIndex;
    try {
      index = JSON.parse(indexText) as ChunkIndex;
    } catch {
      throw new Error(`store key ${key}: the chunk index is not valid JSON`);
    }
    if (
      typeof index !== 'object' ||
      index === null ||
      !Number.isSafeInteger(index.size) ||
      index.size < 0 ||
      typeof index.sha256 !== 'string' ||
      !Array.isArray(index.chunks) ||
      index.chunks.length > MAX_CHUNKS ||
      index.chunks.some((c) => typeof c !== 'string' || !/^[0-9a-f]{64}$/.test(c))
    ) {
      throw new Error(`store key ${key}: malformed chunk index`);
    }
    if (index.size > index.chunks.length * CHUNK_BYTES)
      throw new Error(`store key ${key}: the chunk index claims ${index.size} bytes in ${index.chunks.length} chunks`);
    const parts = await mapLimit(index.chunks, CHUNK_CONCURRENCY, async (hash) => {
      let cm: V1ConfigMap;
      try {
        cm = await this.api.readNamespacedConfigMap({
          name: `${CHUNK_NAME_PREFIX}${hash}`,
          namespace: this.opts.namespace,
        });
      } catch (err) {
        if (statusOf(err) === 404) throw new Error(`store key ${key}: chunk ${hash} is missing`, { cause: err });
        throw err;
      }
      const bytes = Buffer.from(cm.binaryData?.chunk ?? '', 'base64');
      if (sha256hex(bytes) !== hash)
        throw new Error(`store key ${key}: chunk ${hash} of ${key} does not match its hash: the store was modified`);
      return bytes;
    });
    const value = Buffer.concat(parts);
    if (value.length !== index.size || sha256hex(value) !== index.sha256)
      throw new Error(`store key ${key}: the chunks of ${key} do not add up to the value of the index`);
    return value;
  }

  private async writeChunk(hash: string, bytes: Buffer): Promise<void> {
    const name = `${CHUNK_NAME_PREFIX}${hash}`;
    const body = (resourceVersion?: string): V1ConfigMap => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name,
        namespace: this.opts.namespace,
        labels: { [STORE_LABEL]: STORE_LABEL_VALUE },
        annotations: { [STORE_KEY_ANNOTATION]: `chunk/${hash}` },
        ...(this.opts.owner ? { ownerReferences: [this.opts.owner] } : {}),
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      binaryData: { chunk: bytes.toString('base64') },
    });
    try {
      await this.api.createNamespacedConfigMap({ namespace: this.opts.namespace, body: body() });
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      // Already there: content-addressed, so it is right unless somebody changed it.
      const existing = await this.api.readNamespacedConfigMap({ name, namespace: this.opts.namespace });
      if (sha256hex(Buffer.from(existing.binaryData?.chunk ?? '', 'base64')) !== hash) {
        await this.api.replaceNamespacedConfigMap({
          name,
          namespace: this.opts.namespace,
          body: body(existing.metadata?.resourceVersion),
        });
      }
    }
  }

  /** Chunks first; returns the index the key's ConfigMap carries instead of the value. */
  private async writeChunks(key: string, value: Uint8Array): Promise<string> {
    const m = CONTENT_ADDRESSED.exec(key);
    if (!m)
      throw new Error(
        `store value of ${key} is ${value.length} bytes; a ConfigMap holds at most about 1 MiB, and only content-addressed values (manifests, policies) are split over several`,
      );
    const whole = Buffer.from(value);
    const hash = sha256hex(whole);
    if (hash !== m[1])
      throw new Error(
        `store key ${key} is not named by the SHA-256 of its value (${hash}); only content-addressed values are split over several ConfigMaps`,
      );
    const parts: Buffer[] = [];
    for (let off = 0; off < whole.length; off += CHUNK_BYTES) parts.push(whole.subarray(off, off + CHUNK_BYTES));
    if (parts.length > MAX_CHUNKS)
      throw new Error(`store value of ${key} is ${whole.length} bytes, more than ${MAX_CHUNKS} chunks`);
    const hashes = parts.map(sha256hex);
    await mapLimit(parts, CHUNK_CONCURRENCY, (p, i) => this.writeChunk(hashes[i]!, p));
    return JSON.stringify({ size: whole.length, sha256: hash, chunks: hashes } satisfies ChunkIndex);
  }

  private body(key: string, value: Uint8Array, resourceVersion?: string, chunkIndex?: string): V1ConfigMap {
    if (value.length > MAX_VALUE_BYTES)
      throw new Error(`store value of ${key} is ${value.length} bytes; a ConfigMap holds at most about 1 MiB`);
    return {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: configMapName(key),
        namespace: this.opts.namespace,
        labels: { [STORE_LABEL]: STORE_LABEL_VALUE },
        annotations: {
          [STORE_KEY_ANNOTATION]: key,
          ...(chunkIndex !== undefined ? { [STORE_CHUNKS_ANNOTATION]: chunkIndex } : {}),
        },
        ...(this.opts.owner ? { ownerReferences: [this.opts.owner] } : {}),
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      ...(chunkIndex !== undefined ? {} : { binaryData: { [dataKey(key)]: Buffer.from(value).toString('base64') } }),
    };
  }

  private remember(key: string, cm: V1ConfigMap): void {
    const rv = cm.metadata?.resourceVersion;
    if (!rv) return;
    this.seen.set(key, rv);
    const set = this.own.get(key) ?? new Set<string>();
    set.add(rv);
    if (set.size > 16) set.delete(set.values().next().value as string);
    this.own.set(key, set);
  }

  private track<T>(key: string, p: Promise<T>): Promise<T> {
    const settled = p.catch(() => undefined);
    this.inflight.set(key, settled);
    void settled.then(() => {
      if (this.inflight.get(key) === settled) this.inflight.delete(key);
    });
    return p;
  }

  async get(key: string): Promise<Buffer | undefined> {
    return (await this.read(key))?.value;
  }

  set(key: string, value: Uint8Array): Promise<void> {
    return this.track(key, this.setNow(key, value));
  }

  private async setNow(key: string, value: Uint8Array): Promise<void> {
    configMapName(key);
    const chunkIndex = value.length > MAX_VALUE_BYTES ? await this.writeChunks(key, value) : undefined;
    const inline = chunkIndex === undefined ? value : new Uint8Array(0);
    // A key this store has not seen (e.g. a new policy, just read as missing) is created directly.
    if (!this.seen.has(key)) {
      try {
        this.remember(
          key,
          await this.api.createNamespacedConfigMap({
            namespace: this.opts.namespace,
            body: this.body(key, inline, undefined, chunkIndex),
          }),
        );
        return;
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
      }
    }
    for (let i = 0; i < MAX_CONFLICT_RETRIES; i++) {
      const current = await this.read(key);
      try {
        const written = current
          ? await this.api.replaceNamespacedConfigMap({
              name: configMapName(key),
              namespace: this.opts.namespace,
              body: this.body(key, inline, current.cm.metadata?.resourceVersion, chunkIndex),
            })
          : await this.api.createNamespacedConfigMap({
              namespace: this.opts.namespace,
              body: this.body(key, inline, undefined, chunkIndex),
            });
        this.remember(key, written);
        return;
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
      }
    }
    throw new Error(`store key ${key}: gave up after ${MAX_CONFLICT_RETRIES} conflicting writes`);
  }

  compareAndSwap(key: string, expected: Uint8Array | undefined, value: Uint8Array): Promise<boolean> {
    return this.track(key, this.casNow(key, expected, value));
  }

  private async casNow(key: string, expected: Uint8Array | undefined, value: Uint8Array): Promise<boolean> {
    for (let i = 0; i < MAX_CONFLICT_RETRIES; i++) {
      const current = await this.read(key);
      const currentValue = current?.value;
      const same =
        currentValue === undefined || expected === undefined
          ? currentValue === expected && (expected !== undefined || current === undefined)
          : Buffer.compare(currentValue, Buffer.from(expected)) === 0;
      if (!same) return false;
      try {
        const written = current
          ? await this.api.replaceNamespacedConfigMap({
              name: configMapName(key),
              namespace: this.opts.namespace,
              body: this.body(key, value, current.cm.metadata?.resourceVersion),
            })
          : await this.api.createNamespacedConfigMap({ namespace: this.opts.namespace, body: this.body(key, value) });
        this.remember(key, written);
        return true;
      } catch (err) {
        // 409: somebody wrote (or created) it since our read; compare again on fresh data.
        if (statusOf(err) !== 409) throw err;
      }
    }
    throw new Error(`store key ${key}: gave up after ${MAX_CONFLICT_RETRIES} conflicting writes`);
  }

  /** Keys changed by another writer since this store last read or wrote them. */
  stale(): string[] {
    return [...this.staleKeys];
  }

  isStale(key: string): boolean {
    return this.staleKeys.has(key);
  }

  /**
   * Watch the store's ConfigMaps; resolves once the watch is established. Changes to keys this
   * store has seen, made by someone else, mark the key stale and call `onStale`.
   */
  async watch(): Promise<void> {
    if (this.abort) return;
    const path = `/api/v1/namespaces/${encodeURIComponent(this.opts.namespace)}/configmaps`;
    const start = async (): Promise<void> => {
      let failed = false;
      const controller = await new Watch(this.opts.kc).watch(
        path,
        { labelSelector: `${STORE_LABEL}=${STORE_LABEL_VALUE}`, allowWatchBookmarks: false },
        (type, obj: V1ConfigMap) => {
          // ERROR carries a Status (e.g. 410 Gone, or 504 while the API server's watch cache
          // catches up); the stream ends after it and is started again below.
          if (type === 'ERROR') {
            failed = true;
            return;
          }
          const key = obj.metadata?.annotations?.[STORE_KEY_ANNOTATION];
          const rv = obj.metadata?.resourceVersion;
          if (!key || !rv || type === 'BOOKMARK') return;
          void Promise.resolve(this.inflight.get(key)).then(() => this.checkEvent(key, rv, type));
        },
        (err) => {
          // The API server ends watches after a while; resume unless we were closed. Changes made
          // while no watch was open are found by re-reading the keys we know.
          if (this.abort === controller) {
            setTimeout(
              () => {
                if (this.abort !== controller) return;
                void start().catch(() => {
                  // Could not even open the watch (API server unreachable?): try again later.
                  if (this.abort === controller)
                    setTimeout(() => {
                      if (this.abort === controller) void start().catch(() => undefined);
                    }, 2000).unref();
                });
              },
              err || failed ? 1000 : 0,
            ).unref();
          }
        },
      );
      this.abort = controller;
      await this.recheck();
    };
    await start();
  }

  /** Re-read every key this store has seen; report those someone else changed. */
  private async recheck(): Promise<void> {
    for (const [key, known] of [...this.seen]) {
      let cm: V1ConfigMap | undefined;
      try {
        cm = await this.api.readNamespacedConfigMap({ name: configMapName(key), namespace: this.opts.namespace });
      } catch (err) {
        if (statusOf(err) !== 404) continue;
      }
      const rv = cm?.metadata?.resourceVersion;
      if (this.seen.get(key) !== known) continue; // read or written meanwhile
      if (rv === undefined) this.checkEvent(key, known, 'DELETED');
      else if (rv !== known) this.checkEvent(key, rv, 'MODIFIED');
    }
  }

  private checkEvent(key: string, rv: string, type: string): void {
    const known = this.seen.get(key);
    if (known === undefined || known === rv || this.own.get(key)?.has(rv)) return;
    let newer = true;
    try {
      newer = BigInt(rv) > BigInt(known);
    } catch {
      // resourceVersions are opaque in general; treat any other one as a change.
    }
    if (type === 'DELETED' || newer) {
      // The watch and a re-read after a watch restart can both see the same change: report once.
      const marker = `${type === 'DELETED' ? 'deleted' : 'rv'}:${rv}`;
      if (this.staleKeys.has(key) && this.reported.get(key) === marker) return;
      this.reported.set(key, marker);
      this.staleKeys.add(key);
      this.opts.onStale?.(key);
    }
  }

  close(): void {
    const a = this.abort;
    this.abort = undefined;
    a?.abort();
  }
}
