// What the steps of one job share: the job and its options, its two ends, the range it covers,
// and how a step records a failure, notices a cancel or waits for its share of the bandwidth
// limit. Built by Job::Run (copy_engine.cc) and handed to the mode (modes.h); everything a
// Context holds is closed when it goes.
#pragma once

#include <cstdint>
#include <string>

#include "../copy_engine.h"
#include "end.h"

namespace cinderblock {
namespace copyengine {

// Copies and clears hand ranges to the kernel (copy_file_range, clear ioctls, fallocate) in
// pieces of this size, so progress, cancel and the bandwidth limit still act while it works.
constexpr uint64_t kOffloadChunk = 64ull << 20;

class Context {
 public:
  explicit Context(Job& j) : job(j), opts(j.opts) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Job& job;
  const Options& opts;
  End src;
  End dst;
  bool haveSrc = false;  // src is open (copy, checksum)
  bool haveDst = false;  // dst is open (copy, clear)
  uint64_t length = 0;   // bytes from offset 0 the job covers
  uint32_t blockSize = 0;
  uint32_t depth = 0;

  // Records the job's failure unless one already is (what follows a failure is its
  // consequence), and returns false, so a step can `return ctx.Fail(...)`. An empty detail
  // becomes strerror's text.
  bool Fail(int err, const std::string& syscall, const std::string& path, const std::string& reason, const std::string& detail);
  bool FailErrno(int err, const std::string& syscall, const std::string& path);
  bool Failed() const { return failed_; }
  // True once Job::Cancel was called, with the cancel (ECANCELED) recorded as the failure: a
  // step's loop asks it each turn (`if (ctx.Cancelled()) return false;`), so a cancel stops a
  // clear by ioctl, a copy_file_range or a read-back too, not only the pipeline.
  bool Cancelled();

  // Wait for the bandwidth limit's slot for `bytes` read from the source / written to the
  // destination (no wait without a limit). False if cancelled meanwhile.
  bool ThrottleRead(uint64_t bytes);
  bool ThrottleWrite(uint64_t bytes);

  // Test-only fault injection: Options.testFault names a point that then fails once. Only the
  // test suite sets it (through a test-only option of the TypeScript facade).
  bool FaultPoint(const char* name);

 private:
  bool failed_ = false;
  bool faultFired_ = false;
};

}  // namespace copyengine
}  // namespace cinderblock
