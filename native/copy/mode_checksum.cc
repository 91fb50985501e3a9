// Checksum: read the source through the pipeline and hash it; see modes.h.
#include "context.h"
#include "modes.h"
#include "pipeline.h"
#include "source.h"
#include "xxh64.h"

namespace cinderblock {
namespace copyengine {

bool RunChecksum(Context& ctx) {
  if (!OpenSource(ctx)) return false;
  Xxh64 hash;
  if (ctx.length > 0) {
    SourceMap source(ctx);
    PipelinePlan plan;
    plan.source = &source;
    // The glue (copy.cc) always sets verify for a checksum; without it nothing is hashed.
    plan.hash = ctx.opts.verify ? &hash : nullptr;
    if (!RunPipeline(ctx, plan)) return false;
  }
  Result& r = ctx.job.result;
  r.method = "checksum";
  r.bytesCopied = ctx.length;
  r.directSrc = ctx.src.direct;
  r.hasChecksum = true;
  r.checksum = hash.Digest();
  return true;
}

}  // namespace copyengine
}  // namespace cinderblock
