#include "sleuth/common/units.h"

#include <gtest/gtest.h>

namespace sleuth {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(ParseDuration, AcceptsEachUnitAndCompounds) {
  EXPECT_EQ(ParseDuration("250ms").value(), milliseconds(250));
  EXPECT_EQ(ParseDuration("5s").value(), seconds(5));
  EXPECT_EQ(ParseDuration("1m").value(), minutes(1));
  EXPECT_EQ(ParseDuration("1h").value(), minutes(60));
  EXPECT_EQ(ParseDuration("1h30m").value(), minutes(90));
  EXPECT_EQ(ParseDuration("10us").value(), Nanos(10'000));
  EXPECT_EQ(ParseDuration("0").value(), Nanos(0));
  EXPECT_EQ(ParseDuration(" 2s ").value(), seconds(2));
}

TEST(ParseDuration, RejectsWithAnExplanation) {
  for (const char* bad : {"", "5", "5 sec", "s", "-1s", "1.5s", "5x", "99999999999999999999h"}) {
    auto r = ParseDuration(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("expected a number followed by"), std::string::npos)
        << r.status().message();
  }
}

TEST(ParseSize, AcceptsBinaryAndDecimalUnits) {
  EXPECT_EQ(ParseSize("512KiB").value(), 512u * 1024);
  EXPECT_EQ(ParseSize("64MiB").value(), 64u << 20);
  EXPECT_EQ(ParseSize("1GiB").value(), 1ull << 30);
  EXPECT_EQ(ParseSize("4096").value(), 4096u);
  EXPECT_EQ(ParseSize("10KB").value(), 10'000u);
  EXPECT_EQ(ParseSize("3 MiB").value(), 3u << 20);
}

TEST(ParseSize, RejectsWithAnExplanation) {
  for (const char* bad : {"", "MiB", "1.5MiB", "12 parsecs", "-5", "99999999999TiB"}) {
    auto r = ParseSize(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("invalid size"), std::string::npos);
  }
}

TEST(Format, RoundTrips) {
  for (const char* text : {"250ms", "5s", "1m", "1h", "90m", "10us"}) {
    EXPECT_EQ(ParseDuration(FormatDuration(ParseDuration(text).value())).value(),
              ParseDuration(text).value());
  }
  EXPECT_EQ(FormatDuration(seconds(60)), "1m");
  EXPECT_EQ(FormatSize(512 * 1024), "512KiB");
  EXPECT_EQ(FormatSize(1000), "1000B");
  EXPECT_EQ(FormatSize(1ull << 30), "1GiB");
}

}  // namespace
}  // namespace sleuth
