// The three jobs, one function each. Job::Run (copy_engine.cc) has checked the options every
// mode shares and set the I/O priority, and calls the one Options.mode names. Each opens what it
// needs into ctx, fills in job.result and returns true, or returns false with job.failure set.
#pragma once

namespace cinderblock {
namespace copyengine {

class Context;

// Options.src -> Options.dst: checks, then FICLONE / copy_file_range where they apply, else the
// pipeline with zero and hole skipping; fdatasync.
bool RunCopy(Context& ctx);
// Zeros over [0, Options.length) of Options.dst: an ioctl or fallocate where the device or file
// offers one, else zeros written by the pipeline; fdatasync.
bool RunClear(Context& ctx);
// XXH64 of [0, length) of Options.src, read through the pipeline.
bool RunChecksum(Context& ctx);

}  // namespace copyengine
}  // namespace cinderblock
