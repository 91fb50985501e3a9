// The source of a copy or checksum: opened, its range checked, and walked as data and holes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cinderblock {
namespace copyengine {

class Context;

// Opens Options.src as ctx.src, sets ctx.length (Options.length, or the whole source) and
// job.bytesTotal, and checks the caller's map of the source (Options.extents), if any.
bool OpenSource(Context& ctx);

// Where the source has data: the caller's map, else the file's own (SEEK_DATA / SEEK_HOLE); a
// block device without a map is all data. Asked in increasing order of position.
class SourceMap {
 public:
  explicit SourceMap(Context& ctx) : ctx_(ctx) {}
  // The extent starting at `pos`: data or hole, ending at *end (<= ctx.length). Data extents
  // are widened to kAlign boundaries so O_DIRECT I/O stays aligned on filesystems with small
  // blocks.
  bool Next(uint64_t pos, uint64_t* end, bool* data);

 private:
  Context& ctx_;
  size_t extIdx_ = 0;  // first of opts.extents that may still cover the position asked about
};

}  // namespace copyengine
}  // namespace cinderblock
