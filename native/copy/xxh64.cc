// XXH64, implemented from the algorithm description (xxhash.com / doc/xxhash_spec.md):
// four 64-bit lanes over 32-byte stripes, then merge, tail and avalanche.
#include "xxh64.h"

#include <cstring>

namespace cinderblock {

namespace {

constexpr uint64_t P1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t P2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t P3 = 0x165667B19E3779F9ULL;
constexpr uint64_t P4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t P5 = 0x27D4EB2F165667C5ULL;

inline uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t Load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // little-endian hosts only (x86-64, arm64 Linux)
  return v;
}

inline uint32_t Load32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline uint64_t Round(uint64_t acc, uint64_t input) {
  acc += input * P2;
  acc = Rotl(acc, 31);
  return acc * P1;
}

inline uint64_t Merge(uint64_t acc, uint64_t v) {
  acc ^= Round(0, v);
  return acc * P1 + P4;
}

// Consumes whole 32-byte stripes; returns how many bytes it used.
inline size_t Stripes(uint64_t* v, const unsigned char* p, size_t len) {
  size_t n = len & ~static_cast<size_t>(31);
  uint64_t a = v[0], b = v[1], c = v[2], d = v[3];
  for (size_t i = 0; i < n; i += 32) {
    a = Round(a, Load64(p + i));
    b = Round(b, Load64(p + i + 8));
    c = Round(c, Load64(p + i + 16));
    d = Round(d, Load64(p + i + 24));
  }
  v[0] = a, v[1] = b, v[2] = c, v[3] = d;
  return n;
}

}  // namespace

void Xxh64::Reset() {
  v_[0] = P1 + P2;
  v_[1] = P2;
  v_[2] = 0;
  v_[3] = 0 - P1;
  total_ = 0;
  pendingLen_ = 0;
}

void Xxh64::Update(const void* data, size_t len) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  total_ += len;
  if (pendingLen_ > 0) {
    size_t take = 32 - pendingLen_ < len ? 32 - pendingLen_ : len;
    std::memcpy(pending_ + pendingLen_, p, take);
    pendingLen_ += take;
    p += take;
    len -= take;
    if (pendingLen_ < 32) return;
    Stripes(v_, pending_, 32);
    pendingLen_ = 0;
  }
  size_t used = Stripes(v_, p, len);
  std::memcpy(pending_, p + used, len - used);
  pendingLen_ = len - used;
}

void Xxh64::UpdateZeros(uint64_t len) {
  static const unsigned char kZeros[64 * 1024] = {};
  while (len > 0) {
    size_t n = len > sizeof kZeros ? sizeof kZeros : static_cast<size_t>(len);
    Update(kZeros, n);
    len -= n;
  }
}

uint64_t Xxh64::Digest() const {
  uint64_t h;
  if (total_ >= 32) {
    h = Rotl(v_[0], 1) + Rotl(v_[1], 7) + Rotl(v_[2], 12) + Rotl(v_[3], 18);
    for (int i = 0; i < 4; i++) h = Merge(h, v_[i]);
  } else {
    h = v_[2] + P5;  // v_[2] is the seed (0)
  }
  h += total_;
  const unsigned char* p = pending_;
  size_t len = pendingLen_;
  while (len >= 8) {
    h ^= Round(0, Load64(p));
    h = Rotl(h, 27) * P1 + P4;
    p += 8;
    len -= 8;
  }
  if (len >= 4) {
    h ^= static_cast<uint64_t>(Load32(p)) * P1;
    h = Rotl(h, 23) * P2 + P3;
    p += 4;
    len -= 4;
  }
  while (len > 0) {
    h ^= (*p) * P5;
    h = Rotl(h, 11) * P1;
    p++;
    len--;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

uint64_t Xxh64Oneshot(const void* data, size_t len) {
  Xxh64 x;
  x.Update(data, len);
  return x.Digest();
}

}  // namespace cinderblock
