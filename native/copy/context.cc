// Failure, cancel, throttle and fault injection for the steps of a job; see context.h.
#include "context.h"

#include <cerrno>
#include <cstring>

#include "throttle.h"

namespace cinderblock {
namespace copyengine {

bool Context::Fail(int err, const std::string& syscall, const std::string& path, const std::string& reason,
                   const std::string& detail) {
  if (!failed_) {
    failed_ = true;
    Failure& f = job.failure;
    f.err = err;
    f.syscall = syscall;
    f.path = path;
    f.reason = reason;
    f.detail = detail.empty() ? std::strerror(err) : detail;
    f.bytesDone = job.bytesDone.load();
  }
  return false;
}

bool Context::FailErrno(int err, const std::string& syscall, const std::string& path) {
  return Fail(err, syscall, path, "", "");
}

bool Context::Cancelled() {
  if (!job.Cancelled()) return false;
  Fail(ECANCELED, "cancel", "", "cancelled", "the copy was cancelled");
  return true;
}

bool Context::ThrottleRead(uint64_t bytes) {
  if (opts.bpsLimit == 0 || !haveSrc) return true;
  auto start = ThrottleReserve(src.throttleKey, false, bytes, opts.bpsLimit);
  if (job.SleepUntil(start)) return true;
  ThrottleRefund(src.throttleKey, false, start, bytes, opts.bpsLimit);  // cancelled: not used
  Cancelled();
  return false;
}

bool Context::ThrottleWrite(uint64_t bytes) {
  if (opts.bpsLimit == 0 || !haveDst) return true;
  auto start = ThrottleReserve(dst.throttleKey, true, bytes, opts.bpsLimit);
  if (job.SleepUntil(start)) return true;
  ThrottleRefund(dst.throttleKey, true, start, bytes, opts.bpsLimit);
  Cancelled();
  return false;
}

bool Context::FaultPoint(const char* name) {
  if (faultFired_ || opts.testFault.empty() || opts.testFault != name) return false;
  faultFired_ = true;
  return true;
}

}  // namespace copyengine
}  // namespace cinderblock
