// The bandwidth limit (Options.bpsLimit, cinder's volume_copy_bps_limit), shared by every copy in
// the process: one timeline per (device, direction). A caller reserves `bytes` and may start its
// I/O at the returned time; the reservation occupies the device for bytes/bps. Copies reserve one
// block at a time and sleep until their slot, so concurrent copies on one device interleave block
// by block and each gets an equal share, and the device as a whole sees at most bps.
#pragma once

#include <chrono>
#include <cstdint>

namespace cinderblock {
namespace copyengine {

std::chrono::steady_clock::time_point ThrottleReserve(uint64_t device, bool write, uint64_t bytes, uint64_t bps);
// Gives back a reservation that was not used (its copy was cancelled while waiting for it), if
// no one has reserved after it.
void ThrottleRefund(uint64_t device, bool write, std::chrono::steady_clock::time_point start, uint64_t bytes, uint64_t bps);

}  // namespace copyengine
}  // namespace cinderblock
