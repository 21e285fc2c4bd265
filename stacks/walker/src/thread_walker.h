// The walk itself: stops each thread of a process in turn with ptrace,
// reads its registers, unwinds it from the live memory and lets it go.
// Used by sleuth-stackwalk's main and by the walker's tests.
//
// How a thread is walked (one at a time, so no thread is stopped longer
// than its own walk):
//   PTRACE_SEIZE (sends nothing, the thread keeps running), PTRACE_INTERRUPT,
//   waitpid(tid, __WALL) for the stop, PTRACE_GETREGS, unwind,
//   PTRACE_DETACH (re-injecting the signal when the stop we got was a
//   signal-delivery-stop). Every path out of a seized thread detaches; a
//   thread that has not stopped yet cannot be detached (the kernel refuses
//   PTRACE_DETACH on a running tracee), so it is kept in a list, detached
//   as soon as it stops, and at the latest by the kernel when the walker
//   exits (exit_ptrace unlinks every tracee and clears its pending trap;
//   the same happens when the walker is killed with SIGKILL).
//
// What the host sees. A stop makes the thread leave a blocking system call
// with one of the ERESTART* codes, and because no signal handler runs, the
// kernel restarts it on resume without the thread noticing: nanosleep and
// clock_nanosleep, poll, select, futex waits (relative timeouts are kept:
// they restart with the time left), read and write on pipes and sockets.
// A few calls return EINTR after any stop, ptrace or SIGSTOP/SIGCONT alike
// (signal(7), "Interruption of system calls and library functions by stop
// signals"): epoll_wait and epoll_pwait, sigtimedwait and sigwaitinfo,
// semop and semtimedop, socket calls with SO_RCVTIMEO/SO_SNDTIMEO set. On
// this project's kernel (6.18) the walker's stop shows it directly: at the
// stop, rax holds -EINTR for epoll_wait, sigtimedwait and recv with
// SO_RCVTIMEO, and -ERESTART_RESTARTBLOCK (nanosleep, poll, futex),
// -ERESTARTNOHAND (select) or -ERESTARTSYS (read) for the others; all of
// those slept their full time. The walker reports that register per
// thread, so a dump says which threads it made see EINTR.
//
// Thread-safety: one walk per process at a time (a thread has one tracer).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/common/status.h"
#include "sleuth/stacks/dwarf_unwinder.h"
#include "sleuth/stacks/walk_output.h"

namespace sleuth::stacks::walker {

// Unwinds one stopped thread of the walked process from its registers and
// its live memory. The seam between the DWARF unwinder and the
// frame-pointer walk.
class StackUnwinder {
 public:
  virtual ~StackUnwinder() = default;
  virtual std::string_view name() const = 0;  // "dwarf", "frame-pointer"
  virtual UnwindResult Unwind(pid_t tid, const Registers& regs, uint64_t* pcs,
                              size_t max_frames) = 0;
};

// Follows the rbp chain, reading the target's memory with
// process_vm_readv (a bad address ends the walk, never faults). Exact for
// code built with frame pointers; in a leaf without one (most of libc) the
// caller of the leaf is missed and the walk resumes at its caller's frame.
std::unique_ptr<StackUnwinder> MakeFramePointerUnwinder(pid_t pid);

// The DWARF unwinder (libdwfl) when this walker was built with it and it
// loads, else the frame-pointer walk; `why_not_dwarf` says why not.
std::unique_ptr<StackUnwinder> MakeBestUnwinder(pid_t pid, std::string* why_not_dwarf);

struct WalkOptions {
  pid_t pid = 0;
  std::vector<pid_t> exclude_tids;
  // The whole walk; threads not reached by then are reported kNotWalked.
  std::chrono::milliseconds timeout{5000};
  // How long one thread may take to reach its stop after PTRACE_INTERRUPT.
  std::chrono::milliseconds stop_timeout{500};
  size_t max_frames = 128;
  // Set (by a signal handler) to end the walk early; may be null.
  const volatile sig_atomic_t* stop_requested = nullptr;
  // Tests only: called while a thread is stopped, before it is detached.
  std::function<void(pid_t tid)> while_stopped;
};

struct WalkEnd {
  std::string status;  // "complete", "timeout", "signal"
  std::string detail;
};

// Lists /proc/<pid>/task and walks every thread not excluded. `emit` is
// called once per thread, after that thread was detached (so writing to a
// pipe read by the walked process can never block on a thread we hold).
// Threads that exit during the walk are left out. Fails only when the
// process cannot be listed at all.
[[nodiscard]] Result<WalkEnd> WalkProcess(const WalkOptions& options, StackUnwinder& unwinder,
                                          const std::function<void(const WalkedThread&)>& emit);

}  // namespace sleuth::stacks::walker
