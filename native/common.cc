#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <system_error>
#include <thread>

namespace cinderblock {

namespace {

// One in-flight call: created on the JS thread, filled in by the worker, settled and freed
// back on the JS thread.
struct Job {
  Napi::Promise::Deferred deferred;
  std::function<Outcome()> work;
  Outcome outcome;
};

void Settle(Napi::Env env, Job* job) {
  const Outcome& o = job->outcome;
  if (o.err != 0) {
    job->deferred.Reject(ErrnoError(env, o.err, o.syscall, o.path).Value());
  } else if (o.kind == Outcome::Kind::Number) {
    job->deferred.Resolve(Napi::Number::New(env, o.number));
  } else if (o.kind == Outcome::Kind::Boolean) {
    job->deferred.Resolve(Napi::Boolean::New(env, o.boolean));
  } else if (o.kind == Outcome::Kind::Value) {
    job->deferred.Resolve(o.value(env));
  } else {
    job->deferred.Resolve(env.Undefined());
  }
}

}  // namespace

Napi::Promise RunOnOwnThread(Napi::Env env, std::function<Outcome()> work) {
  auto job = std::make_unique<Job>(Job{Napi::Promise::Deferred::New(env), std::move(work), {}});
  Napi::Promise promise = job->deferred.Promise();

  // The thread-safe function is only a way back onto the JS thread; it also keeps the event
  // loop alive while the call is running, so a pending discard is not cut short by exit.
  auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                            "cinderblock_native", 0, 1);
  Job* raw = job.get();
  try {
    std::thread([raw, tsfn]() mutable {
      raw->outcome = raw->work();
      // If the environment is already torn down the call fails and the job leaks; the
      // process is exiting anyway.
      tsfn.BlockingCall([raw](Napi::Env env, Napi::Function) {
        std::unique_ptr<Job> owned(raw);
        Settle(env, owned.get());
      });
      tsfn.Release();
    }).detach();
  } catch (const std::system_error& e) {
    tsfn.Release();
    // Thread creation failed (EAGAIN: out of threads/memory): reject rather than crash.
    job->deferred.Reject(ErrnoError(env, e.code().value(), "pthread_create", "").Value());
    return promise;
  }
  job.release();  // owned by the thread's callback now
  return promise;
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path) {
  Napi::Error e = Napi::Error::New(env, std::strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

Target ToTarget(const Napi::Value& v, const char* what) {
  Target t;
  if (v.IsString()) {
    t.path = v.As<Napi::String>().Utf8Value();
    if (t.path.empty() || t.path.find('\0') != std::string::npos) {
      throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a non-empty path");
    }
  } else if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 2147483647 && std::floor(d) == d)) {
      throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a file descriptor (integer >= 0)");
    }
    t.fd = static_cast<int>(d);
  } else {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a path or a file descriptor");
  }
  return t;
}

Outcome WithFd(const Target& t, int flags, const std::function<Outcome(int fd)>& op) {
  if (t.fd >= 0) return op(t.fd);
  int fd = open(t.path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Outcome::Fail(errno, "open", t.path);
  Outcome o = op(fd);
  close(fd);
  return o;
}

uint64_t ToOffset(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0 && std::floor(d) == d)) {
    throw Napi::RangeError::New(v.Env(), std::string(what) + " must be an integer between 0 and 2^53-1");
  }
  return static_cast<uint64_t>(d);
}

}  // namespace cinderblock
