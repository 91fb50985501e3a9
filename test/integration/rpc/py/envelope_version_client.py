"""cinder's own RPC client, sending envelopes of another oslo.version, against our server.

Usage: envelope_version_client.py <transport_url> <topic> <server> <version>
Patches oslo.messaging's serialize_msg so requests carry oslo.version = <version> (replies are
still read as 2.0), calls `echo` with a 15 s timeout and prints one JSON document: what the call
raised, and how long it took (a timeout means the server never answered).
"""
import json
import sys
import time
import warnings

warnings.filterwarnings('ignore')

from oslo_config import cfg  # noqa: E402
import oslo_messaging as messaging  # noqa: E402
from oslo_messaging._drivers import common as rpc_common  # noqa: E402

from cinder import context as cinder_context  # noqa: E402
from cinder import objects  # noqa: E402
from cinder import rpc  # noqa: E402

url, topic, server, version = sys.argv[1:5]
objects.register_all()
CONF = cfg.CONF
CONF.register_opts(messaging.transport._transport_opts)
CONF([], project='cinder', default_config_files=[])
CONF.set_override('transport_url', url)
rpc.init(CONF)

_serialize = rpc_common.serialize_msg


def serialize_as(raw_msg):
    msg = _serialize(raw_msg)
    msg[rpc_common._VERSION_KEY] = version
    return msg


rpc_common.serialize_msg = serialize_as

ctxt = cinder_context.RequestContext('py-user', 'py-project', is_admin=True,
                                     request_id='req-00000000-1111-2222-3333-555555555555')
client = rpc.get_client(messaging.Target(topic=topic, server=server, version='3.0'))
out = {}
t0 = time.time()
try:
    out['result'] = client.prepare(timeout=15).call(ctxt, 'echo', v=1)
except messaging.MessagingTimeout:
    out['timeout'] = True
except messaging.RemoteError as e:
    out['remote_error'] = {'exc_type': e.exc_type, 'value': e.value}
except Exception as e:  # noqa: BLE001
    out['other'] = {'type': type(e).__name__, 'text': str(e).splitlines()[0]}
out['seconds'] = round(time.time() - t0, 1)
print(json.dumps(out, sort_keys=True))
sys.stdout.flush()
rpc.TRANSPORT.cleanup()
