// Helpers shared by the collectors tests: fixture files and throwaway
// copies of the fake /proc + /sys trees.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace sleuth::collectors::testing {

inline std::string FixturePath(const std::string& relative) {
  return std::string(SLEUTH_FIXTURE_DIR) + "/collectors/" + relative;
}

// The text of tests/fixtures/collectors/<relative>; fails the test if absent.
inline std::string Fixture(const std::string& relative) {
  std::ifstream in(FixturePath(relative), std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << FixturePath(relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// A private copy of trees/<layout> in a fresh temporary directory, removed
// when the object dies, so a test may rewrite files in it.
class TreeCopy {
 public:
  explicit TreeCopy(const std::string& layout) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "sleuth-collectors-XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << "mkdtemp failed";
    root_ = pattern;
    std::filesystem::copy(FixturePath("trees/" + layout), root_,
                          std::filesystem::copy_options::recursive);
  }
  ~TreeCopy() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  TreeCopy(const TreeCopy&) = delete;
  TreeCopy& operator=(const TreeCopy&) = delete;

  const std::string& root() const { return root_; }
  std::filesystem::path Path(const std::string& logical) const { return root_ + logical; }
  void Write(const std::string& logical, const std::string& text) const {
    WriteText(Path(logical), text);
  }
  void Remove(const std::string& logical) const { std::filesystem::remove(Path(logical)); }

 private:
  std::string root_;
};

}  // namespace sleuth::collectors::testing
