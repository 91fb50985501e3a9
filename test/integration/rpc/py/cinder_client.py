"""Drive our TypeScript RPC server with cinder's own client stack.

Usage: cinder_client.py <transport_url> <topic> <server>
Uses cinder.rpc (oslo.messaging rabbit driver, allowed_remote_exmods = cinder.exception),
cinder's RequestContextSerializer + CinderObjectSerializer and a real Volume object.
Prints one JSON document with what it observed.
"""
import json
import sys
import time
import warnings

warnings.filterwarnings('ignore')

from oslo_config import cfg  # noqa: E402
import oslo_messaging as messaging  # noqa: E402

from cinder import context as cinder_context  # noqa: E402
from cinder import exception  # noqa: E402
from cinder import objects  # noqa: E402
from cinder import rpc  # noqa: E402

url, topic, server = sys.argv[1:4]
objects.register_all()
CONF = cfg.CONF
CONF.register_opts(messaging.transport._transport_opts)
CONF([], project='cinder', default_config_files=[])
CONF.set_override('transport_url', url)
rpc.init(CONF)

ctxt = cinder_context.RequestContext('py-user', 'py-project', is_admin=True,
                                     auth_token='SECRET-TOKEN-4242',
                                     request_id='req-00000000-1111-2222-3333-444444444444')
target = messaging.Target(topic=topic, server=server, version='3.0')
client = rpc.get_client(target, version_cap='3.18',
                        serializer=objects.base.CinderObjectSerializer())
vol = objects.Volume(context=ctxt, id='2c1076de-91eb-42f7-916f-04100b105d61',
                     host='storage1@lvm#lvm', size=2, status='in-use',
                     display_name='py-vol', provider_location='127.0.0.1:3260,1 iqn.x 1')
out = {}

cctxt = client.prepare(version='3.0', timeout=20)
out['initialize_connection'] = cctxt.call(ctxt, 'initialize_connection',
                                          connector={'initiator': 'iqn.py', 'ip': '127.0.0.1'},
                                          volume=vol)

try:
    cctxt.call(ctxt, 'initialize_connection', connector={'ip': '127.0.0.1'}, volume=vol)
    out['failure'] = None
except Exception as e:  # noqa: BLE001
    out['failure'] = {
        'type': type(e).__name__,
        'module': type(e).__module__,
        'is_invalid_input': isinstance(e, exception.InvalidInput),
        'kwargs': getattr(e, 'kwargs', None),
        'code': getattr(e, 'code', None),
        'first_line': str(e).splitlines()[0],
    }

try:
    cctxt.call(ctxt, 'no_such_method')
except messaging.RemoteError as e:
    out['no_such_method'] = {'exc_type': e.exc_type, 'value': e.value}

uncapped = rpc.get_client(target, serializer=objects.base.CinderObjectSerializer())
for v in ('4.0', '3.19'):
    try:
        uncapped.prepare(version=v, timeout=20).call(ctxt, 'initialize_connection',
                                                     connector={}, volume=vol)
    except messaging.RemoteError as e:
        out['unsupported_version_' + v] = {'exc_type': e.exc_type, 'value': e.value}

# call-monitor: 2 s monitor, handler takes 3.5 s; without heartbeats oslo would time out
t0 = time.time()
out['call_monitor'] = client.prepare(version='3.0', timeout=30, call_monitor_timeout=2).call(
    ctxt, 'slow', ms=3500)
out['call_monitor_seconds'] = round(time.time() - t0, 1)

cctxt.cast(ctxt, 'note', v='py-cast')
client.prepare(fanout=True, version='3.0').cast(ctxt, 'note', v='py-fanout')

print(json.dumps(out, sort_keys=True))
sys.stdout.flush()
rpc.TRANSPORT.cleanup()
