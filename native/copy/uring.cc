// io_uring on raw syscalls; see uring.h. The memory layout and ordering rules follow
// io_uring_setup(2): the application owns the SQ tail and CQ head, the kernel the SQ head and
// CQ tail; tails are published with release stores and read with acquire loads.
#include "uring.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace cinderblock {

namespace {

int SysSetup(unsigned entries, struct io_uring_params* p) {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, p));
}

int SysEnter(int fd, unsigned toSubmit, unsigned minComplete, unsigned flags) {
  return static_cast<int>(syscall(__NR_io_uring_enter, fd, toSubmit, minComplete, flags, nullptr, 0));
}

int SysRegister(int fd, unsigned op, const void* arg, unsigned n) {
  return static_cast<int>(syscall(__NR_io_uring_register, fd, op, arg, n));
}

}  // namespace

Uring::~Uring() {
  if (sqes_) munmap(sqes_, sqesSize_);
  if (cqRing_ && cqRing_ != sqRing_) munmap(cqRing_, cqRingSize_);
  if (sqRing_) munmap(sqRing_, sqRingSize_);
  if (fd_ >= 0) close(fd_);  // the kernel waits for in-flight requests; callers drain first
}

int Uring::Init(unsigned entries) {
  struct io_uring_params p;
  std::memset(&p, 0, sizeof p);
  int fd = SysSetup(entries, &p);
  if (fd < 0) return -errno;
  fd_ = fd;  // io_uring fds are created O_CLOEXEC
  sqRingSize_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  cqRingSize_ = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && cqRingSize_ > sqRingSize_) sqRingSize_ = cqRingSize_;
  sqRing_ = mmap(nullptr, sqRingSize_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (sqRing_ == MAP_FAILED) {
    sqRing_ = nullptr;
    return -errno;
  }
  if (single) {
    cqRing_ = sqRing_;
  } else {
    cqRing_ = mmap(nullptr, cqRingSize_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (cqRing_ == MAP_FAILED) {
      cqRing_ = nullptr;
      return -errno;
    }
  }
  sqesSize_ = p.sq_entries * sizeof(struct io_uring_sqe);
  void* sqes = mmap(nullptr, sqesSize_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) return -errno;
  sqes_ = static_cast<struct io_uring_sqe*>(sqes);

  char* sq = static_cast<char*>(sqRing_);
  sqHead_ = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
  sqTail_ = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
  sqMask_ = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
  sqEntries_ = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_entries);
  sqArray_ = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
  char* cq = static_cast<char*>(cqRing_);
  cqHead_ = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
  cqTail_ = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
  cqMask_ = *reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
  cqes_ = reinterpret_cast<struct io_uring_cqe*>(cq + p.cq_off.cqes);
  localTail_ = *sqTail_;
  return 0;
}

bool Uring::Supports(uint8_t op) {
  size_t size = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
  auto* probe = static_cast<struct io_uring_probe*>(std::calloc(1, size));
  if (!probe) return false;
  bool ok = SysRegister(fd_, IORING_REGISTER_PROBE, probe, 256) == 0 && op <= probe->last_op &&
            (probe->ops[op].flags & IO_URING_OP_SUPPORTED) != 0;
  std::free(probe);
  return ok;
}

int Uring::RegisterBuffers(const struct iovec* iov, unsigned n) {
  return SysRegister(fd_, IORING_REGISTER_BUFFERS, iov, n) == 0 ? 0 : -errno;
}

struct io_uring_sqe* Uring::GetSqe() {
  unsigned head = __atomic_load_n(sqHead_, __ATOMIC_ACQUIRE);
  if (localTail_ - head >= sqEntries_) return nullptr;
  unsigned idx = localTail_ & sqMask_;
  struct io_uring_sqe* sqe = &sqes_[idx];
  std::memset(sqe, 0, sizeof *sqe);
  sqArray_[idx] = idx;
  localTail_++;
  toSubmit_++;
  return sqe;
}

int Uring::Submit(unsigned waitFor) {
  __atomic_store_n(sqTail_, localTail_, __ATOMIC_RELEASE);
  unsigned flags = waitFor > 0 ? IORING_ENTER_GETEVENTS : 0;
  while (toSubmit_ > 0 || waitFor > 0) {
    int r = SysEnter(fd_, toSubmit_, waitFor, flags);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    toSubmit_ -= static_cast<unsigned>(r) > toSubmit_ ? toSubmit_ : static_cast<unsigned>(r);
    if (waitFor > 0) break;  // the kernel returns only once the completions are there
    if (r == 0) break;
  }
  return 0;
}

bool Uring::PopCqe(struct io_uring_cqe* out) {
  unsigned head = *cqHead_;
  unsigned tail = __atomic_load_n(cqTail_, __ATOMIC_ACQUIRE);
  if (head == tail) return false;
  *out = cqes_[head & cqMask_];
  __atomic_store_n(cqHead_, head + 1, __ATOMIC_RELEASE);
  return true;
}

}  // namespace cinderblock
