// The heap engine in a process that runs tcmalloc (this binary links it).
// Registered twice: as is (sampling off at start; the test turns it on at
// runtime) and with TCMALLOC_SAMPLE_PARAMETER=524288 in the environment.
#include <gperftools/malloc_extension.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "sleuth/capture/heap_profiler.h"
#include "sleuth/capture/heap_usage.h"
#include "sleuth/profiles/symbolizer.h"

namespace {

std::vector<void*>* g_leaked = new std::vector<void*>;

// Leaks `count` blocks of `bytes`, touched, from a known function.
__attribute__((noinline)) void SleuthLeakFromKnownFunction(size_t count, size_t bytes) {
  for (size_t i = 0; i < count; ++i) {
    void* block = std::malloc(bytes);
    std::memset(block, 0x5a, bytes);
    g_leaked->push_back(block);
  }
  asm volatile("" ::: "memory");
}

// Allocates and frees: must not show up as in use.
__attribute__((noinline)) void SleuthChurnFromOtherFunction(size_t count, size_t bytes) {
  for (size_t i = 0; i < count; ++i) {
    void* block = std::malloc(bytes);
    std::memset(block, 0x11, bytes);
    std::free(block);
  }
  asm volatile("" ::: "memory");
}

bool SamplingFromEnvironment() {
  return std::getenv("TCMALLOC_SAMPLE_PARAMETER") != nullptr;
}

}  // namespace

namespace sleuth::capture {
namespace {

TEST(TcmallocHeapTest, TcmallocIsTheMallocOfThisBinary) {
  ASSERT_NE(MallocExtension::instance(), nullptr);
  size_t allocated = 0;
  EXPECT_TRUE(MallocExtension::instance()->GetNumericProperty("generic.current_allocated_bytes",
                                                              &allocated));
}

TEST(TcmallocHeapTest, AvailableSaysWhetherSamplingIsOn) {
  HeapProfiler profiler;
  const Status available = profiler.Available();
  if (SamplingFromEnvironment()) {
    EXPECT_TRUE(available.ok()) << available.ToString();
    Result<std::string> enabled = EnableTcmallocSampling(1 << 20);
    ASSERT_TRUE(enabled.ok());
    EXPECT_NE(enabled->find("set by the host"), std::string::npos) << *enabled;
  } else {
    EXPECT_EQ(available.code(), StatusCode::kUnavailable);
    EXPECT_NE(available.message().find("sampling is off"), std::string::npos)
        << available.message();
    EXPECT_NE(available.message().find("TCMALLOC_SAMPLE_PARAMETER=524288"), std::string::npos);
  }
}

TEST(TcmallocHeapTest, LeakingFunctionTopsInuseSpace) {
  if (!SamplingFromEnvironment()) {
    Result<std::string> enabled = EnableTcmallocSampling(524288);
    ASSERT_TRUE(enabled.ok()) << enabled.status().ToString();
    EXPECT_NE(enabled->find("turned on"), std::string::npos) << *enabled;
    // Threads that allocated while sampling was off resample within 16 MiB.
    SleuthChurnFromOtherFunction(64, 1 << 20);
  }
  HeapProfiler profiler;
  ASSERT_TRUE(profiler.Available().ok()) << profiler.Available().ToString();

  constexpr size_t kLeakBytes = 64 << 20;
  SleuthLeakFromKnownFunction(kLeakBytes / (64 << 10), 64 << 10);
  SleuthChurnFromOtherFunction(1024, 64 << 10);

  Result<Capture> capture = profiler.Collect({});
  ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  const profiles::RawProfile& profile = capture->profile;
  size_t inuse_space = profile.sample_types.size();
  for (size_t i = 0; i < profile.sample_types.size(); ++i) {
    if (profile.sample_types[i].type == "inuse_space") inuse_space = i;
  }
  ASSERT_LT(inuse_space, profile.sample_types.size());

  // inuse_space by the first frame of this test binary on each stack (the
  // allocation site under the allocator's own frames).
  Result<profiles::Symbolizer> symbolizer = profiles::Symbolizer::ForProcess();
  ASSERT_TRUE(symbolizer.ok()) << symbolizer.status().ToString();
  const int main_mapping = symbolizer->main_mapping_index();
  std::map<std::string, int64_t> by_function;
  int64_t total = 0;
  for (const profiles::RawSample& sample : profile.samples) {
    const int64_t bytes = sample.values[inuse_space];
    total += bytes;
    std::string site = "(outside the test binary)";
    for (uint64_t pc : sample.pcs) {
      profiles::SymbolizedPc symbol = symbolizer->Lookup(pc - 1);
      if (symbol.mapping_index == main_mapping && main_mapping >= 0) {
        site = symbol.function;
        break;
      }
    }
    by_function[site] += bytes;
  }
  std::string top;
  int64_t top_bytes = -1;
  for (const auto& [function, bytes] : by_function) {
    if (bytes > top_bytes) {
      top = function;
      top_bytes = bytes;
    }
  }
  EXPECT_NE(top.find("SleuthLeakFromKnownFunction"), std::string::npos) << "top: " << top;
  // Unsampled, the estimate is near the 64 MiB really leaked.
  EXPECT_GT(top_bytes, static_cast<int64_t>(kLeakBytes) / 2);
  EXPECT_LT(top_bytes, static_cast<int64_t>(kLeakBytes) * 2);
  EXPECT_GT(total, 0);
}

TEST(TcmallocHeapTest, InUseBytesComeFromTcmalloc) {
  const HeapUsage before = HeapInUseBytes();
  EXPECT_EQ(before.source, HeapSource::kTcmalloc);
  SleuthLeakFromKnownFunction(16, 1 << 20);
  const HeapUsage after = HeapInUseBytes();
  EXPECT_GE(after.inuse_bytes, before.inuse_bytes + (16 << 20));
}

}  // namespace
}  // namespace sleuth::capture
