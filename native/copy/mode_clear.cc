// Clear: zeros over a range of a device or file, by the cheapest means it offers; see modes.h.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "bytes.h"
#include "context.h"
#include "modes.h"
#include "pipeline.h"
#include "zero_runs.h"

namespace cinderblock {
namespace copyengine {

namespace {

// Reads /sys/dev/block/MAJ:MIN/queue/<name> (or ../queue for a partition). -1 if absent.
int64_t SysfsQueueValue(dev_t rdev, const char* name) {
  for (const char* rel : {"queue", "../queue"}) {
    char path[128];
    std::snprintf(path, sizeof path, "/sys/dev/block/%u:%u/%s/%s", major(rdev), minor(rdev), rel, name);
    FILE* f = std::fopen(path, "re");
    if (!f) continue;
    long long v = -1;
    int n = std::fscanf(f, "%lld", &v);
    std::fclose(f);
    if (n == 1) return v;
  }
  return -1;
}

// Clears with the first call the destination accepts: a device's BLKZEROOUT (when it offloads
// write-zeroes) or BLKDISCARD (when discards read back as zeros), a file's punch or zero-range.
// *method names the one that did it, or stays nullptr when none applies or all were refused
// (the caller then writes zeros).
bool ClearWithIoctlsOrFallocate(Context& ctx, const char** method) {
  *method = nullptr;
  const Options& o = ctx.opts;
  const End& dst = ctx.dst;
  struct Step {
    const char* name;
    int kind;  // 0 ioctl BLKZEROOUT, 1 ioctl BLKDISCARD, 2 punch, 3 zero range
  };
  std::vector<Step> steps;
  if (dst.isBlk) {
    int64_t wz = SysfsQueueValue(dst.st.st_rdev, "write_zeroes_max_bytes");
    int64_t dzd = SysfsQueueValue(dst.st.st_rdev, "discard_zeroes_data");
    int64_t dmax = SysfsQueueValue(dst.st.st_rdev, "discard_max_bytes");
    if (wz > 0) steps.push_back({"zeroout", 0});
    else if (o.allowDiscard && dzd == 1 && dmax > 0) steps.push_back({"discard", 1});
  } else {
    if (o.keepAllocated) {
      steps.push_back({"zero_range", 3});
      steps.push_back({"punch_hole", 2});
    } else {
      steps.push_back({"punch_hole", 2});
      steps.push_back({"zero_range", 3});
    }
  }
  uint64_t align = dst.isBlk ? dst.sector : 1;
  for (const Step& step : steps) {
    uint64_t pos = 0;
    bool unsupported = false;
    while (pos < ctx.length) {
      if (ctx.Cancelled()) return false;
      uint64_t chunk = ctx.length - pos < kOffloadChunk ? ctx.length - pos : kOffloadChunk;
      if (step.kind == 0 && o.bpsLimit > 0) {
        uint64_t cap = RoundDown(o.bpsLimit / 4, align);
        if (cap < (1u << 20)) cap = 1u << 20;
        if (chunk > cap) chunk = cap;
      }
      int r;
      const char* sys;
      if (step.kind <= 1) {
        if (step.kind == 0 && !ctx.ThrottleWrite(chunk)) return false;
        uint64_t range[2] = {pos, chunk};
        sys = step.kind == 0 ? "ioctl(BLKZEROOUT)" : "ioctl(BLKDISCARD)";
        r = ioctl(dst.fd.fd, step.kind == 0 ? BLKZEROOUT : BLKDISCARD, &range);
      } else {
        int mode = step.kind == 2 ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
        sys = step.kind == 2 ? "fallocate(PUNCH_HOLE)" : "fallocate(ZERO_RANGE)";
        r = fallocate(dst.fd.fd, mode, static_cast<off_t>(pos), static_cast<off_t>(chunk));
      }
      if (r != 0) {
        int err = errno;
        if (pos == 0 && (err == EOPNOTSUPP || err == ENOTTY || err == EINVAL || err == ENOSYS)) {
          unsupported = true;
          break;
        }
        return ctx.FailErrno(err, sys, dst.path);
      }
      pos += chunk;
      ctx.job.bytesDone += chunk;
    }
    if (!unsupported) {
      *method = step.name;
      return true;
    }
  }
  return true;
}

}  // namespace

bool RunClear(Context& ctx) {
  const Options& o = ctx.opts;
  End& dst = ctx.dst;
  dst.path = o.dst;
  if (!OpenEnd(ctx, dst, O_WRONLY, false, "device or file to clear")) return false;
  ctx.haveDst = true;
  if (o.length < 0) return ctx.Fail(EINVAL, "options", dst.path, "bad-option", "clear needs the number of bytes to clear");
  ctx.length = static_cast<uint64_t>(o.length);
  if (ctx.length > dst.size) {
    return ctx.Fail(EINVAL, "size check", dst.path, "range-beyond-end",
                    "cannot clear " + HumanBytes(ctx.length) + ": " + dst.path + " holds only " + HumanBytes(dst.size));
  }
  if (dst.isBlk && ctx.length % dst.sector != 0) {
    return ctx.Fail(EINVAL, "size check", dst.path, "unaligned-length",
                    "the length to clear (" + std::to_string(ctx.length) + " bytes) is not a multiple of the device's " +
                        std::to_string(dst.sector) + "-byte logical sector");
  }
  ctx.job.bytesTotal = ctx.length;
  ctx.job.result.bytesCopied = ctx.length;
  const char* method = "none";
  if (ctx.length > 0) {
    if (!ClearWithIoctlsOrFallocate(ctx, &method)) return false;
    if (!method) {
      // Nothing cheaper: the pipeline writes the whole range from its buffer of zeros.
      ZeroRuns zeros(ctx, ZeroAction::Write);
      PipelinePlan plan;
      plan.zeros = &zeros;
      if (!RunPipeline(ctx, plan)) return false;
      method = "write";
    }
  }
  ctx.job.result.method = method;
  ctx.job.result.directDst = dst.direct;
  return SyncDestination(ctx);
}

}  // namespace copyengine
}  // namespace cinderblock
