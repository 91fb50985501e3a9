// FICLONE and copy_file_range; see offload.h.
#include "offload.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "bytes.h"
#include "context.h"
#include "source.h"
#include "xxh64.h"
#include "zero_runs.h"

namespace cinderblock {
namespace copyengine {

namespace {

// Filesystems whose copy_file_range is no offload, only the kernel's generic splice copy
// through the page cache: measured slower than the O_DIRECT engine (bench/README.md: 1.47 s
// against 0.70 s for the 4 GiB sparse case on ext4), and it fills the page cache. Elsewhere
// (NFS/SMB server-side copy, Ceph, XFS/btrfs sharing extents for a partial range) it is kept.
bool CopyFileRangeIsOffload(int fd) {
  struct statfs sf;
  if (fstatfs(fd, &sf) != 0) return true;
  switch (static_cast<unsigned long>(sf.f_type)) {
    case 0xEF53:      // ext2/3/4
    case 0x01021994:  // tmpfs
    case 0x858458F6:  // ramfs
    case 0xF2F52010:  // f2fs
      return false;
    default:
      return true;
  }
}

// Errors by which FICLONE / copy_file_range say "not between these two files".
bool IsUnsupported(int err) {
  return err == EOPNOTSUPP || err == ENOTTY || err == EXDEV || err == EINVAL || err == ENOSYS || err == EBADF;
}

bool TryFiclone(Context& ctx, bool* done) {
  *done = false;
  if (ioctl(ctx.dst.fd.fd, FICLONE, ctx.src.fd.fd) != 0) {
    int err = errno;
    if (IsUnsupported(err) || err == EPERM) return true;  // not here: try the next method
    return ctx.FailErrno(err, "ioctl(FICLONE)", ctx.dst.path);
  }
  ctx.job.bytesDone = ctx.length;
  ctx.job.result.bytesCopied = ctx.length;
  *done = true;
  return true;
}

bool TryCopyFileRange(Context& ctx, SourceMap& source, ZeroRuns& zeros, bool* done) {
  *done = false;
  End& src = ctx.src;
  End& dst = ctx.dst;
  Job& job = ctx.job;
  const uint64_t length = ctx.length;
  // copy_file_range goes through the page cache; drop O_DIRECT (restored if we fall back).
  bool srcDirect = src.direct, dstDirect = dst.direct;
  if (srcDirect && !DisableDirect(ctx, src)) return false;
  if (dstDirect && !DisableDirect(ctx, dst)) return false;
  bool first = true;
  uint64_t pos = 0;
  while (pos < length) {
    if (ctx.Cancelled()) return false;
    uint64_t end;
    bool data;
    if (!source.Next(pos, &end, &data)) return false;
    if (!data) {
      if (!zeros.Add(pos, end - pos, true)) return false;
      job.bytesDone += end - pos;
      pos = end;
      continue;
    }
    if (!zeros.Flush()) return false;
    while (pos < end) {
      if (ctx.Cancelled()) return false;
      uint64_t chunk = end - pos < kOffloadChunk ? end - pos : kOffloadChunk;
      if (ctx.opts.bpsLimit > 0) {
        uint64_t cap = ctx.opts.bpsLimit / 4 < (1u << 20) ? (1u << 20) : ctx.opts.bpsLimit / 4;
        if (chunk > cap) chunk = cap;
      }
      if (!ctx.ThrottleRead(chunk) || !ctx.ThrottleWrite(chunk)) return false;
      loff_t in = static_cast<loff_t>(pos), out = static_cast<loff_t>(pos);
      ssize_t n = copy_file_range(src.fd.fd, &in, dst.fd.fd, &out, chunk, 0);
      if (n < 0) {
        int err = errno;
        if (first && IsUnsupported(err)) {
          // Not between these two files: back to O_DIRECT, and let the engine start over
          // (anything done to holes so far is simply done again).
          for (auto* e : {&src, &dst}) {
            bool want = e == &src ? srcDirect : dstDirect;
            if (!want) continue;
            int fl = fcntl(e->fd.fd, F_GETFL);
            if (fl >= 0 && fcntl(e->fd.fd, F_SETFL, fl | O_DIRECT) == 0) e->direct = true;
          }
          job.bytesDone = 0;
          job.bytesSkipped = 0;
          job.bytesWritten = 0;
          job.result.bytesSkippedHoles = 0;
          job.result.bytesSkippedZero = 0;
          job.result.bytesWritten = 0;
          return true;
        }
        return ctx.FailErrno(err, "copy_file_range", dst.path);
      }
      if (n == 0) {
        return ctx.Fail(ENODATA, "copy_file_range", src.path, "source-too-short",
                        "the source ended at byte " + std::to_string(pos) + ", before the " + HumanBytes(length) + " to copy");
      }
      first = false;
      pos += static_cast<uint64_t>(n);
      job.bytesDone += static_cast<uint64_t>(n);
      job.bytesWritten += static_cast<uint64_t>(n);
      job.result.bytesWritten += static_cast<uint64_t>(n);
    }
  }
  if (!zeros.Flush()) return false;
  *done = true;
  return true;
}

// Nothing passed through us: checksum what the destination now holds.
bool ChecksumDestination(Context& ctx) {
  UniqueFd rd(open(ctx.dst.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (rd.fd < 0) return ctx.FailErrno(errno, "open", ctx.dst.path);
  Xxh64 h;
  std::vector<char> buf(1u << 20);
  uint64_t pos = 0;
  while (pos < ctx.length) {
    if (ctx.Cancelled()) return false;
    size_t want = ctx.length - pos < buf.size() ? static_cast<size_t>(ctx.length - pos) : buf.size();
    ssize_t n = pread(rd.fd, buf.data(), want, static_cast<off_t>(pos));
    if (n < 0) return ctx.FailErrno(errno, "read", ctx.dst.path);
    if (n == 0) return ctx.Fail(EIO, "read", ctx.dst.path, "destination-short", "the destination is shorter than what was copied");
    h.Update(buf.data(), static_cast<size_t>(n));
    pos += static_cast<uint64_t>(n);
  }
  ctx.job.result.hasChecksum = true;
  ctx.job.result.checksum = h.Digest();
  return true;
}

}  // namespace

bool TryOffload(Context& ctx, SourceMap& source, ZeroRuns& zeros, const char** method) {
  *method = nullptr;
  const End& src = ctx.src;
  const End& dst = ctx.dst;
  if (!ctx.opts.offload || ctx.opts.useExtents || !src.isReg || !dst.isReg || src.st.st_dev != dst.st.st_dev || ctx.length == 0) {
    return true;
  }
  bool done = false;
  if (ctx.length == src.size && !TryFiclone(ctx, &done)) return false;
  if (done) {
    *method = "ficlone";
  } else {
    if (CopyFileRangeIsOffload(dst.fd.fd) && !TryCopyFileRange(ctx, source, zeros, &done)) return false;
    if (done) *method = "copy_file_range";
  }
  if (done && ctx.opts.verify) return ChecksumDestination(ctx);
  return true;
}

}  // namespace copyengine
}  // namespace cinderblock
