// ThreadDumper: the stack of every live thread of this process at one
// moment, unwound by libunwind inside each thread.
//
// How: the dumper sends a real-time signal to each thread listed in
// /proc/self/task (rt_tgsigqueueinfo, stamped with the dump's generation
// and the thread's slot). The handler unwinds its own stack from the
// interrupted context into a slot of a buffer mmap'd once, reads its name
// (prctl PR_GET_NAME), publishes the result with an atomic, and returns.
// The dumper waits a bounded time for threads that do not answer (signal
// blocked, stopped, exited) and reports them with a marker frame instead of
// a stack. The handler allocates nothing, logs nothing and takes no lock of
// ours; libunwind's own cache lock is held with every signal blocked, so a
// handler can never wait on its own thread.
//
// Threads that already block the signal when first seen are not sent one
// (it would stay queued; an execve from that thread would hand it to the new
// program with SIG_DFL, which kills). Like any signal-driven sampler, a dump
// makes the calls that the kernel never restarts (epoll_wait, poll, select,
// nanosleep, sigtimedwait, ...) return EINTR in the threads sleeping in them;
// everything else restarts (SA_RESTART).
//
// libunwind is not linked: the first ThreadDumper constructed opens
// libunwind.so.8 privately (dlopen RTLD_LOCAL, so its _Unwind_* never take
// over the host's C++ exceptions) and resolves everything the handler calls.
// Without it (Debian package libunwind8) Available() says so.
//
// The handler is installed once, on the first dump, and stays
// installed for the life of the process: a signal that arrives late (from a
// thread that had it blocked) must find a handler that ignores it, never
// SIG_DFL, which would kill the host.
#pragma once

#include <chrono>
#include <cstddef>

#include "sleuth/capture/engine.h"

namespace sleuth::capture {

struct ThreadDumperOptions {
  // Total time to wait for the threads to answer, per dump.
  std::chrono::milliseconds answer_timeout{200};
};

// Thread-safety: thread safe; dumps are process-wide, so a second dump
// started while one runs (from any ThreadDumper) fails with kBusy.
// Cost: about 2 KiB of the slot buffer stays resident per thread ever dumped
// (its high-water mark), and each answering thread is paused for its own
// unwind only (tens of microseconds).
class ThreadDumper final : public Engine {
 public:
  // Threads beyond this are counted as dropped; frames beyond this are cut.
  static constexpr size_t kMaxThreads = 8192;
  static constexpr size_t kMaxFrames = 128;

  explicit ThreadDumper(ThreadDumperOptions options = {});

  std::string_view name() const override { return "threads"; }
  Status Available() const override;
  // Profile: sample type threads/count, one sample per thread (value 1),
  // labels thread_id (numeric) and thread_name; threads that did not answer
  // have no pcs, one marker name and a thread_state label. The dumping
  // thread records its own stack directly. request is unused but cancel.
  Result<Capture> Collect(const CaptureRequest& request) override;

  // Chooses the real-time signal for all dumps of this process, in
  // [SIGRTMIN+2, SIGRTMAX] and with disposition SIG_DFL. Only before the
  // first dump (the handler is never moved once installed): later calls
  // with another signal fail with kBusy. Without a call, the first dump
  // picks the highest free one.
  [[nodiscard]] static Status SetSignal(int signal);
  // The signal in use, or 0 before the first dump.
  static int CurrentSignal();

 private:
  ThreadDumperOptions options_;
};

// Test hook (tests only): when set, called with true when the dump signal
// handler starts working for a request and with false just before it
// returns, on the interrupted thread. Lets a test prove the handler does not
// allocate. The hook must itself be async-signal-safe.
void SetThreadDumpHandlerHookForTesting(void (*hook)(bool entering));

}  // namespace sleuth::capture
