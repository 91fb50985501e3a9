// The pipeline every mode runs its bytes through. It walks [0, ctx.length) in order as units:
// data (read from the source, then written) or zero (a source hole, or all of a clear: never
// read). Up to ctx.depth units are in flight in a ring of slots; reads may complete in any
// order, but units are processed (zero test, checksum, write) strictly in order at the head of
// the ring, so the checksum is of the byte stream and runs of zeros merge into one call.
#pragma once

namespace cinderblock {

class Xxh64;

namespace copyengine {

class Context;
class SourceMap;
class ZeroRuns;

// What a mode asks of the pipeline.
struct PipelinePlan {
  // Where the source has data; nullptr: nothing is read, the whole range is zeros (clear).
  SourceMap* source = nullptr;
  // Where zeros go in the destination; nullptr: nothing is written (checksum). With
  // ZeroAction::Write, zero units are written block by block from a buffer of zeros.
  ZeroRuns* zeros = nullptr;
  // Fed every byte of the range in order (zeros included); nullptr: no checksum.
  Xxh64* hash = nullptr;
  // Test each block read for zeros and hand all-zero ones to `zeros` instead of writing them.
  bool detectZeros = false;
};

// Sets up the slots' buffers and the I/O backend (Result.backend), runs the range through, and
// drains and frees everything before returning. False with the failure recorded in ctx.
bool RunPipeline(Context& ctx, const PipelinePlan& plan);

}  // namespace copyengine
}  // namespace cinderblock
