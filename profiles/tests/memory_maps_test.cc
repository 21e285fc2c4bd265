#include "sleuth/profiles/memory_maps.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "test_util.h"

namespace sleuth::profiles {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ReadFixture;

std::map<std::string, const RawSample*> ByGroup(const RawProfile& p) {
  std::map<std::string, const RawSample*> out;
  for (const RawSample& s : p.samples) out[s.names.front()] = &s;
  return out;
}

constexpr const char* kSmall =
    "55d0c1a00000-55d0c1a02000 r--p 00000000 fe:00 1311       /opt/app/bin/server\n"
    "Size:                  8 kB\n"
    "Rss:                   8 kB\n"
    "Pss:                   4 kB\n"
    "Anonymous:             0 kB\n"
    "Swap:                  0 kB\n"
    "VmFlags: rd mr mw me dw\n"
    "55d0c1a02000-55d0c1a09000 r-xp 00002000 fe:00 1311       /opt/app/bin/server\n"
    "Size:                 28 kB\n"
    "Rss:                  20 kB\n"
    "Pss:                  20 kB\n"
    "55d0c2b00000-55d0c2b21000 rw-p 00000000 00:00 0          [heap]\n"
    "Size:                132 kB\n"
    "Rss:                 100 kB\n"
    "Pss:                 100 kB\n"
    "Anonymous:           100 kB\n"
    "7f3a10000000-7f3a10021000 rw-p 00000000 00:00 0 \n"
    "Size:                132 kB\n"
    "Rss:                  12 kB\n"
    "Anonymous:            12 kB\n"
    "Swap:                  8 kB\n"
    "7f3a14000000-7f3a14200000 rw-p 00000000 00:00 0          [anon:arena]\n"
    "Rss:                  40 kB\n"
    "7f3a1c500000-7f3a1c504000 r-xp 00001000 fe:00 4097       /opt/app/lib/plugin.so (deleted)\n"
    "Rss:                   4 kB\n"
    "7ffd5a1e0000-7ffd5a201000 rw-p 00000000 00:00 0          [stack]\n"
    "Rss:                  16 kB\n"
    "7ffd5a3f6000-7ffd5a3f8000 r-xp 00000000 00:00 0          [vdso]\n"
    "Rss:                   8 kB\n";

TEST(MemoryMapsTest, GroupsAndSumsMappings) {
  Result<RawProfile> p = MemoryMapsProfile(kSmall);
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->sample_types.size(), 5u);
  EXPECT_EQ(p->sample_types[0].type, "rss");
  EXPECT_EQ(p->sample_types[4].type, "size");
  for (const ValueType& t : p->sample_types) EXPECT_EQ(t.unit, "bytes");
  EXPECT_EQ(p->default_sample_type, "rss");
  auto groups = ByGroup(*p);
  ASSERT_EQ(groups.size(), 7u);

  const RawSample* server = groups.at("file:/opt/app/bin/server");
  EXPECT_THAT(server->names, ElementsAre("file:/opt/app/bin/server", "files"));
  EXPECT_THAT(server->values, ElementsAre(28 * 1024, 24 * 1024, 0, 0, 36 * 1024));
  EXPECT_EQ(server->labels.at(0).key, "mappings");
  EXPECT_EQ(server->labels.at(0).num, 2);

  EXPECT_THAT(groups.at("[heap]")->names, ElementsAre("[heap]"));
  EXPECT_EQ(groups.at("[heap]")->values[2], 100 * 1024);
  EXPECT_THAT(groups.at("anonymous")->values,
              ElementsAre(12 * 1024, 0, 12 * 1024, 8 * 1024, 132 * 1024));
  EXPECT_THAT(groups.at("[anon:arena]")->names, ElementsAre("[anon:arena]", "anonymous"));
  EXPECT_TRUE(groups.count("file:/opt/app/lib/plugin.so (deleted)"));
  EXPECT_TRUE(groups.count("[stack]"));
  EXPECT_TRUE(groups.count("[vdso]"));
  // Largest rss first.
  EXPECT_EQ(p->samples.front().names.front(), "[heap]");
}

TEST(MemoryMapsTest, ARealSmapsFile) {
  Result<RawProfile> p = MemoryMapsProfile(ReadFixture("smaps.txt"));
  ASSERT_TRUE(p.ok()) << p.status().message();
  auto groups = ByGroup(*p);
  EXPECT_TRUE(groups.count("[heap]"));
  EXPECT_TRUE(groups.count("[stack]"));
  EXPECT_TRUE(groups.count("anonymous"));
  EXPECT_TRUE(groups.count("file:/usr/lib/x86_64-linux-gnu/libc.so.6"));
  EXPECT_EQ(groups.at("file:/usr/lib/x86_64-linux-gnu/libc.so.6")->labels[0].num, 5);
  int64_t rss = 0;
  for (const RawSample& s : p->samples) {
    rss += s.values[0];
    EXPECT_LE(s.values[0], s.values[4]) << s.names.front() << ": rss within size";
  }
  EXPECT_GT(rss, 1 << 20);
}

TEST(MemoryMapsTest, TruncatedInsideAFieldIsAnError) {
  Result<RawProfile> p = MemoryMapsProfile(ReadFixture("smaps_truncated.txt"));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("expected \"<number> kB\""));
  EXPECT_THAT(p.status().message(), HasSubstr("Rss"));
}

TEST(MemoryMapsTest, FieldsBeforeAnyHeaderAreAnError) {
  Result<RawProfile> p = MemoryMapsProfile(ReadFixture("smaps_malformed.txt"));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("line 1"));
  EXPECT_THAT(p.status().message(), HasSubstr("before the first mapping header"));
}

TEST(MemoryMapsTest, OtherErrors) {
  EXPECT_THAT(MemoryMapsProfile("").status().message(), HasSubstr("no mappings"));
  EXPECT_THAT(MemoryMapsProfile("1000-2000 r-xp zz 00:00 0 /x\n").status().message(),
              HasSubstr("smaps line 1"));
  EXPECT_THAT(MemoryMapsProfile("1000-2000 r-xp 0 00:00 0 /x\nRss: 12 MB\n").status().message(),
              HasSubstr("line 2"));
  EXPECT_THAT(MemoryMapsProfile("1000-2000 r-xp 0 00:00 0 /x\njunk\n").status().message(),
              HasSubstr("\"Key: value\""));
}

}  // namespace
}  // namespace sleuth::profiles
