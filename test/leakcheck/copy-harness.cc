// Standalone driver of the copy engine (native/copy_engine.h, no Node) for the leak check:
// runs successes, failures and cancels on both I/O backends, then checks that the process has
// exactly the file descriptors and threads it started with. copy-leakcheck.sh builds it with
// AddressSanitizer/LeakSanitizer/UBSan and runs it again under valgrind --track-fds.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../../native/copy_engine.h"

using namespace cinderblock::copyengine;

static int failures = 0;

// Entries of a /proc directory (for /proc/self/fd this includes the DIR's own fd, the same in
// every count, so before/after still compare).
static int CountDir(const char* d) {
  int n = 0;
  DIR* dir = opendir(d);
  if (!dir) return -1;
  while (struct dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') n++;
  }
  closedir(dir);
  return n;
}

static void Check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) failures++;
}

static void WriteFile(const std::string& path, size_t bytes, bool sparse) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  std::vector<char> buf(1 << 20);
  for (size_t i = 0; i < buf.size(); i++) buf[i] = static_cast<char>(i * 131 + 7);
  for (size_t off = 0; off < bytes; off += buf.size()) {
    if (sparse && (off / buf.size()) % 4 != 0) continue;
    size_t n = bytes - off < buf.size() ? bytes - off : buf.size();
    if (pwrite(fd, buf.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) std::abort();
  }
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) std::abort();
  close(fd);
}

// cancelAfterMs: -1 never, 0 before the job starts, else that long after.
static bool RunJob(Options o, int expectErr, const std::string& what, int cancelAfterMs = -1) {
  Job job(o);
  bool ok;
  if (cancelAfterMs > 0) {
    std::thread t([&] { ok = job.Run(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(cancelAfterMs));
    job.Cancel();
    t.join();
  } else {
    if (cancelAfterMs == 0) job.Cancel();
    ok = job.Run();
  }
  bool good = expectErr == 0 ? ok : (!ok && job.failure.err == expectErr);
  Check(good, what + (ok ? "" : " -> " + job.failure.syscall + ": " + job.failure.detail));
  return good;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s WORKDIR [threads-only]\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  bool threadsOnly = argc > 2 && std::string(argv[2]) == "threads-only";
  std::string dense = dir + "/dense.src", sparse = dir + "/sparse.src";
  WriteFile(dense, (9u << 20) + 777, false);
  WriteFile(sparse, 32u << 20, true);

  int fds0 = CountDir("/proc/self/fd");
  int tasks0 = CountDir("/proc/self/task");

  std::vector<Backend> backends = {Backend::Threads};
  if (!threadsOnly) backends.push_back(Backend::Uring);
  for (Backend b : backends) {
    std::string tag = b == Backend::Uring ? "[io_uring] " : "[threads] ";
    for (int round = 0; round < 3; round++) {
      Options o;
      o.backend = b;
      o.offload = false;
      o.verify = true;
      o.blockSize = 1u << 20;
      o.src = dense;
      o.dst = dir + "/dense.dst";
      RunJob(o, 0, tag + "dense copy with checksum");
      o.src = sparse;
      o.dst = dir + "/sparse.dst";
      o.sparse = true;
      RunJob(o, 0, tag + "sparse copy");
      unlink(o.dst.c_str());
      o.offload = true;
      RunJob(o, 0, tag + "sparse copy, copy_file_range allowed");
      Options c;
      c.backend = b;
      c.mode = Mode::Checksum;
      c.src = sparse;
      RunJob(c, 0, tag + "checksum");
      Options z;
      z.backend = b;
      z.mode = Mode::Clear;
      z.dst = dir + "/sparse.dst";
      z.length = 8 << 20;
      RunJob(z, 0, tag + "clear a file");
      RunJob(z, ECANCELED, tag + "clear (fallocate) cancelled before it starts fails with ECANCELED", 0);
      Options e = o;
      e.src = dir + "/missing";
      RunJob(e, ENOENT, tag + "missing source fails with ENOENT");
      e.src = dense;
      e.dst = dir + "/no/such/dir/dst";
      RunJob(e, ENOENT, tag + "destination in a missing directory fails with ENOENT");
      e.dst = dir + "/dense.dst";
      e.length = 64 << 20;
      RunJob(e, EINVAL, tag + "length beyond the source fails with EINVAL");
      Options k = o;
      k.src = dense;
      k.dst = dir + "/cancel.dst";
      k.offload = false;
      k.bpsLimit = 4u << 20;
      RunJob(k, ECANCELED, tag + "cancelled copy fails with ECANCELED", 150);
      Check(access(k.dst.c_str(), F_OK) != 0, tag + "cancelled copy removed the file it created");
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int fds1 = CountDir("/proc/self/fd");
  int tasks1 = CountDir("/proc/self/task");
  Check(fds1 == fds0, "file descriptors: " + std::to_string(fds0) + " before, " + std::to_string(fds1) + " after");
  Check(tasks1 == tasks0, "threads: " + std::to_string(tasks0) + " before, " + std::to_string(tasks1) + " after");
  std::printf("%s\n", failures ? "LEAKCHECK FAILED" : "leakcheck passed");
  return failures ? 1 : 0;
}
