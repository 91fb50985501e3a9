// FICLONE: make one file share another's extents (copy-on-write), so cloning a file-backed
// volume is instant and takes no space. Only some filesystems can (btrfs, XFS with reflink=1,
// bcachefs, NFS 4.2 on such a server); the rest answer EOPNOTSUPP/EXDEV/EINVAL.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common.h"

namespace cinderblock {

namespace {

// ficlone(src, dst, mode): dst as a path is created (O_EXCL: never clobber a file we did not
// make) with `mode`, and removed again if the clone fails, so a failure leaves nothing behind.
// dst as an fd is cloned into as it is: its whole content becomes src's.
Napi::Value Ficlone(const Napi::CallbackInfo& info) {
  Target src = ToTarget(info[0], "source");
  Target dst = ToTarget(info[1], "destination");
  mode_t mode = info[2].IsNumber() ? static_cast<mode_t>(info[2].As<Napi::Number>().Uint32Value()) : 0644;
  return RunOnOwnThread(info.Env(), [src, dst, mode]() {
    return WithFd(src, O_RDONLY, [&](int srcFd) {
      bool created = dst.fd < 0;
      int dstFd = created ? open(dst.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode) : dst.fd;
      if (dstFd < 0) return Outcome::Fail(errno, "open", dst.path);
      Outcome o = Outcome::Done();
      if (ioctl(dstFd, FICLONE, srcFd) != 0) o = Outcome::Fail(errno, "ioctl(FICLONE)", dst.Describe());
      if (created) {
        close(dstFd);
        if (o.err != 0) unlink(dst.path.c_str());
      }
      return o;
    });
  });
}

// Creates a hidden temp file `<dir>/.cinderblock-reflink-probe-XXXXXX`.
int MakeTemp(const std::string& dir, std::string* name) {
  std::string tmpl = dir + "/.cinderblock-reflink-probe-XXXXXX";
  int fd = mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd >= 0) *name = tmpl;
  return fd;
}

// reflinkProbe(dir): clones a 4 KiB temp file to another temp file in `dir` and removes both.
// Resolves true when the clone worked; rejects with the clone's errno otherwise (the facade
// decides which errnos mean "not supported").
Napi::Value ReflinkProbe(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "directory must be a path");
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  return RunOnOwnThread(info.Env(), [dir]() {
    std::string srcName, dstName;
    int src = MakeTemp(dir, &srcName);
    if (src < 0) return Outcome::Fail(errno, "mkostemp", dir);
    Outcome o = Outcome::Boolean(true);
    // Real data, so a filesystem that only "clones" empty files cannot pass.
    char block[4096];
    std::memset(block, 'c', sizeof block);
    int dst = -1;
    ssize_t written = pwrite(src, block, sizeof block, 0);
    if (written != static_cast<ssize_t>(sizeof block)) {
      o = Outcome::Fail(written < 0 ? errno : ENOSPC, "write", srcName);
    } else if ((dst = MakeTemp(dir, &dstName)) < 0) {
      o = Outcome::Fail(errno, "mkostemp", dir);
    } else if (ioctl(dst, FICLONE, src) != 0) {
      o = Outcome::Fail(errno, "ioctl(FICLONE)", dir);
    }
    if (dst >= 0) {
      close(dst);
      unlink(dstName.c_str());
    }
    close(src);
    unlink(srcName.c_str());
    return o;
  });
}

}  // namespace

void InitReflink(Napi::Env env, Napi::Object exports) {
  exports.Set("ficlone", Napi::Function::New(env, Ficlone, "ficlone"));
  exports.Set("reflinkProbe", Napi::Function::New(env, ReflinkProbe, "reflinkProbe"));
}

}  // namespace cinderblock
