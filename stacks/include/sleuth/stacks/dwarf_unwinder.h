// DwarfUnwinder: walks a thread's user stack from a register set, with the
// DWARF call-frame information (.eh_frame, .debug_frame, separate debug
// files) of the ELF files mapped in the target process, falling back to
// frame pointers where a frame has no CFI. Used for the samples of a perf
// event (registers + a copy of the user stack) and for threads stopped with
// ptrace (registers + the live memory of the target).
//
// One unwinder per target process; the target may be this process
// (getpid()) or another one. Memory outside the stack copy is read with
// process_vm_readv(2) on the target, so a bad address is an error, never a
// fault. Unwinding never runs in the target's threads: it is done by the
// caller's thread (the agent's own worker, or sleuth's CLI).
//
// Implementation: elfutils' libdwfl, loaded privately (dlopen RTLD_LOCAL)
// on first use, so that libsleuth.so has no DT_NEEDED on it.
//
// Thread-safety: thread-compatible (one thread uses one unwinder at a time).
// Not async-signal-safe: it allocates.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "sleuth/common/status.h"

namespace sleuth::stacks {

// The x86-64 user registers an unwind starts from (the subset perf's
// PERF_SAMPLE_REGS_USER and ptrace's user_regs_struct both give).
struct Registers {
  uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rbp = 0, rsp = 0;
  uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  uint64_t rip = 0;
};

// A copy of the top of a thread's stack taken at the same moment as its
// registers: bytes[0] is the memory at address `start` (normally rsp).
struct StackCopy {
  uint64_t start = 0;
  std::span<const uint8_t> bytes;
};

struct UnwindResult {
  size_t frames = 0;  // pcs written, leaf first: pcs[0] = rip, then return addresses
  // Why the walk stopped early, for the dump's notes ("" when it reached
  // the outermost frame or max_frames); a static string.
  const char* stopped_because = "";
};

class DwarfUnwinder {
 public:
  // Reads /proc/<pid>/maps and prepares to unwind that process's threads.
  // kUnavailable (with the reason and how to fix it) when libdw cannot be
  // loaded.
  [[nodiscard]] static Result<std::unique_ptr<DwarfUnwinder>> ForProcess(pid_t pid);
  virtual ~DwarfUnwinder();

  // Re-reads the maps (the target dlopened or dlclosed libraries).
  [[nodiscard]] virtual Status Refresh() = 0;

  // Walks thread `tid` from `regs`. Memory in [stack->start, +size) is read
  // from the copy; with `stack` null, or outside it, from the target's live
  // memory. Writes at most `max_frames` pcs.
  virtual UnwindResult Unwind(pid_t tid, const Registers& regs, const StackCopy* stack,
                              uint64_t* pcs, size_t max_frames) = 0;
};

// Ok if libdw can be loaded (the unwinder's only requirement besides
// /proc/<pid>/maps); kUnavailable naming the package otherwise. Cheap after
// the first call.
[[nodiscard]] Status DwarfUnwinderAvailable();

}  // namespace sleuth::stacks
