#include "sleuth/common/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <gtest/gtest.h>

namespace sleuth {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/sleuth_files_test.XXXXXX";
  char* dir = mkdtemp(tmpl);
  EXPECT_NE(dir, nullptr);
  return dir;
}

TEST(Files, AtomicWriteThenReadBack) {
  std::string dir = TempDir();
  std::string path = dir + "/a/b/out.bin";
  ASSERT_TRUE(MakeDirs(dir + "/a/b").ok());
  std::string data(100000, 'x');
  data[5] = '\0';
  ASSERT_TRUE(WriteFileAtomic(path, data, 0600).ok());
  auto back = ReadFile(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto names = ListDir(dir + "/a/b");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 1u) << "no temporary file may be left behind";
}

TEST(Files, MissingFileIsNotFoundWithThePath) {
  auto r = ReadFile("/nonexistent/sleuth/file");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/sleuth/file"), std::string::npos);
}

TEST(Files, ReadsProcfs) {
  auto r = ReadFile("/proc/self/status");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->find("Threads:"), std::string::npos);
}

TEST(Files, MakeDirsRefusesAFile) {
  std::string dir = TempDir();
  ASSERT_TRUE(WriteFileAtomic(dir + "/f", "x").ok());
  EXPECT_FALSE(MakeDirs(dir + "/f").ok());
}

}  // namespace
}  // namespace sleuth
