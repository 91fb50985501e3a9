{
  # cinderblock's native addon: the few Linux syscalls Node cannot make itself
  # (block-device ioctls, FICLONE, OFD record locks, AF_UNIX datagrams to systemd,
  # device-mapper control ioctls, O_DIRECT block reads).
  # Built by `npm run build:native` (node-gyp rebuild) against the local Node headers.
  "targets": [
    {
      "target_name": "cinderblock_native",
      "sources": [
        "native/addon.cc",
        "native/common.cc",
        "native/blockdev.cc",
        "native/reflink.cc",
        "native/lock.cc",
        "native/sdnotify.cc",
        "native/dm.cc",
        "native/direct_read.cc",
        "native/copy.cc",
        "native/copy_engine.cc",
        # the copy engine's parts, one job a file (native/COPY.md); test/leakcheck builds them all
        "native/copy/bytes.cc",
        "native/copy/context.cc",
        "native/copy/end.cc",
        "native/copy/io_backend_threads.cc",
        "native/copy/io_backend_uring.cc",
        "native/copy/ioprio.cc",
        "native/copy/mode_checksum.cc",
        "native/copy/mode_clear.cc",
        "native/copy/mode_copy.cc",
        "native/copy/offload.cc",
        "native/copy/pipeline.cc",
        "native/copy/source.cc",
        "native/copy/throttle.cc",
        "native/copy/uring.cc",
        "native/copy/xxh64.cc",
        "native/copy/zero_runs.cc"
      ],
      # node_addon_api_except: include path for napi.h plus NAPI_CPP_EXCEPTIONS and
      # -fexceptions, so a failed Node-API call surfaces as a thrown Napi::Error.
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      # Node-API 8 (every Node >= 16) has all the addon needs; engines asks for Node >= 20.19.
      "defines": [ "NAPI_VERSION=8" ],
      # node's common.gypi builds Release with -O3; -O2 is plenty for a few syscalls.
      "cflags!": [ "-O3" ],
      "cflags": [ "-O2", "-Wall", "-Wextra" ],
      "cflags_cc": [ "-std=c++17" ]
    }
  ]
}
