// oslo_messaging/rpc/dispatcher.py RPCDispatcher, for endpoints written in TypeScript.
//
// For each endpoint in order: skip it unless the message namespace equals the endpoint's and the
// endpoint version is compatible (same major, endpoint minor >= requested, revision likewise);
// the first compatible endpoint exposing the method handles it. A compatible endpoint without
// the method → NoSuchMethod; no compatible endpoint at all → UnsupportedVersion. Methods whose
// name starts with '_' are never exposed (DefaultRPCAccessPolicy).
import { CinderError } from '../errors.js';
import { deserializeEntity } from './ovo.js';
import { DEFAULT_REQUEST_VERSION, type IncomingRequest } from './envelope.js';

export type RpcHandler = (ctx: Record<string, unknown>, args: Record<string, unknown>) => unknown | Promise<unknown>;

export interface RpcEndpoint {
  /** Target version this endpoint implements, e.g. '3.18' (oslo default when unset: '1.0'). */
  version: string;
  namespace?: string | null;
  methods: Record<string, RpcHandler>;
}

const DISPATCHER_MODULE = 'oslo_messaging.rpc.dispatcher';

/** oslo_messaging.rpc.dispatcher.NoSuchMethod */
export class NoSuchMethod extends CinderError {
  readonly method: string;
  constructor(method: string) {
    super(`Endpoint does not support RPC method ${method}`, { className: 'NoSuchMethod', module: DISPATCHER_MODULE });
    this.method = method;
  }
}

/** oslo_messaging.rpc.dispatcher.UnsupportedVersion */
export class UnsupportedVersion extends CinderError {
  readonly version: string | null;
  readonly method: string | null;
  constructor(version: string | null, method?: string | null) {
    let msg = `Endpoint does not support RPC version ${version === null ? 'None' : version}`;
    if (method) msg = `${msg}. Attempted method: ${method}`;
    super(msg, { className: 'UnsupportedVersion', module: DISPATCHER_MODULE });
    this.version = version;
    this.method = method ?? null;
  }
}

function parts(v: string): [number, number, number] {
  const p = v.split('.');
  const n = (s: string | undefined): number => {
    const x = Number.parseInt(s ?? '0', 10);
    return Number.isNaN(x) ? Number.NaN : x;
  };
  return [n(p[0]), n(p[1]), n(p[2])];
}

/** oslo_messaging._utils.version_is_compatible(imp_version, version) */
export function versionIsCompatible(impVersion: string | null | undefined, version: string | null | undefined): boolean {
  if (impVersion === null || impVersion === undefined) return true;
  if (version === null || version === undefined) return false;
  const [maj, min, rev] = parts(version);
  const [imaj, imin, irev] = parts(impVersion);
  if ([maj, min, rev, imaj, imin, irev].some((x) => Number.isNaN(x))) return false;
  if (maj !== imaj) return false;
  if (min > imin) return false;
  if (min === imin && rev > irev) return false;
  return true;
}

export interface ResolvedHandler {
  endpoint: RpcEndpoint;
  handler: RpcHandler;
}

export class RpcDispatcher {
  readonly endpoints: readonly RpcEndpoint[];

  constructor(endpoints: RpcEndpoint[]) {
    this.endpoints = [...endpoints];
  }

  /** Finds the handler or throws NoSuchMethod / UnsupportedVersion exactly as oslo decides. */
  resolve(method: string, version: string | null, namespace: string | null): ResolvedHandler {
    let foundCompatible = false;
    for (const ep of this.endpoints) {
      const epNamespace = ep.namespace ?? null;
      if (epNamespace !== namespace) continue;
      if (!versionIsCompatible(ep.version || '1.0', version)) continue;
      if (!method.startsWith('_') && Object.prototype.hasOwnProperty.call(ep.methods, method)) {
        const handler = ep.methods[method];
        if (typeof handler === 'function') return { endpoint: ep, handler };
      }
      foundCompatible = true;
    }
    if (foundCompatible) throw new NoSuchMethod(method);
    throw new UnsupportedVersion(version, method);
  }

  /**
   * Runs the request's handler: args deserialized with deserializeEntity (VersionedObject for
   * object primitives). The return value is serialized by buildReply (serializeEntity).
   */
  async dispatch(req: IncomingRequest): Promise<unknown> {
    const version = req.version ?? DEFAULT_REQUEST_VERSION;
    const { handler } = this.resolve(req.method, version, req.namespace);
    const args: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(req.args)) args[k] = deserializeEntity(v, k);
    return await handler(req.context, args);
  }
}

/**
 * The dispatcher side of amqp._MsgIdCache: remembers the last `size` `_unique_id`s (oslo keeps 16
 * per listener) and answers whether one was seen already.
 */
export class DuplicateMessageCache {
  private readonly size: number;
  private readonly order: string[] = [];
  private readonly seen = new Set<string>();

  constructor(size = 16) {
    this.size = Math.max(1, size);
  }

  has(id: string | null | undefined): boolean {
    return !!id && this.seen.has(id);
  }

  add(id: string | null | undefined): void {
    if (!id || this.seen.has(id)) return;
    this.seen.add(id);
    this.order.push(id);
    while (this.order.length > this.size) {
      const old = this.order.shift();
      if (old !== undefined) this.seen.delete(old);
    }
  }

  get length(): number {
    return this.order.length;
  }
}
