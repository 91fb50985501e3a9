#include "bytes.h"

#include <cstdio>

namespace cinderblock {
namespace copyengine {

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

}  // namespace copyengine
}  // namespace cinderblock
