#include "thread_walker.h"

#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>

#include "sleuth/common/files.h"

namespace sleuth::stacks::walker {
namespace {

using Clock = std::chrono::steady_clock;

// ---- frame-pointer unwinding ----------------------------------------------

class FramePointerUnwinder final : public StackUnwinder {
 public:
  explicit FramePointerUnwinder(pid_t pid) : pid_(pid) {}
  std::string_view name() const override { return "frame-pointer"; }

  UnwindResult Unwind(pid_t, const Registers& regs, uint64_t* pcs, size_t max_frames) override {
    UnwindResult result;
    if (max_frames == 0) return result;
    if (regs.rip == 0) {
      result.stopped_because = "the pc is 0";
      return result;
    }
    pcs[result.frames++] = regs.rip;
    uint64_t frame = regs.rbp;
    // A frame chain only goes up the stack, and not by more than this per
    // frame: anything else is a register that does not hold a frame pointer.
    constexpr uint64_t kMaxFrameBytes = 8 << 20;
    while (result.frames < max_frames) {
      if (frame == 0) {
        result.stopped_because = "";  // the outermost frame
        break;
      }
      if (frame % 8 != 0 || frame < regs.rsp) {
        result.stopped_because = "no frame pointer in rbp";
        break;
      }
      uint64_t words[2] = {0, 0};  // saved rbp, return address
      if (!Read(frame, words, sizeof words)) {
        result.stopped_because = "frame pointer points to unreadable memory";
        break;
      }
      if (words[1] == 0) break;
      pcs[result.frames++] = words[1];
      if (words[0] != 0 && (words[0] <= frame || words[0] - frame > kMaxFrameBytes)) {
        result.stopped_because = "frame pointer chain ends in a non-frame";
        break;
      }
      frame = words[0];
    }
    if (result.frames == max_frames) result.stopped_because = "max frames reached";
    return result;
  }

 private:
  bool Read(uint64_t address, void* out, size_t size) const {
    iovec local{out, size};
    iovec remote{reinterpret_cast<void*>(address), size};
    return process_vm_readv(pid_, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
  }
  pid_t pid_;
};

#if SLEUTH_WALKER_HAVE_DWARF
// The DWARF unwinder, with the frame-pointer walk as a second opinion for
// the rare stack it gives up on at once (no CFI for the leaf's module and a
// broken frame-pointer fallback inside it).
class DwarfStackUnwinder final : public StackUnwinder {
 public:
  DwarfStackUnwinder(std::unique_ptr<DwarfUnwinder> dwarf, pid_t pid)
      : dwarf_(std::move(dwarf)), frame_pointer_(pid) {}
  std::string_view name() const override { return "dwarf"; }
  UnwindResult Unwind(pid_t tid, const Registers& regs, uint64_t* pcs,
                      size_t max_frames) override {
    UnwindResult result = dwarf_->Unwind(tid, regs, nullptr, pcs, max_frames);
    if (result.frames <= 1 && max_frames > 1) {
      UnwindResult by_frame_pointer = frame_pointer_.Unwind(tid, regs, pcs, max_frames);
      if (by_frame_pointer.frames > result.frames) return by_frame_pointer;
      if (result.frames == 1) pcs[0] = regs.rip;
    }
    return result;
  }

 private:
  std::unique_ptr<DwarfUnwinder> dwarf_;
  FramePointerUnwinder frame_pointer_;
};
#endif

// ---- /proc ----------------------------------------------------------------

std::string TaskPath(pid_t pid, pid_t tid, const char* file) {
  return "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/" + file;
}

// The state letter of /proc/<pid>/task/<tid>/stat, or nullopt if it is gone.
std::optional<char> TaskState(pid_t pid, pid_t tid) {
  Result<std::string> stat = ReadFile(TaskPath(pid, tid, "stat"), 4096);
  if (!stat.ok()) return std::nullopt;
  const size_t close_paren = stat->rfind(')');  // the name may hold ')' and spaces
  if (close_paren == std::string::npos || close_paren + 2 >= stat->size()) return '?';
  return (*stat)[close_paren + 2];
}

std::string TaskName(pid_t pid, pid_t tid) {
  Result<std::string> comm = ReadFile(TaskPath(pid, tid, "comm"), 256);
  if (!comm.ok()) return "";
  if (!comm->empty() && comm->back() == '\n') comm->pop_back();
  return std::move(*comm);
}

// TracerPid of the thread, 0 when untraced or unknown.
pid_t TracerOf(pid_t pid, pid_t tid) {
  Result<std::string> status = ReadFile(TaskPath(pid, tid, "status"), 1 << 16);
  if (!status.ok()) return 0;
  const size_t at = status->find("\nTracerPid:");
  if (at == std::string::npos) return 0;
  size_t begin = status->find_first_not_of(" \t", at + 11);
  if (begin == std::string::npos) return 0;
  pid_t tracer = 0;
  std::from_chars(status->data() + begin, status->data() + status->size(), tracer);
  return tracer;
}

Result<std::vector<pid_t>> ListThreads(pid_t pid) {
  SLEUTH_ASSIGN_OR_RETURN(std::vector<std::string> names,
                          ListDir("/proc/" + std::to_string(pid) + "/task"));
  std::vector<pid_t> tids;
  for (const std::string& name : names) {
    pid_t tid = 0;
    auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), tid);
    if (ec == std::errc() && ptr == name.data() + name.size() && tid > 0) tids.push_back(tid);
  }
  std::sort(tids.begin(), tids.end());
  return tids;
}

void SleepMicros(long micros) {
  timespec delay{0, micros * 1000};
  nanosleep(&delay, nullptr);  // a signal ends it early, which is what we want
}

Registers FromUserRegs(const user_regs_struct& user) {
  Registers regs;
  regs.rax = user.rax;
  regs.rbx = user.rbx;
  regs.rcx = user.rcx;
  regs.rdx = user.rdx;
  regs.rsi = user.rsi;
  regs.rdi = user.rdi;
  regs.rbp = user.rbp;
  regs.rsp = user.rsp;
  regs.r8 = user.r8;
  regs.r9 = user.r9;
  regs.r10 = user.r10;
  regs.r11 = user.r11;
  regs.r12 = user.r12;
  regs.r13 = user.r13;
  regs.r14 = user.r14;
  regs.r15 = user.r15;
  regs.rip = user.rip;
  return regs;
}

// ---- the attachment -------------------------------------------------------

// One seized thread. The destructor detaches it if it is stopped; a thread
// that never reached its stop is handed to `lingering` (detached later).
class Attachment {
 public:
  Attachment(pid_t tid, std::vector<pid_t>* lingering) : tid_(tid), lingering_(lingering) {}
  Attachment(const Attachment&) = delete;
  Attachment& operator=(const Attachment&) = delete;
  ~Attachment() { Release(); }

  // 0, or the errno of PTRACE_SEIZE.
  int Seize() {
    if (ptrace(PTRACE_SEIZE, tid_, nullptr, nullptr) != 0) return errno;
    seized_ = true;
    return 0;
  }

  enum class Stop { kStopped, kGone, kTimedOut, kStopRequested };

  Stop InterruptAndWait(Clock::time_point deadline, const volatile sig_atomic_t* stop_requested) {
    if (ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) != 0) {
      // ESRCH: it exited after the seize. Reap its exit report if there is one.
      Reap();
      return Stop::kGone;
    }
    long sleep_micros = 20;
    while (true) {
      int status = 0;
      const pid_t got = waitpid(tid_, &status, __WALL | WNOHANG);
      if (got == tid_) {
        if (WIFSTOPPED(status)) {
          stopped_ = true;
          // A PTRACE_EVENT_STOP is our interrupt (or a group-stop): nothing to
          // re-inject. Any other stop is a signal-delivery-stop for a signal
          // that arrived first: it must be delivered on detach.
          if ((status >> 16) != PTRACE_EVENT_STOP) pending_signal_ = WSTOPSIG(status);
          return Stop::kStopped;
        }
        seized_ = false;  // exited or killed: the kernel dropped the link
        return Stop::kGone;
      }
      if (got < 0 && errno != EINTR) {
        seized_ = false;
        return Stop::kGone;
      }
      if (stop_requested != nullptr && *stop_requested != 0) return Stop::kStopRequested;
      if (Clock::now() >= deadline) return Stop::kTimedOut;
      SleepMicros(sleep_micros);
      sleep_micros = std::min(sleep_micros * 2, 1000L);
    }
  }

  // 0 or the errno of PTRACE_GETREGS.
  int GetRegisters(user_regs_struct* regs) const {
    return ptrace(PTRACE_GETREGS, tid_, nullptr, regs) == 0 ? 0 : errno;
  }

  void Release() {
    if (!seized_) return;
    if (stopped_) {
      ptrace(PTRACE_DETACH, tid_, nullptr, reinterpret_cast<void*>(static_cast<long>(pending_signal_)));
    } else if (lingering_ != nullptr) {
      lingering_->push_back(tid_);
    }
    seized_ = false;
    stopped_ = false;
  }

 private:
  void Reap() {
    int status = 0;
    for (int i = 0; i < 100; ++i) {
      const pid_t got = waitpid(tid_, &status, __WALL | WNOHANG);
      if (got == tid_ && !WIFSTOPPED(status)) break;
      if (got == tid_ && WIFSTOPPED(status)) {
        // It stopped after all: let it go with what it carried.
        const int signal = (status >> 16) != PTRACE_EVENT_STOP ? WSTOPSIG(status) : 0;
        ptrace(PTRACE_DETACH, tid_, nullptr, reinterpret_cast<void*>(static_cast<long>(signal)));
        break;
      }
      if (got < 0) break;
      SleepMicros(100);
    }
    seized_ = false;
  }

  pid_t tid_;
  std::vector<pid_t>* lingering_;
  bool seized_ = false;
  bool stopped_ = false;
  int pending_signal_ = 0;
};

// Detaches every thread that reached its stop late. Those still running keep
// their pending trap until the walker exits, when the kernel clears it.
void DetachLingering(std::vector<pid_t>* lingering) {
  std::erase_if(*lingering, [](pid_t tid) {
    int status = 0;
    const pid_t got = waitpid(tid, &status, __WALL | WNOHANG);
    if (got == 0) return false;
    if (got == tid && WIFSTOPPED(status)) {
      const int signal = (status >> 16) != PTRACE_EVENT_STOP ? WSTOPSIG(status) : 0;
      ptrace(PTRACE_DETACH, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(signal)));
    }
    return true;
  });
}

enum class Outcome { kEmit, kGone };

Outcome WalkOne(const WalkOptions& options, StackUnwinder& unwinder, pid_t tid,
                Clock::time_point walk_deadline, std::vector<pid_t>* lingering,
                WalkedThread* thread) {
  thread->tid = tid;
  const std::optional<char> state = TaskState(options.pid, tid);
  if (!state.has_value()) return Outcome::kGone;
  thread->state = *state;
  thread->name = TaskName(options.pid, tid);
  if (*state == 'Z' || *state == 'X') {
    // A leader that called pthread_exit stays listed as a zombie while its
    // threads run; it has no stack and would never stop.
    thread->problem = ThreadProblem::kZombie;
    return Outcome::kEmit;
  }

  Attachment attachment(tid, lingering);
  if (const int err = attachment.Seize(); err != 0) {
    if (err == ESRCH) return Outcome::kGone;
    const pid_t tracer = TracerOf(options.pid, tid);
    if (err == EPERM && tracer != 0) {
      thread->problem = ThreadProblem::kTraced;
      thread->detail = "by pid " + std::to_string(tracer);
    } else {
      thread->problem = err == EPERM ? ThreadProblem::kRefused : ThreadProblem::kFailed;
      thread->detail = "PTRACE_SEIZE: " + ErrnoText(err);
    }
    return Outcome::kEmit;
  }
  const Clock::time_point stop_deadline =
      std::min(walk_deadline, Clock::now() + options.stop_timeout);
  switch (attachment.InterruptAndWait(stop_deadline, options.stop_requested)) {
    case Attachment::Stop::kStopped:
      break;
    case Attachment::Stop::kGone:
      return Outcome::kGone;
    case Attachment::Stop::kTimedOut:
      thread->problem = ThreadProblem::kNotStopped;
      thread->detail = "no stop within " +
                       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          options.stop_timeout)
                                          .count()) +
                       "ms (state " + std::string(1, *state) + ")";
      return Outcome::kEmit;
    case Attachment::Stop::kStopRequested:
      thread->problem = ThreadProblem::kNotWalked;
      thread->detail = "the walker was asked to stop";
      return Outcome::kEmit;
  }

  user_regs_struct user{};
  if (const int err = attachment.GetRegisters(&user); err != 0) {
    if (err == ESRCH) return Outcome::kGone;  // killed while stopped
    thread->problem = ThreadProblem::kFailed;
    thread->detail = "PTRACE_GETREGS: " + ErrnoText(err);
    return Outcome::kEmit;
  }
  // In a system call, orig_rax holds its number and rax what it returns if
  // resumed now; in user code the kernel entered from an interrupt and
  // orig_rax is -1.
  thread->syscall = static_cast<int64_t>(user.orig_rax);
  thread->syscall_result = thread->syscall >= 0 ? static_cast<int64_t>(user.rax) : 0;
  if (thread->syscall < 0) thread->syscall = -1;

  if (options.stop_requested != nullptr && *options.stop_requested != 0) {
    thread->problem = ThreadProblem::kNotWalked;
    thread->detail = "the walker was asked to stop";
    return Outcome::kEmit;  // detached by the attachment's destructor
  }
  thread->pcs.resize(options.max_frames);
  const UnwindResult result =
      unwinder.Unwind(tid, FromUserRegs(user), thread->pcs.data(), options.max_frames);
  thread->pcs.resize(std::min(result.frames, options.max_frames));
  thread->stopped_because = result.stopped_because != nullptr ? result.stopped_because : "";
  if (options.while_stopped) options.while_stopped(tid);
  attachment.Release();
  if (thread->pcs.empty()) {
    thread->problem = ThreadProblem::kUnwindFailed;
    thread->detail = thread->stopped_because;
  }
  return Outcome::kEmit;
}

}  // namespace

std::unique_ptr<StackUnwinder> MakeFramePointerUnwinder(pid_t pid) {
  return std::make_unique<FramePointerUnwinder>(pid);
}

std::unique_ptr<StackUnwinder> MakeBestUnwinder(pid_t pid, std::string* why_not_dwarf) {
#if SLEUTH_WALKER_HAVE_DWARF
  Result<std::unique_ptr<DwarfUnwinder>> dwarf = DwarfUnwinder::ForProcess(pid);
  if (dwarf.ok()) return std::make_unique<DwarfStackUnwinder>(std::move(*dwarf), pid);
  if (why_not_dwarf != nullptr) *why_not_dwarf = dwarf.status().ToString();
#else
  if (why_not_dwarf != nullptr) *why_not_dwarf = "this walker was built without the DWARF unwinder";
#endif
  return MakeFramePointerUnwinder(pid);
}

Result<WalkEnd> WalkProcess(const WalkOptions& options, StackUnwinder& unwinder,
                            const std::function<void(const WalkedThread&)>& emit) {
  SLEUTH_ASSIGN_OR_RETURN(std::vector<pid_t> tids, ListThreads(options.pid));
  const Clock::time_point deadline = Clock::now() + options.timeout;
  std::vector<pid_t> lingering;
  WalkEnd end{"complete", ""};
  for (pid_t tid : tids) {
    if (std::find(options.exclude_tids.begin(), options.exclude_tids.end(), tid) !=
        options.exclude_tids.end()) {
      continue;
    }
    WalkedThread thread;
    if (end.status == "complete") {
      if (options.stop_requested != nullptr && *options.stop_requested != 0) {
        end = {"signal", "signal " + std::to_string(*options.stop_requested)};
      } else if (Clock::now() >= deadline) {
        end = {"timeout", "after " + std::to_string(options.timeout.count()) + "ms"};
      }
    }
    if (end.status != "complete") {
      // Named but not stopped: the dump still lists every thread.
      const std::optional<char> state = TaskState(options.pid, tid);
      if (!state.has_value()) continue;
      thread.tid = tid;
      thread.state = *state;
      thread.name = TaskName(options.pid, tid);
      thread.problem = ThreadProblem::kNotWalked;
      thread.detail = "the walk ended early (" + end.status + ")";
      emit(thread);
      continue;
    }
    const Outcome outcome = WalkOne(options, unwinder, tid, deadline, &lingering, &thread);
    DetachLingering(&lingering);
    if (outcome == Outcome::kEmit) emit(thread);
    if (thread.problem == ThreadProblem::kNotWalked && end.status == "complete") {
      end = {"signal", "signal " + std::to_string(*options.stop_requested)};
    }
  }
  DetachLingering(&lingering);
  if (!lingering.empty()) {
    end.detail += (end.detail.empty() ? "" : "; ") + std::to_string(lingering.size()) +
                  " threads had not stopped yet and are let go when the walker exits";
  }
  return end;
}

}  // namespace sleuth::stacks::walker
