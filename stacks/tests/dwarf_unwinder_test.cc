#include "sleuth/stacks/dwarf_unwinder.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "call_chain.h"
#include "sleuth/profiles/symbolizer.h"

namespace sleuth::stacks {
namespace {

// Function names of an unwound stack, leaf first (return addresses looked
// up at pc - 1, as the pprof encoder does).
std::vector<std::string> Names(profiles::Symbolizer& symbolizer, const uint64_t* pcs,
                               size_t frames) {
  std::vector<std::string> names;
  for (size_t i = 0; i < frames; ++i) {
    names.push_back(symbolizer.Lookup(i == 0 ? pcs[i] : pcs[i] - 1).function);
  }
  return names;
}

std::string Join(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += "\n  " + (name.empty() ? "?" : name);
  return text;
}

bool Contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

// A thread of this process parked inside Outer -> Middle -> CaptureLeaf,
// with the registers it had there.
class ParkedChainThread {
 public:
  ParkedChainThread() {
    thread_ = std::thread([this] {
      tid_.store(static_cast<pid_t>(syscall(SYS_gettid)));
      SleuthChainCapture(&regs_, &state_);
    });
    while (state_.load(std::memory_order_acquire) != 1) std::this_thread::yield();
  }
  ~ParkedChainThread() {
    state_.store(2, std::memory_order_release);
    thread_.join();
  }
  pid_t tid() const { return tid_.load(); }
  const Registers& regs() const { return regs_; }

 private:
  Registers regs_;
  std::atomic<int> state_{0};
  std::atomic<pid_t> tid_{0};
  std::thread thread_;
};

void ExpectCaptureChain(const std::vector<std::string>& names) {
  ASSERT_GE(names.size(), 4u) << Join(names);
  EXPECT_TRUE(Contains(names[0], "SleuthChainCaptureLeaf")) << Join(names);
  EXPECT_TRUE(Contains(names[1], "SleuthChainCaptureMiddle")) << Join(names);
  EXPECT_TRUE(Contains(names[2], "SleuthChainCaptureOuter")) << Join(names);
  EXPECT_TRUE(Contains(names[3], "SleuthChainCapture")) << Join(names);
}

TEST(DwarfUnwinderTest, UnwindsAThreadOfThisProcessFromLiveMemory) {
  ParkedChainThread parked;
  Result<std::unique_ptr<DwarfUnwinder>> unwinder = DwarfUnwinder::ForProcess(getpid());
  ASSERT_TRUE(unwinder.ok()) << unwinder.status().ToString();
  Result<profiles::Symbolizer> symbolizer = profiles::Symbolizer::ForProcess(0);
  ASSERT_TRUE(symbolizer.ok()) << symbolizer.status().ToString();
  uint64_t pcs[128] = {};
  UnwindResult result = (*unwinder)->Unwind(parked.tid(), parked.regs(), nullptr, pcs, 128);
  EXPECT_EQ(pcs[0], parked.regs().rip);
  std::vector<std::string> names = Names(*symbolizer, pcs, result.frames);
  ExpectCaptureChain(names);
  // On to the thread's start: std::thread's trampoline, then libc's.
  EXPECT_GT(result.frames, 5u) << Join(names) << "\nstopped: " << result.stopped_because;
}

TEST(DwarfUnwinderTest, UnwindsFromAStackCopy) {
  ParkedChainThread parked;
  // Copy the top 16 KiB of the parked thread's stack, as perf would.
  std::vector<uint8_t> copy(16 * 1024);
  iovec local{copy.data(), copy.size()};
  iovec remote{reinterpret_cast<void*>(parked.regs().rsp), copy.size()};
  const ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  ASSERT_GT(got, 256);
  copy.resize(static_cast<size_t>(got));
  StackCopy stack{parked.regs().rsp, copy};

  Result<std::unique_ptr<DwarfUnwinder>> unwinder = DwarfUnwinder::ForProcess(getpid());
  ASSERT_TRUE(unwinder.ok()) << unwinder.status().ToString();
  Result<profiles::Symbolizer> symbolizer = profiles::Symbolizer::ForProcess(0);
  ASSERT_TRUE(symbolizer.ok());
  uint64_t pcs[128] = {};
  UnwindResult result = (*unwinder)->Unwind(parked.tid(), parked.regs(), &stack, pcs, 128);
  ExpectCaptureChain(Names(*symbolizer, pcs, result.frames));

  // The copy is what is read, not the live stack: a copy whose return
  // addresses are zeroed ends the walk in the leaf's caller-to-be.
  std::vector<uint8_t> zeroed(copy.size(), 0);
  StackCopy blank{parked.regs().rsp, zeroed};
  UnwindResult blank_result = (*unwinder)->Unwind(parked.tid(), parked.regs(), &blank, pcs, 128);
  EXPECT_LE(blank_result.frames, 2u);
}

TEST(DwarfUnwinderTest, CapsTheFramesWritten) {
  ParkedChainThread parked;
  Result<std::unique_ptr<DwarfUnwinder>> unwinder = DwarfUnwinder::ForProcess(getpid());
  ASSERT_TRUE(unwinder.ok());
  uint64_t pcs[3] = {};
  UnwindResult result = (*unwinder)->Unwind(parked.tid(), parked.regs(), nullptr, pcs, 2);
  EXPECT_EQ(result.frames, 2u);
  EXPECT_EQ(pcs[2], 0u);
  EXPECT_STREQ(result.stopped_because, "");
}

TEST(DwarfUnwinderTest, RefreshKeepsUnwinding) {
  ParkedChainThread parked;
  Result<std::unique_ptr<DwarfUnwinder>> unwinder = DwarfUnwinder::ForProcess(getpid());
  ASSERT_TRUE(unwinder.ok());
  ASSERT_TRUE((*unwinder)->Refresh().ok());
  Result<profiles::Symbolizer> symbolizer = profiles::Symbolizer::ForProcess(0);
  ASSERT_TRUE(symbolizer.ok());
  uint64_t pcs[128] = {};
  UnwindResult result = (*unwinder)->Unwind(parked.tid(), parked.regs(), nullptr, pcs, 128);
  ExpectCaptureChain(Names(*symbolizer, pcs, result.frames));
}

TEST(DwarfUnwinderTest, GarbageRegistersEndTheWalkWithoutFaulting) {
  Result<std::unique_ptr<DwarfUnwinder>> unwinder = DwarfUnwinder::ForProcess(getpid());
  ASSERT_TRUE(unwinder.ok());
  Registers regs;
  regs.rip = 0x10;  // mapped nowhere
  regs.rsp = 0x1000;
  regs.rbp = 0xdeadbeef0;
  uint64_t pcs[128] = {};
  UnwindResult result =
      (*unwinder)->Unwind(static_cast<pid_t>(syscall(SYS_gettid)), regs, nullptr, pcs, 128);
  EXPECT_EQ(result.frames, 1u);
  EXPECT_EQ(pcs[0], 0x10u);
  EXPECT_STRNE(result.stopped_because, "");
}

TEST(DwarfUnwinderTest, MissingProcessIsAnError) {
  // pid_max is at most 2^22 on Linux.
  Result<std::unique_ptr<DwarfUnwinder>> unwinder = DwarfUnwinder::ForProcess(1 << 23);
  ASSERT_FALSE(unwinder.ok());
  EXPECT_EQ(unwinder.status().code(), StatusCode::kGone) << unwinder.status().ToString();
}

}  // namespace
}  // namespace sleuth::stacks
