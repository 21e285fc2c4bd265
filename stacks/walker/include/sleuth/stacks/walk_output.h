// What sleuth-stackwalk writes, and how a reader turns it back into a
// thread dump. One definition shared by the walker (writer) and the agent's
// ptrace thread dumper and the CLI (readers), so the format has one owner.
//
// The format is text, one record per line, fields separated by one space;
// text fields are percent-escaped (every byte <= 0x20, >= 0x7f and '%' as
// %XX), so a thread name with spaces or newlines stays one field. An empty
// text field is written as "-".
//
//   sleuth-stackwalk 1 <pid> <unwinder>
//   thread <tid> <name> <state> <syscall> <syscall_result> <pcs> <stopped_because> <problem> <detail>
//   end <status> <detail>
//
// <state> is the /proc state letter seen before the stop (R, S, D, T, ...).
// <syscall> is the system call the thread was in when it stopped (orig_rax)
// or -1 in user code; <syscall_result> the value it would return at that
// moment: -512..-516 (ERESTART*) means the kernel restarts it on resume,
// -4 (-EINTR) means the thread sees EINTR because of the stop.
// <pcs> is leaf first, comma-separated hex: the exact pc, then return
// addresses; "-" when there is no stack. <problem> is "-" for a walked
// thread, otherwise one of the ThreadProblem tokens below, with <detail>.
// <status> is "complete", or why the walk ended early ("timeout",
// "signal", "error"); a walker that was killed writes no end line.
//
// Thread-safety: pure functions, thread safe. Not async-signal-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/common/status.h"
#include "sleuth/profiles/profile.h"

namespace sleuth::stacks {

// Why a thread has no stack. Tokens on the wire and in the profile's
// thread_state label.
enum class ThreadProblem {
  kNone,          // walked
  kUnwindFailed,  // stopped and read, but not even the pc could be taken
  kRefused,       // ptrace refused (EPERM: not dumpable, Yama, seccomp, LSM)
  kTraced,        // already traced by another tracer (a debugger)
  kNotStopped,    // did not reach the stop in time (uninterruptible sleep)
  kZombie,        // an exited thread group leader whose other threads live on
  kNotWalked,     // the walk ended (timeout, signal) before this thread
  kFailed,        // another error; see detail
};

std::string_view ThreadProblemToken(ThreadProblem problem);

struct WalkedThread {
  pid_t tid = 0;
  std::string name;
  char state = '?';
  int64_t syscall = -1;
  int64_t syscall_result = 0;
  std::vector<uint64_t> pcs;
  std::string stopped_because;  // why the unwind ended early, "" if it did not
  ThreadProblem problem = ThreadProblem::kNone;
  std::string detail;  // for a problem: the errno text or what happened

  // True when the stop made the system call the thread was blocked in
  // return EINTR (the calls the kernel does not restart after a stop:
  // epoll_wait, sigtimedwait, a socket call with SO_RCVTIMEO, ...).
  bool StopInterruptedSyscall() const { return syscall >= 0 && syscall_result == -4; }
};

struct WalkOutput {
  pid_t pid = 0;
  std::string unwinder;  // "dwarf" or "frame-pointer"
  std::vector<WalkedThread> threads;
  bool ended = false;       // an end line was read
  std::string end_status;   // "complete", "timeout", "signal", "error"
  std::string end_detail;
};

std::string FormatHeader(pid_t pid, std::string_view unwinder);
std::string FormatThread(const WalkedThread& thread);
std::string FormatEnd(std::string_view status, std::string_view detail);

// Parses a walker's whole output. A last line without its newline (the
// walker was killed mid-write) is ignored; kInvalidArgument for a
// malformed line or a missing header.
[[nodiscard]] Result<WalkOutput> ParseWalkOutput(std::string_view text);

// The thread dump a walk gives, in the shape of every sleuth thread dump:
// sample type threads/count, one sample per thread (value 1) with labels
// thread_id (numeric) and thread_name; a thread without a stack has one
// marker name "[no stack: ...]" and a thread_state label (the problem
// token). Threads that exited before they were stopped are left out.
// `notes` gets one sentence per kind of trouble (threads without a stack,
// system calls the stop interrupted, an early end).
struct ThreadsDump {
  profiles::RawProfile profile;
  std::vector<std::string> notes;
};
ThreadsDump ToThreadsDump(const WalkOutput& walk, int64_t time_nanos);

}  // namespace sleuth::stacks
