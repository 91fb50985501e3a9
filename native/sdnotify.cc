// sd_notify(3) without libsystemd: one AF_UNIX datagram to $NOTIFY_SOCKET. Node's dgram module
// only speaks UDP, hence this. The facade reads the environment; this only sends.
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common.h"

namespace cinderblock {

namespace {

// sdNotify(address, state): address is a filesystem path ("/run/systemd/notify") or an
// abstract socket name written with a leading '@'. Throws on failure.
Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString()) throw Napi::TypeError::New(env, "address and state must be strings");
  std::string address = info[0].As<Napi::String>().Utf8Value();
  std::string state = info[1].As<Napi::String>().Utf8Value();

  struct sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  if (address.size() < 2 || (address[0] != '/' && address[0] != '@')) {
    // systemd also knows vsock: addresses (VMs); cinderblock does not run there.
    throw ErrnoError(env, EAFNOSUPPORT, "sendto", address);
  }
  if (address.size() > sizeof(sa.sun_path) - (address[0] == '/' ? 1 : 0)) {
    throw ErrnoError(env, ENAMETOOLONG, "sendto", address);
  }
  std::memcpy(sa.sun_path, address.data(), address.size());
  socklen_t len = offsetof(struct sockaddr_un, sun_path) + address.size();
  if (address[0] == '@') {
    sa.sun_path[0] = '\0';  // abstract namespace: the name is exactly the bytes that follow
  } else {
    len += 1;  // count the terminating NUL of a path, as systemd does
  }

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, errno, "socket", address);
  ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&sa), len);
  int err = errno;
  close(fd);
  if (sent < 0) throw ErrnoError(env, err, "sendto", address);
  return env.Undefined();
}

}  // namespace

void InitSdNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
}

}  // namespace cinderblock
