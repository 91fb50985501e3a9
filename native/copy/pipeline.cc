// The ring of slots behind every mode; see pipeline.h.
#include "pipeline.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bytes.h"
#include "context.h"
#include "io_backend.h"
#include "ioprio.h"
#include "source.h"
#include "xxh64.h"
#include "zero_runs.h"

namespace cinderblock {
namespace copyengine {

namespace {

bool IsZero(const char* p, size_t len) {
  if (len == 0) return true;
  // The first 16 bytes word by word (cheap early exit on data), then memcmp against itself
  // shifted by 16, which glibc does with SIMD at memory speed.
  size_t head = len < 16 ? len : 16;
  for (size_t i = 0; i < head; i++) {
    if (p[i] != 0) return false;
  }
  return len <= 16 || std::memcmp(p, p + 16, len - 16) == 0;
}

// Anonymous page-aligned memory, unmapped on scope exit.
struct Mapping {
  char* p = nullptr;
  size_t size = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (p) munmap(p, size);
  }
  bool Allocate(size_t n) {
    void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return false;
    p = static_cast<char*>(m);
    size = n;
    return true;
  }
};

class Pipeline {
 public:
  Pipeline(Context& ctx, const PipelinePlan& plan) : ctx_(ctx), plan_(plan) {}
  bool Run();

 private:
  enum class SlotState { Free, Reading, Ready, Writing };
  struct Slot {
    SlotState st = SlotState::Free;
    bool data = false;       // read from the source (else a zero unit: nothing to read)
    bool zeroWrite = false;  // a zero unit written from the zero buffer
    bool hole = false;       // a zero unit that is a source hole (vs a clear)
    uint64_t off = 0;
    uint64_t len = 0;
    uint64_t ioDone = 0;
    bool submittedDirect = false;
    char* buf = nullptr;
  };

  bool Setup();
  bool NextUnit();  // fills the next free slot; false when the plan is done or on failure
  bool Queue(uint32_t tag, bool write);
  bool ProcessReady();
  bool ProcessHead(uint32_t tag);
  bool HandleCompletion(const IoDone& d);

  Context& ctx_;
  const PipelinePlan& plan_;
  std::vector<Slot> slots_;
  Mapping buffers_;  // declared before io_, so it is unmapped only after the backend is gone
  char* zeroBuf_ = nullptr;  // plan_.zeros' zero block
  std::unique_ptr<IoBackend> io_;
  uint64_t seqHead_ = 0;
  uint64_t seqTail_ = 0;
  unsigned inflight_ = 0;
  uint64_t planPos_ = 0;
  uint64_t segEnd_ = 0;
  bool segData_ = true;
  bool planDone_ = false;
};

bool Pipeline::Setup() {
  const uint32_t depth = ctx_.depth, blockSize = ctx_.blockSize;
  if (!buffers_.Allocate(depth * static_cast<size_t>(blockSize))) return ctx_.FailErrno(errno, "mmap", "");
  slots_.resize(depth);
  for (uint32_t i = 0; i < depth; i++) slots_[i].buf = buffers_.p + i * static_cast<size_t>(blockSize);
  if (plan_.zeros) {
    zeroBuf_ = plan_.zeros->ZeroBlock();
    if (!zeroBuf_) return ctx_.FailErrno(errno, "mmap", "");
  }

  const Options& o = ctx_.opts;
  if (o.backend != Backend::Threads) {
    // The slots' buffers are registered (which pins them, so makes them resident); the zero
    // block is not, so it stays the kernel's shared zero page.
    int r = StartUringBackend(depth, buffers_.p, blockSize, depth, IoprioValue(o.ioprioClass, o.ioprioLevel), &io_);
    if (r != 0 && o.backend == Backend::Uring) {
      return ctx_.Fail(-r, "io_uring_setup", "", "io-uring-unavailable",
                       std::string("io_uring is not available (") + std::strerror(-r) + "); use the threads backend");
    }
  }
  if (!io_) {
    int r = StartThreadBackend(o.ioprioClass, o.ioprioLevel, &io_);
    if (r != 0) return ctx_.FailErrno(-r, "pthread_create", "");
  }
  ctx_.job.result.backend = io_->Name();
  return true;
}

bool Pipeline::Queue(uint32_t tag, bool write) {
  Slot& s = slots_[tag];
  IoReq r;
  r.tag = tag;
  r.write = write;
  uint64_t remaining = s.len - s.ioDone;
  r.off = s.off + s.ioDone;
  if (write) {
    End& dst = ctx_.dst;
    r.buf = (s.zeroWrite ? zeroBuf_ : s.buf) + (s.zeroWrite ? 0 : s.ioDone);
    r.bufIndex = s.zeroWrite ? -1 : static_cast<int>(tag);
    r.fd = dst.fd.fd;
    s.submittedDirect = dst.direct;
    if (dst.direct && (remaining % DioAlign(dst) != 0 || r.off % DioAlign(dst) != 0)) {
      // The unaligned tail of a file: O_DIRECT would refuse it.
      r.fd = BufferedWriteFd(dst);
      if (r.fd < 0) return ctx_.FailErrno(errno, "open", dst.path);
      s.submittedDirect = false;
    }
  } else {
    const End& src = ctx_.src;
    r.buf = s.buf + s.ioDone;
    r.bufIndex = static_cast<int>(tag);
    r.fd = src.fd.fd;
    s.submittedDirect = src.direct;
    // O_DIRECT reads a file's unaligned tail as a whole aligned block (a short read at EOF).
    if (src.direct && remaining % DioAlign(src) != 0) remaining = RoundUp(remaining, DioAlign(src));
  }
  r.len = static_cast<uint32_t>(remaining);
  int q = io_->Queue(r);
  if (q < 0) return ctx_.FailErrno(-q, "io_uring_enter", "");
  inflight_++;
  s.st = write ? SlotState::Writing : SlotState::Reading;
  return true;
}

bool Pipeline::NextUnit() {
  Slot& s = slots_[seqTail_ % ctx_.depth];
  if (s.st != SlotState::Free) return false;
  if (planPos_ >= ctx_.length) {
    planDone_ = true;
    return false;
  }
  if (planPos_ >= segEnd_) {
    if (!plan_.source) {
      segEnd_ = ctx_.length;
      segData_ = false;
    } else if (!plan_.source->Next(planPos_, &segEnd_, &segData_)) {
      return false;
    }
  }
  uint64_t left = segEnd_ - planPos_;
  s.off = planPos_;
  s.ioDone = 0;
  s.data = segData_;
  s.hole = !segData_ && plan_.source != nullptr;
  // A zero unit that only needs skipping/punching can be as long as the hole; one that must
  // be written goes block by block through the zero buffer.
  s.zeroWrite = !segData_ && plan_.zeros && plan_.zeros->action() == ZeroAction::Write;
  bool big = !segData_ && !s.zeroWrite;
  s.len = big ? left : (left < ctx_.blockSize ? left : ctx_.blockSize);
  planPos_ += s.len;
  seqTail_++;
  if (s.data) {
    if (!ctx_.ThrottleRead(s.len)) return false;
    return Queue(static_cast<uint32_t>(&s - slots_.data()), false);
  }
  s.st = SlotState::Ready;
  return true;
}

bool Pipeline::ProcessHead(uint32_t tag) {
  Slot& s = slots_[tag];
  Job& job = ctx_.job;
  if (s.data) {
    bool zero = plan_.detectZeros && IsZero(s.buf, s.len);
    if (plan_.hash) plan_.hash->Update(s.buf, s.len);
    if (!plan_.zeros) {
      s.st = SlotState::Free;
      job.bytesDone += s.len;
      return true;
    }
    if (zero) {
      s.st = SlotState::Free;
      job.bytesDone += s.len;
      return plan_.zeros->Add(s.off, s.len, false);
    }
    if (!plan_.zeros->Flush()) return false;
    if (ctx_.FaultPoint("einval-first-direct-write") && ctx_.dst.direct) {
      // Test-only: behave as if the device refused O_DIRECT on the first write.
      inflight_++;
      s.st = SlotState::Writing;
      s.submittedDirect = true;
      return HandleCompletion(IoDone{tag, -EINVAL});
    }
    if (!ctx_.ThrottleWrite(s.len)) return false;
    return Queue(tag, true);
  }
  // a zero unit
  if (plan_.hash) plan_.hash->UpdateZeros(s.len);
  if (s.zeroWrite) {
    if (!ctx_.ThrottleWrite(s.len)) return false;
    return Queue(tag, true);
  }
  s.st = SlotState::Free;
  job.bytesDone += s.len;
  if (!plan_.zeros) {
    job.result.bytesSkippedHoles += s.len;
    return true;
  }
  return plan_.zeros->Add(s.off, s.len, s.hole);
}

// Processes the units at the head of the ring that are ready, in order; true if there were any.
bool Pipeline::ProcessReady() {
  bool any = false;
  while (!ctx_.Failed() && seqHead_ < seqTail_) {
    uint32_t tag = static_cast<uint32_t>(seqHead_ % ctx_.depth);
    if (slots_[tag].st != SlotState::Ready) break;
    seqHead_++;
    ProcessHead(tag);
    any = true;
  }
  return any;
}

bool Pipeline::HandleCompletion(const IoDone& d) {
  inflight_--;
  Slot& s = slots_[d.tag];
  bool write = s.st == SlotState::Writing;
  End& end = write ? ctx_.dst : ctx_.src;
  const End& src = ctx_.src;
  const std::string& dstPath = ctx_.dst.path;
  if (ctx_.Failed()) {  // draining after a failure or cancel: just let it go
    s.st = SlotState::Free;
    return false;
  }
  if (d.res < 0) {
    int err = static_cast<int>(-d.res);
    if (err == EINVAL && s.submittedDirect && !end.anyIoOk) {
      // O_DIRECT accepted at open but refused on the first I/O: carry on without it.
      if (end.direct && !DisableDirect(ctx_, end)) return false;
      return Queue(d.tag, write);
    }
    s.st = SlotState::Free;
    if (err == ENOSPC && write) {
      return ctx_.Fail(err, "write", dstPath, "", "no space left writing at byte " + std::to_string(s.off + s.ioDone) + " of the destination");
    }
    return ctx_.Fail(err, write ? "write" : "read", end.path, "",
                     std::string(write ? "writing" : "reading") + " at byte " + std::to_string(s.off + s.ioDone) + ": " + std::strerror(err));
  }
  if (d.res == 0) {
    s.st = SlotState::Free;
    if (write) {
      return ctx_.Fail(ENOSPC, "write", dstPath, "", "the destination accepted no more data at byte " + std::to_string(s.off + s.ioDone));
    }
    return ctx_.Fail(ENODATA, "read", src.path, "source-too-short",
                     "the source ended at byte " + std::to_string(s.off + s.ioDone) + ", before the " + HumanBytes(ctx_.length) + " to copy");
  }
  end.anyIoOk = true;
  uint64_t n = static_cast<uint64_t>(d.res);
  if (n > s.len - s.ioDone) n = s.len - s.ioDone;  // an aligned read of a tail returns up to EOF
  s.ioDone += n;
  if (s.ioDone < s.len) {
    // A short transfer (a signal, or EOF for a read): go on from where it stopped.
    if (write) return Queue(d.tag, true);
    if (!src.direct || s.ioDone % kAlign == 0) return Queue(d.tag, false);
    return ctx_.Fail(ENODATA, "read", src.path, "source-too-short",
                     "the source ended at byte " + std::to_string(s.off + s.ioDone) + ", before the " + HumanBytes(ctx_.length) + " to copy");
  }
  Job& job = ctx_.job;
  if (write) {
    s.st = SlotState::Free;
    job.bytesDone += s.len;
    job.bytesWritten += s.len;
    job.result.bytesWritten += s.len;
  } else {
    s.st = SlotState::Ready;
    s.ioDone = 0;  // now counts what has been written
  }
  return true;
}

bool Pipeline::Run() {
  if (!Setup()) return false;
  for (;;) {
    if (!ctx_.Failed()) ctx_.Cancelled();
    // Blocks already read are written first: under a bandwidth limit NextUnit sleeps until the
    // next read's slot, and what is ready should not wait through that.
    bool progressed = ProcessReady();
    // Unthrottled, fill every free slot. Throttled, take one unit per turn, so reads and
    // writes interleave instead of the reads of all `depth` slots going first.
    bool throttled = ctx_.opts.bpsLimit > 0;
    while (!ctx_.Failed() && !planDone_ && NextUnit()) {
      progressed = true;
      if (throttled && inflight_ > 0) break;
    }
    if (ProcessReady()) progressed = true;  // zero units are ready at once
    if (inflight_ > 0) {
      int f = io_->Flush();
      if (f < 0) {
        // Submission itself failed: nothing more can be relied on to complete.
        ctx_.FailErrno(-f, "io_uring_enter", "");
        return false;
      }
    }
    if (ctx_.Failed() && inflight_ == 0) return false;
    if (!ctx_.Failed() && planDone_ && seqHead_ == seqTail_ && inflight_ == 0) break;
    if (inflight_ > 0) {
      IoDone d;
      int w = io_->Wait(&d);
      if (w < 0) {
        ctx_.FailErrno(-w, "io_uring_enter", "");
        return false;  // cannot drain: the ring's teardown waits for what is in flight
      }
      HandleCompletion(d);
      while (io_->Poll(&d)) HandleCompletion(d);
    } else if (!progressed && !ctx_.Failed()) {
      // Nothing in flight, nothing ready, plan not done: cannot happen; refuse to spin.
      return ctx_.Fail(EIO, "copy", "", "internal", "copy engine stalled (internal error)");
    }
  }
  return !plan_.zeros || plan_.zeros->Flush();
}

}  // namespace

bool RunPipeline(Context& ctx, const PipelinePlan& plan) {
  Pipeline p(ctx, plan);  // its buffers, backend and I/O threads are gone when it is
  return p.Run();
}

}  // namespace copyengine
}  // namespace cinderblock
