// The uploader as a process: killed with SIGKILL in the middle of a queue
// and restarted (nothing lost, nothing acknowledged sent again), and 10,000
// queued dumps shipped with flat memory. Label: slow.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>

#include "test_util.h"

namespace sleuth::uploader {
namespace {

using namespace testing;  // NOLINT: the test helpers
using std::chrono::milliseconds;
using std::chrono::seconds;

struct Runner {
  pid_t pid = -1;
  int out_fd = -1;
};

Runner StartRunner(const std::string& dir, const std::string& url) {
  int out[2];
  EXPECT_EQ(::pipe(out), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    ::execl(SLEUTH_UPLOAD_RUNNER, SLEUTH_UPLOAD_RUNNER, "--dir", dir.c_str(), "--url", url.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  return Runner{pid, out[0]};
}

// Waits for the runner to exit; returns its exit code and its stdout.
std::pair<int, std::string> Finish(Runner r) {
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(r.out_fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(r.out_fd);
  int status = 0;
  ::waitpid(r.pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

long Field(const std::string& out, const std::string& name) {
  size_t at = out.find(name + "=");
  return at == std::string::npos ? -1 : std::stol(out.substr(at + name.size() + 1));
}

std::set<std::string> DoneMarkers(const std::string& dir) {
  std::set<std::string> done;
  Result<std::vector<std::string>> names = ListDir(dir + "/.sleuth-upload/default");
  if (!names.ok()) return done;
  for (const std::string& n : *names) {
    if (n.size() > 5 && n.substr(n.size() - 5) == ".done") done.insert(n.substr(0, n.size() - 5));
  }
  return done;
}

class UploaderProcessTest : public DirTest {};

TEST_F(UploaderProcessTest, KillNineMidQueueLosesNothingAndResendsNothingAcknowledged) {
  // Slow answers, so each kill lands with requests in flight.
  auto rx = StartReceiver(R"({"default": {"status": 200, "delay_ms": 25}})");
  ASSERT_TRUE(rx);
  std::map<std::string, std::string> base_of;  // event id -> base
  for (int i = 0; i < 80; ++i) {
    WrittenDump d = Dump();
    base_of[d.event_id] = d.base;
  }
  auto received = [&] {
    Result<ReceiverStats> stats = rx->Stats();
    return stats.ok() ? static_cast<size_t>(stats->requests) : 0u;
  };
  // What the receiver had seen, and which dumps had their 2xx recorded
  // (a .done marker), when the last process was killed.
  size_t seen_at_kill = 0;
  std::set<std::string> acknowledged;
  auto check_no_resend = [&] {
    for (const RecordedRequest& req : rx->Requests()) {
      if (static_cast<size_t>(req.seq) <= seen_at_kill) continue;
      std::string base = base_of[req.Header("x-sleuth-event-id")];
      EXPECT_EQ(acknowledged.count(base), 0u) << base << " was acknowledged, then sent again";
    }
  };
  for (int round = 0; round < 4; ++round) {
    Runner r = StartRunner(dumps_, rx->url());
    size_t target = received() + 8;
    ASSERT_TRUE(WaitFor([&] { return received() >= target; }));
    ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
    Finish(r);
    // Requests already on the wire land at the receiver; their 2xx goes
    // nowhere, so those dumps may be sent once more (the event id lets a
    // backend de-duplicate them).
    std::this_thread::sleep_for(milliseconds(100));
    check_no_resend();
    seen_at_kill = received();
    acknowledged = DoneMarkers(dumps_);
    EXPECT_GE(acknowledged.size() + 4 * (round + 1), seen_at_kill)
        << "markers must follow the answers closely";
  }
  // A last run ships the rest.
  auto [code, out] = Finish(StartRunner(dumps_, rx->url()));
  EXPECT_EQ(code, 0) << out;
  check_no_resend();
  std::map<std::string, int> sent;
  for (const RecordedRequest& req : rx->Requests()) sent[req.Header("x-sleuth-event-id")]++;
  size_t resent = 0;
  for (const auto& [id, base] : base_of) {
    EXPECT_GE(sent[id], 1) << "lost: " << base;
    if (sent[id] > 1) ++resent;
  }
  std::printf("%zu dumps, 4 kills: %zu sent twice (each was in flight at a kill)\n", base_of.size(),
              resent);
  // A resend is only possible for a request in flight when its process was
  // killed: at most `concurrency` (2) per kill, 4 kills.
  EXPECT_LE(resent, 8u);
  EXPECT_EQ(DoneMarkers(dumps_).size(), base_of.size());
}

TEST_F(UploaderProcessTest, TenThousandQueuedDumpsShipWithFlatMemory) {
  auto rx = StartReceiver("", 0, /*save_bodies=*/false);
  ASSERT_TRUE(rx);
  // A small queue first, for the baseline of the same process.
  for (int i = 0; i < 200; ++i) Dump();
  auto [small_code, small_out] = Finish(StartRunner(dumps_, rx->url()));
  ASSERT_EQ(small_code, 0) << small_out;
  long small_kib = Field(small_out, "vmhwm_kib");

  for (int i = 0; i < 10'000; ++i) Dump();
  auto [code, out] = Finish(StartRunner(dumps_, rx->url()));
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(Field(out, "delivered"), 10'000);
  Result<ReceiverStats> stats = rx->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->requests, 10'200);
  long kib = Field(out, "vmhwm_kib");
  RecordProperty("peak_rss_kib_200", std::to_string(small_kib));
  RecordProperty("peak_rss_kib_10000", std::to_string(kib));
  std::printf("peak RSS of the uploading process: %ld KiB with 200 queued, %ld KiB with 10,000\n",
              small_kib, kib);
  if (Field(out, "sanitized") == 1) GTEST_SKIP() << "sanitizer builds inflate RSS; not measured";
  EXPECT_LT(kib, 64 * 1024) << "the uploader's peak RSS grew past 64 MiB";
  // Flat: 50x the queue may not cost more than a few MiB more.
  EXPECT_LT(kib - small_kib, 8 * 1024);
}

}  // namespace
}  // namespace sleuth::uploader
