// cinder's own client code (oslo.messaging rabbit reply path + cinder's object serializer, run by
// Debian's python3) accepts the replies and requests cinderblock builds, with no broker and no
// agent: bodies go to cinder_wire.py on stdin, which runs them through the real functions.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CinderError, invalidInput, volumeBackendApiException, volumeNotFound } from '../../../src/errors.js';
import { adminContext } from '../../../src/rpc/context.js';
import { buildReply, buildRequest, decodeEnvelope, encodeEnvelope, newUniqueId, parseRequest, pyDumps, pyFloat } from '../../../src/rpc/envelope.js';
import { serializeFailure } from '../../../src/rpc/failure.js';
import { deserializeEntity, serializeEntity, VersionedObject } from '../../../src/rpc/ovo.js';
import { volumeFromPrimitive } from '../../../src/rpc/ovo-schemas.js';
import { loadFixture, loadFixtures } from '../../helpers/fixtures.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'cinder_wire.py');
const havePython = spawnSync(PYTHON, ['-c', 'import cinder.objects, oslo_messaging'], { encoding: 'utf8' }).status === 0;

interface Check { name: string; ok: boolean; detail: string }

function runPython(cmd: string, input = ''): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(PYTHON, [SCRIPT, cmd], {
    input,
    encoding: 'utf8',
    timeout: 120_000,
    // versioned_object.changes comes out in set order: fix the hash seed across processes.
    env: { ...process.env, PYTHONHASHSEED: '0' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const FLOAT_KEYS = new Set(['total_capacity_gb', 'free_capacity_gb', 'provisioned_capacity_gb']);
function floatify(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(floatify);
  if (v && typeof v === 'object' && !(v instanceof VersionedObject)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, FLOAT_KEYS.has(k) && typeof x === 'number' ? pyFloat(x) : floatify(x)]));
  }
  return v;
}

const reply = (msgId: string, result: unknown, failure: string | null = null, ending = true): string =>
  encodeEnvelope(buildReply({ msgId, result, failure, ending }));

function replyCases(): Record<string, unknown>[] {
  const cases: Record<string, unknown>[] = [];
  // Every captured call: our reply to it must give the caller what the real service's reply gave.
  for (const fx of loadFixtures().filter((f) => f.replies.length > 0 && !f.file.endsWith('.failure.json'))) {
    const captured = decodeEnvelope(fx.replies[0]!.body_raw);
    const msgId = captured._msg_id as string;
    cases.push({
      kind: 'reply',
      name: `reply ${fx.file}`,
      msg_id: msgId,
      bodies: [reply(msgId, floatify(deserializeEntity(captured.result)))],
      expect: { fixture_body: fx.replies[0]!.body_raw },
    });
  }
  // Call-monitor heartbeat first, then the result (server side of _timeout).
  const ic = loadFixture('volume.initialize_connection.e2e.json');
  const icReply = decodeEnvelope(ic.replies[0]!.body_raw);
  cases.push({
    kind: 'reply',
    name: 'heartbeat then result',
    msg_id: icReply._msg_id,
    call_monitor_timeout: 30,
    bodies: [reply(icReply._msg_id as string, null, null, false), reply(icReply._msg_id as string, icReply.result)],
    expect: { fixture_body: ic.replies[0]!.body_raw },
  });
  cases.push({ kind: 'reply', name: 'remove_export sync -> None', msg_id: 'm-null', bodies: [reply('m-null', null)], expect: { result_json: 'null' } });
  // get_capabilities-like dict: floats must stay floats for the caller.
  const caps = parseRequest(decodeEnvelope(loadFixture('scheduler.update_service_capabilities.startup.json').request.body_raw)).args.capabilities;
  const capsOut = floatify(caps);
  cases.push({
    kind: 'reply',
    name: 'capabilities dict',
    msg_id: 'm-caps',
    bodies: [reply('m-caps', capsOut)],
    expect: { result_json: pyDumps(capsOut), floats: [['pools', 0, 'total_capacity_gb'], ['pools', 0, 'free_capacity_gb']] },
  });
  return cases;
}

function failureCases(): Record<string, unknown>[] {
  const fail = (name: string, err: unknown, exception: Record<string, unknown>) => {
    const msgId = newUniqueId();
    return { kind: 'reply', name, msg_id: msgId, bodies: [reply(msgId, null, serializeFailure(err))], expect: { exception } };
  };
  const reason = "Connector doesn't have required information: initiator";
  return [
    fail('InvalidInput', invalidInput(reason), {
      class: 'InvalidInput', module: 'cinder.exception', message: `Invalid input received: ${reason}`, kwargs: { reason, code: 400 },
    }),
    fail('VolumeNotFound', volumeNotFound('2c1076de-91eb-42f7-916f-04100b105d61'), {
      class: 'VolumeNotFound', module: 'cinder.exception', message: 'Volume 2c1076de-91eb-42f7-916f-04100b105d61 could not be found.',
      kwargs: { volume_id: '2c1076de-91eb-42f7-916f-04100b105d61', code: 404 },
    }),
    fail('VolumeBackendAPIException non-ASCII', volumeBackendApiException('lvcreate a échoué'), {
      class: 'VolumeBackendAPIException', module: 'cinder.exception',
      message: 'Bad or unexpected response from the storage volume backend API: lvcreate a échoué', kwargs: { data: 'lvcreate a échoué' },
    }),
    fail('plain Error -> builtins.Exception', new Error('disk on fire'), { class: 'Exception', module: 'builtins', message: 'disk on fire' }),
    fail('module not allowed -> RemoteError', new CinderError('nope', { className: 'Oops', module: 'cinderblock.internal' }), {
      class: 'Oops', module: 'cinderblock.internal', message: 'nope',
    }),
  ];
}

function requestCases(): Record<string, unknown>[] {
  const cases: Record<string, unknown>[] = [];
  // Each captured request, decoded and rebuilt by us (fresh _unique_id), reaches cinder's
  // dispatcher exactly like the original: same context, same deserialized args.
  for (const fx of loadFixtures()) {
    const req = parseRequest(decodeEnvelope(fx.request.body_raw));
    const body = encodeEnvelope(
      buildRequest({
        method: req.method,
        args: floatify(deserializeEntity(req.args)) as Record<string, unknown>,
        version: req.version ?? undefined,
        context: req.context,
        call: req.msgId ? { msgId: req.msgId, replyQueue: req.replyQueue!, timeout: req.timeout } : undefined,
      }),
    );
    cases.push({ kind: 'request', name: `request ${fx.file}`, body, fixture_body: fx.request.body_raw });
  }
  // A capability report the agent originates, with its own admin context.
  const ctx = adminContext();
  cases.push({
    kind: 'request',
    name: 'agent update_service_capabilities',
    body: encodeEnvelope(
      buildRequest({
        method: 'update_service_capabilities',
        version: '3.3',
        args: {
          service_name: 'volume', host: 'storage1@lvm', cluster_name: null, timestamp: new Date(),
          capabilities: { volume_backend_name: 'lvm', pools: [{ pool_name: 'lvm', total_capacity_gb: pyFloat(3), free_capacity_gb: pyFloat(2.5) }] },
        },
        context: ctx.toDict(),
      }),
    ),
    expect: {
      method: 'update_service_capabilities', version: '3.3',
      context: { is_admin: true, request_id: ctx.requestId, roles: ['admin'], read_deleted: 'no', user_id: null },
      floats: [['capabilities', 'pools', 0, 'total_capacity_gb']],
    },
  });
  return cases;
}

function dumpsCases(): Record<string, unknown> {
  const items: Record<string, unknown>[] = [];
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 400; i++) {
    const x = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 50 - 25);
    items.push({ kind: 'float', value: String(x), ours: pyDumps(pyFloat(x)) });
  }
  for (const x of [0, 1, 1e16, 1e15 + 0.5, 0.0001, 0.00001, 5e-324, 1.7976931348623157e308, 123456789012345680000]) {
    items.push({ kind: 'float', value: String(x), ours: pyDumps(pyFloat(x)) });
  }
  for (const s of ['', 'plain', 'tab\there', 'quote " back \\ slash', 'ctl \u0000\u001f\u007f', 'é ✓ 😀 \u2028', '\ud800 lone']) {
    items.push({ kind: 'string', value: s, ours: pyDumps(s) });
  }
  return { kind: 'dumps', name: 'pyDumps vs json.dumps', items };
}

describe.skipIf(!havePython)('cinder client (real python code) accepts cinderblock messages', () => {
  it('re-encodes a Volume built by cinder byte for byte', () => {
    const made = runPython('make-volume');
    expect(made.status, made.stderr).toBe(0);
    const body = (JSON.parse(made.stdout) as { body: string }).body;
    const vol = volumeFromPrimitive(deserializeEntity(JSON.parse(body)));
    expect(vol.data.display_name).toBe('vol ✓ 😀');
    expect(vol.changes).toContain('status');
    const ours = pyDumps(serializeEntity(vol));
    expect(ours).toBe(body);
    const r = runPython('check', JSON.stringify([{ kind: 'volume', name: 'volume', body: ours }]));
    expect(r.stdout, r.stderr).toContain('"ok": true');
  });

  it('replies, failures, requests and the JSON writer pass cinder code', () => {
    const cases = [...replyCases(), ...failureCases(), ...requestCases(), dumpsCases()];
    const r = runPython('check', JSON.stringify(cases));
    const report = JSON.parse(r.stdout || '[]') as Check[];
    expect(report.length, r.stderr).toBe(cases.length);
    // CINDERBLOCK_SHOW_REPORT=1 prints what python saw for each case.
    if (process.env.CINDERBLOCK_SHOW_REPORT) console.log(report.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`).join('\n'));
    const failed = report.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    expect(failed).toEqual([]);
    expect(r.status).toBe(0);
  });
});
