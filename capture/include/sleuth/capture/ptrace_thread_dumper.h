// PtraceThreadDumper: the stack of every thread of this process, taken from
// outside by a companion program, sleuth-stackwalk, which stops one thread
// at a time with ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT: no signal is
// sent), unwinds it and lets it go (stacks/walker/src/thread_walker.h).
// Unlike the signal-driven ThreadDumper, no code runs in the host's
// threads, threads that block every signal get a stack too, and the
// host's sleeps and polls are restarted by the kernel instead of returning
// EINTR. A few calls still see EINTR after any stop (epoll_wait,
// sigtimedwait, socket calls with a timeout); the dump's notes name the
// threads that were in one.
//
// Launching the walker without disturbing the host:
//   - no fork(): glibc's clone() with CLONE_VM | CLONE_VFORK (no pthread_atfork
//     handler of the host runs, no page is copied) and exit signal 0, so
//     this child, the launcher, sends no SIGCHLD and is invisible to the
//     host's wait(-1)/waitpid(-1)/waitid(P_ALL) unless they pass __WALL;
//     only our waitpid(launcher, __WALL) reaps it.
//   - the launcher does not exec: execve resets the exit signal to SIGCHLD
//     (the kernel's de_thread), which would make the walker an ordinary
//     child of the host. It clones the walker the same way and exits once
//     the walker has exec'ed, so the walker is orphaned to the namespace's
//     init (or the nearest subreaper above the host), which reaps it. The
//     agent holds it by a pidfd (pidfd_open while it waits for its go byte,
//     so the pid cannot have been reused), signals it with
//     pidfd_send_signal and waits on the pidfd for its exit, after which
//     the kernel has released every thread it traced. A host that reaps its
//     own orphans (pid 1 of a pid namespace, PR_SET_CHILD_SUBREAPER)
//     inherits the walker and sees one SIGCHLD per dump; the agent reaps it
//     with waitpid(pid, WNOHANG | __WALL) unless the host did first.
//   - every signal is blocked around the clone, so no host handler runs in
//     the children (which share the host's memory until the exec); they
//     make raw system calls only: clone, clear FD_CLOEXEC on their own copy
//     of one socket fd (no CLONE_FILES), execve, exit,
//     with an argv and an empty environment built beforehand (no malloc, no
//     LD_PRELOAD of the agent into the walker).
//   - the walker closes every fd it inherited (the host's non-O_CLOEXEC
//     ones) but stdio and its socket, and resets every signal.
//   - Yama: with /proc/sys/kernel/yama/ptrace_scope 1 a process can only be
//     traced by its ancestors or a process it names, so the agent calls
//     prctl(PR_SET_PTRACER, walker) before sending the walker its go byte
//     and prctl(PR_SET_PTRACER, 0) once it has exited. Caveat: Linux has no
//     way to read the previous value, so a host that had named a ptracer
//     itself (a crash handler) loses that exception; scope 2 needs
//     CAP_SYS_PTRACE, scope 3 forbids ptrace: Available() says so.
//
// Thread-safety: thread safe; one walk per process at a time (kBusy).
// Cost: two fork-less process starts and the walker's own startup (a few
// tens of milliseconds), and each thread is stopped for its own unwind
// only. Needs pidfd_open (Linux 5.3).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/capture/engine.h"

namespace sleuth::capture {

struct PtraceThreadDumperOptions {
  // The walker program. Empty: $SLEUTH_STACKWALK if set, else
  // sleuth-stackwalk in the directory of the library (or executable) that
  // holds this code, i.e. beside libsleuth.so.
  std::string walker_path;
  // The whole walk, as the walker enforces it; threads not reached by then
  // are named without a stack. The agent waits a little longer, then ends
  // the walker (SIGTERM, then SIGKILL).
  std::chrono::milliseconds walk_timeout{2000};
  // How long one thread may take to reach its stop (a thread in
  // uninterruptible sleep stops only when it leaves it).
  std::chrono::milliseconds stop_timeout{200};
  // A host under a seccomp filter may forbid (or kill the process for) the
  // clone, prctl or ptrace calls; by default the engine is unavailable
  // there and the agent uses the signal-driven dumper.
  bool allow_under_seccomp = false;
  // Tests only: appended to the walker's command line.
  std::vector<std::string> extra_walker_args;
};

class PtraceThreadDumper final : public Engine {
 public:
  static constexpr size_t kMaxFrames = 128;

  explicit PtraceThreadDumper(PtraceThreadDumperOptions options = {});

  std::string_view name() const override { return "threads"; }
  // kUnavailable when the walker program is missing, or ptrace of this
  // process would be refused (Yama scope 2 without CAP_SYS_PTRACE or 3,
  // not dumpable, a seccomp filter), with the reason.
  Status Available() const override;
  // Profile: as ThreadDumper's (sample type threads/count, one sample per
  // thread with labels thread_id and thread_name; threads without a stack
  // have one "[no stack: ...]" name and a thread_state label). Threads in
  // request.exclude_tids are left out; the calling thread is walked like
  // any other. request.cancel ends the walk early.
  Result<Capture> Collect(const CaptureRequest& request) override;

  // The walker this engine would run (after the options and the env).
  std::string WalkerPath() const;

 private:
  PtraceThreadDumperOptions options_;
};

// What Yama requires before the walker may attach to this process.
enum class YamaPolicy {
  kNoRestriction,  // no Yama (file missing), scope 0, or we have CAP_SYS_PTRACE
  kNamePtracer,    // scope 1: prctl(PR_SET_PTRACER, walker_pid) first
  kRefused,        // scope 2 without CAP_SYS_PTRACE, scope 3, or unreadable
};
struct YamaDecision {
  YamaPolicy policy = YamaPolicy::kNoRestriction;
  std::string reason;  // for kRefused: why, and what would allow it
};
// Pure. `ptrace_scope_text` is the content of
// /proc/sys/kernel/yama/ptrace_scope, nullopt when the file does not exist.
YamaDecision DecideYama(std::optional<std::string_view> ptrace_scope_text,
                        bool have_cap_sys_ptrace);

// sleuth-stackwalk beside the file that holds this code (dladdr; through
// /proc/self/maps when dladdr's name is not absolute). Empty if unknown.
std::string WalkerBesideThisLibrary();

}  // namespace sleuth::capture
