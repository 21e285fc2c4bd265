#include "sleuth/profiles/gperftools_cpu.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "sleuth/profiles/proc_maps.h"
#include "test_util.h"

namespace sleuth::profiles {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ReadFixture;

std::string Words(std::initializer_list<uint64_t> words) {
  std::string out(words.size() * 8, '\0');
  size_t i = 0;
  for (uint64_t w : words) std::memcpy(out.data() + 8 * i++, &w, 8);
  return out;
}

TEST(GperftoolsCpuTest, ParsesAHandMadeProfileExactly) {
  Result<GperftoolsCpuProfile> p =
      ParseGperftoolsCpuProfile(ReadFixture("gperftools_cpu_handmade.prof"));
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->period_us, 10000);
  const RawProfile& raw = p->profile;
  ASSERT_EQ(raw.sample_types.size(), 2u);
  EXPECT_EQ(raw.sample_types[0].type, "samples");
  EXPECT_EQ(raw.sample_types[0].unit, "count");
  EXPECT_EQ(raw.sample_types[1].type, "cpu");
  EXPECT_EQ(raw.sample_types[1].unit, "nanoseconds");
  EXPECT_EQ(raw.period_type.type, "cpu");
  EXPECT_EQ(raw.period_type.unit, "nanoseconds");
  EXPECT_EQ(raw.period, 10'000'000);
  EXPECT_TRUE(raw.leaf_is_exact_pc);
  // The first and third records share a stack: merged.
  ASSERT_EQ(raw.samples.size(), 2u);
  EXPECT_THAT(raw.samples[0].pcs, ElementsAre(0x401000u, 0x402000u));
  EXPECT_THAT(raw.samples[0].values, ElementsAre(6, 60'000'000));
  EXPECT_THAT(raw.samples[1].pcs, ElementsAre(0x401100u));
  EXPECT_THAT(raw.samples[1].values, ElementsAre(2, 20'000'000));
  EXPECT_EQ(p->maps_text, "00400000-00403000 r-xp 00000000 fe:00 77 /opt/app/bin/server\n");
}

TEST(GperftoolsCpuTest, ParsesARealLibprofilerFile) {
  Result<GperftoolsCpuProfile> p = ParseGperftoolsCpuProfile(ReadFixture("gperftools_cpu.prof"));
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->period_us, 10000) << "libprofiler's default is 100 Hz";
  int64_t samples = 0;
  for (const RawSample& s : p->profile.samples) {
    ASSERT_FALSE(s.pcs.empty());
    EXPECT_EQ(s.values[1], s.values[0] * 10'000'000);
    samples += s.values[0];
  }
  // The fixture's program burned ~0.5 s of CPU at 100 Hz.
  EXPECT_GT(samples, 20);
  Result<std::vector<ProcMapping>> maps = ParseProcMaps(p->maps_text);
  ASSERT_TRUE(maps.ok()) << maps.status().message();
  bool has_program = false;
  for (const ProcMapping& m : *maps)
    has_program |= m.path.find("profiles_profile_source") != std::string::npos;
  EXPECT_TRUE(has_program);
  // Every leaf pc lies in an executable mapping of that maps text.
  for (const RawSample& s : p->profile.samples) {
    bool inside = false;
    for (const ProcMapping& m : *maps)
      inside |= m.executable && s.pcs[0] >= m.start && s.pcs[0] < m.limit;
    EXPECT_TRUE(inside) << std::hex << s.pcs[0];
  }
}

TEST(GperftoolsCpuTest, TruncatedFileIsAnError) {
  Result<GperftoolsCpuProfile> p =
      ParseGperftoolsCpuProfile(ReadFixture("gperftools_cpu_truncated.prof"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(),
              ::testing::AnyOf(HasSubstr("truncated"), HasSubstr("end-of-data")));
}

TEST(GperftoolsCpuTest, DepthPastTheEndIsAnError) {
  Result<GperftoolsCpuProfile> p =
      ParseGperftoolsCpuProfile(ReadFixture("gperftools_cpu_bad_depth.prof"));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("claims 1000 pcs"));
}

TEST(GperftoolsCpuTest, EveryPrefixOfARealFileFailsCleanly) {
  std::string bytes = ReadFixture("gperftools_cpu.prof");
  Result<GperftoolsCpuProfile> full = ParseGperftoolsCpuProfile(bytes);
  ASSERT_TRUE(full.ok());
  size_t records_end = bytes.size() - full->maps_text.size();
  // Cut anywhere before the trailer's end: an error, never a crash or a
  // success.
  for (size_t size = 0; size < records_end; size += 7) {
    EXPECT_FALSE(ParseGperftoolsCpuProfile(bytes.substr(0, size)).ok()) << size;
  }
}

TEST(GperftoolsCpuTest, HeaderErrors) {
  EXPECT_THAT(ParseGperftoolsCpuProfile("").status().message(), HasSubstr("header"));
  EXPECT_THAT(ParseGperftoolsCpuProfile(Words({1, 3, 0, 10000, 0})).status().message(),
              HasSubstr("bad header"));
  EXPECT_THAT(ParseGperftoolsCpuProfile(Words({0, 3, 1, 10000, 0, 0, 1, 0})).status().message(),
              HasSubstr("version 1"));
  EXPECT_THAT(ParseGperftoolsCpuProfile(Words({0, 3, 0, 0, 0, 0, 1, 0})).status().message(),
              HasSubstr("sampling period"));
  // A 32-bit profile: 4-byte words 0, 3, 0, 10000, 0.
  std::string narrow(20, '\0');
  uint32_t words32[5] = {0, 3, 0, 10000, 0};
  std::memcpy(narrow.data(), words32, sizeof words32);
  narrow.append(20, '\0');
  EXPECT_THAT(ParseGperftoolsCpuProfile(narrow).status().message(), HasSubstr("32-bit"));
}

TEST(GperftoolsCpuTest, EmptyProfileHasNoSamples) {
  Result<GperftoolsCpuProfile> p = ParseGperftoolsCpuProfile(Words({0, 3, 0, 4000, 0, 0, 1, 0}));
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_TRUE(p->profile.samples.empty());
  EXPECT_EQ(p->profile.period, 4'000'000);
  EXPECT_TRUE(p->maps_text.empty());
}

}  // namespace
}  // namespace sleuth::profiles
