#include "sleuth/agent/dump_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "sleuth/common/files.h"
#include "sleuth/dumps/layout.h"

namespace sleuth::agent {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/sleuth_dump_writer_test.XXXXXX";
  return mkdtemp(tmpl);
}

DumpMeta Meta(int64_t t_ns) {
  DumpMeta m;
  m.event_id = NewEventId();
  m.kind = "cpu";
  m.reason = "abs";
  m.metric = "cpu";
  m.value = 82.5;
  m.average = 20;
  m.thresholds = DumpMeta::Thresholds{10, 25, 70, 0, 60};
  m.pid = 4242;
  m.hostname = "host-a";
  m.service = "my app/v2";
  m.labels = {{"env", "test"}};
  m.cmdline = {"./app", "--flag", "\xff\xfe"};  // invalid UTF-8 must not throw
  m.start_time_unix_nanos = t_ns;
  return m;
}

TEST(DumpWriter, EventIdsAreUniqueHex) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; i++) ids.insert(NewEventId());
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_TRUE(std::regex_match(*ids.begin(), std::regex("[0-9a-f]{32}")));
}

TEST(DumpWriter, NamesCarryServicePidKindTimeAndId) {
  DumpMeta m = Meta(1'764'497'702'123'456'789);  // 2025-11-30T10:15:02.123Z
  EXPECT_EQ(dumps::FormatDumpTime(m.start_time_unix_nanos), "20251130T101502.123Z");
  EXPECT_EQ(DumpBaseName(m), "my_app_v2.4242.cpu.20251130T101502.123Z." + m.event_id);
}

TEST(DumpWriter, WritesProfileSidecarAndTextWithModes) {
  std::string dir = TempDir() + "/dumps";
  DumpWriter w(dir, 10, 1 << 20);
  ASSERT_TRUE(w.Prepare().ok());
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  DumpMeta m = Meta(1'764'497'702'000'000'000);
  auto written = w.Write(m, std::string("\x1f\x8b profile"), std::string("Thread 1 (main):\n"));
  ASSERT_TRUE(written.ok()) << written.status().message();
  ASSERT_EQ(stat(written->profile_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(ReadFile(dir + "/" + written->base + ".txt").ok());
  auto sidecar = ReadFile(written->sidecar_path);
  ASSERT_TRUE(sidecar.ok());
  auto j = nlohmann::json::parse(*sidecar);
  EXPECT_EQ(j["event_id"], m.event_id);
  EXPECT_EQ(j["kind"], "cpu");
  EXPECT_EQ(j["reason"], "abs");
  EXPECT_EQ(j["value"], 82.5);
  EXPECT_EQ(j["thresholds"]["abs"], 70);
  EXPECT_EQ(j["pid"], 4242);
  EXPECT_EQ(j["labels"]["env"], "test");
  EXPECT_EQ(j["start_time"], "2025-11-30T10:15:02.000Z");
  EXPECT_EQ(j["profile_file"], DumpBaseName(m) + ".pb.gz");
  EXPECT_EQ(j["profile_bytes"], 10);
  EXPECT_EQ(j["cmdline"].size(), 3u);
}

TEST(DumpWriter, RetentionRemovesOldestByCountThenBytes) {
  std::string dir = TempDir();
  DumpWriter w(dir, 3, 0);
  ASSERT_TRUE(w.Prepare().ok());
  std::vector<std::string> bases;
  for (int i = 0; i < 5; i++) {
    auto d = w.Write(Meta(1'764'497'702'000'000'000 + i * 1'000'000'000LL), "p", std::nullopt);
    ASSERT_TRUE(d.ok());
    bases.push_back(dir + "/" + d->base);
    // Distinct mtimes so "oldest" is well defined on coarse file systems.
    struct timespec times[2] = {{1000 + i, 0}, {1000 + i, 0}};
    utimensat(AT_FDCWD, d->sidecar_path.c_str(), times, 0);
  }
  EXPECT_EQ(w.EnforceRetention(), 0);
  EXPECT_FALSE(ReadFile(bases[0] + ".json").ok());
  EXPECT_FALSE(ReadFile(bases[0] + ".pb.gz").ok());
  EXPECT_FALSE(ReadFile(bases[1] + ".json").ok());
  for (int i = 2; i < 5; i++) EXPECT_TRUE(ReadFile(bases[i] + ".json").ok()) << i;

  DumpWriter by_bytes(dir, 0, 1);  // 1 byte: only the newest... none fit
  ASSERT_TRUE(by_bytes.Prepare().ok());
  EXPECT_EQ(by_bytes.EnforceRetention(), 3);
  EXPECT_EQ(ListDir(dir)->size(), 0u);
}

TEST(DumpWriter, PrepareRemovesPartialFilesOfDeadWriters) {
  std::string dir = TempDir();
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  int status;
  waitpid(dead, &status, 0);
  std::string d = std::to_string(dead);
  for (std::string name : {"x.pb.gz.tmp." + d, "sleuth-cpu." + d + ".0.prof",
                           "y.json.tmp." + d + "-1.abcdef"}) {
    std::ofstream(dir + "/" + name) << "partial";
  }
  DumpWriter w(dir, 10, 0);
  ASSERT_TRUE(w.Prepare().ok());
  EXPECT_EQ(ListDir(dir)->size(), 0u);
}

TEST(DumpWriter, RefusesAnUnsafeDirectoryNamingTheFix) {
  std::string dir = TempDir();
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);
  DumpWriter w(dir, 10, 0);
  Status s = w.Prepare();
  EXPECT_EQ(s.code(), StatusCode::kPermission);
  EXPECT_NE(s.message().find("agent.dump_dir: dump directory " + dir + " is writable by others"),
            std::string::npos)
      << s.message();
  EXPECT_FALSE(w.Write(Meta(1), "p", std::nullopt).ok());
  std::string link = dir + ".link";
  ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
  ASSERT_EQ(symlink(dir.c_str(), link.c_str()), 0);
  DumpWriter via_link(link, 10, 0);
  EXPECT_NE(via_link.Prepare().message().find("is a symbolic link"), std::string::npos);
  unlink(link.c_str());
}

TEST(DumpWriter, EmptyDirMeansThePrivateDefault) {
  DumpWriter w("", 10, 0);
  EXPECT_EQ(w.dir(), dumps::DefaultDumpDir());
}

}  // namespace
}  // namespace sleuth::agent
