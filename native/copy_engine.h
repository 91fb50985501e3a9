// The copy engine behind copy()/clear() (src/native/copy.ts): moves whole volumes between block
// devices and files the way cinder's `dd` does, but with several requests in flight (io_uring,
// or a reader and a writer thread), O_DIRECT, zero and hole skipping, reflink/copy_file_range
// offload, a per-device bandwidth limit shared fairly between copies, an I/O priority, and an
// optional XXH64 of what was written. This header is the engine's whole interface; its parts
// are copy_engine.cc and copy/ (listed in native/COPY.md). No Node-API in any of them: copy.cc
// is the JS glue, and test/leakcheck/ builds the engine alone under AddressSanitizer and
// valgrind.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace cinderblock {
namespace copyengine {

enum class Mode { Copy, Clear, Checksum };
enum class Backend { Auto, Uring, Threads };
enum class Tristate { Auto, Yes, No };

// Chosen by measurement (bench/README.md, "Choosing block size and depth"; `CB_BENCH_TUNE=1
// npx tsx bench/copy-bench.ts`): loop device -> loop device on the dev VM's virtio disk, the
// median of 5 interleaved runs per setting: 4 MiB x 8 in flight copied at ~1.2 GiB/s where
// 1 MiB x 8 managed ~0.7 and 2 MiB x 8 ~0.75; what counts is bytes in flight (32 MiB).
// depth x blockSize (+ one zero block) is all the engine allocates: 36 MiB per copy.
constexpr uint32_t kDefaultBlockSize = 4u << 20;
constexpr uint32_t kDefaultDepth = 8;
constexpr uint32_t kMaxBlockSize = 64u << 20;
constexpr uint32_t kMaxDepth = 128;
// Buffer and offset alignment for O_DIRECT: a page, which satisfies every logical block size.
constexpr uint32_t kAlign = 4096;

struct Options {
  Mode mode = Mode::Copy;
  std::string src;  // Copy, Checksum
  std::string dst;  // Copy, Clear
  int64_t length = -1;  // bytes; -1 = the whole source (Copy, Checksum); Clear needs it
  bool sparse = false;
  Tristate destinationIsZeroed = Tristate::Auto;
  uint64_t bpsLimit = 0;  // bytes/s per device and direction; 0 = none
  int ioprioClass = 0;    // 0 = leave as is; 1 realtime, 2 best-effort, 3 idle (IOPRIO_CLASS_*)
  int ioprioLevel = 4;    // 0 (highest) .. 7
  bool verify = false;    // XXH64 of the bytes the destination holds afterwards
  uint32_t blockSize = 0; // 0 = kDefaultBlockSize
  uint32_t depth = 0;     // 0 = kDefaultDepth
  bool sync = true;       // fdatasync the destination at the end
  bool offload = true;    // allow FICLONE / copy_file_range between regular files
  bool direct = true;     // try O_DIRECT (falls back where refused)
  Backend backend = Backend::Auto;
  uint32_t createMode = 0644;   // for a destination file we create
  bool allowDiscard = true;     // Clear: BLKDISCARD when the device guarantees zeroes after it
  bool keepAllocated = false;   // Clear of a file: FALLOC_FL_ZERO_RANGE before PUNCH_HOLE
  std::string testFault;        // test-only fault injection (see FaultPoint in copy/context.h)
  // Copy: the source's data as [offset, length] byte ranges, sorted and not overlapping; the
  // source reads as zeros everywhere else (a thin LV's mapped blocks, which a block device
  // cannot tell through SEEK_DATA). Outside them nothing is read: those bytes are holes, handled
  // like a file's holes (skipped when the destination reads as zeros, else punched/zeroed).
  bool useExtents = false;
  std::vector<std::pair<uint64_t, uint64_t>> extents;
};

struct Result {
  uint64_t bytesCopied = 0;      // the logical length handled
  uint64_t bytesWritten = 0;     // bytes written with write()/copy_file_range
  uint64_t bytesSkippedZero = 0; // zero blocks read but not written (or deallocated instead)
  uint64_t bytesSkippedHoles = 0;// source holes never read
  std::string method;            // copy: ficlone | copy_file_range | engine; clear: see Clear
  bool directSrc = false;
  bool directDst = false;
  bool hasChecksum = false;
  uint64_t checksum = 0;         // XXH64, seed 0
  std::string backend;           // io_uring | threads | none
  uint32_t blockSize = 0;
  uint32_t depth = 0;
  double elapsedMs = 0;
};

struct Failure {
  int err = 0;            // errno
  std::string syscall;    // e.g. "read", "open", "ioctl(BLKZEROOUT)", or a check ("size check")
  std::string path;
  std::string reason;     // machine-readable: "destination-too-small", "unaligned-length", ...
  std::string detail;     // what went wrong, in words
  uint64_t bytesDone = 0;
};

// One copy/clear/checksum. Run() does the work on the calling thread (and any I/O threads it
// starts, all joined before it returns); Cancel() and the progress counters may be used from
// any thread meanwhile.
class Job {
 public:
  explicit Job(Options o) : opts(std::move(o)) {}
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // True on success (`result` filled in), false on failure or cancel (`failure` filled in,
  // err == ECANCELED for a cancel). Never reports success for a partial copy.
  bool Run();

  void Cancel();
  bool Cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  // Sleeps until `t` or a cancel; false if cancelled.
  bool SleepUntil(std::chrono::steady_clock::time_point t);

  const Options opts;
  Result result;
  Failure failure;

  // Progress, readable from any thread while Run() is going.
  std::atomic<uint64_t> bytesTotal{0};
  std::atomic<uint64_t> bytesDone{0};
  std::atomic<uint64_t> bytesWritten{0};
  std::atomic<uint64_t> bytesSkipped{0};
  std::atomic<int64_t> startedNs{0};  // steady_clock, 0 until Run() starts
  double ElapsedMs() const;

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex sleepMutex_;
  std::condition_variable sleepCv_;
};

}  // namespace copyengine
}  // namespace cinderblock
