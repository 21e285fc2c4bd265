// A fresh private directory per test (0700, under the test temp dir),
// removed when the test passes.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace sleuth::dumps::testing {

inline std::string FreshDir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = ::testing::TempDir() + "sleuth_" + tag + "_" + info->name() + "_" +
                    std::to_string(::getpid());
  int rc = std::system(("rm -rf '" + dir + "' && mkdir -m 0700 -p '" + dir + "'").c_str());
  EXPECT_EQ(rc, 0);
  return dir;
}

inline void RemoveTree(const std::string& dir) {
  int rc = std::system(("rm -rf '" + dir + "'").c_str());
  (void)rc;  // best effort
}

}  // namespace sleuth::dumps::testing
