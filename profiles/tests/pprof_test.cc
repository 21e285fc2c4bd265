#include "sleuth/profiles/pprof.h"

#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "sleuth/testing/pprof_oracle.h"
#include "test_util.h"

// Big enough (volatile loops) that pcs a few bytes in are still inside.
__attribute__((noinline, noclone)) static int PprofTestLeaf(int x) {
  volatile int v = x;
  for (int i = 0; i < 8; ++i) v = v * 3 + i;
  return v;
}

__attribute__((noinline, noclone)) static int PprofTestCaller(int x) {
  volatile int v = PprofTestLeaf(x);
  for (int i = 0; i < 8; ++i) v = v * 5 + i;
  return v;
}

namespace sleuth::profiles {
namespace {

using sleuth::testing::DecodedProfile;
using sleuth::testing::DecodePprof;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kLeaf = "PprofTestLeaf(int)";
constexpr const char* kCaller = "PprofTestCaller(int)";

uint64_t Pc(const void* function, uint64_t offset) {
  return reinterpret_cast<uint64_t>(function) + offset;
}
const void* LeafFn() {
  return reinterpret_cast<const void*>(&PprofTestLeaf);
}
const void* CallerFn() {
  return reinterpret_cast<const void*>(&PprofTestCaller);
}

RawProfile CpuProfile() {
  RawProfile p;
  p.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  p.period_type = {"cpu", "nanoseconds"};
  p.period = 10'000'000;
  p.time_nanos = 1'700'000'000'000'000'000;
  p.duration_nanos = 5'000'000'000;
  p.default_sample_type = "cpu";
  p.comments = {"made by pprof_test"};
  RawSample hot;
  // Leaf: an exact pc inside the leaf; then a "return address" inside the
  // caller (offset > 1 so pc - 1 is still inside it).
  hot.pcs = {Pc(LeafFn(), 3), Pc(CallerFn(), 5)};
  hot.values = {7, 70'000'000};
  hot.labels = {{"thread_name", "worker-1", 0, ""}, {"thread_id", "", 4242, ""}};
  RawSample warm;
  warm.pcs = {Pc(LeafFn(), 4), Pc(CallerFn(), 5)};  // same function, another pc
  warm.values = {3, 30'000'000};
  warm.labels = {{"thread_name", "worker-2", 0, ""}, {"bytes", "", 64, "bytes"}};
  RawSample again;
  again.pcs = {Pc(LeafFn(), 3), Pc(CallerFn(), 5)};  // the same pcs as `hot`
  again.values = {1, 10'000'000};
  p.samples = {hot, warm, again};
  return p;
}

DecodedProfile Encode(const RawProfile& raw) {
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  EXPECT_TRUE(sym.ok()) << sym.status().message();
  Result<std::string> bytes = EncodePprof(raw, *sym);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  DecodedProfile d = DecodePprof(bytes.ok() ? *bytes : std::string());
  EXPECT_TRUE(d.ok()) << d.ErrorText();
  return d;
}

TEST(PprofTest, RoundTripsTypesTimesAndComments) {
  DecodedProfile d = Encode(CpuProfile());
  ASSERT_EQ(d.sample_types.size(), 2u);
  EXPECT_EQ(d.sample_types[0].type, "samples");
  EXPECT_EQ(d.sample_types[0].unit, "count");
  EXPECT_EQ(d.sample_types[1].type, "cpu");
  EXPECT_EQ(d.sample_types[1].unit, "nanoseconds");
  EXPECT_EQ(d.period_type.type, "cpu");
  EXPECT_EQ(d.period_type.unit, "nanoseconds");
  EXPECT_EQ(d.period, 10'000'000);
  EXPECT_EQ(d.time_nanos, 1'700'000'000'000'000'000);
  EXPECT_EQ(d.duration_nanos, 5'000'000'000);
  EXPECT_EQ(d.default_sample_type, "cpu");
  EXPECT_THAT(d.comments, ElementsAre("made by pprof_test"));
}

TEST(PprofTest, SymbolizesStacksLeafFirst) {
  DecodedProfile d = Encode(CpuProfile());
  ASSERT_EQ(d.samples.size(), 3u);
  EXPECT_THAT(d.samples[0].stack, ElementsAre(kLeaf, kCaller));
  EXPECT_THAT(d.samples[0].values, ElementsAre(7, 70'000'000));
  // Location.address keeps the original pc, not pc - 1.
  EXPECT_EQ(d.samples[0].addresses[1], Pc(CallerFn(), 5));
  EXPECT_EQ(sleuth::testing::FlatValue(d, "cpu", kLeaf), 110'000'000);
  EXPECT_EQ(sleuth::testing::CumulativeValue(d, "samples", kCaller), 11);
}

TEST(PprofTest, KeepsLabels) {
  DecodedProfile d = Encode(CpuProfile());
  EXPECT_EQ(d.samples[0].Label("thread_name"), "worker-1");
  EXPECT_EQ(d.samples[0].NumLabel("thread_id"), 4242);
  EXPECT_EQ(d.samples[1].NumLabel("bytes"), 64);
  EXPECT_THAT(d.samples[1].num_units.at("bytes"), ElementsAre("bytes"));
  EXPECT_EQ(sleuth::testing::SamplesWithLabel(d, "thread_name", "worker-2").size(), 1u);
}

TEST(PprofTest, DeduplicatesLocationsByAddressAndFunctionsByName) {
  DecodedProfile d = Encode(CpuProfile());
  // pcs: leaf+3, leaf+4, caller+5 -> three locations, two functions.
  EXPECT_EQ(d.location_count, 3u);
  ASSERT_EQ(d.functions.size(), 2u);
  EXPECT_EQ(d.functions[0].name, kLeaf);
  EXPECT_EQ(d.functions[0].system_name, "_ZL13PprofTestLeafi");
}

TEST(PprofTest, EmitsTheMainExecutableMappingFirstWithItsBuildId) {
  DecodedProfile d = Encode(CpuProfile());
  ASSERT_GE(d.mappings.size(), 1u);
  const auto& main = d.mappings[0];
  EXPECT_EQ(main.id, 1u);
  EXPECT_EQ(main.filename, std::filesystem::read_symlink("/proc/self/exe").string());
  Result<std::string> id = ReadBuildId(main.filename);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(main.build_id, *id);
  EXPECT_TRUE(main.has_functions);
  EXPECT_LE(main.memory_start, Pc(LeafFn(), 0));
  EXPECT_GT(main.memory_limit, Pc(LeafFn(), 0));
  EXPECT_EQ(d.samples[0].mapping_files[0], main.filename);
}

TEST(PprofTest, LibraryPcsGetTheirOwnMapping) {
  RawProfile raw = CpuProfile();
  RawSample s;
  s.pcs = {Pc(testing::LibcFunction("qsort"), 1), Pc(CallerFn(), 5)};
  s.values = {1, 1};
  raw.samples = {s};
  DecodedProfile d = Encode(raw);
  EXPECT_THAT(d.samples[0].stack, ElementsAre("qsort", kCaller));
  EXPECT_THAT(d.samples[0].mapping_files[0], ::testing::EndsWith("/libc.so.6"));
  const auto* libc = d.FindMapping(d.samples[0].mapping_files[0]);
  ASSERT_NE(libc, nullptr);
  EXPECT_EQ(libc->build_id.size(), 40u);
  EXPECT_NE(libc->id, 1u);
}

TEST(PprofTest, ReturnAddressesAreLookedUpAtPcMinusOne) {
  RawProfile raw = CpuProfile();
  RawSample s;
  // The caller's frame holds a return address equal to the first byte of
  // PprofTestLeaf: the call was the last instruction before it, so it must
  // not be attributed to PprofTestLeaf.
  s.pcs = {Pc(LeafFn(), 2), Pc(LeafFn(), 0)};
  s.values = {1, 1};
  raw.samples = {s};
  DecodedProfile d = Encode(raw);
  ASSERT_EQ(d.samples[0].stack.size(), 2u);
  EXPECT_EQ(d.samples[0].stack[0], kLeaf);
  EXPECT_NE(d.samples[0].stack[1], kLeaf);

  // When no pc is exact (heap stacks), the leaf is adjusted too.
  raw.leaf_is_exact_pc = false;
  raw.samples[0].pcs = {Pc(LeafFn(), 0)};
  d = Encode(raw);
  ASSERT_EQ(d.samples[0].stack.size(), 1u);
  EXPECT_NE(d.samples[0].stack[0], kLeaf);
}

TEST(PprofTest, UnknownPcsKeepTheirAddress) {
  RawProfile raw = CpuProfile();
  RawSample s;
  s.pcs = {0x10, Pc(CallerFn(), 5)};
  s.values = {1, 1};
  raw.samples = {s};
  DecodedProfile d = Encode(raw);
  EXPECT_THAT(d.samples[0].stack, ElementsAre("0x10", kCaller));
  EXPECT_EQ(d.samples[0].mapping_files[0], "");
}

TEST(PprofTest, SamplesWithoutPcsUseNamesAsSyntheticFrames) {
  RawProfile raw;
  raw.sample_types = {{"rss", "bytes"}};
  RawSample a;
  a.names = {"file:/usr/lib/libc.so.6", "files"};
  a.values = {4096};
  RawSample b;
  b.names = {"[heap]"};
  b.values = {8192};
  RawSample c;
  c.names = {"file:/usr/lib/libm.so.6", "files"};
  c.values = {100};
  raw.samples = {a, b, c};
  DecodedProfile d = Encode(raw);
  EXPECT_THAT(d.samples[0].stack, ElementsAre("file:/usr/lib/libc.so.6", "files"));
  EXPECT_THAT(d.samples[1].stack, ElementsAre("[heap]"));
  EXPECT_EQ(d.location_count, 4u) << "one location per distinct name";
  EXPECT_EQ(d.functions.size(), 4u);
  EXPECT_TRUE(d.samples[0].mapping_files[0].empty());
  EXPECT_EQ(sleuth::testing::CumulativeValue(d, "rss", "files"), 4196);
}

TEST(PprofTest, DropFramesRemovesTheRootMostMatchAndItsCallees) {
  RawProfile raw;
  raw.sample_types = {{"inuse_space", "bytes"}};
  raw.drop_frames = {"tc_*", "operator new*"};
  RawSample s;
  s.names = {"tcmalloc::internal", "operator new[](unsigned long)", "LeakFromHere()", "main"};
  s.values = {10};
  RawSample untouched;
  untouched.names = {"Other()", "main"};
  untouched.values = {1};
  raw.samples = {s, untouched};
  DecodedProfile d = Encode(raw);
  EXPECT_THAT(d.samples[0].stack, ElementsAre("LeakFromHere()", "main"));
  EXPECT_THAT(d.samples[1].stack, ElementsAre("Other()", "main"));
}

TEST(PprofTest, RejectsInconsistentProfiles) {
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  RawProfile raw = CpuProfile();
  raw.samples[1].values = {1};
  Result<std::string> bytes = EncodePprof(raw, *sym);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bytes.status().message(), HasSubstr("sample 1 has 1 values"));

  raw = CpuProfile();
  raw.default_sample_type = "wall";
  EXPECT_THAT(EncodePprof(raw, *sym).status().message(), HasSubstr("\"wall\""));
}

TEST(PprofTest, EmptyProfileIsValid) {
  RawProfile raw;
  raw.sample_types = {{"threads", "count"}};
  DecodedProfile d = Encode(raw);
  EXPECT_TRUE(d.samples.empty());
  EXPECT_EQ(d.sample_types.size(), 1u);
}

TEST(PprofTest, NegativeValuesSurvive) {
  RawProfile raw;
  raw.sample_types = {{"delta", "bytes"}};
  RawSample s;
  s.names = {"f"};
  s.values = {-12345};
  raw.samples = {s};
  EXPECT_THAT(Encode(raw).samples[0].values, ElementsAre(-12345));
}

}  // namespace
}  // namespace sleuth::profiles
