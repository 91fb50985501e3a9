// Reads of whole blocks that bypass the page cache (O_DIRECT), for on-disk structures another
// party writes without going through this device's page cache: a thin pool's metadata device is
// written by the kernel's dm-bufio under the pool, so a buffered read of
// /dev/mapper/<pool>_tmeta can return what the page cache held from before. thin_dump reads it
// with O_DIRECT for the same reason.
//
// readDirect(target, offsets, length): one Buffer of `length` bytes per offset, all read on one
// thread of its own (a batch per call, so a b-tree walk costs one thread per level, not per node).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "common.h"

namespace cinderblock {

namespace {

// O_DIRECT wants the buffer, offset and length aligned to the logical block size (512 or 4096):
// 4096 covers both. Lengths up to 1 MiB and 65536 offsets a call: a metadata walk reads 4 KiB
// blocks, a level at a time, and nothing needs more.
constexpr size_t kAlign = 4096;
constexpr size_t kMaxLength = 1024 * 1024;
constexpr size_t kMaxOffsets = 65536;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// Opens for O_DIRECT reading; a regular file on a filesystem without O_DIRECT (EINVAL) is read
// through the page cache instead, which is coherent for files. A device always takes O_DIRECT.
int OpenDirect(const std::string& path, int* err) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0 && errno == EINVAL) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    else errno = EINVAL;
  }
  *err = fd < 0 ? errno : 0;
  return fd;
}

Outcome ReadAll(int fd, const std::string& what, const std::vector<uint64_t>& offsets, size_t length) {
  void* raw = nullptr;
  if (posix_memalign(&raw, kAlign, length) != 0) return Outcome::Fail(ENOMEM, "posix_memalign", what);
  std::unique_ptr<void, AlignedFree> buf(raw);
  auto out = std::make_shared<std::vector<std::vector<uint8_t>>>();
  out->reserve(offsets.size());
  for (uint64_t off : offsets) {
    size_t got = 0;
    while (got < length) {
      ssize_t n = pread(fd, static_cast<char*>(buf.get()) + got, length - got, static_cast<off_t>(off + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Outcome::Fail(errno, "pread", what);
      // Past the end: a block the structure points at is not on the device (a truncated image,
      // the wrong device). ENXIO, as a read at an offset past a device's end.
      if (n == 0) return Outcome::Fail(ENXIO, "pread", what);
      got += static_cast<size_t>(n);
    }
    const uint8_t* p = static_cast<const uint8_t*>(buf.get());
    out->emplace_back(p, p + length);
  }
  return Outcome::Of([out](Napi::Env env) -> Napi::Value {
    Napi::Array arr = Napi::Array::New(env, out->size());
    for (size_t i = 0; i < out->size(); i++) {
      const auto& b = (*out)[i];
      arr.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, b.data(), b.size()));
    }
    return arr;
  });
}

Napi::Value ReadDirect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Target t = ToTarget(info[0], "device");
  if (!info[1].IsArray()) throw Napi::TypeError::New(env, "offsets must be an array of byte offsets");
  Napi::Array arr = info[1].As<Napi::Array>();
  if (arr.Length() > kMaxOffsets) throw Napi::RangeError::New(env, "at most 65536 offsets a call");
  uint64_t length = ToOffset(info[2], "length");
  if (length == 0 || length > kMaxLength || length % kAlign != 0) {
    throw Napi::RangeError::New(env, "length must be a multiple of 4096 bytes, at most 1 MiB");
  }
  std::vector<uint64_t> offsets(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    offsets[i] = ToOffset(arr.Get(i), "offset");
    if (offsets[i] % kAlign != 0) throw Napi::RangeError::New(env, "offsets must be multiples of 4096 bytes");
  }
  size_t len = static_cast<size_t>(length);
  return RunOnOwnThread(env, [t, offsets, len]() {
    // An fd the caller passes is read as it was opened (its flags are the caller's choice).
    if (t.fd >= 0) return ReadAll(t.fd, t.Describe(), offsets, len);
    int err = 0;
    int fd = OpenDirect(t.path, &err);
    if (fd < 0) return Outcome::Fail(err, "open", t.path);
    Outcome o = ReadAll(fd, t.path, offsets, len);
    close(fd);
    return o;
  });
}

}  // namespace

void InitDirectRead(Napi::Env env, Napi::Object exports) {
  exports.Set("readDirect", Napi::Function::New(env, ReadDirect, "readDirect"));
}

}  // namespace cinderblock
