#include "sleuth/profiles/stacks_text.h"

#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>

#include "test_util.h"

__attribute__((noinline, noclone)) static int StacksTextTestWait(int x) {
  volatile int v = x;
  for (int i = 0; i < 8; ++i) v = v * 3 + i;
  return v;
}

namespace sleuth::profiles {
namespace {

using ::testing::HasSubstr;

std::string Hex(uint64_t pc) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, pc);
  return buf;
}

TEST(StacksTextTest, RendersPstackStyle) {
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  uint64_t wait_pc = reinterpret_cast<uint64_t>(&StacksTextTestWait) + 1;
  uint64_t poll_pc = reinterpret_cast<uint64_t>(testing::LibcFunction("poll")) + 2;
  RawProfile p;
  p.sample_types = {{"threads", "count"}};
  RawSample main_thread;
  main_thread.pcs = {poll_pc, wait_pc + 1, 0x10};
  main_thread.values = {1};
  main_thread.labels = {{"thread_id", "", 4242, ""}, {"thread_name", "server", 0, ""}};
  RawSample unnamed;
  unnamed.pcs = {wait_pc};
  unnamed.values = {1};
  unnamed.labels = {{"thread_id", "", 4243, ""}};
  p.samples = {main_thread, unnamed};

  std::string text = RenderStacksText(p, *sym);
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string expected_start = "Thread 4242 (server):\n#0  " + Hex(poll_pc) + " in poll () from ";
  EXPECT_EQ(text.substr(0, expected_start.size()), expected_start) << text;
  EXPECT_THAT(text, HasSubstr("libc.so.6\n#1  " + Hex(wait_pc + 1) +
                              " in StacksTextTestWait(int) from " + exe + "\n"));
  EXPECT_THAT(text, HasSubstr("#2  " + Hex(0x10) + " in ?? ()\n"));
  EXPECT_THAT(text, HasSubstr("\n\nThread 4243 (?):\n#0  " + Hex(wait_pc) +
                              " in StacksTextTestWait(int) from " + exe + "\n"));
}

TEST(StacksTextTest, NamedFramesAndMissingLabels) {
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  RawProfile p;
  p.sample_types = {{"threads", "count"}};
  RawSample s;
  s.names = {"leaf", "root"};
  s.values = {1};
  p.samples = {s};
  EXPECT_EQ(RenderStacksText(p, *sym), "Thread ? (?):\n#0  leaf\n#1  root\n");
  EXPECT_EQ(RenderStacksText(RawProfile(), *sym), "");
}

}  // namespace
}  // namespace sleuth::profiles
