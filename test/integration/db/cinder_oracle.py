"""Cinder's own DB layer as a test oracle for cinderblock's src/db.

Run with Debian's /usr/bin/python3 (it has python3-cinder):

    /usr/bin/python3 cinder_oracle.py /path/to/cinder.conf

Reads one JSON request per line on stdin and answers one JSON line on stdout:

    {"op": "call", "fn": "volume_get", "args": ["<id>"], "kwargs": {}}
        -> cinder.db.api.<fn>(admin_context, *args, **kwargs)
    {"op": "sql", "sql": "SELECT ...", "params": {...}}
        -> rows of a raw query on cinder's engine (values exactly as the driver returns them)
    {"op": "conditional_update", "model": "Volume", "id": "...", "values": {...}, "expected": {...}}
        -> cinder.db.api.conditional_update; {"$not": x} is db.Not(x), {"$col": "status"} the column
    {"op": "quota_reserve", "project_id": "...", "deltas": {...}}
        -> cinder.quota.QUOTAS.reserve(ctx, project_id=..., **deltas)
    {"op": "add_volume_type_opts", "opts": {...}, "volume_type_id": "..."}
    {"op": "volume_obj", "id": "..."}   -> objects.Volume.get_by_id(...).obj_to_primitive()
    {"op": "service_obj", "host": "...", "binary": "..."} -> objects.Service.get_by_args(...)

Answers: {"ok": true, "result": ...} or {"ok": false, "error": "<Class>", "message": "..."}.
Datetimes are ISO strings without zone (cinder keeps naive UTC), e.g. 2024-01-02T03:04:05.123456;
arguments written as {"$dt": "<iso>"} become naive datetimes.
"""
import datetime
import decimal
import json
import sys
import traceback

from oslo_config import cfg

from cinder.common import config  # noqa: F401  (registers cinder's options)
from cinder import context
from cinder import objects
from cinder.db import api as db

objects.register_all()
CONF = cfg.CONF
CONF([], project='cinder', default_config_files=[sys.argv[1]])

from cinder import quota  # noqa: E402
from sqlalchemy import text  # noqa: E402
from cinder.db.sqlalchemy import api as sqla_api  # noqa: E402


def to_json(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == int(value) else float(value)
    if isinstance(value, (list, tuple, set)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if hasattr(value, '__table__'):
        return {c.name: to_json(getattr(value, c.name, None))
                for c in value.__table__.columns}
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    return value


def from_json(value, model=None):
    if isinstance(value, dict):
        if set(value) == {'$dt'}:
            return datetime.datetime.fromisoformat(value['$dt'])
        if set(value) == {'$not'}:
            return db.Not(from_json(value['$not']))
        if set(value) == {'$col'} and model is not None:
            return getattr(model, value['$col'])
        return {k: from_json(v, model) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v, model) for v in value]
    return value


def handle(req, ctx):
    op = req['op']
    if op == 'call':
        fn = getattr(db, req['fn'])
        return fn(ctx, *from_json(req.get('args', [])), **from_json(req.get('kwargs', {})))
    if op == 'sql':
        engine = sqla_api.get_engine()
        with engine.connect() as conn:
            res = conn.execute(text(req['sql']), req.get('params', {}))
            if res.returns_rows:
                return [dict(r._mapping) for r in res]
            return res.rowcount
    if op == 'conditional_update':
        from cinder.db.sqlalchemy import models
        model = getattr(models, req['model'])
        values = from_json(req['values'], model)
        expected = from_json(req['expected'], model)
        filters = [model.id == req['id']]
        order = req.get('order')
        return db.conditional_update(ctx, model, values, expected, filters=filters, order=order)
    if op == 'quota_reserve':
        return quota.QUOTAS.reserve(ctx, project_id=req['project_id'], **req['deltas'])
    if op == 'add_volume_type_opts':
        opts = dict(req['opts'])
        quota.QUOTAS.add_volume_type_opts(ctx, opts, req['volume_type_id'])
        return opts
    if op == 'volume_obj':
        return objects.Volume.get_by_id(ctx, req['id']).obj_to_primitive()
    if op == 'snapshot_obj':
        return objects.Snapshot.get_by_id(ctx, req['id']).obj_to_primitive()
    if op == 'service_obj':
        return objects.Service.get_by_args(ctx, req['host'], req['binary']).obj_to_primitive()
    if op == 'attachment_obj':
        return objects.VolumeAttachment.get_by_id(ctx, req['id']).obj_to_primitive()
    raise ValueError('unknown op %s' % op)


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        ctx = context.get_admin_context()
        try:
            out = {'ok': True, 'result': to_json(handle(req, ctx))}
        except Exception as exc:  # report every failure to the caller
            out = {'ok': False, 'error': exc.__class__.__name__, 'message': str(exc),
                   'trace': traceback.format_exc()}
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()


main()
