// Writing dumps, reading them back, leftovers and retention.
#include "sleuth/dumps/writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "sleuth/dumps/layout.h"
#include "sleuth/dumps/leftovers.h"
#include "sleuth/dumps/retention.h"
#include "test_dir.h"

namespace sleuth::dumps {
namespace {

DumpMeta Meta(int64_t t_ns, int64_t pid = 4242) {
  DumpMeta m;
  m.event_id = NewEventId();
  m.kind = "cpu";
  m.reason = "abs";
  m.metric = "cpu";
  m.value = 82.5;
  m.thresholds = DumpMeta::Thresholds{10, 25, 70, 0, 60};
  m.pid = pid;
  m.hostname = "host-a";
  m.service = "my app/v2";
  m.labels = {{"env", "test"}};
  m.cmdline = {"./app", "--flag"};
  m.start_time_unix_nanos = t_ns;
  return m;
}

std::set<std::string> Names(const DumpDir& d) {
  std::set<std::string> out;
  EXPECT_TRUE(d.ForEachEntry([&](std::string_view n, bool) { out.emplace(n); }).ok());
  return out;
}

// A pid that is certainly not alive: a child that has exited and been reaped.
pid_t DeadPid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status;
  ::waitpid(pid, &status, 0);
  return pid;
}

void Put(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

void Age(const std::string& path, int64_t seconds_ago) {
  struct timespec times[2];
  clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= seconds_ago;
  times[1] = times[0];
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
}

int64_t NowNanos(int64_t plus_seconds = 0) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t{ts.tv_sec} + plus_seconds) * 1'000'000'000 + ts.tv_nsec;
}

class WriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::FreshDir("writer");
    Result<DumpDir> d = DumpDir::Open(root_, Create::kYes);
    ASSERT_TRUE(d.ok()) << d.status().message();
    dir_ = std::move(*d);
  }
  void TearDown() override {
    if (!HasFailure()) testing::RemoveTree(root_);
  }
  std::string root_;
  DumpDir dir_;
};

TEST_F(WriterTest, WritesProfileTextThenSidecarAndParsesBack) {
  DumpMeta m = Meta(1'764'497'702'000'000'000);
  Result<WrittenDump> w = WriteDump(dir_, m, "\x1f\x8b profile", std::string_view("Thread 1\n"));
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->base, DumpBaseName(m));
  EXPECT_EQ(w->profile_path, root_ + "/" + w->base + ".pb.gz");
  EXPECT_EQ(Names(dir_), (std::set<std::string>{w->base + ".pb.gz", w->base + ".txt",
                                                w->base + ".json"}));
  for (const char* ext : {".pb.gz", ".txt", ".json"}) {
    struct stat st;
    ASSERT_EQ(::stat((root_ + "/" + w->base + ext).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << ext;
  }
  EXPECT_TRUE(IsComplete(dir_, w->base));
  Result<std::string> text = dir_.ReadOwnFile(w->base + ".json", kMaxSidecarBytes);
  ASSERT_TRUE(text.ok());
  Result<DumpMeta> back = ParseSidecar(*text);
  ASSERT_TRUE(back.ok()) << back.status().message();
  DumpMeta expected = m;
  expected.profile_file = w->base + ".pb.gz";
  expected.profile_bytes = 10;
  EXPECT_EQ(*back, expected);
}

TEST_F(WriterTest, LeftoversOfDeadWritersGoLiveOnesStay) {
  pid_t dead = DeadPid();
  pid_t me = ::getpid();
  std::string dead_s = std::to_string(dead), me_s = std::to_string(me);
  std::string live_start = std::to_string(SelfStartTicks());
  // Scratch files.
  Put(root_ + "/a.json.tmp." + dead_s + "-123.00112233", "x");   // dead pid
  Put(root_ + "/b.json.tmp." + me_s + "-1.00112233", "x");       // our pid, other start: reused
  Put(root_ + "/c.json.tmp." + me_s + "-" + live_start + ".ab", "x");  // ours, alive: kept
  Put(root_ + "/d.pb.gz.tmp." + dead_s, "x");                      // old format, dead
  Put(root_ + "/sleuth-cpu." + dead_s + ".0.prof", "x");
  Put(root_ + "/sleuth-cpu." + me_s + ".1.prof", "x");            // live profile: kept
  // Payloads without sidecar.
  DumpMeta of_dead = Meta(1'764'497'702'000'000'000, dead);
  DumpMeta of_me = Meta(1'764'497'703'000'000'000, me);
  DumpMeta old_of_me = Meta(1'764'497'704'000'000'000, me);
  Put(root_ + "/" + DumpBaseName(of_dead) + ".pb.gz", "x");
  Put(root_ + "/" + DumpBaseName(of_dead) + ".txt", "x");
  Put(root_ + "/" + DumpBaseName(of_me) + ".pb.gz", "x");  // being written now: kept
  Put(root_ + "/" + DumpBaseName(old_of_me) + ".pb.gz", "x");
  Age(root_ + "/" + DumpBaseName(old_of_me) + ".pb.gz", 3600);
  // A complete dump of a dead writer is no leftover.
  Result<WrittenDump> complete = WriteDump(dir_, Meta(1'764'497'705'000'000'000, dead), "p",
                                           std::nullopt);
  ASSERT_TRUE(complete.ok());

  // Just moved in (fresh ctime): spared even though its writer is dead.
  EXPECT_EQ(RemoveLeftovers(dir_, NowNanos()), 4);  // a, b, d, sleuth-cpu.<dead>
  EXPECT_TRUE(dir_.Exists(DumpBaseName(of_dead) + ".pb.gz"));
  EXPECT_EQ(RemoveLeftovers(dir_, NowNanos(5)), 3);  // of_dead .pb.gz/.txt, old_of_me
  EXPECT_EQ(Names(dir_),
            (std::set<std::string>{"c.json.tmp." + me_s + "-" + live_start + ".ab",
                                   "sleuth-cpu." + me_s + ".1.prof",
                                   DumpBaseName(of_me) + ".pb.gz", complete->base + ".pb.gz",
                                   complete->base + ".json"}));
}

TEST_F(WriterTest, RetentionCountsEveryByteAndSparesExempt) {
  std::vector<std::string> bases;
  for (int i = 0; i < 5; i++) {
    auto d = WriteDump(dir_, Meta(1'764'497'702'000'000'000 + i * 1'000'000'000LL),
                       std::string(100, 'p'), std::nullopt);
    ASSERT_TRUE(d.ok());
    bases.push_back(d->base);
    struct timespec times[2] = {{1000 + i, 0}, {1000 + i, 0}};
    ::utimensat(dir_.fd(), (d->base + ".json").c_str(), times, 0);
  }
  RetentionOutcome by_count = EnforceRetention(dir_, {.max_dumps = 3}, nullptr);
  EXPECT_EQ(by_count.removed, 2);
  EXPECT_EQ(by_count.dumps, 3u);
  EXPECT_FALSE(dir_.Exists(bases[0] + ".json"));
  EXPECT_FALSE(dir_.Exists(bases[0] + ".pb.gz"));
  EXPECT_FALSE(dir_.Exists(bases[1] + ".json"));

  // Bytes the directory holds besides dumps count too: a big leftover of a
  // live writer and the uploader's state push dumps out.
  uint64_t dumps_bytes = dir_.TotalBytes();
  Put(root_ + "/sleuth-cpu." + std::to_string(::getpid()) + ".9.prof", std::string(5000, 'x'));
  Result<DumpDir> state = dir_.Subdir(".sleuth-upload", Create::kYes);
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE(state->WriteAtomic("lock", std::string(1000, 'l'), Sync::kNo).ok());
  EXPECT_EQ(dir_.TotalBytes(), dumps_bytes + 6000);
  RetentionOutcome exempt = EnforceRetention(
      dir_, {.max_dump_bytes = 6000}, [&](const std::string& b) { return b == bases[2]; });
  EXPECT_EQ(exempt.removed, 2);  // 3 and 4; 2 is exempt
  EXPECT_TRUE(dir_.Exists(bases[2] + ".json"));
  EXPECT_FALSE(dir_.Exists(bases[4] + ".json"));
}

TEST_F(WriterTest, AFailedWriteLeavesNoPartialDump) {
  // A directory in place of the sidecar's name makes the last rename fail.
  DumpMeta m = Meta(1'764'497'702'000'000'000);
  ASSERT_EQ(::mkdir((root_ + "/" + DumpBaseName(m) + ".json").c_str(), 0700), 0);
  Result<WrittenDump> w = WriteDump(dir_, m, "p", std::string_view("t"));
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(Names(dir_), (std::set<std::string>{DumpBaseName(m) + ".json"}));
}

}  // namespace
}  // namespace sleuth::dumps
