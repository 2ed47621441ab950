/**
 * The KRM function wire format (kustomize `--enable-exec`, kpt): a `ResourceList` on stdin,
 * one on stdout. Each item goes through the transform as its own YAML document, so an item
 * that is not a confidential workload comes back as the very same syntax node, and a changed
 * one differs only in its pod template: every `config.kubernetes.io/*`,
 * `internal.config.kubernetes.io/*` and other annotation is echoed as it came.
 */
import { isMap, isSeq, type Node } from 'yaml';
import { documentValue, newDocument, nodeText, parseStream, WRITE_OPTIONS } from '../resources/stream.js';
import type { InputFile } from '../resources/inputs.js';
import { formatWarning, type Warning } from '../util/diagnostics.js';
import { BugError, UserError } from '../util/errors.js';
import { isPlainObject } from '../util/values.js';

export interface ResourceList {
  apiVersion: string;
  kind: 'ResourceList';
  /** The syntax node of every item, in order. */
  items: Node[];
  /** The plain value of each item. */
  values: Record<string, unknown>[];
  functionConfig: unknown;
}

const ORIGIN = 'ResourceList';

/** The ResourceList in `text`, or undefined when the text is something else (a plain stream). */
export function parseResourceList(text: string): ResourceList | undefined {
  // Cheap test first: a plain stream of resources never has a top-level `kind: ResourceList`.
  if (!/^kind:\s*["']?ResourceList["']?\s*(#.*)?$/m.test(text)) return undefined;
  const nonEmpty = parseStream(ORIGIN, text).documents.filter((d) => d.doc.contents !== null);
  if (nonEmpty.length !== 1) return undefined;
  const { doc, index } = nonEmpty[0]!;
  const value = documentValue(doc, { file: ORIGIN, document: index });
  if (!isPlainObject(value) || value.kind !== 'ResourceList') return undefined;
  const apiVersion = String(value.apiVersion ?? '');
  if (!/^config\.kubernetes\.io\/v1(beta1)?$/.test(apiVersion)) {
    throw new UserError(`unsupported ResourceList apiVersion "${apiVersion}" (expected config.kubernetes.io/v1)`, {
      file: ORIGIN,
    });
  }
  const itemsNode = isMap(doc.contents) ? doc.contents.get('items', true) : undefined;
  let items: Node[] = [];
  if (itemsNode !== undefined && itemsNode !== null) {
    if (!isSeq(itemsNode)) throw new UserError('items must be a list', { file: ORIGIN, field: 'items' });
    items = itemsNode.items as Node[];
  }
  const values = Array.isArray(value.items) ? value.items : [];
  values.forEach((v, i) => {
    if (!isPlainObject(v))
      throw new UserError('expected a Kubernetes resource (a mapping)', { file: ORIGIN, field: `items[${i}]` });
  });
  return {
    apiVersion,
    kind: 'ResourceList',
    items,
    values: values as Record<string, unknown>[],
    functionConfig: value.functionConfig,
  };
}

function itemName(i: number): string {
  return `items[${i}]`;
}

/** One transform input per item. */
export function itemInputs(list: ResourceList): InputFile[] {
  return list.items.map((node, i) => ({ name: itemName(i), text: nodeText(node) }));
}

interface KrmResult {
  message: string;
  severity: 'error' | 'warning' | 'info';
  resourceRef?: { apiVersion: string; kind: string; name: string; namespace?: string };
  file?: { path: string; index?: number };
  field?: { path: string };
}

function annotation(item: Record<string, unknown> | undefined, key: string): string | undefined {
  const meta = item?.metadata;
  if (!isPlainObject(meta) || !isPlainObject(meta.annotations)) return undefined;
  const v = meta.annotations[key];
  return typeof v === 'string' ? v : undefined;
}

/** A warning as a KRM `results` entry, pointing at the item (and its file) it is about. */
function warningResult(list: ResourceList, w: Warning): KrmResult {
  const m = /^items\[(\d+)\]$/.exec(w.location.file ?? '');
  const item = m ? list.values[Number(m[1])] : undefined;
  const { field, ...rest } = w.location;
  const result: KrmResult = {
    message: formatWarning({ message: w.message, location: { ...rest, file: undefined, document: undefined } }),
    severity: 'warning',
  };
  const meta = isPlainObject(item?.metadata) ? item.metadata : undefined;
  if (item && typeof item.apiVersion === 'string' && typeof item.kind === 'string' && typeof meta?.name === 'string') {
    result.resourceRef = { apiVersion: item.apiVersion, kind: item.kind, name: meta.name };
    if (typeof meta.namespace === 'string') result.resourceRef.namespace = meta.namespace;
  }
  const path = annotation(item, 'internal.config.kubernetes.io/path') ?? annotation(item, 'config.kubernetes.io/path');
  if (path) {
    const index =
      annotation(item, 'internal.config.kubernetes.io/index') ?? annotation(item, 'config.kubernetes.io/index');
    result.file = index !== undefined && /^\d+$/.test(index) ? { path, index: Number(index) } : { path };
  }
  if (field && result.resourceRef) result.field = { path: field };
  return result;
}

/** The output ResourceList: transformed items (unchanged ones as the original nodes) and results. */
export function resourceListOutput(
  list: ResourceList,
  inputs: InputFile[],
  texts: string[],
  warnings: readonly Warning[],
): string {
  const out = newDocument();
  const items = list.items.map((node, i) => {
    if (texts[i] === inputs[i]!.text) return node;
    const parsed = parseStream(itemName(i), texts[i]!).documents.filter((d) => d.doc.contents !== null);
    if (parsed.length !== 1) throw new BugError(`${itemName(i)}: the transform did not return exactly one resource`);
    return parsed[0]!.doc.contents as Node;
  });
  const root: Node = out.createNode({ apiVersion: list.apiVersion, kind: list.kind, items: [] });
  const itemsNode = isMap(root) ? root.get('items', true) : undefined;
  if (!isMap(root) || !isSeq(itemsNode)) throw new BugError('the output ResourceList has no items list');
  itemsNode.items = items;
  if (warnings.length > 0) root.set('results', out.createNode(warnings.map((w) => warningResult(list, w))));
  out.contents = root;
  return out.toString(WRITE_OPTIONS);
}
