// Failure replies, as oslo_messaging/_drivers/common.py serialize_remote_exception writes them
// and deserialize_remote_exception reads them. The caller rebuilds `module.class(*args, **kwargs)`
// when module is builtins or in its allowed_remote_exmods (cinder: cinder.exception), so a
// CinderError goes out with args [message] and its kwargs, never with a 'message' kwarg
// (CinderException would get it twice).
import { CinderError } from '../errors.js';
import { scrub, scrubText } from '../log.js';
import { MalformedMessage, pyDumps } from './envelope.js';

export interface RemoteFailure {
  className: string;
  module: string;
  message: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  tb: string[];
}

const BUILTINS = 'builtins';

/** V8 stack frames -> Python traceback.format_exception style lines (most recent call last). */
function frames(err: Error): string[] {
  const out: string[] = [];
  for (const line of (err.stack ?? '').split('\n')) {
    const m = /^\s*at (?:(.+?) \()?(.+?):(\d+):\d+\)?$/.exec(line);
    if (!m) continue;
    const file = m[2]!.replace(/^file:\/\//, '');
    out.push(`  File "${file}", line ${m[3]}, in ${m[1] ?? '<module>'}\n`);
  }
  return out.reverse();
}

function describe(err: unknown): { className: string; module: string; message: string } {
  if (err instanceof CinderError) return { className: err.className, module: err.module, message: err.message };
  if (err instanceof Error) return { className: 'Exception', module: BUILTINS, message: err.message || err.name };
  return { className: 'Exception', module: BUILTINS, message: String(err) };
}

function traceback(err: unknown, depth = 0): string[] {
  const d = describe(err);
  const qualified = d.module === BUILTINS ? d.className : `${d.module}.${d.className}`;
  const own = ['Traceback (most recent call last):\n', ...(err instanceof Error ? frames(err) : []), `${qualified}: ${d.message}\n`];
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause === undefined || depth >= 3) return own;
  return [...traceback(cause, depth + 1), '\nThe above exception was the direct cause of the following exception:\n\n', ...own];
}

/** Error -> the failure JSON string of a reply. Secrets are masked everywhere in it. */
export function serializeFailure(err: unknown): string {
  const d = describe(err);
  const message = scrubText(d.message);
  let kwargs: Record<string, unknown> = {};
  if (err instanceof CinderError) {
    kwargs = scrub(err.kwargs) as Record<string, unknown>;
    delete kwargs.message;
  }
  return pyDumps({
    class: d.className,
    module: d.module,
    message,
    tb: traceback(err).map(scrubText),
    args: [message],
    kwargs,
  });
}

/** Reads a failure string (client side). Missing fields get oslo's defaults. */
export function deserializeFailure(s: string): RemoteFailure {
  let f: unknown;
  try {
    f = JSON.parse(s);
  } catch (e) {
    throw new MalformedMessage(`failure is not JSON (${(e as Error).message})`);
  }
  if (typeof f !== 'object' || f === null || Array.isArray(f)) throw new MalformedMessage('failure is not a JSON object');
  const r = f as Record<string, unknown>;
  const text = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
  return {
    className: text(r.class),
    module: text(r.module),
    message: text(r.message),
    args: Array.isArray(r.args) ? r.args : [],
    kwargs: typeof r.kwargs === 'object' && r.kwargs !== null && !Array.isArray(r.kwargs) ? (r.kwargs as Record<string, unknown>) : {},
    tb: Array.isArray(r.tb) ? r.tb.map(text) : [],
  };
}

/** Rebuilds a CinderError from a failure (e.g. for the agent's own calls to other services). */
export function failureToError(f: RemoteFailure): CinderError {
  return new CinderError(f.message, { className: f.className, module: f.module, kwargs: f.kwargs });
}
