// Checks the oracle itself on profiles built with libprotobuf: that it reads
// what a valid profile says and reports each kind of broken reference.
#include "sleuth/testing/pprof_oracle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include "profile.pb.h"

namespace sleuth::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A small valid CPU-like profile:
//   strings: "", samples, count, cpu, nanoseconds, main, hot, cold, /bin/app, abc123, thread, t1
//   sample 1: hot <- main, values {3, 30}, label thread=t1, num tid=7
//   sample 2: cold <- main, values {1, 10}
//   sample 3: unnamed location 0x1234 <- main, values {2, 20}
sleuth_oracle::Profile ValidProfile() {
  sleuth_oracle::Profile p;
  for (const char* s : {"", "samples", "count", "cpu", "nanoseconds", "main", "hot", "cold",
                        "/bin/app", "abc123", "thread", "t1", "tid"}) {
    p.add_string_table(s);
  }
  auto* st = p.add_sample_type();
  st->set_type(1);
  st->set_unit(2);
  st = p.add_sample_type();
  st->set_type(3);
  st->set_unit(4);
  p.mutable_period_type()->set_type(3);
  p.mutable_period_type()->set_unit(4);
  p.set_period(10);
  p.set_duration_nanos(5'000'000'000);
  p.set_default_sample_type(3);

  auto* m = p.add_mapping();
  m->set_id(1);
  m->set_memory_start(0x1000);
  m->set_memory_limit(0x9000);
  m->set_filename(8);
  m->set_build_id(9);
  m->set_has_functions(true);

  const int names[] = {5, 6, 7};
  for (int i = 0; i < 3; ++i) {
    auto* f = p.add_function();
    f->set_id(i + 1);
    f->set_name(names[i]);
    f->set_system_name(names[i]);
    auto* l = p.add_location();
    l->set_id(i + 1);
    l->set_mapping_id(1);
    l->set_address(0x2000 + i * 0x100);
    l->add_line()->set_function_id(i + 1);
  }
  auto* unnamed = p.add_location();
  unnamed->set_id(4);
  unnamed->set_mapping_id(1);
  unnamed->set_address(0x1234);

  auto add_sample = [&](std::vector<uint64_t> locs, std::vector<int64_t> values) {
    auto* s = p.add_sample();
    for (uint64_t l : locs) s->add_location_id(l);
    for (int64_t v : values) s->add_value(v);
    return s;
  };
  auto* s1 = add_sample({2, 1}, {3, 30});
  auto* label = s1->add_label();
  label->set_key(10);
  label->set_str(11);
  label = s1->add_label();
  label->set_key(12);
  label->set_num(7);
  add_sample({3, 1}, {1, 10});
  add_sample({4, 1}, {2, 20});
  return p;
}

std::string Serialize(const sleuth_oracle::Profile& p) {
  std::string out;
  EXPECT_TRUE(p.SerializeToString(&out));
  return out;
}

TEST(PprofOracleTest, DecodesAValidProfile) {
  DecodedProfile d = DecodePprof(Serialize(ValidProfile()));
  ASSERT_TRUE(d.ok()) << d.ErrorText();
  ASSERT_EQ(d.sample_types.size(), 2u);
  EXPECT_EQ(d.sample_types[1].type, "cpu");
  EXPECT_EQ(d.sample_types[1].unit, "nanoseconds");
  EXPECT_EQ(d.period_type.type, "cpu");
  EXPECT_EQ(d.period, 10);
  EXPECT_EQ(d.duration_nanos, 5'000'000'000);
  EXPECT_EQ(d.default_sample_type, "cpu");
  ASSERT_EQ(d.samples.size(), 3u);
  EXPECT_THAT(d.samples[0].stack, ElementsAre("hot", "main"));
  EXPECT_THAT(d.samples[2].stack, ElementsAre("0x1234", "main"));
  EXPECT_EQ(d.samples[0].Label("thread"), "t1");
  EXPECT_EQ(d.samples[0].NumLabel("tid"), 7);
  EXPECT_EQ(d.samples[0].mapping_files[0], "/bin/app");
  ASSERT_EQ(d.mappings.size(), 1u);
  EXPECT_EQ(d.mappings[0].build_id, "abc123");
  EXPECT_TRUE(d.mappings[0].has_functions);
  EXPECT_EQ(d.Total("cpu"), 60);
  EXPECT_EQ(d.Total("nope"), 0);
}

TEST(PprofOracleTest, FlatAndCumulativeTops) {
  DecodedProfile d = DecodePprof(Serialize(ValidProfile()));
  std::vector<FunctionValue> flat = FlatTop(d, "cpu");
  ASSERT_EQ(flat.size(), 3u);
  EXPECT_EQ(flat[0].function, "hot");
  EXPECT_EQ(flat[0].value, 30);
  EXPECT_EQ(flat[1].function, "0x1234");
  EXPECT_EQ(FlatValue(d, "cpu", "cold"), 10);
  EXPECT_EQ(FlatValue(d, "cpu", "main"), 0);
  EXPECT_EQ(CumulativeValue(d, "cpu", "main"), 60);
  EXPECT_EQ(CumulativeTop(d, "samples").front().function, "main");
  EXPECT_TRUE(FlatTop(d, "nope").empty());
}

TEST(PprofOracleTest, CumulativeCountsRecursionOnce) {
  sleuth_oracle::Profile p = ValidProfile();
  p.mutable_sample(0)->add_location_id(1);  // main appears twice
  DecodedProfile d = DecodePprof(Serialize(p));
  ASSERT_TRUE(d.ok()) << d.ErrorText();
  EXPECT_EQ(CumulativeValue(d, "cpu", "main"), 60);
}

TEST(PprofOracleTest, SelectsSamplesByLabel) {
  DecodedProfile d = DecodePprof(Serialize(ValidProfile()));
  EXPECT_EQ(SamplesWithLabel(d, "thread", "t1").size(), 1u);
  EXPECT_TRUE(SamplesWithLabel(d, "thread", "t2").empty());
  EXPECT_EQ(SamplesWithNumLabel(d, "tid", 7).size(), 1u);
  EXPECT_TRUE(SamplesWithNumLabel(d, "tid", 8).empty());
}

TEST(PprofOracleTest, DecodesGzipAndFiles) {
  std::string raw = Serialize(ValidProfile());
  // zlib's gzip wrapper via deflateInit2, independent of sleuth's GzipCompress.
  z_stream z{};
  ASSERT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string gz(deflateBound(&z, raw.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(gz.data());
  z.avail_out = static_cast<uInt>(gz.size());
  ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  gz.resize(z.total_out);
  deflateEnd(&z);

  DecodedProfile d = DecodePprofGz(gz);
  ASSERT_TRUE(d.ok()) << d.ErrorText();
  EXPECT_EQ(d.samples.size(), 3u);

  std::string path = ::testing::TempDir() + "/oracle_test.pb.gz";
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(gz.data(), 1, gz.size(), f);
    std::fclose(f);
  }
  EXPECT_TRUE(DecodePprofFile(path).ok());
  std::remove(path.c_str());

  EXPECT_THAT(DecodePprofGz(gz.substr(0, gz.size() / 2)).ErrorText(), HasSubstr("inflate"));
  EXPECT_THAT(DecodePprofFile("/nonexistent/x.pb.gz").ErrorText(), HasSubstr("cannot open"));
}

TEST(PprofOracleTest, RejectsBytesThatAreNotAProfile) {
  EXPECT_FALSE(DecodePprof("\xff\xff\xff\xff garbage").ok());
}

struct BrokenCase {
  const char* name;
  void (*breakit)(sleuth_oracle::Profile*);
  const char* expected_error;
};

// Names the case instead of dumping its bytes in test listings.
void PrintTo(const BrokenCase& c, std::ostream* os) {
  *os << c.name;
}

class PprofOracleBrokenTest : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(PprofOracleBrokenTest, ReportsTheViolation) {
  sleuth_oracle::Profile p = ValidProfile();
  GetParam().breakit(&p);
  DecodedProfile d = DecodePprof(Serialize(p));
  EXPECT_FALSE(d.ok());
  EXPECT_THAT(d.ErrorText(), HasSubstr(GetParam().expected_error));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PprofOracleBrokenTest,
    ::testing::Values(
        BrokenCase{"MissingLocation",
                   [](sleuth_oracle::Profile* p) { p->mutable_sample(0)->add_location_id(99); },
                   "references location 99"},
        BrokenCase{"MissingMapping",
                   [](sleuth_oracle::Profile* p) { p->mutable_location(0)->set_mapping_id(5); },
                   "references mapping 5"},
        BrokenCase{"MissingFunction",
                   [](sleuth_oracle::Profile* p) {
                     p->mutable_location(0)->mutable_line(0)->set_function_id(42);
                   },
                   "function 42, which does not exist"},
        BrokenCase{"StringIndexOutOfRange",
                   [](sleuth_oracle::Profile* p) { p->mutable_function(0)->set_name(500); },
                   "string index 500"},
        BrokenCase{"FirstStringNotEmpty",
                   [](sleuth_oracle::Profile* p) { p->set_string_table(0, "x"); },
                   "string_table[0]"},
        BrokenCase{"ValueCountMismatch",
                   [](sleuth_oracle::Profile* p) { p->mutable_sample(1)->add_value(1); },
                   "has 3 values for 2 sample types"},
        BrokenCase{"DuplicateLocationId",
                   [](sleuth_oracle::Profile* p) { p->mutable_location(1)->set_id(1); },
                   "duplicate location 1"},
        BrokenCase{"ZeroFunctionId",
                   [](sleuth_oracle::Profile* p) { p->mutable_function(2)->set_id(0); },
                   "reserved id 0"},
        BrokenCase{"UnknownDefaultSampleType",
                   [](sleuth_oracle::Profile* p) { p->set_default_sample_type(5); },
                   "default_sample_type \"main\""},
        BrokenCase{
            "LabelWithoutKey",
            [](sleuth_oracle::Profile* p) { p->mutable_sample(0)->mutable_label(0)->set_key(0); },
            "label without a key"},
        BrokenCase{"SamplesWithoutTypes",
                   [](sleuth_oracle::Profile* p) {
                     p->clear_sample_type();
                     p->clear_default_sample_type();
                   },
                   "no sample types"}),
    [](const ::testing::TestParamInfo<BrokenCase>& info) { return info.param.name; });

}  // namespace
}  // namespace sleuth::testing
