"""cinder's own RPC client for bench/rpc-bench.ts: get_log_levels exactly as cinder-api sends it.

Run with Debian's /usr/bin/python3 (cinder 21.3, oslo.messaging 14):

    /usr/bin/python3 bench/rpc_bench_client.py --config-file /path/cinder.conf

The code path is cinder/api/contrib/services.py _get_log: a real cinder.volume.rpcapi.VolumeAPI
(version cap read from the services table like any cinder process), the target service as an
objects.Service loaded from the DB, and objects.LogLevel(prefix=...) as log_request. The process
is eventlet-monkey-patched like cinder-api, so concurrency is green threads (a GreenPool).

Protocol: one JSON object per line on stdin, one JSON line per request on stdout.
  {"cmd": "run", "host": "h@b", "n": 2000, "warmup": 200, "concurrency": 16,
   "prefix": "cinder"}
    -> {"ok": true, "elapsed_s": float, "lat_ms": [float, ...], "errors": int,
        "first_error": str|null, "entries": int (LogLevel objects in the last reply),
        "sample": {prefix: level, ...} (up to 3 entries of the last reply)}
  {"cmd": "quit"}
Timing covers only the n measured calls; warm-up calls run first at the same concurrency.
The call timeout is the config file's rpc_response_timeout, as for cinder-api.
"""
import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

warnings.simplefilter('ignore')

from eventlet import greenpool  # noqa: E402
from eventlet import hubs  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_log import log as logging  # noqa: E402

from cinder import context  # noqa: E402
from cinder import objects  # noqa: E402
from cinder import rpc  # noqa: E402
from cinder.common import config  # noqa: E402,F401  (registers [DEFAULT] options)

CONF = cfg.CONF


def emit(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


def read_line():
    # Yield to the hub while waiting so the AMQP heartbeat green thread keeps running.
    hubs.trampoline(sys.stdin.fileno(), read=True)
    return sys.stdin.readline()


def main():
    argv = sys.argv[1:]
    CONF(argv, project='cinder', version='bench')
    logging.setup(CONF, 'cinder')
    objects.register_all()
    rpc.init(CONF)
    from cinder.volume import rpcapi
    ctxt = context.get_admin_context()
    api = rpcapi.VolumeAPI()
    services = {}
    emit({'ok': True, 'ready': True, 'rpc_cap': str(api.client.version_cap), 'pid': os.getpid()})

    while True:
        line = read_line()
        if not line:
            return
        req = json.loads(line)
        if req.get('cmd') == 'quit':
            emit({'ok': True})
            return
        try:
            emit(run(api, ctxt, services, req))
        except Exception as exc:  # report, keep serving
            emit({'ok': False, 'error': '%s: %s' % (type(exc).__name__, exc)})


def run(api, ctxt, services, req):
    host = req['host']
    svc = services.get(host)
    if svc is None:
        svc = objects.Service.get_by_args(ctxt, host, 'cinder-volume')
        services[host] = svc
    prefix = req.get('prefix')
    log_req = objects.LogLevel(ctxt, prefix=prefix)
    conc = max(1, int(req.get('concurrency', 1)))
    state = {'errors': 0, 'first_error': None, 'last': None}

    def one():
        t0 = time.perf_counter()
        try:
            state['last'] = api.get_log_levels(ctxt, svc, log_req)
        except Exception as exc:
            state['errors'] += 1
            if state['first_error'] is None:
                state['first_error'] = '%s: %s' % (type(exc).__name__, str(exc)[:300])
        return (time.perf_counter() - t0) * 1000.0

    def batch(count):
        lat = []
        remaining = [count]

        def worker():
            while remaining[0] > 0:
                remaining[0] -= 1
                lat.append(one())

        pool = greenpool.GreenPool(conc)
        for _ in range(min(conc, count)):
            pool.spawn(worker)
        pool.waitall()
        return lat

    batch(int(req.get('warmup', 0)))
    state['errors'] = 0
    state['first_error'] = None
    t0 = time.perf_counter()
    lat = batch(int(req['n']))
    elapsed = time.perf_counter() - t0
    last = state['last']
    entries = {le.prefix: le.level for le in last} if last is not None else {}
    sample = dict(sorted(entries.items())[:3])
    return {'ok': True, 'elapsed_s': elapsed, 'lat_ms': lat, 'errors': state['errors'],
            'first_error': state['first_error'], 'entries': len(entries), 'sample': sample}


if __name__ == '__main__':
    main()
