"""Drive cinderblock with cinder's own cinder.volume.rpcapi.VolumeAPI and Volume objects loaded
from the same database, as cinder-api/scheduler would. argv: transport_url db_url volume_id.
Prints one JSON report on stdout."""
import json
import sys
import time
import warnings

warnings.simplefilter('ignore')
sys.path.insert(0, sys.argv[4])
import cinder_wire  # noqa: E402
from oslo_config import cfg  # noqa: E402
from cinder import objects, exception  # noqa: E402


def main():
    transport_url, db_url, volume_id = sys.argv[1:4]
    vapi = cinder_wire.volume_api(transport_url)
    cfg.CONF.set_override('connection', db_url, group='database')
    ctxt = cinder_wire.admin_context()
    out = {}
    vol = objects.Volume.get_by_id(ctxt, volume_id)
    vapi.create_volume(ctxt, vol, None, {}, allow_reschedule=False)
    for _ in range(300):
        vol.refresh()
        if vol.status != 'creating':
            break
        time.sleep(0.1)
    out['create_status'] = vol.status
    try:
        vapi.initialize_connection(ctxt, vol, {'host': 'x', 'ip': '127.0.0.1'})
        out['no_initiator'] = 'no exception'
    except exception.InvalidInput as e:
        out['no_initiator'] = {'isinstance': 'InvalidInput', 'class': type(e).__name__, 'msg': str(e).split('\n')[0]}
    except Exception as e:  # noqa: BLE001
        out['no_initiator'] = {'class': type(e).__name__, 'msg': str(e), 'unexpected': True}
    vol.status = 'extending'
    vol.save()
    vapi.extend_volume(ctxt, vol, 2, [])
    for _ in range(300):
        vol.refresh()
        if vol.status != 'extending':
            break
        time.sleep(0.1)
    out['extend'] = {'status': vol.status, 'size': vol.size}
    caps = vapi.get_capabilities(ctxt, vol.service_topic_queue, False)
    out['caps_backend'] = caps.get('volume_backend_name')
    vol.status = 'deleting'
    vol.save()
    vapi.delete_volume(ctxt, vol)
    for _ in range(300):
        try:
            objects.Volume.get_by_id(ctxt, volume_id)
        except exception.VolumeNotFound:
            out['deleted'] = True
            break
        time.sleep(0.1)
    print(json.dumps(out))


main()
