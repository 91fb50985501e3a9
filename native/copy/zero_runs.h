// Runs of zeros bound for a copy's destination (source holes, and zero blocks when zero
// detection is on): contiguous ones are merged and then handled by one call for the whole run,
// as the destination allows: nothing when it already reads as zeros, else a punch or zero-range
// (a file) or zero-out (a device), else zeros are written. A refused call falls back for the
// rest of the job: punch -> zero range -> write; zero-out -> write.
#pragma once

#include <cstdint>

namespace cinderblock {
namespace copyengine {

class Context;

enum class ZeroAction {
  Skip,       // the destination already reads as zeros there
  Punch,      // file: FALLOC_FL_PUNCH_HOLE (deallocate)
  ZeroRange,  // file: FALLOC_FL_ZERO_RANGE (stays allocated, reads as zeros)
  BlkZeroOut, // device: BLKZEROOUT (write-zeroes offload; thin devices allocate nothing)
  Write,      // write zeros
};

class ZeroRuns {
 public:
  ZeroRuns(Context& ctx, ZeroAction action) : ctx_(ctx), action_(action) {}
  ZeroRuns(const ZeroRuns&) = delete;
  ZeroRuns& operator=(const ZeroRuns&) = delete;
  ~ZeroRuns();
  // What the next run gets (Write: zero units are written by the pipeline as they come).
  ZeroAction action() const { return action_; }
  // A block of zeros (ctx.blockSize bytes) to write from: for a run that fell back to Write,
  // and for the pipeline's zero units. Ours, not the pipeline's, since a copy_file_range copy
  // flushes runs with no pipeline set up. Mapped on first use and never written to, so every
  // page of it is the kernel's shared zero page: it costs no memory. nullptr with errno set if
  // it cannot be mapped.
  char* ZeroBlock();
  // Adds [off, off+len) to the run (flushing the one before unless this continues it); `hole`
  // says whether those bytes were a source hole (else zero blocks read), for the counters.
  bool Add(uint64_t off, uint64_t len, bool hole);
  // Applies the action to the run so far; before any data is written past it.
  bool Flush();

 private:
  bool Apply(ZeroAction a, uint64_t off, uint64_t len, bool* unsupported);
  bool WriteZeros(uint64_t off, uint64_t len);

  Context& ctx_;
  ZeroAction action_;
  char* zeroBlock_ = nullptr;
  uint64_t runOff_ = 0;
  uint64_t runLen_ = 0;
  uint64_t runHoleBytes_ = 0;
};

}  // namespace copyengine
}  // namespace cinderblock
