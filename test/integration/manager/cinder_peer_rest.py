"""Drive the methods issue 17 added with cinder's own cinder.volume.rpcapi.VolumeAPI and objects
loaded from the same database, as cinder-api does: generic group create, add a member, group
snapshot, group delete with its volumes; freeze/thaw; manageable list (objects, as 3.10+ asks);
accept_transfer; list_replication_targets; do_cleanup.
argv: transport_url db_url client_dir; JSON ids on stdin; one JSON report on stdout."""
import json
import sys
import time
import warnings

warnings.simplefilter('ignore')
sys.path.insert(0, sys.argv[3])
import cinder_wire  # noqa: E402
from oslo_config import cfg  # noqa: E402
from cinder import objects, exception  # noqa: E402


def wait(what, fn, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise RuntimeError('timed out waiting for ' + what)


def main():
    transport_url, db_url = sys.argv[1:3]
    ids = json.load(sys.stdin)
    vapi = cinder_wire.volume_api(transport_url)
    cfg.CONF.set_override('connection', db_url, group='database')
    ctxt = cinder_wire.admin_context()
    out = {}

    grp = objects.Group.get_by_id(ctxt, ids['group'])
    vapi.create_group(ctxt, grp)

    def group_status():
        grp.refresh()
        return grp.status if grp.status != 'creating' else None
    out['create_group'] = wait('group created', group_status)

    vol = objects.Volume.get_by_id(ctxt, ids['volume'])
    vapi.update_group(ctxt, grp, add_volumes=vol.id)

    def member():
        vol.refresh()
        return vol.group_id
    out['member_group_id'] = wait('volume added', member)

    gs = objects.GroupSnapshot.get_by_id(ctxt, ids['group_snapshot'])
    vapi.create_group_snapshot(ctxt, gs)

    def gs_status():
        gs.refresh()
        return gs.status if gs.status != 'creating' else None
    out['create_group_snapshot'] = wait('group snapshot created', gs_status)
    snaps = objects.SnapshotList.get_all_for_group_snapshot(ctxt, gs.id)
    out['group_snapshot_members'] = sorted(s.status for s in snaps)

    service = objects.Service.get_by_args(ctxt, ids['backend'], 'cinder-volume')
    out['freeze'] = vapi.freeze_host(ctxt, service)
    service.refresh()
    out['frozen_row'] = [service.disabled, service.disabled_reason]
    out['thaw'] = vapi.thaw_host(ctxt, service)
    service.refresh()
    out['thawed_row'] = [service.disabled, service.disabled_reason]

    entries = vapi.get_manageable_volumes(ctxt, service, None, 1000, 0, ['reference'], ['desc'])
    out['manageable'] = [
        {'class': type(e).__name__, 'reference': e.reference, 'size': e.size, 'safe_to_manage': e.safe_to_manage,
         'reason_not_safe': e.reason_not_safe, 'cinder_id': e.cinder_id}
        for e in entries]
    snap_entries = vapi.get_manageable_snapshots(ctxt, service, None, 1000, 0, ['reference'], ['asc'])
    out['manageable_snapshots'] = [
        {'class': type(e).__name__, 'reference': e.reference, 'cinder_id': e.cinder_id, 'source_reference': e.source_reference}
        for e in snap_entries]

    out['accept_transfer'] = vapi.accept_transfer(ctxt, vol, 'new-user', 'new-project', no_snapshots=False)
    out['replication_targets'] = vapi.list_replication_targets(ctxt, grp)
    try:
        vapi.get_manageable_volumes(ctxt, service, '{"source-name": "nope"}', 10, 0, ['reference'], ['asc'])
        out['bad_marker'] = 'no exception'
    except exception.InvalidInput as e:
        out['bad_marker'] = {'class': type(e).__name__, 'msg': str(e).split('\n')[0]}

    req = objects.CleanupRequest(ctxt, service_id=ids['dead_service_id'], host=ids['backend'], is_up=False)
    vapi.do_cleanup(ctxt, req)

    def cleaned():
        v = objects.Volume.get_by_id(ctxt, ids['stuck_volume'])
        return v.status if v.status != 'creating' else None
    out['cleanup_status'] = wait('cleanup', cleaned)

    for s in snaps:
        s.status = 'deleting'
        s.save()
    gs.status = 'deleting'
    gs.save()
    vapi.delete_group_snapshot(ctxt, gs)

    def gs_gone():
        try:
            objects.GroupSnapshot.get_by_id(ctxt, gs.id)
            return False
        except exception.GroupSnapshotNotFound:
            return True
    out['group_snapshot_deleted'] = wait('group snapshot deleted', gs_gone)

    grp.status = 'deleting'
    grp.save()
    vol.refresh()
    vol.status = 'deleting'
    vol.save()
    vapi.delete_group(ctxt, grp)

    def gone():
        try:
            objects.Group.get_by_id(ctxt, grp.id)
            return False
        except exception.GroupNotFound:
            return True
    out['group_deleted'] = wait('group deleted', gone)
    try:
        objects.Volume.get_by_id(ctxt, vol.id)
        out['member_deleted'] = False
    except exception.VolumeNotFound:
        out['member_deleted'] = True
    print(json.dumps(out))


main()
