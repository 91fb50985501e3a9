// JS glue for the copy engine (copy_engine.h): copyStart / clearStart / checksumStart each run
// one job on a thread of its own (never libuv's pool: a copy takes minutes) and return a handle
// { promise, cancel(), progress() }. The typed facade is src/native/copy.ts.
#include <napi.h>
#include <pthread.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>
#include <thread>

#include "copy_engine.h"

namespace cinderblock {

namespace {

using copyengine::Job;
using copyengine::Options;

// ---- reading the options object -------------------------------------------------------------

bool GetBool(const Napi::Object& o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

double GetNumber(const Napi::Object& o, const char* key, double def, double min, double max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max && std::floor(d) == d)) {
    throw Napi::RangeError::New(o.Env(), std::string(key) + " must be an integer between " + std::to_string(static_cast<long long>(min)) +
                                             " and " + std::to_string(static_cast<long long>(max)));
  }
  return d;
}

std::string GetString(const Napi::Object& o, const char* key, const std::string& def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::string PathArg(const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a path");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty() || s.find('\0') != std::string::npos) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a non-empty path");
  return s;
}

constexpr double kMaxSafe = 9007199254740991.0;

void ReadCommon(const Napi::Object& o, Options* opts) {
  opts->bpsLimit = static_cast<uint64_t>(GetNumber(o, "bpsLimit", 0, 0, kMaxSafe));
  opts->ioprioClass = static_cast<int>(GetNumber(o, "ioprioClass", 0, 0, 3));
  opts->ioprioLevel = static_cast<int>(GetNumber(o, "ioprioLevel", 4, 0, 7));
  opts->blockSize = static_cast<uint32_t>(GetNumber(o, "blockSize", 0, 0, copyengine::kMaxBlockSize));
  opts->depth = static_cast<uint32_t>(GetNumber(o, "depth", 0, 0, copyengine::kMaxDepth));
  opts->sync = GetBool(o, "sync", true);
  opts->direct = GetBool(o, "direct", true);
  std::string backend = GetString(o, "ioBackend", "auto");
  if (backend == "auto") opts->backend = copyengine::Backend::Auto;
  else if (backend == "io_uring") opts->backend = copyengine::Backend::Uring;
  else if (backend == "threads") opts->backend = copyengine::Backend::Threads;
  else throw Napi::TypeError::New(o.Env(), "ioBackend must be 'auto', 'io_uring' or 'threads'");
  opts->testFault = GetString(o, "testFault", "");
}

// ---- one running job --------------------------------------------------------------------------

struct Running {
  std::shared_ptr<Job> job;
  Napi::Promise::Deferred deferred;
  bool ok = false;
};

Napi::Object ResultObject(Napi::Env env, const Job& job) {
  const copyengine::Result& r = job.result;
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytesCopied", Napi::Number::New(env, static_cast<double>(r.bytesCopied)));
  o.Set("bytesWritten", Napi::Number::New(env, static_cast<double>(r.bytesWritten)));
  o.Set("bytesSkippedZero", Napi::Number::New(env, static_cast<double>(r.bytesSkippedZero)));
  o.Set("bytesSkippedHoles", Napi::Number::New(env, static_cast<double>(r.bytesSkippedHoles)));
  o.Set("method", Napi::String::New(env, r.method));
  o.Set("directIoSource", Napi::Boolean::New(env, r.directSrc));
  o.Set("directIoDestination", Napi::Boolean::New(env, r.directDst));
  if (r.hasChecksum) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r.checksum));
    o.Set("checksum", Napi::String::New(env, hex));
  }
  o.Set("ioBackend", Napi::String::New(env, r.backend));
  o.Set("blockSize", Napi::Number::New(env, r.blockSize));
  o.Set("depth", Napi::Number::New(env, r.depth));
  o.Set("elapsedMs", Napi::Number::New(env, r.elapsedMs));
  return o;
}

Napi::Error FailureError(Napi::Env env, const Job& job) {
  const copyengine::Failure& f = job.failure;
  Napi::Error e = Napi::Error::New(env, f.detail.empty() ? std::strerror(f.err) : f.detail);
  e.Set("errno", Napi::Number::New(env, f.err));
  e.Set("syscall", Napi::String::New(env, f.syscall));
  if (!f.path.empty()) e.Set("path", Napi::String::New(env, f.path));
  if (!f.reason.empty()) e.Set("reason", Napi::String::New(env, f.reason));
  e.Set("bytesDone", Napi::Number::New(env, static_cast<double>(f.bytesDone)));
  return e;
}

Napi::Value ProgressObject(Napi::Env env, const Job& job) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytesDone", Napi::Number::New(env, static_cast<double>(job.bytesDone.load())));
  o.Set("bytesTotal", Napi::Number::New(env, static_cast<double>(job.bytesTotal.load())));
  o.Set("bytesWritten", Napi::Number::New(env, static_cast<double>(job.bytesWritten.load())));
  o.Set("bytesSkipped", Napi::Number::New(env, static_cast<double>(job.bytesSkipped.load())));
  o.Set("elapsedMs", Napi::Number::New(env, job.ElapsedMs()));
  return o;
}

// Starts `opts` on its own thread; returns { promise, cancel(), progress() }.
Napi::Value Start(Napi::Env env, Options opts) {
  auto job = std::make_shared<Job>(std::move(opts));
  auto running = std::make_unique<Running>(Running{job, Napi::Promise::Deferred::New(env)});

  Napi::Object handle = Napi::Object::New(env);
  handle.Set("promise", running->deferred.Promise());
  handle.Set("cancel", Napi::Function::New(env, [job](const Napi::CallbackInfo&) { job->Cancel(); }, "cancel"));
  handle.Set("progress", Napi::Function::New(env, [job](const Napi::CallbackInfo& info) { return ProgressObject(info.Env(), *job); }, "progress"));

  // The thread-safe function brings the outcome back to the JS thread and keeps the event loop
  // alive while the copy runs, so a copy is never cut short by the loop running empty.
  auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "cinderblock_copy", 0, 1);
  Running* raw = running.get();
  try {
    std::thread([raw, tsfn]() mutable {
      pthread_setname_np(pthread_self(), "cb-copy");  // visible in top -H, /proc/PID/task/*/comm
      raw->ok = raw->job->Run();
      napi_status s = tsfn.BlockingCall([raw](Napi::Env env, Napi::Function) {
        std::unique_ptr<Running> owned(raw);
        if (owned->ok) owned->deferred.Resolve(ResultObject(env, *owned->job));
        else owned->deferred.Reject(FailureError(env, *owned->job).Value());
      });
      (void)s;  // the environment is gone (process exiting): nothing to settle
      tsfn.Release();
    }).detach();
  } catch (const std::system_error& e) {
    tsfn.Release();
    job->failure.err = e.code().value();
    job->failure.syscall = "pthread_create";
    job->failure.detail = "cannot start the copy thread: " + std::string(std::strerror(e.code().value()));
    running->deferred.Reject(FailureError(env, *job).Value());
    return handle;
  }
  running.release();
  return handle;
}

// copyStart(src, dst, opts)
Napi::Value CopyStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Options opts;
  opts.mode = copyengine::Mode::Copy;
  opts.src = PathArg(info[0], "source");
  opts.dst = PathArg(info[1], "destination");
  Napi::Object o = info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
  ReadCommon(o, &opts);
  opts.length = static_cast<int64_t>(GetNumber(o, "length", -1, -1, kMaxSafe));
  opts.sparse = GetBool(o, "sparse", false);
  Napi::Value z = o.Get("destinationIsZeroed");
  if (z.IsBoolean()) opts.destinationIsZeroed = z.As<Napi::Boolean>().Value() ? copyengine::Tristate::Yes : copyengine::Tristate::No;
  else if (!z.IsUndefined() && !z.IsNull()) throw Napi::TypeError::New(env, "destinationIsZeroed must be a boolean");
  opts.verify = GetBool(o, "verify", false);
  opts.offload = GetBool(o, "offload", true);
  opts.createMode = static_cast<uint32_t>(GetNumber(o, "mode", 0644, 0, 07777));
  // extents: a flat [offset0, length0, offset1, length1, ...] (one array, not one per pair: a
  // fragmented thin LV may have hundreds of thousands of ranges).
  Napi::Value ev = o.Get("extents");
  if (!ev.IsUndefined() && !ev.IsNull()) {
    if (!ev.IsArray()) throw Napi::TypeError::New(env, "extents must be an array of numbers");
    Napi::Array a = ev.As<Napi::Array>();
    uint32_t n = a.Length();
    if (n % 2 != 0) throw Napi::TypeError::New(env, "extents must hold offset, length pairs");
    opts.useExtents = true;
    opts.extents.reserve(n / 2);
    for (uint32_t i = 0; i < n; i += 2) {
      Napi::Value off = a.Get(i), len = a.Get(i + 1);
      if (!off.IsNumber() || !len.IsNumber()) throw Napi::TypeError::New(env, "extents must be an array of numbers");
      double d0 = off.As<Napi::Number>().DoubleValue(), d1 = len.As<Napi::Number>().DoubleValue();
      if (!(d0 >= 0 && d0 <= kMaxSafe && std::floor(d0) == d0 && d1 >= 0 && d1 <= kMaxSafe && std::floor(d1) == d1)) {
        throw Napi::RangeError::New(env, "extents must be non-negative integers");
      }
      opts.extents.emplace_back(static_cast<uint64_t>(d0), static_cast<uint64_t>(d1));
    }
  }
  return Start(env, std::move(opts));
}

// clearStart(path, bytes, opts)
Napi::Value ClearStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Options opts;
  opts.mode = copyengine::Mode::Clear;
  opts.dst = PathArg(info[0], "path");
  if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "bytes must be a number");
  double bytes = info[1].As<Napi::Number>().DoubleValue();
  if (!(bytes >= 0 && bytes <= kMaxSafe && std::floor(bytes) == bytes)) throw Napi::RangeError::New(env, "bytes must be a non-negative integer");
  opts.length = static_cast<int64_t>(bytes);
  Napi::Object o = info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
  ReadCommon(o, &opts);
  opts.allowDiscard = GetBool(o, "allowDiscard", true);
  opts.keepAllocated = GetBool(o, "keepAllocated", false);
  return Start(env, std::move(opts));
}

// checksumStart(path, opts): XXH64 of [0, length) of a file or device.
Napi::Value ChecksumStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Options opts;
  opts.mode = copyengine::Mode::Checksum;
  opts.src = PathArg(info[0], "path");
  Napi::Object o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  ReadCommon(o, &opts);
  opts.length = static_cast<int64_t>(GetNumber(o, "length", -1, -1, kMaxSafe));
  opts.verify = true;
  return Start(env, std::move(opts));
}

}  // namespace

void InitCopy(Napi::Env env, Napi::Object exports) {
  exports.Set("copyStart", Napi::Function::New(env, CopyStart, "copyStart"));
  exports.Set("clearStart", Napi::Function::New(env, ClearStart, "clearStart"));
  exports.Set("checksumStart", Napi::Function::New(env, ChecksumStart, "checksumStart"));
}

}  // namespace cinderblock
