"""A real oslo.messaging RPC server (threading executor) our TypeScript client talks to.

Usage: oslo_server.py <transport_url> <topic> <server>
Prints "READY" once listening, then one JSON line per received request; exits on method 'done'.
"""
import json
import sys
import threading
import time
import warnings

warnings.filterwarnings('ignore')

from oslo_config import cfg  # noqa: E402
import oslo_messaging as messaging  # noqa: E402
from cinder import exception  # noqa: E402

url, topic, server = sys.argv[1:4]
conf = cfg.ConfigOpts()
conf([], default_config_files=[])
transport = messaging.get_rpc_transport(conf, url=url, allowed_remote_exmods=['cinder.exception'])
done = threading.Event()


def emit(kind, ctxt, **kw):
    print(json.dumps({'kind': kind, 'request_id': ctxt.get('request_id'), 'args': kw}, sort_keys=True))
    sys.stdout.flush()


class Endpoint(object):
    target = messaging.Target(version='3.12')

    def update_service_capabilities(self, ctxt, **kw):
        emit('update_service_capabilities', ctxt, **kw)

    def notify_service_capabilities(self, ctxt, **kw):
        emit('notify_service_capabilities', ctxt, **kw)

    def add(self, ctxt, a, b):
        return {'sum': a + b, 'float': 1.0}

    def boom(self, ctxt):
        raise exception.InvalidInput(reason='python says no')

    def slow(self, ctxt, seconds):
        time.sleep(seconds)
        return 'slept'

    def done(self, ctxt):
        done.set()


target = messaging.Target(topic=topic, server=server)
srv = messaging.get_rpc_server(transport, target, [Endpoint()], executor='threading')
srv.start()
print('READY')
sys.stdout.flush()
done.wait(120)
time.sleep(0.5)
srv.stop()
srv.wait()
transport.cleanup()
