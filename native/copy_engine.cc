// A job of the copy engine (copy_engine.h; the design, and which file in copy/ does what, in
// native/COPY.md): the options every mode shares, then the mode itself (copy/modes.h).
#include "copy_engine.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "copy/context.h"
#include "copy/ioprio.h"
#include "copy/modes.h"

namespace cinderblock {
namespace copyengine {

using Clock = std::chrono::steady_clock;

// ---- progress, cancel, sleep --------------------------------------------------------------

void Job::Cancel() {
  {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    cancelled_.store(true, std::memory_order_relaxed);
  }
  sleepCv_.notify_all();
}

bool Job::SleepUntil(Clock::time_point t) {
  std::unique_lock<std::mutex> lock(sleepMutex_);
  sleepCv_.wait_until(lock, t, [this] { return cancelled_.load(std::memory_order_relaxed); });
  return !cancelled_.load(std::memory_order_relaxed);
}

double Job::ElapsedMs() const {
  int64_t s = startedNs.load(std::memory_order_relaxed);
  if (s == 0) return 0;
  return (Clock::now().time_since_epoch().count() - s) / 1e6;
}

// ---- running a job --------------------------------------------------------------------------

namespace {

// What every mode shares, before anything is opened: block size and depth, and the I/O priority
// of this thread (a class the process may not use fails the job, as `ionice` fails a command).
bool Prepare(Context& ctx) {
  const Options& o = ctx.opts;
  ctx.blockSize = o.blockSize ? o.blockSize : kDefaultBlockSize;
  ctx.depth = o.depth ? o.depth : kDefaultDepth;
  if (ctx.blockSize % kAlign != 0 || ctx.blockSize > kMaxBlockSize) {
    return ctx.Fail(EINVAL, "options", "", "bad-option", "blockSize must be a multiple of 4096 up to 64 MiB");
  }
  if (ctx.depth < 1 || ctx.depth > kMaxDepth) return ctx.Fail(EINVAL, "options", "", "bad-option", "depth must be 1..128");
  Result& r = ctx.job.result;
  r.blockSize = ctx.blockSize;
  r.depth = ctx.depth;
  r.backend = "none";

  if (o.ioprioClass != 0) {
    int err = IoprioSet(o.ioprioClass, o.ioprioLevel);
    if (err != 0) return ctx.Fail(err, "ioprio_set", "", "ioprio", std::string("cannot set the I/O priority: ") + std::strerror(err));
  }
  return true;
}

bool RunMode(Context& ctx) {
  if (ctx.opts.mode == Mode::Copy) return RunCopy(ctx);
  if (ctx.opts.mode == Mode::Clear) return RunClear(ctx);
  return RunChecksum(ctx);
}

}  // namespace

bool Job::Run() {
  startedNs.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  bool ok;
  {
    Context ctx(*this);  // the ends it opened are closed when it goes; the mode freed the rest
    ok = Prepare(ctx) && RunMode(ctx);
    // A file we created for this copy is not left behind half-written.
    if (!ok && ctx.dst.created) unlink(ctx.dst.path.c_str());
  }
  result.elapsedMs = ElapsedMs();
  if (!ok) {
    failure.bytesDone = bytesDone.load();
    if (failure.err == 0) failure.err = EIO;
  }
  return ok;
}

}  // namespace copyengine
}  // namespace cinderblock
