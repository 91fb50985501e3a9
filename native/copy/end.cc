// Opening and describing the ends of a job; see end.h.
#include "end.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "context.h"

namespace cinderblock {
namespace copyengine {

namespace {

bool Describe(Context& ctx, End& e, const char* what) {
  if (fstat(e.fd.fd, &e.st) != 0) return ctx.FailErrno(errno, "fstat", e.path);
  e.isBlk = S_ISBLK(e.st.st_mode);
  e.isReg = S_ISREG(e.st.st_mode);
  if (S_ISDIR(e.st.st_mode)) {
    return ctx.Fail(EISDIR, "open", e.path, "", std::string("the ") + what + " is a directory, not a file or block device");
  }
  if (!e.isBlk && !e.isReg) {
    return ctx.Fail(EINVAL, "open", e.path, "unsupported-file-type",
                    std::string("the ") + what + " is neither a regular file nor a block device");
  }
  if (e.isBlk) {
    if (ioctl(e.fd.fd, BLKGETSIZE64, &e.size) != 0) return ctx.FailErrno(errno, "ioctl(BLKGETSIZE64)", e.path);
    int ss = 512;
    if (ioctl(e.fd.fd, BLKSSZGET, &ss) != 0) return ctx.FailErrno(errno, "ioctl(BLKSSZGET)", e.path);
    e.sector = static_cast<uint32_t>(ss);
    e.throttleKey = e.st.st_rdev;
  } else {
    e.size = static_cast<uint64_t>(e.st.st_size);
    e.throttleKey = e.st.st_dev;
  }
  return true;
}

}  // namespace

bool OpenEnd(Context& ctx, End& e, int flags, bool create, const char* what) {
  flags |= O_CLOEXEC;
  int fd = -1;
  bool direct = ctx.opts.direct;
  for (;;) {
    int f = flags | (direct ? O_DIRECT : 0);
    fd = open(e.path.c_str(), f);
    if (fd < 0 && errno == ENOENT && create) {
      fd = open(e.path.c_str(), f | O_CREAT | O_EXCL, ctx.opts.createMode);
      if (fd >= 0) e.created = true;
      else if (errno == EEXIST) continue;  // raced with someone creating it: open what is there
    }
    if (fd < 0 && errno == EINVAL && direct) {
      direct = false;  // tmpfs before 6.6, ramfs, some FUSE/network filesystems
      continue;
    }
    break;
  }
  if (fd < 0) {
    int err = errno;
    return ctx.Fail(err, "open", e.path, "", std::string("cannot open the ") + what + ": " + std::strerror(err));
  }
  e.fd.Reset(fd);
  e.direct = direct;
  return Describe(ctx, e, what);
}

bool DisableDirect(Context& ctx, End& e) {
  int fl = fcntl(e.fd.fd, F_GETFL);
  if (fl < 0 || fcntl(e.fd.fd, F_SETFL, fl & ~O_DIRECT) != 0) return ctx.FailErrno(errno, "fcntl(F_SETFL)", e.path);
  e.direct = false;
  return true;
}

int BufferedWriteFd(End& e) {
  if (!e.direct) return e.fd.fd;
  if (e.bufferedFd.fd < 0) {
    // A second open file description of the same file, without O_DIRECT (reopening by path
    // could race with a rename; /proc/self/fd names exactly this file).
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", e.fd.fd);
    e.bufferedFd.Reset(open(path, O_WRONLY | O_CLOEXEC));
  }
  return e.bufferedFd.fd;
}

bool SyncDestination(Context& ctx) {
  if (ctx.opts.sync && fdatasync(ctx.dst.fd.fd) != 0) return ctx.FailErrno(errno, "fdatasync", ctx.dst.path);
  return true;
}

}  // namespace copyengine
}  // namespace cinderblock
