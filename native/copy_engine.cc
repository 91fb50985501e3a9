// The copy engine; see copy_engine.h for what it does and native/COPY.md for the design.
//
// A copy runs as: open both ends (O_DIRECT where accepted) -> checks (sizes, alignment, same
// file) -> FICLONE -> copy_file_range -> the engine. The engine walks the source in order as
// "units": data (read, then written) or zero (a source hole: never read). Up to `depth` units
// are in flight in a ring of slots; reads may complete in any order, but units are processed
// (zero test, checksum, write) strictly in order at the head of the ring, so the checksum is of
// the byte stream and runs of zeros can be merged into one punch/zero-out call.
#include "copy_engine.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/ioprio.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "copy_uring.h"
#include "copy_xxh64.h"

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

// ---- throttle -----------------------------------------------------------------------------

namespace {
std::mutex gThrottleMutex;
std::map<std::pair<uint64_t, bool>, Clock::time_point>* gThrottleNext = nullptr;  // never freed: process-wide
}  // namespace

Clock::time_point ThrottleReserve(uint64_t device, bool write, uint64_t bytes, uint64_t bps) {
  auto now = Clock::now();
  auto duration = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(static_cast<double>(bytes) / bps));
  std::lock_guard<std::mutex> lock(gThrottleMutex);
  if (!gThrottleNext) gThrottleNext = new std::map<std::pair<uint64_t, bool>, Clock::time_point>();
  Clock::time_point& next = (*gThrottleNext)[{device, write}];
  Clock::time_point start = next > now ? next : now;
  next = start + duration;
  return start;
}

void ThrottleRefund(uint64_t device, bool write, Clock::time_point start, uint64_t bytes, uint64_t bps) {
  auto duration = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(static_cast<double>(bytes) / bps));
  std::lock_guard<std::mutex> lock(gThrottleMutex);
  if (!gThrottleNext) return;
  auto it = gThrottleNext->find({device, write});
  // Only the latest reservation can be handed back; an earlier one is followed by others'.
  if (it != gThrottleNext->end() && it->second == start + duration) {
    auto now = Clock::now();
    it->second = start > now ? start : now;
  }
}

namespace {

constexpr uint64_t kZeroRunMax = 1ull << 30;      // flush a run of zeros at least every GiB
constexpr uint64_t kOffloadChunk = 64ull << 20;   // copy_file_range / clear ioctl granularity

// ---- small helpers ------------------------------------------------------------------------

uint64_t RoundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
uint64_t RoundDown(uint64_t v, uint64_t a) { return v / a * a; }

std::string HumanBytes(uint64_t b) {
  char buf[64];
  if (b >= (1ull << 30) && b % (1ull << 20) == 0) {
    std::snprintf(buf, sizeof buf, "%.2f GiB (%llu bytes)", b / double(1ull << 30), static_cast<unsigned long long>(b));
  } else if (b >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.2f MiB (%llu bytes)", b / double(1ull << 20), static_cast<unsigned long long>(b));
  } else {
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(b));
  }
  return buf;
}

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

int IoprioSet(int cls, int level) {
  if (cls == 0) return 0;
  int value = IOPRIO_PRIO_VALUE(cls, cls == IOPRIO_CLASS_IDLE ? 0 : level);
  // who=0 with IOPRIO_WHO_PROCESS means the calling thread (I/O priority is per task).
  return syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) == 0 ? 0 : errno;
}

int IoprioValue(const Options& o) {
  if (o.ioprioClass == 0) return 0;
  return IOPRIO_PRIO_VALUE(o.ioprioClass, o.ioprioClass == IOPRIO_CLASS_IDLE ? 0 : o.ioprioLevel);
}

// Reads /sys/dev/block/MAJ:MIN/queue/<name> (or ../queue for a partition). -1 if absent.
int64_t SysfsQueueValue(dev_t rdev, const char* name) {
  for (const char* rel : {"queue", "../queue"}) {
    char path[128];
    std::snprintf(path, sizeof path, "/sys/dev/block/%u:%u/%s/%s", major(rdev), minor(rdev), rel, name);
    FILE* f = std::fopen(path, "re");
    if (!f) continue;
    long long v = -1;
    int n = std::fscanf(f, "%lld", &v);
    std::fclose(f);
    if (n == 1) return v;
  }
  return -1;
}

// A file descriptor closed on scope exit.
struct UniqueFd {
  int fd = -1;
  UniqueFd() = default;
  explicit UniqueFd(int f) : fd(f) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }
  void Reset(int f = -1) {
    if (fd >= 0) close(fd);
    fd = f;
  }
};

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

// One end of a copy.
struct End;
uint32_t DioAlign(const End& e);

struct End {
  std::string path;
  UniqueFd fd;
  UniqueFd bufferedFd;  // same file without O_DIRECT, for an unaligned tail; opened lazily
  struct stat st {};
  bool isBlk = false;
  bool isReg = false;
  bool direct = false;
  bool anyIoOk = false;      // an I/O on this end succeeded (so EINVAL is no longer "O_DIRECT refused")
  bool created = false;      // we created this file (removed again if the copy fails)
  uint64_t size = 0;
  uint32_t sector = 512;     // logical block size of a device
  uint64_t throttleKey = 0;  // st_rdev of a device, st_dev of a file's filesystem
};

// O_DIRECT alignment of an end: a device's logical sector; for a file, a page (what every
// filesystem's direct I/O accepts, whatever the sector size of the device below it).
uint32_t DioAlign(const End& e) { return e.isBlk ? e.sector : kAlign; }

// ---- I/O backends -------------------------------------------------------------------------

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
  virtual const char* Name() const = 0;
};

class UringBackend : public IoBackend {
 public:
  UringBackend(int ioprio) : ioprio_(ioprio) {}
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

// Without io_uring: a reader thread and a writer thread, each taking requests in order from
// its own queue, so a read and a write are always in flight together.
class ThreadBackend : public IoBackend {
 public:
  ThreadBackend(const Options& o) : opts_(o) {}
  ~ThreadBackend() override {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    workCv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int Start() {
    try {
      threads_.emplace_back([this] { Loop(false); });
      threads_.emplace_back([this] { Loop(true); });
    } catch (const std::system_error& e) {
      return -e.code().value();
    }
    return 0;
  }
  int Queue(const IoReq& r) override {
    {
      std::lock_guard<std::mutex> lock(m_);
      (r.write ? writes_ : reads_).push_back(r);
    }
    workCv_.notify_all();
    return 0;
  }
  int Flush() override { return 0; }
  int Wait(IoDone* out) override {
    std::unique_lock<std::mutex> lock(m_);
    doneCv_.wait(lock, [this] { return !done_.empty(); });
    *out = done_.front();
    done_.pop_front();
    return 0;
  }
  bool Poll(IoDone* out) override {
    std::lock_guard<std::mutex> lock(m_);
    if (done_.empty()) return false;
    *out = done_.front();
    done_.pop_front();
    return true;
  }
  const char* Name() const override { return "threads"; }

 private:
  void Loop(bool writer) {
    pthread_setname_np(pthread_self(), writer ? "cb-copy-wr" : "cb-copy-rd");
    IoprioSet(opts_.ioprioClass, opts_.ioprioLevel);  // already checked on the copy thread
    std::deque<IoReq>& q = writer ? writes_ : reads_;
    for (;;) {
      IoReq r;
      {
        std::unique_lock<std::mutex> lock(m_);
        workCv_.wait(lock, [&] { return stop_ || !q.empty(); });
        if (q.empty()) return;  // stop_ with nothing left (the copy drains before stopping)
        r = q.front();
        q.pop_front();
      }
      ssize_t n = r.write ? pwrite(r.fd, r.buf, r.len, static_cast<off_t>(r.off)) : pread(r.fd, r.buf, r.len, static_cast<off_t>(r.off));
      IoDone d{r.tag, n < 0 ? -static_cast<int64_t>(errno) : static_cast<int64_t>(n)};
      {
        std::lock_guard<std::mutex> lock(m_);
        done_.push_back(d);
      }
      doneCv_.notify_one();
    }
  }

  const Options& opts_;
  std::mutex m_;
  std::condition_variable workCv_;
  std::condition_variable doneCv_;
  std::deque<IoReq> reads_;
  std::deque<IoReq> writes_;
  std::deque<IoDone> done_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// ---- what to do with a run of zeros in the destination ------------------------------------

enum class ZeroAction {
  Skip,       // the destination already reads as zeros there
  Punch,      // file: FALLOC_FL_PUNCH_HOLE (deallocate)
  ZeroRange,  // file: FALLOC_FL_ZERO_RANGE (stays allocated, reads as zeros)
  BlkZeroOut, // device: BLKZEROOUT (write-zeroes offload; thin devices allocate nothing)
  Write,      // write zeros
};

// ---- the engine ---------------------------------------------------------------------------

class Engine {
 public:
  explicit Engine(Job& job) : job_(job), o_(job.opts) {}
  bool Run();

 private:
  bool RunSteps();
  // setup
  bool OpenSource();
  bool OpenDestinationForCopy();
  bool OpenDestinationForClear();
  bool OpenEnd(End& e, int flags, bool create, const char* what);
  bool Describe(End& e, const char* what);
  bool Fail(int err, const std::string& syscall, const std::string& path, const std::string& reason, const std::string& detail);
  bool FailErrno(int err, const std::string& syscall, const std::string& path);
  bool Cancelled();

  // methods
  bool TryFiclone(bool* done);
  bool TryCopyFileRange(bool* done);
  bool RunPipeline();
  bool ClearWithIoctlsOrFallocate(bool* done);
  bool Finish();

  // pipeline pieces
  bool SetupPipeline();
  bool NextUnit();  // fills the next free slot; false when the plan is done or on failure
  bool NextSegment(uint64_t pos, uint64_t* end, bool* data);
  bool Queue(uint32_t tag, bool write);
  bool ProcessHead(uint32_t tag);
  bool HandleCompletion(const IoDone& d);
  bool AddZeroRun(uint64_t off, uint64_t len, bool hole);
  bool FlushZeroRun();
  bool ApplyZeroAction(ZeroAction a, uint64_t off, uint64_t len, bool* unsupported);
  bool WriteZerosSync(uint64_t off, uint64_t len);
  bool ThrottleRead(uint64_t bytes);
  bool ThrottleWrite(uint64_t bytes);
  int BufferedDstFd();
  bool DisableDirect(End& e);
  bool FaultPoint(const char* name);

  Job& job_;
  const Options& o_;
  End src_;
  End dst_;
  bool haveSrc_ = false;
  bool haveDst_ = false;
  uint64_t length_ = 0;
  uint32_t blockSize_ = 0;
  uint32_t depth_ = 0;
  bool failed_ = false;
  bool dstZeroed_ = false;
  ZeroAction zeroAction_ = ZeroAction::Write;
  bool detectZeros_ = false;
  Xxh64 hash_;
  bool hashing_ = false;
  std::string method_;
  std::string clearMethod_;
  bool faultFired_ = false;

  // pipeline state
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
  std::vector<Slot> slots_;
  Mapping buffers_;
  char* zeroBuf_ = nullptr;
  std::unique_ptr<IoBackend> io_;
  uint64_t seqHead_ = 0;
  uint64_t seqTail_ = 0;
  unsigned inflight_ = 0;
  uint64_t planPos_ = 0;
  uint64_t segEnd_ = 0;
  bool segData_ = true;
  bool planDone_ = false;
  uint64_t runOff_ = 0;
  uint64_t runLen_ = 0;
  uint64_t runHoleBytes_ = 0;
  size_t extIdx_ = 0;  // first of opts.extents that may still cover planPos_ (they are walked in order)
};

bool Engine::Fail(int err, const std::string& syscall, const std::string& path, const std::string& reason,
                  const std::string& detail) {
  if (!failed_) {
    failed_ = true;
    Failure& f = job_.failure;
    f.err = err;
    f.syscall = syscall;
    f.path = path;
    f.reason = reason;
    f.detail = detail.empty() ? std::strerror(err) : detail;
    f.bytesDone = job_.bytesDone.load();
  }
  return false;
}

bool Engine::FailErrno(int err, const std::string& syscall, const std::string& path) {
  return Fail(err, syscall, path, "", "");
}

bool Engine::Cancelled() {
  if (job_.Cancelled()) {
    return Fail(ECANCELED, "cancel", "", "cancelled", "the copy was cancelled");
  }
  return false;
}

// Test-only fault injection: Options.testFault names a point that then fails once. Only the
// test suite sets it (through a test-only option of the TypeScript facade).
bool Engine::FaultPoint(const char* name) {
  if (faultFired_ || o_.testFault.empty() || o_.testFault != name) return false;
  faultFired_ = true;
  return true;
}

bool Engine::Describe(End& e, const char* what) {
  if (fstat(e.fd.fd, &e.st) != 0) return FailErrno(errno, "fstat", e.path);
  e.isBlk = S_ISBLK(e.st.st_mode);
  e.isReg = S_ISREG(e.st.st_mode);
  if (S_ISDIR(e.st.st_mode)) {
    return Fail(EISDIR, "open", e.path, "", std::string("the ") + what + " is a directory, not a file or block device");
  }
  if (!e.isBlk && !e.isReg) {
    return Fail(EINVAL, "open", e.path, "unsupported-file-type",
                std::string("the ") + what + " is neither a regular file nor a block device");
  }
  if (e.isBlk) {
    if (ioctl(e.fd.fd, BLKGETSIZE64, &e.size) != 0) return FailErrno(errno, "ioctl(BLKGETSIZE64)", e.path);
    int ss = 512;
    if (ioctl(e.fd.fd, BLKSSZGET, &ss) != 0) return FailErrno(errno, "ioctl(BLKSSZGET)", e.path);
    e.sector = static_cast<uint32_t>(ss);
    e.throttleKey = e.st.st_rdev;
  } else {
    e.size = static_cast<uint64_t>(e.st.st_size);
    e.throttleKey = e.st.st_dev;
  }
  return true;
}

// Opens with O_DIRECT when allowed, and again without it when the filesystem refuses (EINVAL).
bool Engine::OpenEnd(End& e, int flags, bool create, const char* what) {
  flags |= O_CLOEXEC;
  int fd = -1;
  bool direct = o_.direct;
  for (;;) {
    int f = flags | (direct ? O_DIRECT : 0);
    fd = open(e.path.c_str(), f);
    if (fd < 0 && errno == ENOENT && create) {
      fd = open(e.path.c_str(), f | O_CREAT | O_EXCL, o_.createMode);
      if (fd >= 0) e.created = true;
      else if (errno == EEXIST) continue;  // raced with someone creating it: open what is there
    }
    if (fd < 0 && errno == EINVAL && direct) {
      direct = false;  // tmpfs before 6.6, ramfs, some FUSE/network filesystems
      continue;
    }
    break;
  }
  if (fd < 0) {
    int err = errno;
    return Fail(err, "open", e.path, "", std::string("cannot open the ") + what + ": " + std::strerror(err));
  }
  e.fd.Reset(fd);
  e.direct = direct;
  return Describe(e, what);
}

bool Engine::OpenSource() {
  src_.path = o_.src;
  if (!OpenEnd(src_, O_RDONLY, false, "source")) return false;
  haveSrc_ = true;
  return true;
}

bool Engine::OpenDestinationForCopy() {
  dst_.path = o_.dst;
  if (!OpenEnd(dst_, O_WRONLY, true, "destination")) return false;
  haveDst_ = true;
  bool same = src_.isBlk && dst_.isBlk ? src_.st.st_rdev == dst_.st.st_rdev
                                        : (src_.st.st_dev == dst_.st.st_dev && src_.st.st_ino == dst_.st.st_ino);
  if (same) return Fail(EINVAL, "open", dst_.path, "same-file", "the source and the destination are the same file or device");
  return true;
}

bool Engine::OpenDestinationForClear() {
  dst_.path = o_.dst;
  if (!OpenEnd(dst_, O_WRONLY, false, "device or file to clear")) return false;
  haveDst_ = true;
  return true;
}

bool Engine::DisableDirect(End& e) {
  int fl = fcntl(e.fd.fd, F_GETFL);
  if (fl < 0 || fcntl(e.fd.fd, F_SETFL, fl & ~O_DIRECT) != 0) return FailErrno(errno, "fcntl(F_SETFL)", e.path);
  e.direct = false;
  return true;
}

int Engine::BufferedDstFd() {
  if (!dst_.direct) return dst_.fd.fd;
  if (dst_.bufferedFd.fd < 0) {
    // A second open file description of the same file, without O_DIRECT (reopening by path
    // could race with a rename; /proc/self/fd names exactly this file).
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", dst_.fd.fd);
    dst_.bufferedFd.Reset(open(path, O_WRONLY | O_CLOEXEC));
  }
  return dst_.bufferedFd.fd;
}

bool Engine::ThrottleRead(uint64_t bytes) {
  if (o_.bpsLimit == 0 || !haveSrc_) return true;
  auto start = ThrottleReserve(src_.throttleKey, false, bytes, o_.bpsLimit);
  if (job_.SleepUntil(start)) return true;
  ThrottleRefund(src_.throttleKey, false, start, bytes, o_.bpsLimit);  // cancelled: not used
  return Cancelled();
}

bool Engine::ThrottleWrite(uint64_t bytes) {
  if (o_.bpsLimit == 0 || !haveDst_) return true;
  auto start = ThrottleReserve(dst_.throttleKey, true, bytes, o_.bpsLimit);
  if (job_.SleepUntil(start)) return true;
  ThrottleRefund(dst_.throttleKey, true, start, bytes, o_.bpsLimit);
  return Cancelled();
}

// ---- offload: FICLONE, copy_file_range ----------------------------------------------------

// Filesystems whose copy_file_range is no offload, only the kernel's generic splice copy
// through the page cache: measured slower than the O_DIRECT engine (bench/README.md: 1.47 s
// against 0.70 s for the 4 GiB sparse case on ext4), and it fills the page cache. Elsewhere
// (NFS/SMB server-side copy, Ceph, XFS/btrfs sharing extents for a partial range) it is kept.
bool CopyFileRangeIsOffload(int fd) {
  struct statfs sf;
  if (fstatfs(fd, &sf) != 0) return true;
  switch (static_cast<unsigned long>(sf.f_type)) {
    case 0xEF53:      // ext2/3/4
    case 0x01021994:  // tmpfs
    case 0x858458F6:  // ramfs
    case 0xF2F52010:  // f2fs
      return false;
    default:
      return true;
  }
}

bool IsUnsupported(int err) {
  return err == EOPNOTSUPP || err == ENOTTY || err == EXDEV || err == EINVAL || err == ENOSYS || err == EBADF;
}

bool Engine::TryFiclone(bool* done) {
  *done = false;
  if (ioctl(dst_.fd.fd, FICLONE, src_.fd.fd) != 0) {
    int err = errno;
    if (IsUnsupported(err) || err == EPERM) return true;  // not here: try the next method
    return FailErrno(err, "ioctl(FICLONE)", dst_.path);
  }
  job_.bytesDone = length_;
  job_.result.bytesCopied = length_;
  method_ = "ficlone";
  *done = true;
  return true;
}

bool Engine::TryCopyFileRange(bool* done) {
  *done = false;
  // copy_file_range goes through the page cache; drop O_DIRECT (restored if we fall back).
  bool srcDirect = src_.direct, dstDirect = dst_.direct;
  if (srcDirect && !DisableDirect(src_)) return false;
  if (dstDirect && !DisableDirect(dst_)) return false;
  bool first = true;
  uint64_t pos = 0;
  while (pos < length_) {
    if (Cancelled()) return false;
    uint64_t end;
    bool data;
    if (!NextSegment(pos, &end, &data)) return false;
    if (!data) {
      if (!AddZeroRun(pos, end - pos, true)) return false;
      job_.bytesDone += end - pos;
      pos = end;
      continue;
    }
    if (!FlushZeroRun()) return false;
    while (pos < end) {
      if (Cancelled()) return false;
      uint64_t chunk = end - pos < kOffloadChunk ? end - pos : kOffloadChunk;
      if (o_.bpsLimit > 0) {
        uint64_t cap = o_.bpsLimit / 4 < (1u << 20) ? (1u << 20) : o_.bpsLimit / 4;
        if (chunk > cap) chunk = cap;
      }
      if (!ThrottleRead(chunk) || !ThrottleWrite(chunk)) return false;
      loff_t in = static_cast<loff_t>(pos), out = static_cast<loff_t>(pos);
      ssize_t n = copy_file_range(src_.fd.fd, &in, dst_.fd.fd, &out, chunk, 0);
      if (n < 0) {
        int err = errno;
        if (first && IsUnsupported(err)) {
          // Not between these two files: back to O_DIRECT, and let the engine start over
          // (anything done to holes so far is simply done again).
          for (auto* e : {&src_, &dst_}) {
            bool want = e == &src_ ? srcDirect : dstDirect;
            if (!want) continue;
            int fl = fcntl(e->fd.fd, F_GETFL);
            if (fl >= 0 && fcntl(e->fd.fd, F_SETFL, fl | O_DIRECT) == 0) e->direct = true;
          }
          job_.bytesDone = 0;
          job_.bytesSkipped = 0;
          job_.bytesWritten = 0;
          job_.result.bytesSkippedHoles = 0;
          job_.result.bytesSkippedZero = 0;
          job_.result.bytesWritten = 0;
          return true;
        }
        return FailErrno(err, "copy_file_range", dst_.path);
      }
      if (n == 0) {
        return Fail(ENODATA, "copy_file_range", src_.path, "source-too-short",
                    "the source ended at byte " + std::to_string(pos) + ", before the " + HumanBytes(length_) + " to copy");
      }
      first = false;
      pos += static_cast<uint64_t>(n);
      job_.bytesDone += static_cast<uint64_t>(n);
      job_.bytesWritten += static_cast<uint64_t>(n);
      job_.result.bytesWritten += static_cast<uint64_t>(n);
    }
  }
  if (!FlushZeroRun()) return false;
  method_ = "copy_file_range";
  *done = true;
  return true;
}

// ---- segments of the source (SEEK_DATA / SEEK_HOLE) ----------------------------------------

// The extent starting at `pos`: data or hole, ending at *end (<= length_). Data extents are
// widened to kAlign boundaries so O_DIRECT I/O stays aligned on filesystems with small blocks.
bool Engine::NextSegment(uint64_t pos, uint64_t* end, bool* data) {
  if (o_.useExtents) {
    // The caller's map of the source (checked in RunSteps: sorted, not overlapping). Widened to
    // kAlign like SEEK_DATA's answers; reading a little more than the map says is harmless.
    const auto& ext = o_.extents;
    while (extIdx_ < ext.size() && RoundUp(ext[extIdx_].first + ext[extIdx_].second, kAlign) <= pos) extIdx_++;
    if (extIdx_ == ext.size()) {
      *end = length_;
      *data = false;
      return true;
    }
    uint64_t s = RoundDown(ext[extIdx_].first, kAlign);
    uint64_t e = RoundUp(ext[extIdx_].first + ext[extIdx_].second, kAlign);
    if (s > pos) {
      *end = s < length_ ? s : length_;
      *data = false;
    } else {
      *end = e < length_ ? e : length_;
      *data = true;
    }
    return true;
  }
  if (!src_.isReg) {
    *end = length_;
    *data = true;
    return true;
  }
  off_t d = lseek(src_.fd.fd, static_cast<off_t>(pos), SEEK_DATA);
  if (d < 0) {
    if (errno == ENXIO) {  // no data after pos: the rest is a hole
      *end = length_;
      *data = false;
      return true;
    }
    if (errno == EINVAL || errno == EOPNOTSUPP) {  // no SEEK_DATA here: all data
      *end = length_;
      *data = true;
      return true;
    }
    return FailErrno(errno, "lseek(SEEK_DATA)", src_.path);
  }
  uint64_t dataStart = RoundDown(static_cast<uint64_t>(d), kAlign);
  if (dataStart > pos) {
    *end = dataStart < length_ ? dataStart : length_;
    *data = false;
    return true;
  }
  off_t h = lseek(src_.fd.fd, static_cast<off_t>(pos), SEEK_HOLE);
  if (h < 0) return FailErrno(errno, "lseek(SEEK_HOLE)", src_.path);
  uint64_t dataEnd = RoundUp(static_cast<uint64_t>(h), kAlign);
  if (dataEnd <= pos) dataEnd = pos + kAlign;
  *end = dataEnd < length_ ? dataEnd : length_;
  *data = true;
  return true;
}

// ---- zero runs ------------------------------------------------------------------------------

bool Engine::AddZeroRun(uint64_t off, uint64_t len, bool hole) {
  if (runLen_ > 0 && runOff_ + runLen_ == off && runLen_ < kZeroRunMax) {
    runLen_ += len;
  } else {
    if (!FlushZeroRun()) return false;
    runOff_ = off;
    runLen_ = len;
  }
  if (hole) runHoleBytes_ += len;
  return true;
}

bool Engine::FlushZeroRun() {
  if (runLen_ == 0) return true;
  uint64_t off = runOff_, len = runLen_, holes = runHoleBytes_;
  runLen_ = 0;
  runHoleBytes_ = 0;
  if (!haveDst_ || o_.mode == Mode::Checksum) return true;
  for (;;) {
    bool unsupported = false;
    if (!ApplyZeroAction(zeroAction_, off, len, &unsupported)) return false;
    if (!unsupported) break;
    // Fall back: punch -> zero range -> write; zero-out -> write.
    zeroAction_ = zeroAction_ == ZeroAction::Punch ? ZeroAction::ZeroRange : ZeroAction::Write;
  }
  if (zeroAction_ == ZeroAction::Write) {
    job_.result.bytesWritten += len;
    job_.bytesWritten += len;
  } else {
    job_.result.bytesSkippedHoles += holes;
    job_.result.bytesSkippedZero += len - holes;
    job_.bytesSkipped += len;
  }
  return true;
}

bool Engine::ApplyZeroAction(ZeroAction a, uint64_t off, uint64_t len, bool* unsupported) {
  *unsupported = false;
  switch (a) {
    case ZeroAction::Skip:
      return true;
    case ZeroAction::Punch:
    case ZeroAction::ZeroRange: {
      int mode = a == ZeroAction::Punch ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
      if (fallocate(dst_.fd.fd, mode, static_cast<off_t>(off), static_cast<off_t>(len)) != 0) {
        int err = errno;
        if (err == EOPNOTSUPP || err == ENOSYS || err == EINVAL) {
          *unsupported = true;
          return true;
        }
        return FailErrno(err, a == ZeroAction::Punch ? "fallocate(PUNCH_HOLE)" : "fallocate(ZERO_RANGE)", dst_.path);
      }
      return true;
    }
    case ZeroAction::BlkZeroOut: {
      if (!ThrottleWrite(len)) return false;
      uint64_t range[2] = {off, len};
      if (ioctl(dst_.fd.fd, BLKZEROOUT, &range) != 0) {
        int err = errno;
        if (err == EOPNOTSUPP || err == ENOTTY || err == EINVAL) {
          *unsupported = true;
          return true;
        }
        return FailErrno(err, "ioctl(BLKZEROOUT)", dst_.path);
      }
      return true;
    }
    case ZeroAction::Write:
      return WriteZerosSync(off, len);
  }
  return true;
}

// Writes zeros over [off, off+len) synchronously on this thread (the fallback when the
// filesystem or device cannot punch/zero a range itself).
bool Engine::WriteZerosSync(uint64_t off, uint64_t len) {
  uint64_t end = off + len;
  while (off < end) {
    if (Cancelled()) return false;
    uint64_t n = end - off < blockSize_ ? end - off : blockSize_;
    int fd = dst_.fd.fd;
    if (dst_.direct && (n % DioAlign(dst_) != 0 || off % DioAlign(dst_) != 0)) fd = BufferedDstFd();
    if (fd < 0) return FailErrno(errno, "open", dst_.path);
    if (!ThrottleWrite(n)) return false;
    ssize_t w = pwrite(fd, zeroBuf_, n, static_cast<off_t>(off));
    if (w < 0) return FailErrno(errno, "write", dst_.path);
    if (w == 0) return FailErrno(ENOSPC, "write", dst_.path);
    off += static_cast<uint64_t>(w);
  }
  return true;
}

// ---- the pipeline -----------------------------------------------------------------------------

bool Engine::SetupPipeline() {
  size_t nbuf = depth_ + 1;  // one per slot, plus the zero buffer
  if (!buffers_.Allocate(nbuf * static_cast<size_t>(blockSize_))) return FailErrno(errno, "mmap", "");
  zeroBuf_ = buffers_.p + depth_ * static_cast<size_t>(blockSize_);
  slots_.resize(depth_);
  for (uint32_t i = 0; i < depth_; i++) slots_[i].buf = buffers_.p + i * static_cast<size_t>(blockSize_);

  int ioprio = IoprioValue(o_);
  if (o_.backend != Backend::Threads) {
    auto u = std::make_unique<UringBackend>(ioprio);
    // Only the slots' buffers are registered (registering pins, so makes resident): the zero
    // buffer stays the kernel's shared zero page, costing no memory unless zeros are written.
    int r = u->Init(depth_, buffers_.p, blockSize_, depth_);
    if (r == 0) {
      io_ = std::move(u);
    } else if (o_.backend == Backend::Uring) {
      return Fail(-r, "io_uring_setup", "", "io-uring-unavailable",
                  std::string("io_uring is not available (") + std::strerror(-r) + "); use the threads backend");
    }
  }
  if (!io_) {
    auto t = std::make_unique<ThreadBackend>(o_);
    int r = t->Start();
    if (r != 0) return FailErrno(-r, "pthread_create", "");
    io_ = std::move(t);
  }
  job_.result.backend = io_->Name();
  return true;
}

bool Engine::Queue(uint32_t tag, bool write) {
  Slot& s = slots_[tag];
  IoReq r;
  r.tag = tag;
  r.write = write;
  uint64_t remaining = s.len - s.ioDone;
  r.off = s.off + s.ioDone;
  if (write) {
    r.buf = (s.zeroWrite ? zeroBuf_ : s.buf) + (s.zeroWrite ? 0 : s.ioDone);
    r.bufIndex = s.zeroWrite ? -1 : static_cast<int>(tag);
    r.fd = dst_.fd.fd;
    s.submittedDirect = dst_.direct;
    if (dst_.direct && (remaining % DioAlign(dst_) != 0 || r.off % DioAlign(dst_) != 0)) {
      // The unaligned tail of a file: O_DIRECT would refuse it.
      r.fd = BufferedDstFd();
      if (r.fd < 0) return FailErrno(errno, "open", dst_.path);
      s.submittedDirect = false;
    }
  } else {
    r.buf = s.buf + s.ioDone;
    r.bufIndex = static_cast<int>(tag);
    r.fd = src_.fd.fd;
    s.submittedDirect = src_.direct;
    // O_DIRECT reads a file's unaligned tail as a whole aligned block (a short read at EOF).
    if (src_.direct && remaining % DioAlign(src_) != 0) remaining = RoundUp(remaining, DioAlign(src_));
  }
  r.len = static_cast<uint32_t>(remaining);
  int q = io_->Queue(r);
  if (q < 0) return FailErrno(-q, "io_uring_enter", "");
  inflight_++;
  s.st = write ? SlotState::Writing : SlotState::Reading;
  return true;
}

bool Engine::NextUnit() {
  Slot& s = slots_[seqTail_ % depth_];
  if (s.st != SlotState::Free) return false;
  if (planPos_ >= length_) {
    planDone_ = true;
    return false;
  }
  if (planPos_ >= segEnd_) {
    if (o_.mode == Mode::Clear) {
      segEnd_ = length_;
      segData_ = false;
    } else if (!NextSegment(planPos_, &segEnd_, &segData_)) {
      return false;
    }
  }
  uint64_t left = segEnd_ - planPos_;
  s.off = planPos_;
  s.ioDone = 0;
  s.data = segData_;
  s.hole = !segData_ && o_.mode != Mode::Clear;
  // A zero unit that only needs skipping/punching can be as long as the hole; one that must
  // be written goes block by block through the zero buffer.
  s.zeroWrite = !segData_ && haveDst_ && (o_.mode == Mode::Clear || zeroAction_ == ZeroAction::Write);
  bool big = !segData_ && !s.zeroWrite;
  s.len = big ? left : (left < blockSize_ ? left : blockSize_);
  planPos_ += s.len;
  seqTail_++;
  if (s.data) {
    if (!ThrottleRead(s.len)) return false;
    return Queue(static_cast<uint32_t>(&s - slots_.data()), false);
  }
  s.st = SlotState::Ready;
  return true;
}

bool Engine::ProcessHead(uint32_t tag) {
  Slot& s = slots_[tag];
  if (s.data) {
    bool zero = detectZeros_ && IsZero(s.buf, s.len);
    if (hashing_) hash_.Update(s.buf, s.len);
    if (!haveDst_ || o_.mode == Mode::Checksum) {
      s.st = SlotState::Free;
      job_.bytesDone += s.len;
      return true;
    }
    if (zero) {
      s.st = SlotState::Free;
      job_.bytesDone += s.len;
      return AddZeroRun(s.off, s.len, false);
    }
    if (!FlushZeroRun()) return false;
    if (FaultPoint("einval-first-direct-write") && dst_.direct) {
      // Test-only: behave as if the device refused O_DIRECT on the first write.
      inflight_++;
      s.st = SlotState::Writing;
      s.submittedDirect = true;
      return HandleCompletion(IoDone{tag, -EINVAL});
    }
    if (!ThrottleWrite(s.len)) return false;
    return Queue(tag, true);
  }
  // a zero unit
  if (hashing_) hash_.UpdateZeros(s.len);
  if (s.zeroWrite) {
    if (!ThrottleWrite(s.len)) return false;
    return Queue(tag, true);
  }
  s.st = SlotState::Free;
  job_.bytesDone += s.len;
  if (!haveDst_ || o_.mode == Mode::Checksum) {
    job_.result.bytesSkippedHoles += s.len;
    return true;
  }
  return AddZeroRun(s.off, s.len, s.hole);
}

bool Engine::HandleCompletion(const IoDone& d) {
  inflight_--;
  Slot& s = slots_[d.tag];
  bool write = s.st == SlotState::Writing;
  End& end = write ? dst_ : src_;
  if (failed_) {  // draining after a failure or cancel: just let it go
    s.st = SlotState::Free;
    return false;
  }
  if (d.res < 0) {
    int err = static_cast<int>(-d.res);
    if (err == EINVAL && s.submittedDirect && !end.anyIoOk) {
      // O_DIRECT accepted at open but refused on the first I/O: carry on without it.
      if (end.direct && !DisableDirect(end)) return false;
      return Queue(d.tag, write);
    }
    s.st = SlotState::Free;
    if (err == ENOSPC && write) {
      return Fail(err, "write", dst_.path, "", "no space left writing at byte " + std::to_string(s.off + s.ioDone) + " of the destination");
    }
    return Fail(err, write ? "write" : "read", end.path, "",
                std::string(write ? "writing" : "reading") + " at byte " + std::to_string(s.off + s.ioDone) + ": " + std::strerror(err));
  }
  if (d.res == 0) {
    s.st = SlotState::Free;
    if (write) {
      return Fail(ENOSPC, "write", dst_.path, "", "the destination accepted no more data at byte " + std::to_string(s.off + s.ioDone));
    }
    return Fail(ENODATA, "read", src_.path, "source-too-short",
                "the source ended at byte " + std::to_string(s.off + s.ioDone) + ", before the " + HumanBytes(length_) + " to copy");
  }
  end.anyIoOk = true;
  uint64_t n = static_cast<uint64_t>(d.res);
  if (n > s.len - s.ioDone) n = s.len - s.ioDone;  // an aligned read of a tail returns up to EOF
  s.ioDone += n;
  if (s.ioDone < s.len) {
    // A short transfer (a signal, or EOF for a read): go on from where it stopped.
    if (write) return Queue(d.tag, true);
    if (!src_.direct || s.ioDone % kAlign == 0) return Queue(d.tag, false);
    return Fail(ENODATA, "read", src_.path, "source-too-short",
                "the source ended at byte " + std::to_string(s.off + s.ioDone) + ", before the " + HumanBytes(length_) + " to copy");
  }
  if (write) {
    s.st = SlotState::Free;
    job_.bytesDone += s.len;
    job_.bytesWritten += s.len;
    job_.result.bytesWritten += s.len;
  } else {
    s.st = SlotState::Ready;
    s.ioDone = 0;  // now counts what has been written
  }
  return true;
}

bool Engine::RunPipeline() {
  if (!SetupPipeline()) return false;
  hashing_ = o_.verify && o_.mode != Mode::Clear;
  auto processReady = [this]() {
    bool any = false;
    while (!failed_ && seqHead_ < seqTail_) {
      uint32_t tag = static_cast<uint32_t>(seqHead_ % depth_);
      if (slots_[tag].st != SlotState::Ready) break;
      seqHead_++;
      ProcessHead(tag);
      any = true;
    }
    return any;
  };
  for (;;) {
    if (!failed_) Cancelled();
    // Blocks already read are written first: under a bandwidth limit NextUnit sleeps until the
    // next read's slot, and what is ready should not wait through that.
    bool progressed = processReady();
    // Unthrottled, fill every free slot. Throttled, take one unit per turn, so reads and
    // writes interleave instead of the reads of all `depth` slots going first.
    bool throttled = o_.bpsLimit > 0;
    while (!failed_ && !planDone_ && NextUnit()) {
      progressed = true;
      if (throttled && inflight_ > 0) break;
    }
    if (processReady()) progressed = true;  // zero units are ready at once
    if (inflight_ > 0) {
      int f = io_->Flush();
      if (f < 0) {
        // Submission itself failed: nothing more can be relied on to complete.
        FailErrno(-f, "io_uring_enter", "");
        return false;
      }
    }
    if (failed_ && inflight_ == 0) return false;
    if (!failed_ && planDone_ && seqHead_ == seqTail_ && inflight_ == 0) break;
    if (inflight_ > 0) {
      IoDone d;
      int w = io_->Wait(&d);
      if (w < 0) {
        FailErrno(-w, "io_uring_enter", "");
        return false;  // cannot drain: the ring's teardown waits for what is in flight
      }
      HandleCompletion(d);
      while (io_->Poll(&d)) HandleCompletion(d);
    } else if (!progressed && !failed_) {
      // Nothing in flight, nothing ready, plan not done: cannot happen; refuse to spin.
      return Fail(EIO, "copy", "", "internal", "copy engine stalled (internal error)");
    }
  }
  return FlushZeroRun();
}

// ---- clear ----------------------------------------------------------------------------------

bool Engine::ClearWithIoctlsOrFallocate(bool* done) {
  *done = false;
  struct Step {
    const char* name;
    int kind;  // 0 ioctl BLKZEROOUT, 1 ioctl BLKDISCARD, 2 punch, 3 zero range
  };
  std::vector<Step> steps;
  if (dst_.isBlk) {
    int64_t wz = SysfsQueueValue(dst_.st.st_rdev, "write_zeroes_max_bytes");
    int64_t dzd = SysfsQueueValue(dst_.st.st_rdev, "discard_zeroes_data");
    int64_t dmax = SysfsQueueValue(dst_.st.st_rdev, "discard_max_bytes");
    if (wz > 0) steps.push_back({"zeroout", 0});
    else if (o_.allowDiscard && dzd == 1 && dmax > 0) steps.push_back({"discard", 1});
  } else {
    if (o_.keepAllocated) {
      steps.push_back({"zero_range", 3});
      steps.push_back({"punch_hole", 2});
    } else {
      steps.push_back({"punch_hole", 2});
      steps.push_back({"zero_range", 3});
    }
  }
  uint64_t align = dst_.isBlk ? dst_.sector : 1;
  for (const Step& step : steps) {
    uint64_t pos = 0;
    bool unsupported = false;
    while (pos < length_) {
      if (Cancelled()) return false;
      uint64_t chunk = length_ - pos < kOffloadChunk ? length_ - pos : kOffloadChunk;
      if (step.kind == 0 && o_.bpsLimit > 0) {
        uint64_t cap = RoundDown(o_.bpsLimit / 4, align);
        if (cap < (1u << 20)) cap = 1u << 20;
        if (chunk > cap) chunk = cap;
      }
      int r;
      const char* sys;
      if (step.kind <= 1) {
        if (step.kind == 0 && !ThrottleWrite(chunk)) return false;
        uint64_t range[2] = {pos, chunk};
        sys = step.kind == 0 ? "ioctl(BLKZEROOUT)" : "ioctl(BLKDISCARD)";
        r = ioctl(dst_.fd.fd, step.kind == 0 ? BLKZEROOUT : BLKDISCARD, &range);
      } else {
        int mode = step.kind == 2 ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
        sys = step.kind == 2 ? "fallocate(PUNCH_HOLE)" : "fallocate(ZERO_RANGE)";
        r = fallocate(dst_.fd.fd, mode, static_cast<off_t>(pos), static_cast<off_t>(chunk));
      }
      if (r != 0) {
        int err = errno;
        if (pos == 0 && (err == EOPNOTSUPP || err == ENOTTY || err == EINVAL || err == ENOSYS)) {
          unsupported = true;
          break;
        }
        return FailErrno(err, sys, dst_.path);
      }
      pos += chunk;
      job_.bytesDone += chunk;
    }
    if (!unsupported) {
      clearMethod_ = step.name;
      *done = true;
      return true;
    }
  }
  return true;
}

// ---- top level ------------------------------------------------------------------------------

bool Engine::Finish() {
  if (haveDst_ && o_.sync && o_.mode != Mode::Checksum) {
    if (fdatasync(dst_.fd.fd) != 0) return FailErrno(errno, "fdatasync", dst_.path);
  }
  return true;
}

bool Engine::Run() {
  bool ok = RunSteps();
  if (!ok && dst_.created) {
    // A file we created for this copy is not left behind half-written.
    unlink(dst_.path.c_str());
  }
  return ok;
}

bool Engine::RunSteps() {
  blockSize_ = o_.blockSize ? o_.blockSize : kDefaultBlockSize;
  depth_ = o_.depth ? o_.depth : kDefaultDepth;
  if (blockSize_ % kAlign != 0 || blockSize_ > kMaxBlockSize) {
    return Fail(EINVAL, "options", "", "bad-option", "blockSize must be a multiple of 4096 up to 64 MiB");
  }
  if (depth_ < 1 || depth_ > kMaxDepth) return Fail(EINVAL, "options", "", "bad-option", "depth must be 1..128");
  job_.result.blockSize = blockSize_;
  job_.result.depth = depth_;
  job_.result.backend = "none";

  if (o_.ioprioClass != 0) {
    int err = IoprioSet(o_.ioprioClass, o_.ioprioLevel);
    if (err != 0) return Fail(err, "ioprio_set", "", "ioprio", std::string("cannot set the I/O priority: ") + std::strerror(err));
  }

  if (o_.mode == Mode::Clear) {
    if (!OpenDestinationForClear()) return false;
    if (o_.length < 0) return Fail(EINVAL, "options", dst_.path, "bad-option", "clear needs the number of bytes to clear");
    length_ = static_cast<uint64_t>(o_.length);
    if (length_ > dst_.size) {
      return Fail(EINVAL, "size check", dst_.path, "range-beyond-end",
                  "cannot clear " + HumanBytes(length_) + ": " + dst_.path + " holds only " + HumanBytes(dst_.size));
    }
    if (dst_.isBlk && length_ % dst_.sector != 0) {
      return Fail(EINVAL, "size check", dst_.path, "unaligned-length",
                  "the length to clear (" + std::to_string(length_) + " bytes) is not a multiple of the device's " +
                      std::to_string(dst_.sector) + "-byte logical sector");
    }
    job_.bytesTotal = length_;
    job_.result.bytesCopied = length_;
    bool done = false;
    if (length_ > 0 && !ClearWithIoctlsOrFallocate(&done)) return false;
    if (!done && length_ > 0) {
      zeroAction_ = ZeroAction::Write;
      if (!RunPipeline()) return false;
      clearMethod_ = "write";
    }
    if (length_ == 0) clearMethod_ = "none";
    job_.result.method = clearMethod_;
    job_.result.directDst = dst_.direct;
    return Finish();
  }

  if (!OpenSource()) return false;
  uint64_t maxLen = src_.size;
  if (o_.length >= 0) {
    length_ = static_cast<uint64_t>(o_.length);
    if (length_ > maxLen) {
      return Fail(EINVAL, "size check", src_.path, "length-exceeds-source",
                  "asked to copy " + HumanBytes(length_) + " but the source holds only " + HumanBytes(maxLen));
    }
  } else {
    length_ = maxLen;
  }
  job_.bytesTotal = length_;

  if (o_.useExtents) {
    // A wrong map would silently lose data, so a malformed one is refused rather than guessed at.
    uint64_t prevEnd = 0;
    for (size_t i = 0; i < o_.extents.size(); i++) {
      uint64_t off = o_.extents[i].first, len = o_.extents[i].second;
      if (len == 0 || off + len < off || (i > 0 && off < prevEnd)) {
        return Fail(EINVAL, "options", src_.path, "bad-option",
                    "extents must be [offset, length] pairs with length > 0, sorted by offset and not overlapping (entry " +
                        std::to_string(i) + ")");
      }
      prevEnd = off + len;
    }
  }

  if (o_.mode == Mode::Copy) {
    if (!OpenDestinationForCopy()) return false;
    uint32_t sector = 0;
    if (src_.isBlk) sector = src_.sector;
    if (dst_.isBlk && dst_.sector > sector) sector = dst_.sector;
    if (sector && length_ % sector != 0) {
      return Fail(EINVAL, "size check", src_.isBlk && src_.sector == sector ? src_.path : dst_.path, "unaligned-length",
                  "the length (" + std::to_string(length_) + " bytes) is not a multiple of the " + std::to_string(sector) +
                      "-byte logical sector size");
    }
    if (dst_.isBlk && dst_.size < length_) {
      return Fail(ENOSPC, "size check", dst_.path, "destination-too-small",
                  "the destination holds " + HumanBytes(dst_.size) + " but the copy needs " + HumanBytes(length_));
    }
    if (dst_.isReg) {
      // A destination file reads as zeros everywhere when it has no data extent at all
      // (freshly created, or truncated and re-extended): zero blocks need not be written.
      off_t d = lseek(dst_.fd.fd, 0, SEEK_DATA);
      bool noData = dst_.created || (d < 0 && errno == ENXIO) || (d >= 0 && static_cast<uint64_t>(d) >= length_);
      if (dst_.size < length_ && ftruncate(dst_.fd.fd, static_cast<off_t>(length_)) != 0) {
        return FailErrno(errno, "ftruncate", dst_.path);
      }
      if (o_.destinationIsZeroed == Tristate::Auto) dstZeroed_ = noData;
    }
    if (o_.destinationIsZeroed == Tristate::Yes) dstZeroed_ = true;
    if (dstZeroed_) zeroAction_ = ZeroAction::Skip;
    else if (dst_.isReg) zeroAction_ = o_.sparse ? ZeroAction::Punch : ZeroAction::ZeroRange;
    else zeroAction_ = o_.sparse ? ZeroAction::BlkZeroOut : ZeroAction::Write;
    detectZeros_ = dstZeroed_ || o_.sparse;

    bool done = false;
    if (o_.offload && !o_.useExtents && src_.isReg && dst_.isReg && src_.st.st_dev == dst_.st.st_dev && length_ > 0) {
      if (length_ == src_.size && !TryFiclone(&done)) return false;
      if (!done && CopyFileRangeIsOffload(dst_.fd.fd) && !TryCopyFileRange(&done)) return false;
      if (done && o_.verify) {
        // Nothing passed through us: checksum what the destination now holds.
        UniqueFd rd(open(dst_.path.c_str(), O_RDONLY | O_CLOEXEC));
        if (rd.fd < 0) return FailErrno(errno, "open", dst_.path);
        Xxh64 h;
        std::vector<char> buf(1u << 20);
        uint64_t pos = 0;
        while (pos < length_) {
          if (Cancelled()) return false;
          size_t want = length_ - pos < buf.size() ? static_cast<size_t>(length_ - pos) : buf.size();
          ssize_t n = pread(rd.fd, buf.data(), want, static_cast<off_t>(pos));
          if (n < 0) return FailErrno(errno, "read", dst_.path);
          if (n == 0) return Fail(EIO, "read", dst_.path, "destination-short", "the destination is shorter than what was copied");
          h.Update(buf.data(), static_cast<size_t>(n));
          pos += static_cast<uint64_t>(n);
        }
        job_.result.hasChecksum = true;
        job_.result.checksum = h.Digest();
      }
    }
    if (!done) {
      if (length_ > 0 && !RunPipeline()) return false;
      method_ = "engine";
      if (o_.verify) {
        job_.result.hasChecksum = true;
        job_.result.checksum = hash_.Digest();
      }
    }
    job_.result.method = method_;
    job_.result.bytesCopied = length_;
    job_.result.directSrc = method_ == "engine" && src_.direct;
    job_.result.directDst = method_ == "engine" && dst_.direct;
    return Finish();
  }

  // Checksum
  if (length_ > 0 && !RunPipeline()) return false;
  job_.result.method = "checksum";
  job_.result.bytesCopied = length_;
  job_.result.directSrc = src_.direct;
  job_.result.hasChecksum = true;
  job_.result.checksum = hash_.Digest();
  return true;
}

}  // namespace

bool Job::Run() {
  startedNs.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  bool ok;
  {
    Engine e(*this);  // everything it opened, started or mapped is gone when it is
    ok = e.Run();
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
