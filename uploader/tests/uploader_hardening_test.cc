// The uploader inside a hostile host: a disk that is full, libcurl that
// cannot start a request, a host that closes and reuses our descriptors, a
// host that execs. Each case once made the uploader loop forever, leak
// descriptors into the exec'd program, or write into the host's files.
//
// A binary of its own because it replaces curl_multi_add_handle (below) for the
// whole process.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <set>

#include <curl/curl.h>

#include "sleuth/uploader/uploader.h"
#include "test_util.h"

// The test binary's own curl_multi_add_handle wins over libcurl's at link
// time, so the uploader calls this one. It forwards to libcurl unless told
// to fail, as libcurl does when it runs out of memory.
std::atomic<bool> g_fail_add_handle{false};
std::atomic<uint64_t> g_failed_add_handles{0};
extern "C" CURLMcode curl_multi_add_handle(CURLM* multi, CURL* easy) {
  using Fn = CURLMcode (*)(CURLM*, CURL*);
  static Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "curl_multi_add_handle"));
  if (g_fail_add_handle.load()) {
    g_failed_add_handles++;
    return CURLM_OUT_OF_MEMORY;
  }
  return real != nullptr ? real(multi, easy) : CURLM_INTERNAL_ERROR;
}

namespace sleuth::uploader {
namespace {

using namespace testing;  // NOLINT: the test helpers
using std::chrono::milliseconds;
using std::chrono::seconds;

std::set<int> OpenFds() {
  std::set<int> fds;
  Result<std::vector<std::string>> names = ListDir("/proc/self/fd");
  if (!names.ok()) return fds;
  for (const std::string& n : *names) fds.insert(std::stoi(n));
  return fds;
}

// Stop() must return; on the old code it never did. Fails (and ends the
// process, since the worker cannot be joined) rather than hang.
void StopWithin(Uploader& up, std::chrono::seconds bound) {
  auto stopped = std::async(std::launch::async, [&] { up.Stop(Nanos(0)); });
  if (stopped.wait_for(bound) != std::future_status::ready) {
    ADD_FAILURE() << "Stop() did not return: the worker is stuck in a loop";
    std::fflush(stdout);
    std::_Exit(1);
  }
}

class HardeningTest : public DirTest {
 protected:
  void TearDown() override {
    g_fail_add_handle = false;
    if (!mount_.empty()) ::umount2(mount_.c_str(), MNT_DETACH);
    DirTest::TearDown();
  }

  std::unique_ptr<Uploader> Make(const config::UploadSection& cfg, UploaderOptions options = {}) {
    options.getenv = [](const char*) -> const char* { return nullptr; };
    return std::make_unique<Uploader>(cfg, dumps_, nullptr, SystemClock::Instance(), options);
  }

  bool Delivered(const std::string& base) {
    return PathExists(dumps_ + "/.sleuth-upload/default/" + base + ".done");
  }

  std::string mount_;
};

// curl_multi_add_handle (or curl_easy_init) failing used to put the dump back at the front of the
// window while Dispatch kept looping: a busy loop Stop() could not end.
TEST_F(HardeningTest, ARequestThatCannotStartBacksOffAndStopEndsIt) {
  Dump();
  config::UploadSection cfg = FastConfig("http://127.0.0.1:9");
  cfg.retry_initial = std::chrono::hours(1);
  cfg.retry_max = std::chrono::hours(1);
  g_fail_add_handle = true;
  auto up = Make(cfg);
  ASSERT_TRUE(up->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return up->Stats().retries >= 1; }))
      << "a request that cannot start counts as a failed attempt";
  StopWithin(*up, seconds(30));
  EXPECT_EQ(up->Stats().retries, 1u) << "it waits its backoff (an hour) before trying again";
  EXPECT_EQ(g_failed_add_handles.load(), 1u);
  EXPECT_EQ(up->Stats().delivered, 0u);
}

// With the dump directory's disk full, every 2xx was followed by a failed
// .done write and the same dumps were sent again, 27,455 times in 10
// minutes, and `sleuth upload` never ended.
TEST_F(HardeningTest, ADiskTooFullToRecordDeliveriesStopsTheSinkAndEndsTheRun) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  mount_ = root_ + "/fs";
  ASSERT_TRUE(MakeDirs(mount_).ok());
  if (::mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=1m") != 0) {
    mount_.clear();
    GTEST_SKIP() << "cannot mount a tmpfs here: " << ErrnoText(errno);
  }
  dumps_ = mount_ + "/dumps";
  ASSERT_TRUE(MakeDirs(dumps_ + "/.sleuth-upload/default").ok());
  std::vector<std::string> bases;
  for (int i = 0; i < 3; ++i) bases.push_back(Dump().base);
  {
    // Fill the filesystem to the last byte.
    Result<ScopedFd> filler = OpenFile(mount_ + "/filler", O_WRONLY | O_CREAT, 0600);
    ASSERT_TRUE(filler.ok());
    std::string block(4096, 'x');
    while (::write(filler->get(), block.data(), block.size()) > 0) {
    }
    while (::write(filler->get(), "x", 1) > 0) {
    }
    ASSERT_EQ(errno, ENOSPC);
  }
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);

  UploaderOptions options;
  options.exit_when_drained = true;
  options.give_up_after = seconds(30);
  auto up = Make(FastConfig(rx->url()), options);
  ASSERT_TRUE(up->Start().ok());
  EXPECT_TRUE(up->WaitDone(seconds(60))) << "the run must end, not resend forever";
  StopWithin(*up, seconds(30));
  UploadStats stats = up->Stats();
  EXPECT_EQ(rx->Requests().size(), 1u) << "one delivery, then the sink stops";
  EXPECT_EQ(stats.delivered, 1u);
  EXPECT_EQ(stats.unrecorded, 1u);
  for (const std::string& base : bases) EXPECT_FALSE(Delivered(base));
  bool listed_reason = false;
  Status listed = up->ForEachUndelivered([&](const Undelivered& u) {
    if (u.reason.find("could not be recorded") != std::string::npos) listed_reason = true;
  });
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed_reason) << "what is left says why";
}

// A daemon closes every descriptor at start and opens its own files, which
// take the uploader's numbers. The uploader once wrote its 8-byte wake-ups
// into the host's file, closed fds the host owned and spun on them.
TEST_F(HardeningTest, AHostThatClosesAndReusesOurDescriptorsIsLeftAlone) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  std::set<int> before = OpenFds();
  auto up = Make(FastConfig(rx->url()));
  ASSERT_TRUE(up->Start().ok());
  WrittenDump first = Dump();
  up->Notify();
  ASSERT_TRUE(WaitFor([&] { return Delivered(first.base); }));

  // What the uploader opened: its wake-up socketpair, libcurl's, the kept-alive connection.
  std::vector<int> ours;
  for (int fd : OpenFds()) {
    if (before.count(fd) == 0) ours.push_back(fd);
  }
  ASSERT_FALSE(ours.empty());
  const std::string kContent = "the host's own data\n";
  std::vector<int> host_files;
  for (int fd : ours) {
    char target[256] = {};
    [[maybe_unused]] ssize_t n =
        ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1);
    // The directory lock is the spool's (dumps/), which closes it unchecked
    // on release today; and the listing's own directory fd is gone already.
    std::string what = target;
    if (what.empty() || what.find("/.sleuth-upload/lock") != std::string::npos) continue;
    std::printf("closing the uploader's fd %d (%s) behind its back\n", fd, target);
    ::close(fd);  // behind the uploader's back
    std::string path = root_ + "/host" + std::to_string(fd);
    Result<ScopedFd> file = OpenFile(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_TRUE(file.ok());
    ASSERT_EQ(::write(file->get(), kContent.data(), kContent.size()),
              static_cast<ssize_t>(kContent.size()));
    ASSERT_EQ(::lseek(file->get(), 0, SEEK_SET), 0);
    int raw = file->release();
    if (raw != fd) {
      ASSERT_EQ(::dup3(raw, fd, O_CLOEXEC), fd);
      ::close(raw);
    }
    host_files.push_back(fd);
  }

  // Uploads go on, on descriptors of its own.
  std::vector<std::string> later;
  for (int i = 0; i < 3; ++i) {
    later.push_back(Dump().base);
    up->Notify();
  }
  ASSERT_TRUE(WaitFor([&] {
    for (const std::string& b : later) {
      if (!Delivered(b)) return false;
    }
    return true;
  })) << "the uploader must re-create what it lost and deliver";
  EXPECT_GE(up->Stats().fds_taken, 1u);
  up->Notify();
  StopWithin(*up, seconds(30));

  for (int fd : host_files) {
    EXPECT_GE(::fcntl(fd, F_GETFD), 0) << "fd " << fd << " of the host was closed";
    EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), 0) << "fd " << fd << " was read from or written to";
    Result<std::string> content = ReadFile(root_ + "/host" + std::to_string(fd));
    ASSERT_TRUE(content.ok());
    EXPECT_EQ(*content, kContent) << "fd " << fd << " was written to";
    ::close(fd);
  }
}

// The host execs (under `ulimit -n 256`, 300 self-execs used to end in
// EMFILE): nothing the uploader or libcurl opened may survive into it.
TEST_F(HardeningTest, NoSocketOfTheUploaderSurvivesAnExec) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  auto up = Make(FastConfig(rx->url()));
  ASSERT_TRUE(up->Start().ok());
  WrittenDump d = Dump();
  up->Notify();
  ASSERT_TRUE(WaitFor([&] { return Delivered(d.base); }));
  // The connection is kept alive in libcurl's pool now, beside libcurl's
  // own socketpair and the uploader's wake-up socketpair.
  FILE* child = ::popen("ls -l /proc/self/fd/ 2>&1", "r");
  ASSERT_NE(child, nullptr);
  std::string listing;
  char line[512];
  while (std::fgets(line, sizeof line, child) != nullptr) listing += line;
  ::pclose(child);
  up->Stop(Nanos(0));
  EXPECT_EQ(listing.find("socket:"), std::string::npos)
      << "descriptors inherited across exec:\n"
      << listing;
}

}  // namespace
}  // namespace sleuth::uploader
