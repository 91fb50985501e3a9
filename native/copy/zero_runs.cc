// Merging and applying runs of zeros in a copy's destination; see zero_runs.h.
#include "zero_runs.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "context.h"

namespace cinderblock {
namespace copyengine {

namespace {

constexpr uint64_t kZeroRunMax = 1ull << 30;  // flush a run of zeros at least every GiB

}  // namespace

ZeroRuns::~ZeroRuns() {
  if (zeroBlock_) munmap(zeroBlock_, ctx_.blockSize);
}

char* ZeroRuns::ZeroBlock() {
  if (!zeroBlock_) {
    void* m = mmap(nullptr, ctx_.blockSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    zeroBlock_ = static_cast<char*>(m);
  }
  return zeroBlock_;
}

bool ZeroRuns::Add(uint64_t off, uint64_t len, bool hole) {
  if (runLen_ > 0 && runOff_ + runLen_ == off && runLen_ < kZeroRunMax) {
    runLen_ += len;
  } else {
    if (!Flush()) return false;
    runOff_ = off;
    runLen_ = len;
  }
  if (hole) runHoleBytes_ += len;
  return true;
}

bool ZeroRuns::Flush() {
  if (runLen_ == 0) return true;
  uint64_t off = runOff_, len = runLen_, holes = runHoleBytes_;
  runLen_ = 0;
  runHoleBytes_ = 0;
  for (;;) {
    bool unsupported = false;
    if (!Apply(action_, off, len, &unsupported)) return false;
    if (!unsupported) break;
    action_ = action_ == ZeroAction::Punch ? ZeroAction::ZeroRange : ZeroAction::Write;
  }
  Job& job = ctx_.job;
  if (action_ == ZeroAction::Write) {
    job.result.bytesWritten += len;
    job.bytesWritten += len;
  } else {
    job.result.bytesSkippedHoles += holes;
    job.result.bytesSkippedZero += len - holes;
    job.bytesSkipped += len;
  }
  return true;
}

bool ZeroRuns::Apply(ZeroAction a, uint64_t off, uint64_t len, bool* unsupported) {
  *unsupported = false;
  const End& dst = ctx_.dst;
  switch (a) {
    case ZeroAction::Skip:
      return true;
    case ZeroAction::Punch:
    case ZeroAction::ZeroRange: {
      int mode = a == ZeroAction::Punch ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
      if (fallocate(dst.fd.fd, mode, static_cast<off_t>(off), static_cast<off_t>(len)) != 0) {
        int err = errno;
        if (err == EOPNOTSUPP || err == ENOSYS || err == EINVAL) {
          *unsupported = true;
          return true;
        }
        return ctx_.FailErrno(err, a == ZeroAction::Punch ? "fallocate(PUNCH_HOLE)" : "fallocate(ZERO_RANGE)", dst.path);
      }
      return true;
    }
    case ZeroAction::BlkZeroOut: {
      if (!ctx_.ThrottleWrite(len)) return false;
      uint64_t range[2] = {off, len};
      if (ioctl(dst.fd.fd, BLKZEROOUT, &range) != 0) {
        int err = errno;
        if (err == EOPNOTSUPP || err == ENOTTY || err == EINVAL) {
          *unsupported = true;
          return true;
        }
        return ctx_.FailErrno(err, "ioctl(BLKZEROOUT)", dst.path);
      }
      return true;
    }
    case ZeroAction::Write:
      return WriteZeros(off, len);
  }
  return true;
}

// Writes zeros over [off, off+len) synchronously on this thread (the fallback when the
// filesystem or device cannot punch/zero a range itself).
bool ZeroRuns::WriteZeros(uint64_t off, uint64_t len) {
  End& dst = ctx_.dst;
  const char* zeros = ZeroBlock();
  if (!zeros) return ctx_.FailErrno(errno, "mmap", "");
  uint64_t end = off + len;
  while (off < end) {
    if (ctx_.Cancelled()) return false;
    uint64_t n = end - off < ctx_.blockSize ? end - off : ctx_.blockSize;
    int fd = dst.fd.fd;
    if (dst.direct && (n % DioAlign(dst) != 0 || off % DioAlign(dst) != 0)) fd = BufferedWriteFd(dst);
    if (fd < 0) return ctx_.FailErrno(errno, "open", dst.path);
    if (!ctx_.ThrottleWrite(n)) return false;
    ssize_t w = pwrite(fd, zeros, n, static_cast<off_t>(off));
    if (w < 0) return ctx_.FailErrno(errno, "write", dst.path);
    if (w == 0) return ctx_.FailErrno(ENOSPC, "write", dst.path);
    off += static_cast<uint64_t>(w);
  }
  return true;
}

}  // namespace copyengine
}  // namespace cinderblock
