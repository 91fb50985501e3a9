// The agent's logging, from the operator's side: `cinderblock log-level` changes the running
// agent's level over the admin socket (cinder's set_log_levels: a logger-name prefix and a Python
// level name; per backend or for the whole agent), and `cinderblock logs --request-id req-…`
// picks one request's lines out of the journal or the configured log file. Every line the agent
// writes while serving an RPC carries request_id and global_request_id (log.ts), so one id
// follows a request from cinder-api through the agent.
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import type { CinderConfig, ConfigSourceArg } from '../config/index.js';
import { AdminSocketError, adminRequest, adminSocketPath } from '../agent/admin-socket.js';
import { processRunner, startProcess } from '../exec/run-command.js';
import { CliFailure, emit, EXIT, loadCliConfig, runCli, table, type OutputOptions } from './output.js';

/** The level names cinder-manage's `service set_log --level` takes. */
export const PYTHON_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'WARN', 'ERROR', 'CRITICAL', 'FATAL'] as const;

export function normalizeLevel(level: string): string {
  const up = level.toUpperCase();
  if (!(PYTHON_LEVELS as readonly string[]).includes(up)) throw new CliFailure(`unknown log level ${level}: use DEBUG, INFO, WARNING, ERROR or CRITICAL`, EXIT.usage);
  return up;
}

function agentFailure(err: unknown, socket: string): CliFailure {
  if (err instanceof AdminSocketError && err.unreachable) return new CliFailure(`the agent is not running (nothing listens on ${socket}); start it with systemctl start cinderblock`, EXIT.unreachable);
  // the agent answered and refused (unknown backend, bad level): the request was wrong
  if (err instanceof AdminSocketError && err.message.startsWith('the agent refused')) return new CliFailure(err.message, EXIT.usage);
  return new CliFailure(err instanceof Error ? err.message : String(err), EXIT.unreachable);
}

export async function logLevelCommand(sources: ConfigSourceArg[], level: string | undefined, opts: OutputOptions & { backend?: string; prefix?: string; socket?: string }): Promise<void> {
  await runCli(async () => {
    const config = await loadCliConfig(sources);
    const socket = opts.socket ?? adminSocketPath(config.default.state_path);
    const request: Record<string, unknown> = level
      ? { op: 'set-log-level', level: normalizeLevel(level), prefix: opts.prefix ?? '', backend: opts.backend ?? null }
      : { op: 'get-log-levels', prefix: opts.prefix ?? '', backend: opts.backend ?? null };
    let result: Record<string, Record<string, string>>;
    try {
      result = (await adminRequest(socket, request)) as typeof result;
    } catch (err) {
      throw agentFailure(err, socket);
    }
    emit(opts, result, () => table(['BACKEND', 'LOGGER', 'LEVEL'], Object.entries(result).flatMap(([b, levels]) => Object.entries(levels).map(([name, l]) => [b, name, l]))));
    return EXIT.ok;
  });
}

/** Where the agent's lines go: [DEFAULT] log_file (under log_dir when relative), else the journal. */
export function logSource(config: CinderConfig, file?: string): { file: string } | { journal: true } {
  if (file) return { file };
  const f = config.default.log_file;
  if (f) return { file: f.startsWith('/') || !config.default.log_dir ? f : join(config.default.log_dir, f) };
  return { journal: true };
}

export interface LogLine {
  time: string | null;
  level: string;
  backend: string | null;
  msg: string;
  /** the parsed JSON line (or the raw text for a line that is not JSON) */
  raw: Record<string, unknown> | string;
}

const PINO_LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARNING', 50: 'ERROR', 60: 'CRITICAL' };

/** The lines of one request: its request_id or global_request_id (JSON lines), or the id in the text. */
export function matchRequest(text: string, requestId: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes(requestId)) continue;
    const start = line.indexOf('{');
    let obj: Record<string, unknown> | null = null;
    if (start !== -1) {
      try {
        const parsed: unknown = JSON.parse(line.slice(start));
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) obj = parsed as Record<string, unknown>;
      } catch {
        obj = null;
      }
    }
    if (obj) {
      if (obj.request_id !== requestId && obj.global_request_id !== requestId) continue;
      out.push({
        time: typeof obj.time === 'string' ? obj.time : null,
        level: PINO_LEVELS[Number(obj.level)] ?? String(obj.level ?? ''),
        backend: typeof obj.backend === 'string' ? obj.backend : null,
        msg: typeof obj.msg === 'string' ? obj.msg : '',
        raw: obj,
      });
    } else {
      out.push({ time: null, level: '', backend: null, msg: line, raw: line });
    }
  }
  return out;
}

export function formatLogLines(lines: readonly LogLine[]): string {
  return lines
    .map((l) => {
      if (typeof l.raw === 'string') return `${l.raw}\n`;
      const { time: _t, level: _l, msg: _m, pid: _p, hostname: _h, name: _n, backend: _b, request_id: _r, global_request_id: _g, ...rest } = l.raw;
      const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
      return `${l.time ?? '-'} ${l.level.padEnd(8)} ${l.backend ? `[${l.backend}] ` : ''}${l.msg}${extra}\n`;
    })
    .join('');
}

/**
 * Follows a growing log file from `from` (bytes) and hands each complete new line to `onText`,
 * until `signal` is aborted. A file that shrinks was rotated: it is read again from its start.
 */
export async function followFile(path: string, from: number, onText: (text: string) => void, signal: AbortSignal, pollMs = 500): Promise<void> {
  let offset = from;
  let partial = '';
  while (!signal.aborted) {
    const size = await stat(path).then(
      (st) => st.size,
      () => offset,
    );
    if (size < offset) {
      offset = 0;
      partial = '';
    }
    if (size > offset) {
      const fh = await open(path, 'r');
      try {
        const buf = Buffer.alloc(size - offset);
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        offset += bytesRead;
        const text = partial + buf.subarray(0, bytesRead).toString('utf8');
        const cut = text.lastIndexOf('\n');
        partial = cut === -1 ? text : text.slice(cut + 1);
        if (cut !== -1) onText(text.slice(0, cut + 1));
      } finally {
        await fh.close();
      }
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, pollMs);
      signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }
}

/** Prints the request's lines as they are written, until Ctrl-C. */
async function followRequest(src: { file: string } | { journal: true }, opts: OutputOptions & { requestId: string; unit?: string }): Promise<number> {
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  const print = (text: string) => {
    const lines = matchRequest(text, opts.requestId);
    if (opts.json) process.stdout.write(lines.map((l) => `${JSON.stringify(l.raw)}\n`).join(''));
    else process.stdout.write(formatLogLines(lines));
  };
  if ('file' in src) {
    await followFile(src.file, 0, print, stop.signal);
    return EXIT.ok;
  }
  // journalctl -f never ends: the one runner starts it writing to a scratch file, which is followed
  const dir = await mkdtemp(join(tmpdir(), 'cinderblock-logs-'));
  const out = join(dir, 'journal');
  const child = startProcess(['journalctl', '-u', opts.unit ?? 'cinderblock.service', '-o', 'cat', '--no-pager', '--grep', opts.requestId, '--follow'], { logFile: out });
  void child.exited.then(() => stop.abort());
  try {
    await followFile(out, 0, print, stop.signal);
  } finally {
    child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
  return EXIT.ok;
}

export async function logsCommand(sources: ConfigSourceArg[], opts: OutputOptions & { requestId: string; file?: string; unit?: string; since?: string; follow?: boolean }): Promise<void> {
  await runCli(async () => {
    if (!/^[A-Za-z0-9._:-]+$/.test(opts.requestId)) throw new CliFailure(`--request-id ${JSON.stringify(opts.requestId)} is not a request id (req-<uuid>)`, EXIT.usage);
    const config = await loadCliConfig(sources);
    const src = logSource(config, opts.file);
    if (opts.follow) return followRequest(src, opts);
    let text: string;
    if ('file' in src) {
      try {
        text = await readFile(src.file, 'utf8');
      } catch (err) {
        throw new CliFailure(`cannot read the log file ${src.file}: ${(err as Error).message}`, EXIT.unreachable);
      }
    } else {
      // -o cat: the message as the agent wrote it (a JSON line); grep narrows it in journald
      const argv = ['journalctl', '-u', opts.unit ?? 'cinderblock.service', '-o', 'cat', '--no-pager', '--grep', opts.requestId, ...(opts.since ? ['--since', opts.since] : [])];
      const r = await processRunner({ timeoutMs: 120_000, maxBuffer: 512 * 1024 * 1024 })(argv);
      // journalctl exits 1 when --grep matches nothing; that is "no lines", not a failure
      if (r.exitCode !== 0 && !(r.exitCode === 1 && r.stdout === '')) {
        throw new CliFailure(`journalctl failed (${r.stderr.trim() || `exit ${r.exitCode}`}); give the log file with --file`, EXIT.unreachable);
      }
      text = r.stdout;
    }
    const lines = matchRequest(text, opts.requestId);
    emit(opts, lines.map((l) => l.raw), () => (lines.length ? formatLogLines(lines) : `no lines for ${opts.requestId} in ${'file' in src ? src.file : `the journal of ${opts.unit ?? 'cinderblock.service'}`}\n`));
    return lines.length ? EXIT.ok : EXIT.problems;
  });
}
