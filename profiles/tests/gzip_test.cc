#include "sleuth/profiles/gzip.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "sleuth/testing/pprof_oracle.h"
#include "test_util.h"

namespace sleuth::profiles {
namespace {

using ::testing::HasSubstr;

std::string RandomBytes(size_t n) {
  std::mt19937 rng(42);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

TEST(GzipTest, RoundTrips) {
  for (const std::string& data :
       {std::string(), std::string("hello"), std::string(1 << 20, 'x'), RandomBytes(300'000)}) {
    Result<std::string> gz = GzipCompress(data);
    ASSERT_TRUE(gz.ok()) << gz.status().message();
    Result<std::string> back = GzipDecompress(*gz, data.size() + 1);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(*back, data);
  }
}

TEST(GzipTest, WritesTheGzipFormatNotBareZlib) {
  Result<std::string> gz = GzipCompress(std::string(10000, 'a'));
  ASSERT_TRUE(gz.ok());
  ASSERT_GE(gz->size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[1]), 0x8b);
  EXPECT_EQ((*gz)[2], 8) << "deflate";
  EXPECT_LT(gz->size(), 200u);
  // The system's gzip agrees.
  std::string dir = testing::MakeTempDir();
  {
    FILE* f = std::fopen((dir + "/a.gz").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(gz->data(), 1, gz->size(), f);
    std::fclose(f);
  }
  int exit_code = 0;
  std::string out = testing::RunCommand("gzip -dc '" + dir + "/a.gz' | wc -c", &exit_code);
  if (exit_code == 0 && !out.empty()) {
    EXPECT_EQ(std::stoi(out), 10000);
  }
  testing::RemoveTree(dir);
}

TEST(GzipTest, ConcatenatedMembersAreJoined) {
  Result<std::string> a = GzipCompress("first ");
  Result<std::string> b = GzipCompress("second");
  ASSERT_TRUE(a.ok() && b.ok());
  Result<std::string> both = GzipDecompress(*a + *b, 100);
  ASSERT_TRUE(both.ok()) << both.status().message();
  EXPECT_EQ(*both, "first second");
}

TEST(GzipTest, EnforcesTheOutputLimit) {
  Result<std::string> gz = GzipCompress(std::string(1 << 20, 'z'));
  ASSERT_TRUE(gz.ok());
  Result<std::string> out = GzipDecompress(*gz, 1000);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("exceeds the limit of 1000 bytes"));
}

TEST(GzipTest, RejectsTruncatedCorruptAndForeignInput) {
  Result<std::string> gz = GzipCompress(RandomBytes(10000));
  ASSERT_TRUE(gz.ok());
  Result<std::string> cut = GzipDecompress(gz->substr(0, gz->size() / 2), 1 << 20);
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.status().message(), HasSubstr("truncated"));

  std::string corrupt = *gz;
  corrupt[corrupt.size() - 5] ^= 0x55;  // the CRC/length trailer
  EXPECT_THAT(GzipDecompress(corrupt, 1 << 20).status().message(), HasSubstr("corrupt"));

  EXPECT_THAT(GzipDecompress("plain text", 100).status().message(), HasSubstr("not gzip"));
  EXPECT_FALSE(GzipDecompress("", 100).ok());
}

TEST(GzipTest, TheOracleReadsWhatWeCompress) {
  // An empty profile: just the string table entry "".
  Result<std::string> gz = GzipCompress(std::string("\x32\x00", 2));
  ASSERT_TRUE(gz.ok());
  sleuth::testing::DecodedProfile d = sleuth::testing::DecodePprofGz(*gz);
  EXPECT_TRUE(d.ok()) << d.ErrorText();
}

}  // namespace
}  // namespace sleuth::profiles
