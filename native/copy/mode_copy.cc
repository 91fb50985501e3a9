// Copy: open and check both ends, settle what runs of zeros become in the destination, then let
// the kernel copy (offload.h) or run the pipeline; see modes.h.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "bytes.h"
#include "context.h"
#include "modes.h"
#include "offload.h"
#include "pipeline.h"
#include "source.h"
#include "xxh64.h"
#include "zero_runs.h"

namespace cinderblock {
namespace copyengine {

namespace {

bool OpenDestination(Context& ctx) {
  const End& src = ctx.src;
  End& dst = ctx.dst;
  dst.path = ctx.opts.dst;
  if (!OpenEnd(ctx, dst, O_WRONLY, true, "destination")) return false;
  ctx.haveDst = true;
  bool same = src.isBlk && dst.isBlk ? src.st.st_rdev == dst.st.st_rdev
                                      : (src.st.st_dev == dst.st.st_dev && src.st.st_ino == dst.st.st_ino);
  if (same) return ctx.Fail(EINVAL, "open", dst.path, "same-file", "the source and the destination are the same file or device");
  return true;
}

// Before any I/O: the length is whole logical sectors of every device end, and a destination
// device holds it.
bool CheckRange(Context& ctx) {
  const End& src = ctx.src;
  const End& dst = ctx.dst;
  uint32_t sector = 0;
  if (src.isBlk) sector = src.sector;
  if (dst.isBlk && dst.sector > sector) sector = dst.sector;
  if (sector && ctx.length % sector != 0) {
    return ctx.Fail(EINVAL, "size check", src.isBlk && src.sector == sector ? src.path : dst.path, "unaligned-length",
                    "the length (" + std::to_string(ctx.length) + " bytes) is not a multiple of the " + std::to_string(sector) +
                        "-byte logical sector size");
  }
  if (dst.isBlk && dst.size < ctx.length) {
    return ctx.Fail(ENOSPC, "size check", dst.path, "destination-too-small",
                    "the destination holds " + HumanBytes(dst.size) + " but the copy needs " + HumanBytes(ctx.length));
  }
  return true;
}

// Whether the destination already reads as zeros over the range, so zeros need not be written
// there: Options.destinationIsZeroed, or by default a destination file with no data extent at
// all (freshly created, or truncated and re-extended). A destination file shorter than the
// range is extended on the way (never shrunk).
bool DestinationIsZeroed(Context& ctx, bool* zeroed) {
  const Options& o = ctx.opts;
  End& dst = ctx.dst;
  *zeroed = false;
  if (dst.isReg) {
    off_t d = lseek(dst.fd.fd, 0, SEEK_DATA);
    bool noData = dst.created || (d < 0 && errno == ENXIO) || (d >= 0 && static_cast<uint64_t>(d) >= ctx.length);
    if (dst.size < ctx.length && ftruncate(dst.fd.fd, static_cast<off_t>(ctx.length)) != 0) {
      return ctx.FailErrno(errno, "ftruncate", dst.path);
    }
    if (o.destinationIsZeroed == Tristate::Auto) *zeroed = noData;
  }
  if (o.destinationIsZeroed == Tristate::Yes) *zeroed = true;
  return true;
}

}  // namespace

bool RunCopy(Context& ctx) {
  const Options& o = ctx.opts;
  if (!OpenSource(ctx) || !OpenDestination(ctx) || !CheckRange(ctx)) return false;
  bool dstZeroed = false;
  if (!DestinationIsZeroed(ctx, &dstZeroed)) return false;
  ZeroAction action;
  if (dstZeroed) action = ZeroAction::Skip;
  else if (ctx.dst.isReg) action = o.sparse ? ZeroAction::Punch : ZeroAction::ZeroRange;
  else action = o.sparse ? ZeroAction::BlkZeroOut : ZeroAction::Write;
  ZeroRuns zeros(ctx, action);
  SourceMap source(ctx);

  const char* offloaded = nullptr;
  if (!TryOffload(ctx, source, zeros, &offloaded)) return false;
  Result& r = ctx.job.result;
  std::string method;
  if (offloaded) {
    method = offloaded;
  } else {
    Xxh64 hash;
    if (ctx.length > 0) {
      PipelinePlan plan;
      plan.source = &source;
      plan.zeros = &zeros;
      plan.hash = o.verify ? &hash : nullptr;
      // Testing each block read for zeros pays only where zeros need not be written as read.
      plan.detectZeros = dstZeroed || o.sparse;
      if (!RunPipeline(ctx, plan)) return false;
    }
    method = "engine";
    if (o.verify) {
      r.hasChecksum = true;
      r.checksum = hash.Digest();
    }
  }
  r.method = method;
  r.bytesCopied = ctx.length;
  r.directSrc = method == "engine" && ctx.src.direct;
  r.directDst = method == "engine" && ctx.dst.direct;
  return SyncDestination(ctx);
}

}  // namespace copyengine
}  // namespace cinderblock
