"""The peer of bench/image/image-bench.mts: the same create-from-image or upload done by cinder's
own image code (Debian's python3-cinder, cinder/image/image_utils.py), as cinder-volume's LVM
driver calls it: fetch_to_raw onto the volume's path, upload_volume from it. Prints the time and
this process's own peak RSS (VmHWM: getrusage's ru_maxrss starts from the parent's at fork) as
JSON; the bench samples the whole process tree (qemu-img included) itself.

  /usr/bin/python3 image_peer.py CONF fetch IMAGE_ID DEST SIZE_GB
  /usr/bin/python3 image_peer.py CONF upload IMAGE_ID VOLUME_PATH DISK_FORMAT
"""
import json
import sys
import time

from cinder import context
from cinder.image import glance
from cinder.image import image_utils
from oslo_config import cfg


def main():
    conf, op, image_id, path = sys.argv[1:5]
    cfg.CONF([], project='cinder', default_config_files=[conf])
    ctx = context.get_admin_context()
    service = glance.get_default_image_service()
    t0 = time.monotonic()
    if op == 'fetch':
        # the LVM driver's copy_image_to_volume: volume_dd_blocksize, the volume's size;
        # run_as_root False: this bench runs as root already, without rootwrap's sudo
        image_utils.fetch_to_raw(ctx, service, image_id, path, '1M',
                                 size=int(sys.argv[5]), run_as_root=False)
    else:
        meta = service.show(ctx, image_id)
        image_utils.upload_volume(ctx, service, meta, path, volume_format='raw',
                                  run_as_root=False,
                                  compress=cfg.CONF.image_compress_on_upload)
    seconds = time.monotonic() - t0
    with open('/proc/self/status') as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith('VmHWM:'))
    print(json.dumps({'seconds': seconds, 'peakKiB': hwm}))


if __name__ == '__main__':
    main()
