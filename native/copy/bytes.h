// Byte arithmetic the engine's steps share, and byte counts as its messages print them.
#pragma once

#include <cstdint>
#include <string>

namespace cinderblock {
namespace copyengine {

inline uint64_t RoundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
inline uint64_t RoundDown(uint64_t v, uint64_t a) { return v / a * a; }

// "1.50 GiB (1610612736 bytes)", "3.00 MiB (3145728 bytes)" or "512 bytes": readable, and exact.
std::string HumanBytes(uint64_t b);

}  // namespace copyengine
}  // namespace cinderblock
