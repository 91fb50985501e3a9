// The io_uring I/O backend; see io_backend.h. The ring itself is uring.h.
#include <sys/uio.h>

#include <cerrno>
#include <vector>

#include "io_backend.h"
#include "uring.h"

namespace cinderblock {
namespace copyengine {

namespace {

class UringBackend : public IoBackend {
 public:
  explicit UringBackend(int ioprio) : ioprio_(ioprio) {}
  int Init(unsigned depth, char* buffers, size_t bufferSize, unsigned nbuf) {
    unsigned entries = 1;
    while (entries < depth) entries <<= 1;
    int r = ring_.Init(entries);
    if (r < 0) return r;
    if (!ring_.Supports(IORING_OP_READ) || !ring_.Supports(IORING_OP_WRITE)) return -EOPNOTSUPP;
    // Fixed buffers save pinning pages on every O_DIRECT request; optional (RLIMIT_MEMLOCK).
    std::vector<struct iovec> iov(nbuf);
    for (unsigned i = 0; i < nbuf; i++) iov[i] = {buffers + i * bufferSize, bufferSize};
    fixed_ = ring_.Supports(IORING_OP_READ_FIXED) && ring_.Supports(IORING_OP_WRITE_FIXED) &&
             ring_.RegisterBuffers(iov.data(), nbuf) == 0;
    return 0;
  }
  int Queue(const IoReq& r) override {
    struct io_uring_sqe* sqe = ring_.GetSqe();
    if (!sqe) {
      int s = ring_.Submit(0);
      if (s < 0) return s;
      sqe = ring_.GetSqe();
      if (!sqe) return -EBUSY;
    }
    bool fixed = fixed_ && r.bufIndex >= 0;
    sqe->opcode = r.write ? (fixed ? IORING_OP_WRITE_FIXED : IORING_OP_WRITE) : (fixed ? IORING_OP_READ_FIXED : IORING_OP_READ);
    sqe->fd = r.fd;
    sqe->addr = reinterpret_cast<uint64_t>(r.buf);
    sqe->len = r.len;
    sqe->off = r.off;
    sqe->ioprio = static_cast<uint16_t>(ioprio_);
    if (fixed) sqe->buf_index = static_cast<uint16_t>(r.bufIndex);
    sqe->user_data = r.tag;
    return 0;
  }
  int Flush() override { return ring_.Submit(0); }
  int Wait(IoDone* out) override {
    struct io_uring_cqe cqe;
    while (!ring_.PopCqe(&cqe)) {
      int r = ring_.Submit(1);
      if (r < 0) return r;
    }
    out->tag = static_cast<uint32_t>(cqe.user_data);
    out->res = cqe.res;
    return 0;
  }
  bool Poll(IoDone* out) override {
    struct io_uring_cqe cqe;
    if (!ring_.PopCqe(&cqe)) return false;
    out->tag = static_cast<uint32_t>(cqe.user_data);
    out->res = cqe.res;
    return true;
  }
  const char* Name() const override { return "io_uring"; }

 private:
  Uring ring_;
  int ioprio_;
  bool fixed_ = false;
};

}  // namespace

int StartUringBackend(unsigned depth, char* buffers, size_t bufferSize, unsigned nbuf, int ioprio, std::unique_ptr<IoBackend>* out) {
  auto u = std::make_unique<UringBackend>(ioprio);
  int r = u->Init(depth, buffers, bufferSize, nbuf);
  if (r == 0) *out = std::move(u);
  return r;
}

}  // namespace copyengine
}  // namespace cinderblock
