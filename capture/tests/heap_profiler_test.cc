// The heap engine in a process without tcmalloc (this test binary uses
// glibc's malloc, or a sanitizer's). With tcmalloc: tcmalloc_heap_test.cc.
#include "sleuth/capture/heap_profiler.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "sleuth/capture/heap_usage.h"

namespace sleuth::capture {
namespace {

void ExpectExplainsHowToEnable(const Status& status) {
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("does not run tcmalloc"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("LD_PRELOAD="), std::string::npos);
  EXPECT_NE(status.message().find("libtcmalloc.so.4"), std::string::npos);
  EXPECT_NE(status.message().find("TCMALLOC_SAMPLE_PARAMETER=524288"), std::string::npos);
}

TEST(HeapProfilerTest, WithoutTcmallocExplainsHowToEnableIt) {
  HeapProfiler profiler;
  ExpectExplainsHowToEnable(profiler.Available());
  ExpectExplainsHowToEnable(profiler.Collect({}).status());
}

TEST(HeapProfilerTest, CannotTurnSamplingOnWithoutTcmalloc) {
  ExpectExplainsHowToEnable(EnableTcmallocSampling(524288).status());
  EXPECT_EQ(EnableTcmallocSampling(0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EnableTcmallocSampling(-5).status().code(), StatusCode::kInvalidArgument);
}

TEST(HeapUsageTest, GlibcInUseBytesFollowAllocations) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer owns malloc here, so glibc's figures do not move";
#endif
  const HeapUsage before = HeapInUseBytes();
  EXPECT_EQ(before.source, HeapSource::kGlibc);
  EXPECT_EQ(HeapSourceName(before.source), "glibc");
  constexpr size_t kBytes = 64 << 20;
  void* block = std::malloc(kBytes);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, kBytes);
  const HeapUsage during = HeapInUseBytes();
  std::free(block);
  const HeapUsage after = HeapInUseBytes();
  EXPECT_GE(during.inuse_bytes, before.inuse_bytes + kBytes);
  EXPECT_LT(after.inuse_bytes, during.inuse_bytes - kBytes / 2);
}

}  // namespace
}  // namespace sleuth::capture
