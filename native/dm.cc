// Device-mapper control ioctls on /dev/mapper/control (linux/dm-ioctl.h), so that reading a dm
// table or sending a target message costs an ioctl instead of a `dmsetup` process: in slow
// environments (an emulated lab guest) every process start costs a few hundred ms.
//
// Only the two calls the thin-map lookup needs: DM_TABLE_STATUS with DM_STATUS_TABLE_FLAG (the
// table, as `dmsetup table` prints it) and DM_TARGET_MSG (as `dmsetup message`). Each runs on a
// thread of its own: a message to a pool commits its metadata (disk I/O), and a device whose
// storage hangs can take any time to answer.
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace cinderblock {

namespace {

constexpr const char* kControl = "/dev/mapper/control";

// The interface version we ask for. The kernel refuses a different major, or a minor newer
// than its own; 4.0.0 is what every kernel since 2.6 accepts, and these two calls have not
// changed since then.
constexpr uint32_t kVersion[3] = {DM_VERSION_MAJOR, 0, 0};

// First table buffer (the header included): a thin or linear table is one short line. On
// DM_BUFFER_FULL_FLAG the buffer doubles, up to a limit no real table reaches.
constexpr size_t kFirstBuffer = 16 * 1024;
constexpr size_t kMaxBuffer = 64 * 1024 * 1024;

struct TableLine {
  uint64_t start;
  uint64_t length;
  std::string type;
  std::string params;
};

using Lines = std::vector<TableLine>;

// The table as JS: [{start, length, type, params}], sectors as doubles (exact up to 2^53
// sectors, 4 EiB, far past any device).
Napi::Value LinesToJs(Napi::Env env, const Lines& lines) {
  Napi::Array out = Napi::Array::New(env, lines.size());
  for (size_t i = 0; i < lines.size(); i++) {
    const TableLine& l = lines[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("start", Napi::Number::New(env, static_cast<double>(l.start)));
    o.Set("length", Napi::Number::New(env, static_cast<double>(l.length)));
    o.Set("type", Napi::String::New(env, l.type));
    o.Set("params", Napi::String::New(env, l.params));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// The header the kernel reads for any dm ioctl: version, sizes, and the device by name
// (name only: the kernel refuses a request that also sets uuid or dev).
void InitHeader(dm_ioctl* io, size_t size, const std::string& name, uint32_t flags) {
  std::memset(io, 0, sizeof(*io));
  std::memcpy(io->version, kVersion, sizeof(kVersion));
  io->data_size = static_cast<uint32_t>(size);
  io->data_start = sizeof(dm_ioctl);
  io->flags = flags;
  std::memcpy(io->name, name.data(), name.size());  // checked < DM_NAME_LEN; rest stays NUL
}

// An open /dev/mapper/control, closed on every path.
class Control {
 public:
  Control() : fd_(open(kControl, O_RDWR | O_CLOEXEC)), err_(fd_ < 0 ? errno : 0) {}
  ~Control() {
    if (fd_ >= 0) close(fd_);
  }
  Control(const Control&) = delete;
  Control& operator=(const Control&) = delete;
  int fd() const { return fd_; }
  int err() const { return err_; }

 private:
  int fd_;
  int err_;
};

// 8-byte aligned storage, as the kernel's structures want.
std::unique_ptr<uint64_t[]> Buffer(size_t bytes) { return std::unique_ptr<uint64_t[]>(new uint64_t[(bytes + 7) / 8]()); }

Outcome TableStatus(const std::string& name) {
  Control ctl;
  if (ctl.fd() < 0) return Outcome::Fail(ctl.err(), "open", kControl);
  for (size_t size = kFirstBuffer;; size *= 2) {
    auto storage = Buffer(size);
    auto* io = reinterpret_cast<dm_ioctl*>(storage.get());
    InitHeader(io, size, name, DM_STATUS_TABLE_FLAG);
    if (ioctl(ctl.fd(), DM_TABLE_STATUS, io) != 0) return Outcome::Fail(errno, "ioctl(DM_TABLE_STATUS)", name);
    if (io->flags & DM_BUFFER_FULL_FLAG) {
      // Partial output: ask again with room for all of it rather than return half a table.
      if (size * 2 > kMaxBuffer) return Outcome::Fail(E2BIG, "ioctl(DM_TABLE_STATUS)", name);
      continue;
    }
    auto lines = std::make_shared<Lines>();
    // The kernel sets data_start (where its output begins) and data_size (how much it used);
    // each dm_target_spec is followed by its NUL-terminated params, and `next` is the offset of
    // the following spec from the start of the output. Anything pointing outside what the
    // kernel says it wrote is refused rather than read.
    const char* base = reinterpret_cast<const char*>(io);
    size_t end = io->data_size < size ? io->data_size : size;
    size_t out = io->data_start;
    size_t pos = out;
    for (uint32_t i = 0; i < io->target_count; i++) {
      if (pos + sizeof(dm_target_spec) > end) return Outcome::Fail(EPROTO, "ioctl(DM_TABLE_STATUS)", name);
      dm_target_spec spec;
      std::memcpy(&spec, base + pos, sizeof(spec));
      const char* params = base + pos + sizeof(spec);
      size_t room = end - (pos + sizeof(spec));
      size_t plen = strnlen(params, room);
      if (plen == room) return Outcome::Fail(EPROTO, "ioctl(DM_TABLE_STATUS)", name);
      TableLine line;
      line.start = spec.sector_start;
      line.length = spec.length;
      line.type.assign(spec.target_type, strnlen(spec.target_type, sizeof(spec.target_type)));
      line.params.assign(params, plen);
      lines->push_back(std::move(line));
      if (i + 1 < io->target_count) {
        size_t next = out + spec.next;
        if (spec.next == 0 || next <= pos) return Outcome::Fail(EPROTO, "ioctl(DM_TABLE_STATUS)", name);
        pos = next;
      }
    }
    return Outcome::Of([lines](Napi::Env env) { return LinesToJs(env, *lines); });
  }
}

Outcome TargetMessage(const std::string& name, uint64_t sector, const std::string& message) {
  Control ctl;
  if (ctl.fd() < 0) return Outcome::Fail(ctl.err(), "open", kControl);
  // Header, then dm_target_msg { sector; message[] } with the message NUL-terminated (the
  // kernel refuses one that is not), with room for any text a target hands back.
  size_t size = sizeof(dm_ioctl) + sizeof(dm_target_msg) + message.size() + 1 + 4096;
  auto storage = Buffer(size);
  auto* io = reinterpret_cast<dm_ioctl*>(storage.get());
  InitHeader(io, size, name, 0);
  auto* msg = reinterpret_cast<dm_target_msg*>(reinterpret_cast<char*>(io) + sizeof(dm_ioctl));
  msg->sector = sector;
  std::memcpy(msg->message, message.data(), message.size());
  msg->message[message.size()] = '\0';
  // Never retried: a message may change state (reserve_metadata_snap), and sending it twice
  // would not be the same as sending it once.
  if (ioctl(ctl.fd(), DM_TARGET_MSG, io) != 0) return Outcome::Fail(errno, "ioctl(DM_TARGET_MSG)", name);
  return Outcome::Done();
}

// A dm name as the kernel takes it: non-empty, shorter than DM_NAME_LEN (it must fit with its
// NUL), and no '/' (the kernel refuses it: names become /dev/mapper/ entries). Checked here, not
// left to the kernel, so that a bad name is a clear TypeError and never reaches an ioctl.
std::string ToDmName(const Napi::Value& v) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), "device-mapper name must be a string");
  std::string name = v.As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= DM_NAME_LEN || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(v.Env(), "not a device-mapper name (1 to " + std::to_string(DM_NAME_LEN - 1) +
                                            " bytes, no '/'): " + name.substr(0, 200));
  }
  return name;
}

// dmTable(name): the live table of the named device, one {start, length, type, params} per
// target (sectors); [] when the device has no live table.
Napi::Value DmTable(const Napi::CallbackInfo& info) {
  std::string name = ToDmName(info[0]);
  return RunOnOwnThread(info.Env(), [name]() { return TableStatus(name); });
}

// dmMessage(name, message, sector): sends `message` to the target of the named device that
// covers `sector`.
Napi::Value DmMessage(const Napi::CallbackInfo& info) {
  std::string name = ToDmName(info[0]);
  if (!info[1].IsString()) throw Napi::TypeError::New(info.Env(), "message must be a string");
  std::string message = info[1].As<Napi::String>().Utf8Value();
  if (message.empty() || message.find('\0') != std::string::npos || message.size() > 64 * 1024) {
    throw Napi::TypeError::New(info.Env(), "message must be 1 to 65536 bytes without NUL");
  }
  uint64_t sector = info.Length() > 2 && !info[2].IsUndefined() ? ToOffset(info[2], "sector") : 0;
  return RunOnOwnThread(info.Env(), [name, message, sector]() { return TargetMessage(name, sector, message); });
}

}  // namespace

void InitDm(Napi::Env env, Napi::Object exports) {
  exports.Set("dmTable", Napi::Function::New(env, DmTable, "dmTable"));
  exports.Set("dmMessage", Napi::Function::New(env, DmMessage, "dmMessage"));
}

}  // namespace cinderblock
