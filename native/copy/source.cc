// Opening the source and mapping its data; see source.h.
#include "source.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "bytes.h"
#include "context.h"

namespace cinderblock {
namespace copyengine {

bool OpenSource(Context& ctx) {
  const Options& o = ctx.opts;
  ctx.src.path = o.src;
  if (!OpenEnd(ctx, ctx.src, O_RDONLY, false, "source")) return false;
  ctx.haveSrc = true;
  uint64_t maxLen = ctx.src.size;
  if (o.length >= 0) {
    ctx.length = static_cast<uint64_t>(o.length);
    if (ctx.length > maxLen) {
      return ctx.Fail(EINVAL, "size check", ctx.src.path, "length-exceeds-source",
                      "asked to copy " + HumanBytes(ctx.length) + " but the source holds only " + HumanBytes(maxLen));
    }
  } else {
    ctx.length = maxLen;
  }
  ctx.job.bytesTotal = ctx.length;

  if (o.useExtents) {
    // A wrong map would silently lose data, so a malformed one is refused rather than guessed at.
    uint64_t prevEnd = 0;
    for (size_t i = 0; i < o.extents.size(); i++) {
      uint64_t off = o.extents[i].first, len = o.extents[i].second;
      if (len == 0 || off + len < off || (i > 0 && off < prevEnd)) {
        return ctx.Fail(EINVAL, "options", ctx.src.path, "bad-option",
                        "extents must be [offset, length] pairs with length > 0, sorted by offset and not overlapping (entry " +
                            std::to_string(i) + ")");
      }
      prevEnd = off + len;
    }
  }
  return true;
}

bool SourceMap::Next(uint64_t pos, uint64_t* end, bool* data) {
  const uint64_t length = ctx_.length;
  if (ctx_.opts.useExtents) {
    // The caller's map of the source (checked in OpenSource: sorted, not overlapping). Widened
    // to kAlign like SEEK_DATA's answers; reading a little more than the map says is harmless.
    const auto& ext = ctx_.opts.extents;
    while (extIdx_ < ext.size() && RoundUp(ext[extIdx_].first + ext[extIdx_].second, kAlign) <= pos) extIdx_++;
    if (extIdx_ == ext.size()) {
      *end = length;
      *data = false;
      return true;
    }
    uint64_t s = RoundDown(ext[extIdx_].first, kAlign);
    uint64_t e = RoundUp(ext[extIdx_].first + ext[extIdx_].second, kAlign);
    if (s > pos) {
      *end = s < length ? s : length;
      *data = false;
    } else {
      *end = e < length ? e : length;
      *data = true;
    }
    return true;
  }
  const End& src = ctx_.src;
  if (!src.isReg) {
    *end = length;
    *data = true;
    return true;
  }
  off_t d = lseek(src.fd.fd, static_cast<off_t>(pos), SEEK_DATA);
  if (d < 0) {
    if (errno == ENXIO) {  // no data after pos: the rest is a hole
      *end = length;
      *data = false;
      return true;
    }
    if (errno == EINVAL || errno == EOPNOTSUPP) {  // no SEEK_DATA here: all data
      *end = length;
      *data = true;
      return true;
    }
    return ctx_.FailErrno(errno, "lseek(SEEK_DATA)", src.path);
  }
  uint64_t dataStart = RoundDown(static_cast<uint64_t>(d), kAlign);
  if (dataStart > pos) {
    *end = dataStart < length ? dataStart : length;
    *data = false;
    return true;
  }
  off_t h = lseek(src.fd.fd, static_cast<off_t>(pos), SEEK_HOLE);
  if (h < 0) return ctx_.FailErrno(errno, "lseek(SEEK_HOLE)", src.path);
  uint64_t dataEnd = RoundUp(static_cast<uint64_t>(h), kAlign);
  if (dataEnd <= pos) dataEnd = pos + kAlign;
  *end = dataEnd < length ? dataEnd : length;
  *data = true;
  return true;
}

}  // namespace copyengine
}  // namespace cinderblock
