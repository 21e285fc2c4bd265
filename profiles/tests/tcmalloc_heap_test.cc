#include "sleuth/profiles/tcmalloc_heap.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.h"

namespace sleuth::profiles {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ReadFixture;

const RawSample* SampleWithBytesLabel(const RawProfile& p, int64_t bytes) {
  for (const RawSample& s : p.samples) {
    for (const Label& l : s.labels) {
      if (l.key == "bytes" && l.num == bytes) return &s;
    }
  }
  return nullptr;
}

TEST(TcmallocHeapSampleTest, ProducesGosFourSampleTypes) {
  Result<RawProfile> p = ParseTcmallocHeapSample(ReadFixture("tcmalloc_heap_sample.txt"));
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->sample_types.size(), 4u);
  EXPECT_EQ(p->sample_types[0].type, "alloc_objects");
  EXPECT_EQ(p->sample_types[0].unit, "count");
  EXPECT_EQ(p->sample_types[1].type, "alloc_space");
  EXPECT_EQ(p->sample_types[1].unit, "bytes");
  EXPECT_EQ(p->sample_types[2].type, "inuse_objects");
  EXPECT_EQ(p->sample_types[2].unit, "count");
  EXPECT_EQ(p->sample_types[3].type, "inuse_space");
  EXPECT_EQ(p->sample_types[3].unit, "bytes");
  EXPECT_EQ(p->default_sample_type, "inuse_space");
  EXPECT_EQ(p->period_type.type, "space");
  EXPECT_EQ(p->period_type.unit, "bytes");
  EXPECT_EQ(p->period, 524288);
  EXPECT_FALSE(p->leaf_is_exact_pc);
  EXPECT_THAT(p->drop_frames, ::testing::Contains("operator new*"));
}

TEST(TcmallocHeapSampleTest, MergesIdenticalStacksAndUnsamplesToTheTrueTotal) {
  Result<RawProfile> p = ParseTcmallocHeapSample(ReadFixture("tcmalloc_heap_sample.txt"));
  ASSERT_TRUE(p.ok()) << p.status().message();
  // The fixture's program kept 400 blocks of 256 KiB from one call site
  // (100 MiB); the sample has one line per sampled block.
  const RawSample* big = SampleWithBytesLabel(*p, 262144);
  ASSERT_NE(big, nullptr);
  EXPECT_LT(p->samples.size(), 20u) << "the per-block lines share a stack and are merged";
  const double true_bytes = 400.0 * 262144;
  EXPECT_NEAR(static_cast<double>(big->values[3]), true_bytes, true_bytes * 0.3);
  EXPECT_NEAR(static_cast<double>(big->values[2]), 400.0, 400 * 0.3);
  // A sample of live objects: alloc equals inuse.
  EXPECT_EQ(big->values[0], big->values[2]);
  EXPECT_EQ(big->values[1], big->values[3]);
  EXPECT_GE(big->pcs.size(), 3u);
}

TEST(TcmallocHeapSampleTest, SamplingOffSaysHowToTurnItOn) {
  Result<RawProfile> p = ParseTcmallocHeapSample(ReadFixture("tcmalloc_heap_sampling_off.txt"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(p.status().message(), HasSubstr("TCMALLOC_SAMPLE_PARAMETER=524288"));
}

TEST(TcmallocHeapSampleTest, MalformedLineIsNamed) {
  Result<RawProfile> p = ParseTcmallocHeapSample(ReadFixture("tcmalloc_heap_sample_malformed.txt"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("line 4"));
  EXPECT_THAT(p.status().message(), HasSubstr("0xZZZZ"));
}

TEST(TcmallocHeapSampleTest, HandMadeLines) {
  Result<RawProfile> p = ParseTcmallocHeapSample(
      "heap profile:      3:     3072 [     3:     3072] @ heap_v2/1024\n"
      "     2:     2048 [     2:     2048] @ 0x1000 0x2000\n"
      "     1:     1024 @ 0x1000 0x2000\n"  // no bracket: alloc = inuse
      "\n"
      "MAPPED_LIBRARIES:\n"
      "00400000-00403000 r-xp 00000000 fe:00 77 /opt/app/bin/server\n");
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->samples.size(), 1u) << "same stack, same size: merged";
  const RawSample& s = p->samples[0];
  EXPECT_THAT(s.pcs, ElementsAre(0x1000u, 0x2000u));
  // 3 objects of 1024 bytes at a 1024-byte period: scaled by 1/(1-e^-1).
  const double scale = 1.0 / (1.0 - std::exp(-1.0));
  EXPECT_EQ(s.values[2], static_cast<int64_t>(3 * scale));
  EXPECT_EQ(s.values[3], static_cast<int64_t>(3072 * scale));
  EXPECT_EQ(s.values[0], s.values[2]);
  ASSERT_EQ(s.labels.size(), 1u);
  EXPECT_EQ(s.labels[0].key, "bytes");
  EXPECT_EQ(s.labels[0].num, 1024);
  EXPECT_EQ(s.labels[0].num_unit, "bytes");
}

TEST(TcmallocHeapSampleTest, HeapProfilerDumpsAreNotScaled) {
  Result<RawProfile> p = ParseTcmallocHeapSample(
      "heap profile:      1:      100 [     5:      500] @ heapprofile\n"
      "     1:      100 [     5:      500] @ 0x1000\n");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->period, 1);
  EXPECT_THAT(p->samples[0].values, ElementsAre(5, 500, 1, 100));
}

TEST(TcmallocHeapSampleTest, EmptySampleIsValid) {
  Result<RawProfile> p = ParseTcmallocHeapSample(
      "heap profile:      0:        0 [     0:        0] @ heap_v2/524288\n\nMAPPED_LIBRARIES:\n");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_TRUE(p->samples.empty());
}

TEST(TcmallocHeapSampleTest, Errors) {
  EXPECT_THAT(ParseTcmallocHeapSample("").status().message(), HasSubstr("no \"heap profile:\""));
  EXPECT_THAT(ParseTcmallocHeapSample("hello\n").status().message(),
              HasSubstr("expected the \"heap profile: ...\" header"));
  EXPECT_THAT(ParseTcmallocHeapSample("heap profile: 1: 2 [1: 2] @ growthz\n").status().message(),
              HasSubstr("unsupported heap profile kind"));
  EXPECT_THAT(ParseTcmallocHeapSample("heap profile: x: 2 [1: 2] @ heap_v2/1\n").status().message(),
              HasSubstr("malformed totals"));
  const std::string header = "heap profile: 1: 2 [1: 2] @ heap_v2/524288\n";
  EXPECT_THAT(ParseTcmallocHeapSample(header + "1: 100 [1: 100] @\n").status().message(),
              HasSubstr("no stack addresses"));
  EXPECT_THAT(ParseTcmallocHeapSample(header + "0: 100 [0: 100] @ 0x1\n").status().message(),
              HasSubstr("bytes without objects"));
  EXPECT_THAT(ParseTcmallocHeapSample(header + "1: 100 [1: 100 @ 0x1\n").status().message(),
              HasSubstr("line 2"));
  EXPECT_EQ(ParseTcmallocHeapSample("heap profile: 0: 0 [0: 0] @ heap_v2/0\n").status().code(),
            StatusCode::kUnavailable);
}

TEST(TcmallocHeapSampleTest, UnsampleHeapMatchesPprofsFormula) {
  EXPECT_EQ(UnsampleHeap(0, 0, 524288), (std::pair<int64_t, int64_t>(0, 0)));
  EXPECT_EQ(UnsampleHeap(3, 300, 1), (std::pair<int64_t, int64_t>(3, 300)));
  // Huge objects are always sampled: scale ~1.
  auto [objects, bytes] = UnsampleHeap(1, 100 << 20, 524288);
  EXPECT_EQ(objects, 1);
  EXPECT_EQ(bytes, 100 << 20);
  // Tiny ones are rarely sampled: scale ~ period / size.
  auto [small_objects, small_bytes] = UnsampleHeap(1, 16, 524288);
  EXPECT_NEAR(static_cast<double>(small_bytes), 524288.0, 16.0);
  EXPECT_NEAR(static_cast<double>(small_objects), 524288.0 / 16, 1.0);
}

}  // namespace
}  // namespace sleuth::profiles
