// How the pipeline keeps requests in flight: io_uring where the kernel allows it, else a reader
// and a writer thread doing pread/pwrite. Requests are tagged with their slot; completions come
// back in any order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace cinderblock {
namespace copyengine {

struct IoReq {
  uint32_t tag;
  bool write;
  int fd;
  char* buf;
  uint32_t len;
  uint64_t off;
  int bufIndex;  // registered buffer index, or -1
};

struct IoDone {
  uint32_t tag;
  int64_t res;  // bytes, or -errno
};

class IoBackend {
 public:
  virtual ~IoBackend() = default;
  virtual int Queue(const IoReq& r) = 0;  // 0 or -errno
  virtual int Flush() = 0;                // hand queued requests to the kernel / threads
  virtual int Wait(IoDone* out) = 0;      // blocks for one completion; 0 or -errno
  virtual bool Poll(IoDone* out) = 0;     // a completion if one is ready
  virtual const char* Name() const = 0;   // Result.backend
};

// An io_uring with room for `depth` requests, `nbuf` buffers of `bufferSize` at `buffers`
// registered as fixed buffers where RLIMIT_MEMLOCK allows (bufIndex then names one), and every
// request tagged with I/O priority `ioprio` (IoprioValue). 0 or -errno: ENOSYS without io_uring,
// EPERM where it is disabled (sysctl kernel.io_uring_disabled, seccomp), EOPNOTSUPP without
// IORING_OP_READ/WRITE.
int StartUringBackend(unsigned depth, char* buffers, size_t bufferSize, unsigned nbuf, int ioprio, std::unique_ptr<IoBackend>* out);
// A reader thread (cb-copy-rd) and a writer thread (cb-copy-wr), each at the given I/O priority
// and joined when the backend is destroyed. 0 or -errno (thread creation failed).
int StartThreadBackend(int ioprioClass, int ioprioLevel, std::unique_ptr<IoBackend>* out);

}  // namespace copyengine
}  // namespace cinderblock
