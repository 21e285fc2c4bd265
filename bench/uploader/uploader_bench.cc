// uploader_bench: how fast the uploader drains a queue to a loopback
// receiver, and how much memory it needs with a long queue. Prints; asserts
// nothing.
//
//   uploader_bench [--dumps 2000] [--rss-dumps 10000] [--concurrency 2]
//                  [--protocol pyroscope] [--receiver both|python|cpp]
//
// Throughput is measured twice: against tests/receiver.py (the test
// server, written for clarity and recording every request to disk, so it
// is usually the bottleneck) and against a minimal C++ HTTP/1.1 receiver in
// this process that only reads requests and answers 200. Both report how
// many TCP connections the uploader opened (keep-alive: one per concurrent
// request). Peak RSS is read (VmHWM) from a fresh process that ships
// --rss-dumps queued dumps.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dump_factory.h"
#include "receiver_process.h"
#include "sleuth/common/clock.h"
#include "sleuth/common/files.h"
#include "sleuth/uploader/uploader.h"

namespace {

using sleuth::uploader::testing::DumpSpec;
using Clock = std::chrono::steady_clock;

// A minimal HTTP/1.1 server: one thread per connection, keep-alive,
// Content-Length bodies only, every answer "200 OK". Enough for the
// uploader; no more.
class MiniReceiver {
 public:
  MiniReceiver() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      std::perror("mini receiver");
      std::exit(1);
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~MiniReceiver() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }

 private:
  void Accept() {
    while (!stopping_) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      connections_++;
      std::thread([this, fd] { Serve(fd); }).detach();
    }
  }
  void Serve(int fd) {
    std::string buf;
    char chunk[65536];
    for (;;) {
      size_t head_end;
      while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n <= 0) return (void)::close(fd);
        buf.append(chunk, static_cast<size_t>(n));
      }
      size_t body = 0;
      for (size_t at = 0; at < head_end;) {
        size_t eol = buf.find("\r\n", at);
        std::string line = buf.substr(at, eol - at);
        if (line.size() > 15 && strncasecmp(line.c_str(), "content-length:", 15) == 0) {
          body = std::strtoull(line.c_str() + 15, nullptr, 10);
        }
        at = eol + 2;
      }
      size_t total = head_end + 4 + body;
      while (buf.size() < total) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n <= 0) return (void)::close(fd);
        buf.append(chunk, static_cast<size_t>(n));
      }
      buf.erase(0, total);
      requests_++;
      static constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
      if (::write(fd, kOk, sizeof kOk - 1) < 0) return (void)::close(fd);
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
};

long PeakRssKib() {
  sleuth::Result<std::string> status = sleuth::ReadFile("/proc/self/status");
  if (!status.ok()) return -1;
  size_t at = status->find("VmHWM:");
  return at == std::string::npos ? -1 : std::stol(status->substr(at + 6));
}

std::string MakeQueue(const std::string& root, const std::string& name, int count) {
  std::string dir = root + "/" + name;
  if (!sleuth::MakeDirs(dir).ok()) std::exit(1);
  DumpSpec spec;
  spec.extra_functions = 20;  // ~2 KiB dumps, like a small real profile
  for (int i = 0; i < count; ++i) {
    spec.time_unix_nanos += 1'000'000;
    if (!sleuth::uploader::testing::WriteDump(dir, spec).ok()) std::exit(1);
  }
  return dir;
}

struct Run {
  double seconds = 0;
  uint64_t delivered = 0;
};

// Ships `dir` to `url` in this process with a one-shot uploader.
Run Ship(const std::string& dir, const std::string& url, const std::string& protocol,
         int concurrency) {
  sleuth::config::UploadSection cfg;
  sleuth::config::SinkConfig sink;
  sink.url = url;
  sink.protocol = protocol;
  cfg.sinks.push_back(sink);
  cfg.concurrency = concurrency;
  sleuth::uploader::UploaderOptions options;
  options.exit_when_drained = true;
  options.wait_for_lock = false;
  sleuth::uploader::Uploader uploader(cfg, dir, nullptr, sleuth::SystemClock::Instance(), options);
  auto start = Clock::now();
  if (sleuth::Status s = uploader.Start(); !s.ok()) {
    std::fprintf(stderr, "uploader: %s\n", s.message().c_str());
    std::exit(1);
  }
  while (!uploader.WaitDone(std::chrono::seconds(1))) {
  }
  Run run;
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  uploader.Stop(std::chrono::nanoseconds(0));
  run.delivered = uploader.Stats().delivered;
  return run;
}

void Report(const char* receiver, const Run& run, int connections) {
  std::printf("%-28s %6llu dumps in %6.2f s = %7.0f dumps/s, %d TCP connection(s)\n", receiver,
              static_cast<unsigned long long>(run.delivered), run.seconds,
              run.seconds > 0 ? static_cast<double>(run.delivered) / run.seconds : 0.0,
              connections);
}

}  // namespace

int main(int argc, char** argv) {
  int dumps = 2000, rss_dumps = 10'000, concurrency = 2;
  std::string protocol = "pyroscope", receiver = "both";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--dumps")
      dumps = std::stoi(value);
    else if (flag == "--rss-dumps")
      rss_dumps = std::stoi(value);
    else if (flag == "--concurrency")
      concurrency = std::stoi(value);
    else if (flag == "--protocol")
      protocol = value;
    else if (flag == "--receiver")
      receiver = value;
    else if (flag == "--child-ship") {
      // The RSS measurement: a fresh process that only ships `value`.
      std::string url = i + 2 < argc ? argv[i + 2] : "";
      Run run = Ship(value, url, protocol, concurrency);
      std::printf("%llu %.3f %ld\n", static_cast<unsigned long long>(run.delivered), run.seconds,
                  PeakRssKib());
      return 0;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  char root_template[] = "/tmp/sleuth-uploader-bench-XXXXXX";
  if (::mkdtemp(root_template) == nullptr) return 1;
  std::string root = root_template;
  std::printf("uploader_bench: protocol %s, concurrency %d, ~2 KiB dumps, loopback\n",
              protocol.c_str(), concurrency);

  if (receiver == "both" || receiver == "python") {
    std::string dir = MakeQueue(root, "python", dumps);
    sleuth::uploader::testing::ReceiverProcess::Options options;
    options.record_dir = root + "/received";
    options.save_bodies = false;
    auto rx = sleuth::uploader::testing::ReceiverProcess::Start(options);
    if (!rx.ok()) {
      std::fprintf(stderr, "receiver.py: %s\n", rx.status().message().c_str());
      return 1;
    }
    Run run = Ship(dir, (*rx)->url(), protocol, concurrency);
    auto stats = (*rx)->Stats();
    Report("tests/receiver.py (Python):", run, stats.ok() ? stats->connections - 1 : -1);
  }
  if (receiver == "both" || receiver == "cpp") {
    std::string dir = MakeQueue(root, "cpp", dumps);
    MiniReceiver rx;
    Run run = Ship(dir, rx.url(), protocol, concurrency);
    Report("minimal C++ receiver:", run, rx.connections());
  }

  // Peak memory of a fresh process shipping a long queue.
  {
    std::string dir = MakeQueue(root, "rss", rss_dumps);
    MiniReceiver rx;
    int out[2];
    if (::pipe(out) != 0) return 1;
    pid_t child = ::fork();
    if (child == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      std::string c = std::to_string(concurrency);
      ::execl("/proc/self/exe", argv[0], "--protocol", protocol.c_str(), "--concurrency", c.c_str(),
              "--child-ship", dir.c_str(), rx.url().c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char buf[256];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof buf)) > 0) line.append(buf, static_cast<size_t>(n));
    ::close(out[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    unsigned long long delivered = 0;
    double seconds = 0;
    long kib = 0;
    if (std::sscanf(line.c_str(), "%llu %lf %ld", &delivered, &seconds, &kib) == 3) {
      std::printf(
          "peak RSS shipping %d queued dumps: %ld KiB (%.1f MiB); %llu delivered in %.2f s\n",
          rss_dumps, kib, kib / 1024.0, delivered, seconds);
    } else {
      std::printf("RSS child failed: %s\n", line.c_str());
    }
  }
  std::string cleanup = "rm -rf '" + root + "'";
  return std::system(cleanup.c_str()) == 0 ? 0 : 1;
}
