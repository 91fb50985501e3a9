"""Asks Debian's os-brick whether guard_connection locks for a volume as nova passes it.

argv: a JSON list of [shared_targets, service_uuid, supports_manual_scan] cases.
stdout: a JSON list of {"locked": bool, "lock_file": name or null} per case.
"""
import json
import os
import sys
import tempfile

from oslo_concurrency import lockutils

from os_brick.initiator import utils

out = []
lock_dir = tempfile.mkdtemp()
lockutils.set_defaults(lock_dir)
for shared, uuid, manual in json.loads(sys.argv[1]):
    utils.ISCSI_SUPPORTS_MANUAL_SCAN = manual
    before = set(os.listdir(lock_dir))
    with utils.guard_connection({'shared_targets': shared, 'service_uuid': uuid}):
        pass
    made = sorted(set(os.listdir(lock_dir)) - before)
    out.append({'locked': bool(made), 'lock_file': made[0] if made else None})
print(json.dumps(out))
