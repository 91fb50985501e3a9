// Whole-file write locks on an fd, compatible with oslo.concurrency's external locks.
//
// fasteners (under oslo.concurrency) takes fcntl.lockf(fd, LOCK_EX | LOCK_NB), i.e. a POSIX
// record write lock (F_SETLK, F_WRLCK, whole file). We take the open-file-description flavour of
// the same lock (F_OFD_SETLK): the kernel keeps both kinds in one table and makes them conflict,
// so cinder's Python tools and cinderblock still exclude each other. OFD locks belong to the open
// file rather than to the process, which classic record locks get wrong inside Node:
//  - worker threads of one process would not exclude each other (same pid);
//  - closing *any* fd on the lock file anywhere in the process would drop the lock.
//
// Both calls are non-blocking and take microseconds on a local filesystem, so they run on the
// JS thread; the facade polls with backoff, as fasteners does, which makes timeouts and
// AbortSignals trivial (a thread blocked in F_OFD_SETLKW could not be cancelled).
#include <fcntl.h>

#include <cerrno>

#include "common.h"

namespace cinderblock {

namespace {

int SetOfdLock(int fd, short type) {
  struct flock fl = {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;  // to end of file, however large it grows: the whole file, like lockf(fd, ..., 0)
  fl.l_pid = 0;  // required to be 0 for OFD locks
  return fcntl(fd, F_OFD_SETLK, &fl);
}

int ToFd(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "fd must be a number");
  return info[0].As<Napi::Number>().Int32Value();
}

// tryLockFile(fd): true if we now hold the write lock, false if someone else holds a lock.
Napi::Value TryLockFile(const Napi::CallbackInfo& info) {
  int fd = ToFd(info);
  if (SetOfdLock(fd, F_WRLCK) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == EAGAIN || errno == EACCES) return Napi::Boolean::New(info.Env(), false);
  throw ErrnoError(info.Env(), errno, "fcntl(F_OFD_SETLK)", "fd " + std::to_string(fd));
}

// unlockFile(fd): release explicitly before close, so a child that inherited a copy of the fd
// between fork and exec cannot keep the lock alive.
Napi::Value UnlockFile(const Napi::CallbackInfo& info) {
  int fd = ToFd(info);
  if (SetOfdLock(fd, F_UNLCK) != 0) {
    throw ErrnoError(info.Env(), errno, "fcntl(F_OFD_SETLK)", "fd " + std::to_string(fd));
  }
  return info.Env().Undefined();
}

}  // namespace

void InitLock(Napi::Env env, Napi::Object exports) {
  exports.Set("tryLockFile", Napi::Function::New(env, TryLockFile, "tryLockFile"));
  exports.Set("unlockFile", Napi::Function::New(env, UnlockFile, "unlockFile"));
}

}  // namespace cinderblock
