#include "call_chain.h"

namespace {

// Each level uses its callee's result after the call, so -O2 can neither
// inline nor turn the call into a tail jump that would drop a frame.
#define SLEUTH_KEEP(x) asm volatile("" : "+r"(x))

}  // namespace

__attribute__((noinline)) static uint64_t SleuthChainLeaf(uint64_t x) {
  for (int i = 0; i < 2'000'000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    SLEUTH_KEEP(x);
  }
  return x;
}

__attribute__((noinline)) static uint64_t SleuthChainMiddle(uint64_t x) {
  x = SleuthChainLeaf(x + 1);
  SLEUTH_KEEP(x);
  return x + 3;
}

__attribute__((noinline)) static uint64_t SleuthChainOuter(uint64_t x) {
  x = SleuthChainMiddle(x + 5);
  SLEUTH_KEEP(x);
  return x + 7;
}

uint64_t SleuthChainRun(const std::atomic<bool>* stop) {
  uint64_t x = 88172645463325252ull;
  while (!stop->load(std::memory_order_relaxed)) {
    x = SleuthChainOuter(x);
    SLEUTH_KEEP(x);
  }
  return x;
}

__attribute__((noinline)) static void SleuthChainCaptureLeaf(sleuth::stacks::Registers* regs,
                                                            std::atomic<int>* state) {
  uint64_t rip = 0, rsp = 0, rbp = 0, rbx = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  asm volatile(
      "lea 0(%%rip), %0\n\t"
      "mov %%rsp, %1\n\t"
      "mov %%rbp, %2\n\t"
      "mov %%rbx, %3\n\t"
      "mov %%r12, %4\n\t"
      "mov %%r13, %5\n\t"
      "mov %%r14, %6\n\t"
      "mov %%r15, %7\n\t"
      : "=r"(rip), "=r"(rsp), "=r"(rbp), "=r"(rbx), "=r"(r12), "=r"(r13), "=r"(r14), "=r"(r15));
  regs->rip = rip;
  regs->rsp = rsp;
  regs->rbp = rbp;
  regs->rbx = rbx;
  regs->r12 = r12;
  regs->r13 = r13;
  regs->r14 = r14;
  regs->r15 = r15;
  state->store(1, std::memory_order_release);
  while (state->load(std::memory_order_acquire) != 2) __builtin_ia32_pause();
}

__attribute__((noinline)) static void SleuthChainCaptureMiddle(sleuth::stacks::Registers* regs,
                                                              std::atomic<int>* state) {
  SleuthChainCaptureLeaf(regs, state);
  asm volatile("" ::: "memory");
}

__attribute__((noinline)) static void SleuthChainCaptureOuter(sleuth::stacks::Registers* regs,
                                                             std::atomic<int>* state) {
  SleuthChainCaptureMiddle(regs, state);
  asm volatile("" ::: "memory");
}

void SleuthChainCapture(sleuth::stacks::Registers* regs, std::atomic<int>* state) {
  SleuthChainCaptureOuter(regs, state);
  asm volatile("" ::: "memory");
}
