#include "nearest.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sleuth::config {
namespace {

TEST(EditDistanceTest, CountsEdits) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("abs", "abs"), 0u);
  EXPECT_EQ(EditDistance("abs", "ABS"), 0u);
  EXPECT_EQ(EditDistance("abss", "abs"), 1u);
  EXPECT_EQ(EditDistance("asb", "abs"), 2u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
}

TEST(NearestKeyTest, FindsTheClosestKey) {
  const std::vector<std::string> keys = {"agent.interval", "cpu.abs", "cpu.min", "heap.abs",
                                         "memory.abs"};
  EXPECT_EQ(NearestKey("cpu.abss", keys), "cpu.abs");
  EXPECT_EQ(NearestKey("cpu.mni", keys), "cpu.min");
  EXPECT_EQ(NearestKey("memory.interval", keys), "agent.interval");
  EXPECT_EQ(NearestKey("interval", keys), "agent.interval");
  EXPECT_EQ(NearestKey("memroy.abs", keys), "memory.abs");
  EXPECT_EQ(NearestKey("x", {}), "");
}

TEST(NearestKeyTest, WorksOnEnvironmentNames) {
  const std::vector<std::string> names = {"SLEUTH_CPU_ABS", "SLEUTH_CPU_MIN", "SLEUTH_CONFIG"};
  EXPECT_EQ(NearestKey("SLEUTH_CPU_ABSS", names), "SLEUTH_CPU_ABS");
  EXPECT_EQ(NearestKey("SLEUTH_CONFG", names), "SLEUTH_CONFIG");
}

}  // namespace
}  // namespace sleuth::config
