// cinder.context.RequestContext as carried in `_context_*` keys. The dict is kept whole and sent
// back unchanged when the agent passes a request's context on (e.g. a reschedule to the
// scheduler); this class only adds typed, read-mostly access. auth_token never reaches a log:
// toJSON() and util.inspect mask it.
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { invalidInput } from '../errors.js';
import { MASK } from '../log.js';
import { formatPyIsoformat, parseIsoDatetime } from './ovo.js';

export type ReadDeleted = 'no' | 'yes' | 'only';

/** oslo_context generate_request_id(): 'req-' + uuid4. */
export function newRequestId(): string {
  return `req-${randomUUID()}`;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

export class RequestContext {
  /** The context dict exactly as received / as it will be sent (key order preserved). */
  readonly dict: Record<string, unknown>;

  constructor(dict: Record<string, unknown>) {
    this.dict = dict;
  }

  get requestId(): string | null { return str(this.dict.request_id); }
  get globalRequestId(): string | null { return str(this.dict.global_request_id); }
  get userId(): string | null { return str(this.dict.user_id) ?? str(this.dict.user); }
  get projectId(): string | null { return str(this.dict.project_id) ?? str(this.dict.project); }
  get projectName(): string | null { return str(this.dict.project_name); }
  get isAdmin(): boolean { return this.dict.is_admin === true; }
  get roles(): string[] {
    const r = this.dict.roles;
    return Array.isArray(r) ? r.filter((x): x is string => typeof x === 'string') : [];
  }
  get readDeleted(): ReadDeleted {
    const r = this.dict.read_deleted;
    return r === 'yes' || r === 'only' ? r : 'no';
  }
  get remoteAddress(): string | null { return str(this.dict.remote_address); }
  /** The timestamp string as sent (naive isoformat, or with +00:00). */
  get timestamp(): string | null { return str(this.dict.timestamp); }
  /** Token for calls to other services; do not log it. */
  get authToken(): string | null { return str(this.dict.auth_token); }

  timestampDate(): Date | null {
    const t = this.timestamp;
    return t === null ? null : parseIsoDatetime(t);
  }

  /** Copy of the dict for buildRequest({context}). */
  toDict(): Record<string, unknown> {
    return structuredClone(this.dict);
  }

  /** RequestContext.elevated(): admin copy with the 'admin' role added. */
  elevated(readDeleted?: ReadDeleted): RequestContext {
    const d = this.toDict();
    d.is_admin = true;
    const roles = Array.isArray(d.roles) ? (d.roles as unknown[]) : [];
    if (!roles.includes('admin')) roles.push('admin');
    d.roles = roles;
    if (readDeleted) d.read_deleted = readDeleted;
    return new RequestContext(d);
  }

  /** Ids for withRequestScope() / log lines. */
  logScope(): { request_id: string | null; global_request_id: string | null } {
    return { request_id: this.requestId, global_request_id: this.globalRequestId };
  }

  toJSON(): Record<string, unknown> {
    const d = { ...this.dict };
    if (d.auth_token !== null && d.auth_token !== undefined) d.auth_token = MASK;
    return d;
  }

  [inspect.custom](): string {
    return `RequestContext ${inspect(this.toJSON(), { depth: 3 })}`;
  }
}

/**
 * Context of an incoming request (IncomingRequest.context). Checks the few keys cinder's
 * RequestContext.from_dict would choke on, so a crafted message fails with a clear error.
 */
export function contextFromMessage(ctx: Record<string, unknown>): RequestContext {
  const rd = ctx.read_deleted;
  if (rd !== undefined && rd !== null && rd !== 'no' && rd !== 'yes' && rd !== 'only') {
    throw invalidInput(`context read_deleted can only be one of 'no', 'yes' or 'only', not ${JSON.stringify(rd)}`);
  }
  if (ctx.roles !== undefined && ctx.roles !== null && !Array.isArray(ctx.roles)) throw invalidInput('context roles must be a list');
  if (ctx.is_admin !== undefined && ctx.is_admin !== null && typeof ctx.is_admin !== 'boolean') throw invalidInput('context is_admin must be a boolean');
  const ts = ctx.timestamp;
  if (ts !== undefined && ts !== null && ts !== '') {
    if (typeof ts !== 'string') throw invalidInput('context timestamp must be a string');
    try {
      parseIsoDatetime(ts);
    } catch (e) {
      throw invalidInput(`context timestamp: ${(e as Error).message}`);
    }
  }
  return new RequestContext(ctx);
}

/**
 * cinder.context.get_admin_context().to_dict(), for messages the agent originates (capability
 * reports, ...). Keys and order as measured (scheduler.update_service_capabilities.startup.json).
 */
export function adminContext(opts: { requestId?: string; now?: Date; readDeleted?: ReadDeleted } = {}): RequestContext {
  return new RequestContext({
    user: null,
    project_id: null,
    system_scope: null,
    project: null,
    domain: null,
    user_domain: null,
    project_domain: null,
    is_admin: true,
    read_only: false,
    show_deleted: false,
    auth_token: null,
    request_id: opts.requestId ?? newRequestId(),
    global_request_id: null,
    resource_uuid: null,
    roles: ['admin'],
    user_identity: '- - - - -',
    is_admin_project: true,
    user_id: null,
    project_name: null,
    domain_id: null,
    read_deleted: opts.readDeleted ?? 'no',
    remote_address: null,
    timestamp: formatPyIsoformat(opts.now ?? new Date()),
    quota_class: null,
    service_catalog: [],
    message_resource_id: null,
    message_resource_type: null,
    message_action: null,
  });
}

/**
 * cinder.context.get_internal_tenant_context(): the Cinder internal tenant
 * (cinder_internal_tenant_project_id / _user_id), admin, owner of the image-volume cache's
 * volumes. Only for the volume service's own work: it carries no token for other services.
 */
export function internalTenantContext(tenant: { projectId: string; userId: string }, opts: { requestId?: string; now?: Date } = {}): RequestContext {
  const d = adminContext(opts).toDict();
  Object.assign(d, {
    user: tenant.userId,
    user_id: tenant.userId,
    project: tenant.projectId,
    project_id: tenant.projectId,
    roles: [],
    user_identity: `${tenant.userId} ${tenant.projectId} - - -`,
  });
  return new RequestContext(d);
}
