// How cinder reaches nova, from [nova] as cinder/compute/nova.py's novaclient() reads it. cinder
// sends external events as a privileged user: with [nova] auth_type set, the auth plugin comes
// from [nova]; without it, the user's token goes to keystone ([nova] token_auth_url or the
// catalog). cinderblock talks to no keystone, so it supports the two keyless plugins, which carry
// a fixed endpoint: `admin_token` (endpoint + token) and `none` (endpoint, no token). Anything else
// is reported unavailable with the reason, and the extend records cinder's user message.
import type { NovaConfig } from '../config/types.js';

/**
 * cinder passes no timeout of its own and keystoneauth's [nova] timeout defaults to none (wait
 * forever). An extend's RPC handler waiting forever on nova would hold its slot for good, so an
 * unset timeout means this many seconds here.
 */
export const DEFAULT_NOVA_TIMEOUT_SECONDS = 60;

export interface NovaTls {
  /** [nova] cafile: the CA bundle nova's certificate is checked against */
  caFile: string | null;
  certFile: string | null;
  keyFile: string | null;
  /** [nova] insecure: do not check nova's certificate */
  insecure: boolean;
}

export type NovaAccess =
  | { usable: true; endpoint: string; token: string | null; timeoutMs: number; tls: NovaTls; authType: string }
  | { usable: false; reason: string };

const KEYLESS_PLUGINS = new Set(['admin_token', 'none']);

export function novaAccessFrom(nova: NovaConfig): NovaAccess {
  const authType = nova.auth_type?.trim() || null;
  if (!authType) {
    return {
      usable: false,
      reason:
        '[nova] auth_type is not set: cinder would send the user token to keystone ([nova] token_auth_url or the catalog), which cinderblock does not do; set auth_type = admin_token with endpoint and token (or none with endpoint)',
    };
  }
  if (!KEYLESS_PLUGINS.has(authType)) {
    return { usable: false, reason: `[nova] auth_type = ${authType} needs keystone, which cinderblock does not talk to; use admin_token or none with a fixed endpoint` };
  }
  const endpoint = nova.endpoint?.trim();
  if (!endpoint) return { usable: false, reason: `[nova] auth_type = ${authType} needs [nova] endpoint (nova's compute URL, e.g. http://nova:8774/v2.1)` };
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return { usable: false, reason: `[nova] endpoint ${endpoint} is not a URL` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { usable: false, reason: `[nova] endpoint ${endpoint} is neither http nor https` };
  const timeoutSeconds = nova.timeout !== null && nova.timeout > 0 ? nova.timeout : DEFAULT_NOVA_TIMEOUT_SECONDS;
  return {
    usable: true,
    endpoint: endpoint.replace(/\/+$/, ''),
    token: authType === 'admin_token' ? (nova.token ?? null) : null,
    timeoutMs: timeoutSeconds * 1000,
    tls: { caFile: nova.cafile, certFile: nova.certfile, keyFile: nova.keyfile, insecure: nova.insecure },
    authType,
  };
}
