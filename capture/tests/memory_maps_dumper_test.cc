#include "sleuth/capture/memory_maps_dumper.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <string>

namespace sleuth::capture {
namespace {

TEST(MemoryMapsDumperTest, DumpsThisProcessesMappingsBySize) {
  // 32 MiB of touched anonymous memory must show up as resident anonymous.
  constexpr size_t kBytes = 32 << 20;
  void* block = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(block, MAP_FAILED);
  std::memset(block, 1, kBytes);

  MemoryMapsDumper dumper;
  ASSERT_TRUE(dumper.Available().ok());
  Result<Capture> capture = dumper.Collect({});
  munmap(block, kBytes);
  ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  const profiles::RawProfile& profile = capture->profile;
  ASSERT_FALSE(profile.sample_types.empty());
  EXPECT_EQ(profile.sample_types[0].type, "rss");
  EXPECT_EQ(profile.sample_types[0].unit, "bytes");
  EXPECT_GT(profile.time_nanos, 0);
  int64_t anonymous_rss = 0;
  bool has_own_executable = false;
  for (const profiles::RawSample& sample : profile.samples) {
    ASSERT_FALSE(sample.names.empty());
    if (sample.names[0] == "anonymous") anonymous_rss = sample.values[0];
    has_own_executable |= sample.names[0].find("capture_test") != std::string::npos;
  }
  EXPECT_GE(anonymous_rss, static_cast<int64_t>(kBytes));
  EXPECT_TRUE(has_own_executable);
}

TEST(MemoryMapsDumperTest, MissingSmapsSaysWhichFile) {
  MemoryMapsDumper dumper("/nonexistent/smaps");
  EXPECT_FALSE(dumper.Available().ok());
  const Status status = dumper.Collect({}).status();
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_NE(status.message().find("/nonexistent/smaps"), std::string::npos);
}

TEST(MemoryMapsDumperTest, MalformedSmapsIsAnErrorNamingTheFile) {
  const std::string path = std::string(SLEUTH_FIXTURE_DIR) + "/capture/smaps_malformed.txt";
  MemoryMapsDumper dumper(path);
  const Status status = dumper.Collect({}).status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find(path), std::string::npos) << status.message();
}

}  // namespace
}  // namespace sleuth::capture
