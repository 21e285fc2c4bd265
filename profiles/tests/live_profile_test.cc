// End to end on real gperftools output: a CPU profile taken in this process
// with libprofiler, and a tcmalloc heap sample taken in a child process and
// symbolized through /proc/<child>/maps, both checked through the oracle.
#include <gmock/gmock.h>
#include <gperftools/profiler.h>
#include <gtest/gtest.h>

#include <ctime>

#include "sleuth/common/files.h"
#include "sleuth/profiles/gperftools_cpu.h"
#include "sleuth/profiles/pprof.h"
#include "sleuth/profiles/tcmalloc_heap.h"
#include "sleuth/testing/pprof_oracle.h"
#include "test_util.h"

namespace sleuth::profiles {
namespace {

using sleuth::testing::DecodedProfile;
using sleuth::testing::FlatTop;
using sleuth::testing::FunctionValue;

int64_t ProcessCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Burns `cpu_nanos` of this process's CPU time (not wall time).
__attribute__((noinline)) double LiveBurnCpu(int64_t cpu_nanos) {
  volatile double x = 0;
  int64_t until = ProcessCpuNanos() + cpu_nanos;
  while (ProcessCpuNanos() < until) {
    for (int i = 0; i < 100000; ++i) x = x + static_cast<double>(i % 7) * 0.5;
  }
  return x;
}

TEST(LiveProfileTest, LibprofilerCpuProfileNamesTheHotFunction) {
  std::string dir = testing::MakeTempDir();
  std::string path = dir + "/cpu.prof";
  ASSERT_TRUE(ProfilerStart(path.c_str()));
  LiveBurnCpu(400'000'000);
  ProfilerStop();

  Result<std::string> bytes = ReadFile(path);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  Result<GperftoolsCpuProfile> cpu = ParseGperftoolsCpuProfile(*bytes);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  Result<std::string> encoded = EncodePprof(cpu->profile, *sym);
  ASSERT_TRUE(encoded.ok()) << encoded.status().message();
  DecodedProfile d = sleuth::testing::DecodePprof(*encoded);
  ASSERT_TRUE(d.ok()) << d.ErrorText();

  std::vector<FunctionValue> top = FlatTop(d, "cpu");
  ASSERT_FALSE(top.empty());
  const std::string burner = "sleuth::profiles::(anonymous namespace)::LiveBurnCpu(long)";
  // The leaf is the exact interrupted pc, so the burner (or the clock call
  // it makes) is on top, and most of the time is under it.
  EXPECT_EQ(top[0].function, burner) << "top is " << top[0].function;
  EXPECT_GT(sleuth::testing::CumulativeValue(d, "cpu", burner), d.Total("cpu") / 2);
  testing::RemoveTree(dir);
}

TEST(LiveProfileTest, TcmallocHeapSampleOfAnotherProcess) {
  testing::Child child({PROFILES_SOURCE_PROGRAM, "heap"}, {"TCMALLOC_SAMPLE_PARAMETER=524288"});
  ASSERT_TRUE(child.started());
  std::string text = child.ReadUntilEnd();
  Result<RawProfile> heap = ParseTcmallocHeapSample(text);
  ASSERT_TRUE(heap.ok()) << heap.status().message() << "\n" << text.substr(0, 500);

  // The child is still alive: symbolize with its own maps and files.
  Result<Symbolizer> sym = Symbolizer::ForProcess(child.pid());
  ASSERT_TRUE(sym.ok()) << sym.status().message();
  Result<std::string> encoded = EncodePprof(*heap, *sym);
  ASSERT_TRUE(encoded.ok()) << encoded.status().message();
  EXPECT_EQ(child.CloseStdinAndWait(), 0);

  DecodedProfile d = sleuth::testing::DecodePprof(*encoded);
  ASSERT_TRUE(d.ok()) << d.ErrorText();
  EXPECT_EQ(d.default_sample_type, "inuse_space");
  std::vector<FunctionValue> top = FlatTop(d, "inuse_space");
  ASSERT_FALSE(top.empty());
  // The allocator's frames were dropped: the leaking call site is the leaf.
  EXPECT_EQ(top[0].function, "(anonymous namespace)::LeakFromHere(int)");
  EXPECT_NEAR(static_cast<double>(top[0].value), 100.0 * (1 << 20), 30.0 * (1 << 20));
  EXPECT_GT(
      sleuth::testing::FlatValue(d, "inuse_space", "(anonymous namespace)::SmallAllocations(int)"),
      0);
  for (const auto& s : d.samples) {
    ASSERT_FALSE(s.stack.empty());
    EXPECT_THAT(s.stack.back(),
                ::testing::AnyOf("_start", "__libc_start_main", "main", "__libc_start_call_main"));
  }
  const sleuth::testing::DecodedMapping* main = &d.mappings.at(0);
  EXPECT_EQ(main->filename, PROFILES_SOURCE_PROGRAM);
  EXPECT_EQ(main->build_id.size(), 40u);
}

}  // namespace
}  // namespace sleuth::profiles
