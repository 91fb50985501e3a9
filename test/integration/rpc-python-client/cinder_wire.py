"""cinder's own RPC client code paths, for checking what cinderblock puts on the wire.

Run with Debian's /usr/bin/python3 (it has cinder 21.3, oslo.messaging 14 and kombu), with
PYTHONHASHSEED fixed when bodies are compared across processes: versioned_object.changes is
written in set order.
Nothing here needs a broker or a database: replies and requests are fed, as AMQP bodies,
through the same functions oslo.messaging's rabbit driver and cinder's RPC serializer use.

Reusable pieces (import this module):
  request_context(), admin_context()  real cinder RequestContext objects
  volume_api(transport_url)           cinder.volume.rpcapi.VolumeAPI at RPC 3.18 / objects 1.39
                                      without a DB lookup of service versions
  receive_reply(msg_id, bodies, ...)  a call's result as VolumeAPI's caller gets it, or the
                                      exception it raises (ReplyWaiter + RPCClient path)
  receive_request(body)               (context, method, version, args) as the volume service's
                                      dispatcher sees them
  make_volume(ctxt)                   a cinder.objects.Volume built without a DB

Command line (JSON on stdin, JSON report on stdout, exit 1 if any check failed):
  cinder_wire.py make-volume          -> {"body": json.dumps of the serialized Volume}
  cinder_wire.py check                checks cases, see run_checks()
"""
import json
import sys
import warnings

warnings.simplefilter('ignore')

from kombu import message as kombu_message  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_messaging._drivers import amqp as rpc_amqp  # noqa: E402
from oslo_messaging._drivers import amqpdriver  # noqa: E402
from oslo_messaging._drivers import impl_rabbit  # noqa: E402
from oslo_messaging import exceptions as om_exceptions  # noqa: E402
from oslo_messaging import transport as om_transport  # noqa: E402
from oslo_serialization import jsonutils  # noqa: E402
from oslo_utils import timeutils  # noqa: E402

import cinder.context  # noqa: E402
import cinder.exception  # noqa: E402
import cinder.rpc  # noqa: E402
from cinder import objects  # noqa: E402
from cinder.objects import base as objects_base  # noqa: E402

objects.register_all()

RPC_VERSION = '3.18'
OBJ_VERSION = objects_base.OBJ_VERSIONS.get_current()


def serializer():
    """What cinder.rpc.get_client/get_server wrap around the object serializer."""
    return cinder.rpc.RequestContextSerializer(objects_base.CinderObjectSerializer())


def admin_context():
    return cinder.context.get_admin_context()


def request_context(**kwargs):
    kwargs.setdefault('user_id', 'fake-user')
    kwargs.setdefault('project_id', 'fake-project')
    kwargs.setdefault('is_admin', False)
    return cinder.context.RequestContext(**kwargs)


def volume_api(transport_url):
    """A real VolumeAPI on `transport_url` (nothing connects until the first call)."""
    conf = cfg.CONF
    if conf._args is None:
        conf([], project='cinder', default_config_files=[])
    # get_rpc_transport registers transport_url itself, too late for an override.
    conf.register_opts(om_transport._transport_opts)
    conf.set_override('transport_url', transport_url)
    cinder.rpc.init(conf)
    # VolumeAPI reads the minimum service versions from the DB unless they are cached here.
    cinder.rpc.LAST_RPC_VERSIONS['cinder-volume'] = RPC_VERSION
    cinder.rpc.LAST_OBJ_VERSIONS['cinder-volume'] = OBJ_VERSION
    from cinder.volume import rpcapi
    return rpcapi.VolumeAPI()


class _Channel(object):
    """Just enough of a kombu channel for Message.ack()."""
    no_ack_consumers = None

    def basic_ack(self, delivery_tag, multiple=False):
        pass


def _amqp_message(body):
    """A kombu Message as the rabbit driver receives it (properties as cinder publishes)."""
    if isinstance(body, str):
        body = body.encode('utf-8')
    return kombu_message.Message(body=body, delivery_tag=1, content_type='application/json',
                                 content_encoding='utf-8', channel=_Channel())


def receive_reply(msg_id, bodies, ctxt=None, call_monitor_timeout=None, timeout=5,
                  allowed_remote_exmods=None):
    """Result of an RPC call whose reply bodies are `bodies`, as cinder's caller sees it.

    Runs amqpdriver.ReplyWaiter.__call__/wait/_process_reply on RabbitMessage-decoded bodies,
    raises a returned exception like AMQPDriverBase._send, then deserializes the result with
    cinder's serializer like RPCClient.call.
    """
    waiter = amqpdriver.ReplyWaiter.__new__(amqpdriver.ReplyWaiter)  # no connection/thread
    waiter.allowed_remote_exmods = (cinder.rpc.get_allowed_exmods()
                                    if allowed_remote_exmods is None else allowed_remote_exmods)
    waiter.msg_id_cache = rpc_amqp._MsgIdCache()
    waiter.waiters = amqpdriver.ReplyWaiters()
    waiter.listen(msg_id)
    try:
        for body in bodies:
            waiter(impl_rabbit.RabbitMessage(_amqp_message(body)))
        result = waiter.wait(msg_id, timeout, call_monitor_timeout)
    finally:
        waiter.unlisten(msg_id)
    if isinstance(result, Exception):
        raise result
    return serializer().deserialize_entity(ctxt or admin_context(), result)


def receive_request(body):
    """(context, method, version, args) of a request body as cinder-volume's dispatcher gets them."""
    msg = impl_rabbit.RabbitMessage(_amqp_message(body))
    msg.acknowledge()
    ctxt = rpc_amqp.unpack_context(msg)                # AMQPListener.__call__
    rpc_amqp._MsgIdCache().check_duplicate_message(msg)
    message = dict(msg)
    ser = serializer()
    context = ser.deserialize_context(ctxt.to_dict())  # RPCDispatcher._do_dispatch
    args = {k: ser.deserialize_entity(context, v) for k, v in message.get('args', {}).items()}
    return context, message.get('method'), message.get('version', '1.0'), args


def make_volume(ctxt=None):
    """A Volume with a type and one attachment, as cinder-api would send it (fixed ids)."""
    ctxt = ctxt or admin_context()
    vid = '5b0d2a5e-8f1e-4c61-9d55-2f3e8f0e6a01'
    t0 = timeutils.parse_isotime('2026-11-23T19:31:39.123456Z')
    vt = objects.VolumeType(ctxt, id='b76d3472-e7e4-4b25-bf5b-bb3d10a61019', name='__DEFAULT__',
                            description='Default Volume Type', is_public=True, qos_specs_id=None,
                            created_at=t0, updated_at=t0, deleted_at=None, deleted=False)
    att = objects.VolumeAttachment(
        ctxt, id='c313a216-81a1-4827-92d9-3aed74426d62', volume_id=vid, instance_uuid=None,
        attached_host='compute1', mountpoint='/dev/vdb', attach_time=t0, detach_time=None,
        attach_status='attaching', attach_mode='rw', connection_info=None,
        connector={'initiator': 'iqn.1994-05.com.redhat:c1', 'ip': '127.0.0.1', 'multipath': False},
        created_at=t0, updated_at=None, deleted_at=None, deleted=False)
    vol = objects.Volume(
        ctxt, id=vid, _name_id=None, user_id='u\u00e9', project_id='p', use_quota=True, size=2,
        host='storage1@lvm#lvm', availability_zone='nova', status='creating',
        attach_status='detached', display_name='vol \u2713 \U0001F600', display_description=None,
        provider_location=None, provider_auth=None, volume_type_id=vt.id, volume_type=vt,
        volume_attachment=objects.VolumeAttachmentList(objects=[att]), metadata={'k': 'v'},
        admin_metadata={}, bootable=False, multiattach=False, shared_targets=False,
        scheduled_at=t0, launched_at=None, created_at=t0, updated_at=None, deleted_at=None,
        deleted=False)
    vol.obj_reset_changes()
    vol.status = 'available'  # dirty fields, here and in the children, give versioned_object.changes
    return vol


def _sorted_changes(prim):
    """versioned_object.changes is a set written as a list: order carries no meaning."""
    if isinstance(prim, dict):
        return {k: sorted(v) if k == 'versioned_object.changes' else _sorted_changes(v)
                for k, v in prim.items()}
    if isinstance(prim, list):
        return [_sorted_changes(v) for v in prim]
    return prim


def _canon(value):
    """Type-sensitive comparable form of a deserialized entity (objects -> primitives)."""
    prim = objects_base.CinderObjectSerializer().serialize_entity(None, value)
    return json.dumps(_sorted_changes(prim), sort_keys=True, default=jsonutils.to_primitive)


def _check_exception(exc, want):
    cls, module, message = want['class'], want['module'], want['message']
    if module == 'builtins':
        assert type(exc).__name__ == cls or isinstance(exc, Exception), type(exc)
        assert str(exc.args[0]).startswith(message), exc.args
        return
    if module not in cinder.rpc.get_allowed_exmods():
        assert isinstance(exc, om_exceptions.MessagingException), type(exc)
        assert exc.exc_type == cls and exc.value == message, (exc.exc_type, exc.value)
        return
    klass = getattr(cinder.exception, cls)
    assert isinstance(exc, klass), '%r is not a %s' % (exc, cls)
    assert type(exc).__name__ == cls + '_Remote', type(exc).__name__
    assert exc.msg == message, exc.msg
    assert str(exc).startswith(message + '\n'), str(exc)
    for k, v in want.get('kwargs', {}).items():
        assert exc.kwargs.get(k) == v, (k, exc.kwargs.get(k), v)


def check_reply(case):
    """Our reply must give the caller what the captured reply gave, or the wanted exception."""
    kw = {'call_monitor_timeout': case.get('call_monitor_timeout')}
    want = case['expect']
    try:
        got = receive_reply(case['msg_id'], case['bodies'], **kw)
    except Exception as exc:  # noqa: BLE001 - exceptions are what some cases expect
        if 'exception' not in want:
            raise
        _check_exception(exc, want['exception'])
        return 'raised %s: %s' % (type(exc).__name__, exc.args[0] if exc.args else '')
    assert 'exception' not in want, 'no exception raised, got %r' % (got,)
    if 'fixture_body' in want:
        ref = receive_reply(case['msg_id'], [want['fixture_body']], **kw)
    else:
        ref = json.loads(want['result_json'])  # written by cinderblock's writer: floats kept
    assert got == ref and _canon(got) == _canon(ref), 'got %s\nwant %s' % (_canon(got), _canon(ref))
    for path in want.get('floats', []):
        v = got
        for p in path:
            v = v[p]
        assert isinstance(v, float), '%s is %r, not a float' % (path, v)
    return 'result ok (%s)' % type(got).__name__


def check_request(case):
    """Our request must reach the dispatcher as the captured one does (or as described)."""
    ctxt, method, version, args = receive_request(case['body'])
    if 'fixture_body' in case:
        rctxt, rmethod, rversion, rargs = receive_request(case['fixture_body'])
        assert (method, version) == (rmethod, rversion), (method, version, rmethod, rversion)
        assert ctxt.to_dict() == rctxt.to_dict(), (ctxt.to_dict(), rctxt.to_dict())
        assert _canon(args) == _canon(rargs), 'args differ:\n%s\n%s' % (_canon(args), _canon(rargs))
    want = case.get('expect', {})
    if 'method' in want:
        assert (method, version) == (want['method'], want['version']), (method, version)
    if 'context' in want:
        for k, v in want['context'].items():
            assert getattr(ctxt, k) == v, (k, getattr(ctxt, k), v)
        assert isinstance(ctxt, cinder.context.RequestContext)
        assert ctxt.timestamp.year >= 2026
    for name, cls in want.get('arg_classes', {}).items():
        assert type(args[name]).__name__ == cls, (name, type(args[name]).__name__)
    for path in want.get('floats', []):
        v = args
        for p in path:
            v = v[p]
        assert isinstance(v, float), '%s is %r, not a float' % (path, v)
    return '%s %s ok' % (method, version)


def check_volume(case):
    """cinderblock's re-encoding of make_volume()'s primitive is byte-identical and loads back."""
    ctxt = admin_context()
    vol = make_volume(ctxt)
    expected = jsonutils.dumps(serializer().serialize_entity(ctxt, vol))
    assert case['body'] == expected, 'bytes differ:\n%s\n%s' % (case['body'], expected)
    back = serializer().deserialize_entity(ctxt, jsonutils.loads(case['body']))
    assert isinstance(back, objects.Volume)
    assert _canon(back) == _canon(vol), '%s\n%s' % (_canon(back), _canon(vol))
    assert back.obj_what_changed() == vol.obj_what_changed(), back.obj_what_changed()
    assert back.volume_attachment[0].connector['initiator'] == 'iqn.1994-05.com.redhat:c1'
    assert back.name == 'volume-' + vol.id
    return 'Volume ok'


def check_dumps(case):
    """Our Python-style JSON writer agrees with json.dumps on floats and strings."""
    for item in case['items']:
        value = float(item['value']) if item['kind'] == 'float' else item['value']
        assert json.dumps(value) == item['ours'], (item, json.dumps(value))
    return '%d values ok' % len(case['items'])


CHECKS = {'reply': check_reply, 'request': check_request, 'volume': check_volume,
          'dumps': check_dumps}


def run_checks(cases):
    report = []
    for case in cases:
        try:
            detail = CHECKS[case['kind']](case)
            report.append({'name': case['name'], 'ok': True, 'detail': detail})
        except Exception as exc:  # noqa: BLE001 - reported to the TypeScript test
            report.append({'name': case['name'], 'ok': False,
                           'detail': '%s: %s' % (type(exc).__name__, exc)})
    return report


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ''
    if cmd == 'make-volume':
        ctxt = admin_context()
        body = jsonutils.dumps(serializer().serialize_entity(ctxt, make_volume(ctxt)))
        json.dump({'body': body}, sys.stdout)
        return 0
    if cmd == 'check':
        report = run_checks(json.load(sys.stdin))
        json.dump(report, sys.stdout)
        return 0 if all(r['ok'] for r in report) else 1
    sys.stderr.write(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
