// Copies between regular files on one filesystem that the kernel does without the data passing
// through us: FICLONE (the whole source), then copy_file_range over the source's data extents.
#pragma once

namespace cinderblock {
namespace copyengine {

class Context;
class SourceMap;
class ZeroRuns;

// Tries FICLONE and then copy_file_range where they may work (Options.offload, no caller's map,
// both ends regular files on one filesystem, something to copy). *method is "ficlone" or
// "copy_file_range" when one did the copy (with Options.verify, the destination has then been
// read back into Result.checksum), nullptr when the pipeline must do it: nothing was tried, or
// the first copy_file_range was refused, in which case the ends are back to O_DIRECT as opened
// and the progress counters back to 0. False with the failure recorded in ctx.
bool TryOffload(Context& ctx, SourceMap& source, ZeroRuns& zeros, const char** method);

}  // namespace copyengine
}  // namespace cinderblock
