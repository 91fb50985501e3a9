// One end of a job, the source or the destination: its open file, what it is (regular file or
// block device, size, logical sector) and whether it is read or written with O_DIRECT.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "../copy_engine.h"

namespace cinderblock {
namespace copyengine {

class Context;

// A file descriptor closed on scope exit.
struct UniqueFd {
  int fd = -1;
  UniqueFd() = default;
  explicit UniqueFd(int f) : fd(f) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }
  void Reset(int f = -1) {
    if (fd >= 0) close(fd);
    fd = f;
  }
};

struct End {
  std::string path;
  UniqueFd fd;
  UniqueFd bufferedFd;  // same file without O_DIRECT, for an unaligned tail; opened lazily
  struct stat st {};
  bool isBlk = false;
  bool isReg = false;
  bool direct = false;
  bool anyIoOk = false;      // an I/O on this end succeeded (so EINVAL is no longer "O_DIRECT refused")
  bool created = false;      // we created this file (removed again if the job fails)
  uint64_t size = 0;
  uint32_t sector = 512;     // logical block size of a device
  uint64_t throttleKey = 0;  // st_rdev of a device, st_dev of a file's filesystem
};

// O_DIRECT alignment of an end: a device's logical sector; for a file, a page (what every
// filesystem's direct I/O accepts, whatever the sector size of the device below it).
inline uint32_t DioAlign(const End& e) { return e.isBlk ? e.sector : kAlign; }

// Opens e.path (O_CLOEXEC; O_DIRECT when Options.direct, dropped again where the filesystem
// refuses it), creating a missing file when `create`, and describes it. `what` names the end in
// messages ("source", "destination", ...). False with the failure recorded in `ctx`.
bool OpenEnd(Context& ctx, End& e, int flags, bool create, const char* what);
// Turns O_DIRECT off on e's open file: accepted at open, refused on the first I/O.
bool DisableDirect(Context& ctx, End& e);
// An fd for writing `e` through the page cache (e.fd itself unless it is O_DIRECT); -1 with
// errno set if it cannot be opened.
int BufferedWriteFd(End& e);
// fdatasync of a destination the job wrote, unless Options.sync is off.
bool SyncDestination(Context& ctx);

}  // namespace copyengine
}  // namespace cinderblock
