#include "sleuth/profiles/proc_maps.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace sleuth::profiles {
namespace {

using ::testing::HasSubstr;
using testing::ReadFixture;

TEST(ProcMapsTest, ParsesARealMapsFile) {
  Result<std::vector<ProcMapping>> maps = ParseProcMaps(ReadFixture("proc_maps.txt"));
  ASSERT_TRUE(maps.ok()) << maps.status().message();
  ASSERT_GE(maps->size(), 10u);
  const ProcMapping& first = maps->front();
  EXPECT_EQ(first.path, "/usr/bin/cat");
  EXPECT_TRUE(first.readable);
  EXPECT_FALSE(first.executable);
  EXPECT_EQ(first.dev_major, 0xfeu);
  EXPECT_EQ(first.inode, 247134u);
  EXPECT_TRUE(first.IsFileBacked());
  const ProcMapping& text = (*maps)[1];
  EXPECT_TRUE(text.executable);
  EXPECT_EQ(text.file_offset, 0x2000u);
  EXPECT_EQ(text.limit - text.start, 0x5000u);
}

TEST(ProcMapsTest, HandlesSpecialRegionsDeletedFilesAndSpaces) {
  Result<std::vector<ProcMapping>> maps = ParseProcMaps(ReadFixture("proc_maps_edge_cases.txt"));
  ASSERT_TRUE(maps.ok()) << maps.status().message();
  ASSERT_EQ(maps->size(), 14u);
  EXPECT_EQ((*maps)[2].path, "[heap]");
  EXPECT_FALSE((*maps)[2].IsFileBacked());
  EXPECT_EQ((*maps)[3].path, "");  // anonymous, trailing blank
  EXPECT_EQ((*maps)[4].path, "[anon:v8 code space]");
  EXPECT_TRUE((*maps)[4].executable && (*maps)[4].writable);
  const ProcMapping& deleted = (*maps)[7];
  EXPECT_EQ(deleted.path, "/opt/app/lib/plugin v2.so");
  EXPECT_TRUE(deleted.deleted);
  EXPECT_TRUE(deleted.IsFileBacked());
  EXPECT_TRUE((*maps)[8].shared);
  EXPECT_EQ((*maps)[8].path, "/memfd:ring");
  EXPECT_EQ((*maps)[12].path, "[vdso]");
  EXPECT_EQ((*maps)[13].start, 0xffffffffff600000u);
  EXPECT_TRUE((*maps)[13].executable);
  EXPECT_FALSE((*maps)[13].readable);
}

TEST(ProcMapsTest, MalformedLineNamesItsNumber) {
  Result<std::vector<ProcMapping>> maps = ParseProcMaps(ReadFixture("proc_maps_malformed.txt"));
  ASSERT_FALSE(maps.ok());
  EXPECT_EQ(maps.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(maps.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(maps.status().message(), HasSubstr("start-limit"));
}

TEST(ProcMapsTest, TruncatedLastLineIsAnError) {
  Result<std::vector<ProcMapping>> maps = ParseProcMaps(ReadFixture("proc_maps_truncated.txt"));
  ASSERT_FALSE(maps.ok());
  EXPECT_THAT(maps.status().message(), HasSubstr("line 2"));
}

TEST(ProcMapsTest, EachFieldIsChecked) {
  EXPECT_THAT(ParseProcMapsLine("1000-2000 r-x 0 00:00 0").status().message(),
              HasSubstr("permissions"));
  EXPECT_THAT(ParseProcMapsLine("1000-2000 r-xp zz 00:00 0").status().message(),
              HasSubstr("file offset"));
  EXPECT_THAT(ParseProcMapsLine("1000-2000 r-xp 0 0000 0").status().message(),
              HasSubstr("major:minor"));
  EXPECT_THAT(ParseProcMapsLine("1000-2000 r-xp 0 00:00 x").status().message(), HasSubstr("inode"));
  EXPECT_THAT(ParseProcMapsLine("2000-1000 r-xp 0 00:00 0").status().message(),
              HasSubstr("start-limit"));
  EXPECT_TRUE(ParseProcMapsLine("1000-2000 r-xp 0 00:00 0").ok());
}

TEST(ProcMapsTest, EmptyTextHasNoMappings) {
  Result<std::vector<ProcMapping>> maps = ParseProcMaps("\n\n");
  ASSERT_TRUE(maps.ok());
  EXPECT_TRUE(maps->empty());
}

}  // namespace
}  // namespace sleuth::profiles
