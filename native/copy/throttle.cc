// The process-wide bandwidth timelines; see throttle.h.
#include "throttle.h"

#include <map>
#include <mutex>
#include <utility>

namespace cinderblock {
namespace copyengine {

using Clock = std::chrono::steady_clock;

namespace {

std::mutex gThrottleMutex;
std::map<std::pair<uint64_t, bool>, Clock::time_point>* gThrottleNext = nullptr;  // never freed: process-wide

Clock::duration Occupancy(uint64_t bytes, uint64_t bps) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(static_cast<double>(bytes) / bps));
}

}  // namespace

Clock::time_point ThrottleReserve(uint64_t device, bool write, uint64_t bytes, uint64_t bps) {
  auto now = Clock::now();
  auto duration = Occupancy(bytes, bps);
  std::lock_guard<std::mutex> lock(gThrottleMutex);
  if (!gThrottleNext) gThrottleNext = new std::map<std::pair<uint64_t, bool>, Clock::time_point>();
  Clock::time_point& next = (*gThrottleNext)[{device, write}];
  Clock::time_point start = next > now ? next : now;
  next = start + duration;
  return start;
}

void ThrottleRefund(uint64_t device, bool write, Clock::time_point start, uint64_t bytes, uint64_t bps) {
  auto duration = Occupancy(bytes, bps);
  std::lock_guard<std::mutex> lock(gThrottleMutex);
  if (!gThrottleNext) return;
  auto it = gThrottleNext->find({device, write});
  // Only the latest reservation can be handed back; an earlier one is followed by others'.
  if (it != gThrottleNext->end() && it->second == start + duration) {
    auto now = Clock::now();
    it->second = start > now ? start : now;
  }
}

}  // namespace copyengine
}  // namespace cinderblock
