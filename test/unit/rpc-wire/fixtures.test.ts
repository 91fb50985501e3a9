// Every captured request and reply decodes and re-encodes to the same message, byte for byte.
import { describe, expect, it } from 'vitest';
import { loadFixtures, type FixtureRecord } from '../../helpers/fixtures.js';
import { buildReply, buildRequest, decodeEnvelope, encodeEnvelope, parseRequest, pyFloat } from '../../../src/rpc/envelope.js';
import { adminContext, contextFromMessage } from '../../../src/rpc/context.js';
import { deserializeEntity, isObjectPrimitive, serializeEntity, VersionedObject } from '../../../src/rpc/ovo.js';
import { objectFromPrimitive, type ViewName } from '../../../src/rpc/ovo-schemas.js';
import { deserializeFailure } from '../../../src/rpc/failure.js';

const fixtures = loadFixtures();

// Python floats that JSON.parse turns into integral JS numbers (capability reports).
const FLOAT_KEYS = new Set(['total_capacity_gb', 'free_capacity_gb', 'provisioned_capacity_gb']);
function floatify(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(floatify);
  if (v && typeof v === 'object' && !(v instanceof VersionedObject)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, FLOAT_KEYS.has(k) && typeof x === 'number' ? pyFloat(x) : floatify(x)]));
  }
  return v;
}

function objectPrimitives(v: unknown, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (Array.isArray(v)) v.forEach((x) => objectPrimitives(x, out));
  else if (v && typeof v === 'object') {
    if (isObjectPrimitive(v)) out.push(v);
    Object.values(v).forEach((x) => objectPrimitives(x, out));
  }
  return out;
}

function decodedObjects(v: unknown, out: VersionedObject[] = []): VersionedObject[] {
  if (v instanceof VersionedObject) {
    out.push(v);
    decodedObjects(v.data, out);
  } else if (Array.isArray(v)) v.forEach((x) => decodedObjects(x, out));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => decodedObjects(x, out));
  return out;
}

const VIEWS: ViewName[] = ['Volume', 'Snapshot', 'VolumeAttachment', 'VolumeAttachmentList', 'VolumeType', 'RequestSpec'];

function innerOf(rec: FixtureRecord): Record<string, unknown> {
  return JSON.parse(rec.body['oslo.message'] as string) as Record<string, unknown>;
}

describe.each(fixtures.map((f) => [f.file, f] as const))('%s', (_file, fx) => {
  it('request decodes and re-encodes identically', () => {
    const original = innerOf(fx.request);
    const inner = decodeEnvelope(Buffer.from(fx.request.body_raw, 'utf8'));
    expect(inner).toEqual(original);

    const req = parseRequest(inner);
    expect(req.method).toBe(fx.method);
    expect(req.msgId !== null).toBe(fx.call);
    const ctx = contextFromMessage(req.context);
    expect(ctx.requestId).toMatch(/^req-/);

    const args = deserializeEntity(req.args, 'args') as Record<string, unknown>;
    for (const o of decodedObjects(args)) {
      if ((VIEWS as string[]).includes(o.name)) expect(() => objectFromPrimitive(o.name as ViewName, o, o.name)).not.toThrow();
    }
    for (const p of objectPrimitives(req.args)) {
      expect(serializeEntity(VersionedObject.fromPrimitive(p))).toStrictEqual(p);
    }

    const rebuilt = buildRequest({
      method: req.method,
      args: floatify(args) as Record<string, unknown>,
      version: req.version ?? undefined,
      namespace: req.namespace,
      context: ctx.toDict(),
      call: req.msgId ? { msgId: req.msgId, replyQueue: req.replyQueue!, timeout: req.timeout } : undefined,
    });
    rebuilt._unique_id = req.uniqueId;
    expect(JSON.parse(JSON.stringify(rebuilt))).toStrictEqual(original);
    expect(Object.keys(rebuilt)).toEqual(Object.keys(original));
    expect(encodeEnvelope(rebuilt)).toBe(fx.request.body_raw);
  });

  // casts have no replies
  if (fx.replies.length > 0) it('replies decode and re-encode identically', () => {
    for (const rec of fx.replies) {
      const original = innerOf(rec);
      const inner = decodeEnvelope(rec.body_raw);
      expect(inner).toEqual(original);
      expect(inner._msg_id).toBe(fx.request.oslo_message._msg_id);
      const rebuilt = buildReply({
        msgId: inner._msg_id as string,
        result: floatify(deserializeEntity(inner.result)),
        failure: inner.failure as string | null,
        ending: inner.ending as boolean,
      });
      rebuilt._unique_id = inner._unique_id;
      expect(encodeEnvelope(rebuilt)).toBe(rec.body_raw);
    }
  });
});

describe('fixture specifics', () => {
  it('the failure reply parses with deserializeFailure', () => {
    const fx = fixtures.find((f) => f.file === 'volume.initialize_connection.failure.json')!;
    const failure = decodeEnvelope(fx.replies[0]!.body_raw).failure as string;
    const f = deserializeFailure(failure);
    expect(f.className).toBe('InvalidInput');
    expect(f.module).toBe('cinder.exception');
    expect(f.message).toBe("Invalid input received: Connector doesn't have required information: initiator");
    expect(f.args).toEqual([f.message]);
    expect(f.kwargs).toEqual({ reason: "Connector doesn't have required information: initiator", code: 400 });
    expect(f.tb[0]).toBe('Traceback (most recent call last):\n');
    expect(f.tb.at(-1)).toMatch(/^cinder\.exception\.InvalidInput: /);
  });

  it('adminContext has the keys, order and value shapes of cinder get_admin_context().to_dict()', () => {
    const fx = fixtures.find((f) => f.file === 'scheduler.update_service_capabilities.startup.json')!;
    const measured = parseRequest(decodeEnvelope(fx.request.body_raw)).context;
    const ours = adminContext({ requestId: measured.request_id as string, now: new Date('2026-11-23T19:28:03.780Z') });
    expect(Object.keys(ours.dict)).toEqual(Object.keys(measured));
    expect({ ...ours.dict, timestamp: null }).toEqual({ ...measured, timestamp: null });
    expect(ours.dict.timestamp).toBe('2026-11-23T19:28:03.780000');
  });

  it('typed views give access to nested volume_type and attachments', () => {
    const fx = fixtures.find((f) => f.file === 'volume.initialize_connection.failure.json')!;
    const req = parseRequest(decodeEnvelope(fx.request.body_raw));
    const vol = objectFromPrimitive('Volume', req.args.volume, 'volume');
    expect(vol.data.volume_type?.data.name).toBe('__DEFAULT__');
    expect(vol.data.volume_attachment?.data.objects[0]?.data.attach_status).toBe('attaching');
    expect(vol.data.volume_attachment?.data.objects[0]?.data.connector?.initiator).toBe('iqn.1994-05.com.redhat:peer-client');
  });

  it('Snapshot.volume is a validated nested Volume', () => {
    const fx = fixtures.find((f) => f.file === 'volume.create_snapshot.peer_client.json')!;
    const req = parseRequest(decodeEnvelope(fx.request.body_raw));
    const snap = objectFromPrimitive('Snapshot', req.args.snapshot, 'snapshot');
    expect(snap.data.volume?.data.id).toBe(snap.data.volume_id);
  });
});
