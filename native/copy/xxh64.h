// XXH64 (Yann Collet's xxHash, 64-bit variant, seed 0), written from the published algorithm
// description: a fast non-cryptographic checksum for "did the destination get exactly these
// bytes" — ~10 GB/s per core, so checksumming never becomes the copy's bottleneck. Streaming,
// so the copy engine can feed blocks (and runs of zeros for skipped holes) in order.
// Same value as `xxhsum -H1` / `xxh64sum`, so an operator can check a copy with a stock tool.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cinderblock {

class Xxh64 {
 public:
  Xxh64() { Reset(); }
  void Reset();
  void Update(const void* data, size_t len);
  // Feeds `len` zero bytes without needing a buffer of them.
  void UpdateZeros(uint64_t len);
  uint64_t Digest() const;

 private:
  uint64_t v_[4];
  uint64_t total_ = 0;
  unsigned char pending_[32];
  size_t pendingLen_ = 0;
};

uint64_t Xxh64Oneshot(const void* data, size_t len);

}  // namespace cinderblock
