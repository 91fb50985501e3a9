// Block-device ioctls. Each one runs on its own thread (see RunOnOwnThread): even a size query
// has to open the device first, and opening a device whose transport is gone can hang.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>

#include "common.h"

namespace cinderblock {

namespace {

// blkGetSize64(target): size in bytes; a regular file (file-backed volumes) reports st_size.
Napi::Value BlkGetSize64(const Napi::CallbackInfo& info) {
  Target t = ToTarget(info[0], "device");
  return RunOnOwnThread(info.Env(), [t]() {
    return WithFd(t, O_RDONLY, [&t](int fd) {
      struct stat st;
      if (fstat(fd, &st) != 0) return Outcome::Fail(errno, "fstat", t.Describe());
      if (S_ISREG(st.st_mode)) return Outcome::Number(static_cast<double>(st.st_size));
      uint64_t bytes = 0;
      if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) return Outcome::Fail(errno, "ioctl(BLKGETSIZE64)", t.Describe());
      return Outcome::Number(static_cast<double>(bytes));
    });
  });
}

// blkSszGet(target): logical sector size, the unit discard/zero-out ranges must be aligned to.
Napi::Value BlkSszGet(const Napi::CallbackInfo& info) {
  Target t = ToTarget(info[0], "device");
  return RunOnOwnThread(info.Env(), [t]() {
    return WithFd(t, O_RDONLY, [&t](int fd) {
      int size = 0;
      if (ioctl(fd, BLKSSZGET, &size) != 0) return Outcome::Fail(errno, "ioctl(BLKSSZGET)", t.Describe());
      return Outcome::Number(size);
    });
  });
}

// blkPbszGet(target): physical block size (what the device writes atomically).
Napi::Value BlkPbszGet(const Napi::CallbackInfo& info) {
  Target t = ToTarget(info[0], "device");
  return RunOnOwnThread(info.Env(), [t]() {
    return WithFd(t, O_RDONLY, [&t](int fd) {
      unsigned int size = 0;
      if (ioctl(fd, BLKPBSZGET, &size) != 0) return Outcome::Fail(errno, "ioctl(BLKPBSZGET)", t.Describe());
      return Outcome::Number(size);
    });
  });
}

// Runs a no-argument ioctl (BLKFLSBUF, BLKRRPART) on its own thread.
Napi::Value SimpleIoctl(const Napi::CallbackInfo& info, unsigned long request, const char* name) {
  Target t = ToTarget(info[0], "device");
  return RunOnOwnThread(info.Env(), [t, request, name]() {
    return WithFd(t, O_RDONLY, [&](int fd) {
      if (ioctl(fd, request, 0) != 0) return Outcome::Fail(errno, name, t.Describe());
      return Outcome::Done();
    });
  });
}

// blkFlsBuf(target): write back and drop the kernel's buffer cache for the device, so reads
// after someone else wrote the device (another host, a target) see the new data.
Napi::Value BlkFlsBuf(const Napi::CallbackInfo& info) { return SimpleIoctl(info, BLKFLSBUF, "ioctl(BLKFLSBUF)"); }

// blkRrPart(target): ask the kernel to re-read the partition table.
Napi::Value BlkRrPart(const Napi::CallbackInfo& info) { return SimpleIoctl(info, BLKRRPART, "ioctl(BLKRRPART)"); }

// Runs a range ioctl (BLKDISCARD, BLKZEROOUT) on [start, start+length). The kernel only
// accepts these on a device opened for writing.
Napi::Value RangeIoctl(const Napi::CallbackInfo& info, unsigned long request, const char* name) {
  Target t = ToTarget(info[0], "device");
  uint64_t start = ToOffset(info[1], "offset");
  uint64_t length = ToOffset(info[2], "length");
  return RunOnOwnThread(info.Env(), [t, start, length, request, name]() {
    return WithFd(t, O_WRONLY, [&](int fd) {
      uint64_t range[2] = {start, length};
      if (ioctl(fd, request, &range) != 0) return Outcome::Fail(errno, name, t.Describe());
      return Outcome::Done();
    });
  });
}

// blkDiscard(target, offset, length): tell the device the range is unused (thin/SSD space back).
Napi::Value BlkDiscard(const Napi::CallbackInfo& info) { return RangeIoctl(info, BLKDISCARD, "ioctl(BLKDISCARD)"); }

// blkZeroOut(target, offset, length): make the range read as zeros, offloaded where the device can.
Napi::Value BlkZeroOut(const Napi::CallbackInfo& info) { return RangeIoctl(info, BLKZEROOUT, "ioctl(BLKZEROOUT)"); }

}  // namespace

void InitBlockdev(Napi::Env env, Napi::Object exports) {
  exports.Set("blkGetSize64", Napi::Function::New(env, BlkGetSize64, "blkGetSize64"));
  exports.Set("blkSszGet", Napi::Function::New(env, BlkSszGet, "blkSszGet"));
  exports.Set("blkPbszGet", Napi::Function::New(env, BlkPbszGet, "blkPbszGet"));
  exports.Set("blkFlsBuf", Napi::Function::New(env, BlkFlsBuf, "blkFlsBuf"));
  exports.Set("blkRrPart", Napi::Function::New(env, BlkRrPart, "blkRrPart"));
  exports.Set("blkDiscard", Napi::Function::New(env, BlkDiscard, "blkDiscard"));
  exports.Set("blkZeroOut", Napi::Function::New(env, BlkZeroOut, "blkZeroOut"));
}

}  // namespace cinderblock
