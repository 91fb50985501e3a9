// The threads I/O backend (pread/pwrite), for kernels or sandboxes without io_uring; see
// io_backend.h.
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "io_backend.h"
#include "ioprio.h"

namespace cinderblock {
namespace copyengine {

namespace {

// A reader thread and a writer thread, each taking requests in order from its own queue, so a
// read and a write are always in flight together.
class ThreadBackend : public IoBackend {
 public:
  ThreadBackend(int ioprioClass, int ioprioLevel) : ioprioClass_(ioprioClass), ioprioLevel_(ioprioLevel) {}
  ~ThreadBackend() override {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    workCv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int Start() {
    try {
      threads_.emplace_back([this] { Loop(false); });
      threads_.emplace_back([this] { Loop(true); });
    } catch (const std::system_error& e) {
      return -e.code().value();
    }
    return 0;
  }
  int Queue(const IoReq& r) override {
    {
      std::lock_guard<std::mutex> lock(m_);
      (r.write ? writes_ : reads_).push_back(r);
    }
    workCv_.notify_all();
    return 0;
  }
  int Flush() override { return 0; }
  int Wait(IoDone* out) override {
    std::unique_lock<std::mutex> lock(m_);
    doneCv_.wait(lock, [this] { return !done_.empty(); });
    *out = done_.front();
    done_.pop_front();
    return 0;
  }
  bool Poll(IoDone* out) override {
    std::lock_guard<std::mutex> lock(m_);
    if (done_.empty()) return false;
    *out = done_.front();
    done_.pop_front();
    return true;
  }
  const char* Name() const override { return "threads"; }

 private:
  void Loop(bool writer) {
    pthread_setname_np(pthread_self(), writer ? "cb-copy-wr" : "cb-copy-rd");
    IoprioSet(ioprioClass_, ioprioLevel_);  // already checked on the job's thread
    std::deque<IoReq>& q = writer ? writes_ : reads_;
    for (;;) {
      IoReq r;
      {
        std::unique_lock<std::mutex> lock(m_);
        workCv_.wait(lock, [&] { return stop_ || !q.empty(); });
        if (q.empty()) return;  // stop_ with nothing left (the pipeline drains before stopping)
        r = q.front();
        q.pop_front();
      }
      ssize_t n = r.write ? pwrite(r.fd, r.buf, r.len, static_cast<off_t>(r.off)) : pread(r.fd, r.buf, r.len, static_cast<off_t>(r.off));
      IoDone d{r.tag, n < 0 ? -static_cast<int64_t>(errno) : static_cast<int64_t>(n)};
      {
        std::lock_guard<std::mutex> lock(m_);
        done_.push_back(d);
      }
      doneCv_.notify_one();
    }
  }

  const int ioprioClass_;
  const int ioprioLevel_;
  std::mutex m_;
  std::condition_variable workCv_;
  std::condition_variable doneCv_;
  std::deque<IoReq> reads_;
  std::deque<IoReq> writes_;
  std::deque<IoDone> done_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

int StartThreadBackend(int ioprioClass, int ioprioLevel, std::unique_ptr<IoBackend>* out) {
  auto t = std::make_unique<ThreadBackend>(ioprioClass, ioprioLevel);
  int r = t->Start();
  if (r == 0) *out = std::move(t);
  return r;
}

}  // namespace copyengine
}  // namespace cinderblock
