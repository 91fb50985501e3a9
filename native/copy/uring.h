// A minimal io_uring ring on raw syscalls (no liburing: nothing to install or link). Just what
// the copy engine needs: get an SQE, submit (optionally waiting for completions), reap CQEs,
// register fixed buffers, and ask the kernel which opcodes it has.
#pragma once

#include <linux/io_uring.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace cinderblock {

class Uring {
 public:
  Uring() = default;
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;
  ~Uring();

  // Sets the ring up with room for `entries` submissions. Returns 0 or -errno (ENOSYS: no
  // io_uring in this kernel; EPERM: disabled by sysctl kernel.io_uring_disabled or seccomp,
  // as in Docker's default profile).
  int Init(unsigned entries);
  // Whether the kernel implements `op` (IORING_REGISTER_PROBE; false on kernels without it).
  bool Supports(uint8_t op);
  // Registers buffers for READ_FIXED/WRITE_FIXED. Returns 0 or -errno (ENOMEM/EPERM when they
  // would exceed RLIMIT_MEMLOCK): the caller then uses plain READ/WRITE.
  int RegisterBuffers(const struct iovec* iov, unsigned n);

  // A zeroed SQE to fill in, or nullptr when the submission queue is full (submit first).
  struct io_uring_sqe* GetSqe();
  // Hands queued SQEs to the kernel and, if waitFor > 0, waits until that many completions are
  // there. Returns 0 or -errno (never EINTR: retried).
  int Submit(unsigned waitFor);
  // Copies out the oldest completion and consumes it; false when there is none.
  bool PopCqe(struct io_uring_cqe* out);

 private:
  int fd_ = -1;
  void* sqRing_ = nullptr;
  void* cqRing_ = nullptr;
  size_t sqRingSize_ = 0;
  size_t cqRingSize_ = 0;
  struct io_uring_sqe* sqes_ = nullptr;
  size_t sqesSize_ = 0;
  unsigned* sqHead_ = nullptr;
  unsigned* sqTail_ = nullptr;
  unsigned sqMask_ = 0;
  unsigned sqEntries_ = 0;
  unsigned* sqArray_ = nullptr;
  unsigned* cqHead_ = nullptr;
  unsigned* cqTail_ = nullptr;
  unsigned cqMask_ = 0;
  struct io_uring_cqe* cqes_ = nullptr;
  unsigned localTail_ = 0;  // SQEs handed out but not yet published to the kernel
  unsigned toSubmit_ = 0;
};

}  // namespace cinderblock
