// Shared plumbing for cinderblock's native functions: how blocking calls leave the JS
// thread, how a failed syscall becomes a JS error, and how a call names its target.
#pragma once

#ifndef __linux__
#error "cinderblock_native uses Linux-only interfaces (block ioctls, FICLONE, OFD locks) and builds on Linux only"
#endif

#include <napi.h>

#include <functional>
#include <string>

namespace cinderblock {

// What a blocking call run on its own thread hands back to the JS thread.
struct Outcome {
  enum class Kind { Undefined, Number, Boolean, Value };

  int err = 0;                // errno of the failing call; 0 on success
  const char* syscall = "";   // which call failed, e.g. "ioctl(BLKDISCARD)"
  std::string path;           // what it was called on: a path or "fd N"
  Kind kind = Kind::Undefined;
  double number = 0;
  bool boolean = false;
  // Kind::Value: builds the result on the JS thread from what the worker produced (a table, a
  // list of buffers); JS values cannot be made on the worker thread.
  std::function<Napi::Value(Napi::Env)> value;

  static Outcome Done() { return Outcome{}; }
  static Outcome Number(double v) {
    Outcome o;
    o.kind = Kind::Number;
    o.number = v;
    return o;
  }
  static Outcome Boolean(bool v) {
    Outcome o;
    o.kind = Kind::Boolean;
    o.boolean = v;
    return o;
  }
  static Outcome Of(std::function<Napi::Value(Napi::Env)> make) {
    Outcome o;
    o.kind = Kind::Value;
    o.value = std::move(make);
    return o;
  }
  static Outcome Fail(int err, const char* syscall, std::string path) {
    Outcome o;
    o.err = err;
    o.syscall = syscall;
    o.path = std::move(path);
    return o;
  }
};

// Runs `work` on a thread of its own and returns a Promise settled on the JS thread.
// A thread per call rather than libuv's pool: a discard or zero-out of a large device, or any
// call on a hung device, can take minutes, and must not starve fs/dns/crypto of the 4 pool threads.
Napi::Promise RunOnOwnThread(Napi::Env env, std::function<Outcome()> work);

// An Error carrying errno, syscall and path. The TypeScript facade adds `code` and a message
// that says what was attempted and what to do; this one only has strerror's text.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path);

// A file or device named either by path (opened and closed by us) or by an fd the caller owns.
struct Target {
  std::string path;
  int fd = -1;

  std::string Describe() const { return fd >= 0 ? "fd " + std::to_string(fd) : path; }
};

// Reads a JS `string | number` argument as a Target; throws a TypeError otherwise.
Target ToTarget(const Napi::Value& v, const char* what);

// Opens `t` (O_CLOEXEC added, so commands we spawn never inherit it) unless it is already an fd,
// runs `op` on the fd, and closes only what it opened.
Outcome WithFd(const Target& t, int flags, const std::function<Outcome(int fd)>& op);

// Reads a JS number that must be a non-negative integer that fits in 53 bits.
uint64_t ToOffset(const Napi::Value& v, const char* what);

void InitBlockdev(Napi::Env env, Napi::Object exports);
void InitReflink(Napi::Env env, Napi::Object exports);
void InitLock(Napi::Env env, Napi::Object exports);
void InitSdNotify(Napi::Env env, Napi::Object exports);
void InitDm(Napi::Env env, Napi::Object exports);
void InitDirectRead(Napi::Env env, Napi::Object exports);

}  // namespace cinderblock
