// The signal-driven thread dumper. Read thread_dumper.h first.
//
// Protocol between the dumper (one thread, any time) and the handler (each
// target thread, in signal context):
//   1. The dumper claims a slot per thread, publishes its state =
//      (generation, kRequested), and sends the thread (rt_tgsigqueueinfo,
//      so only that thread can receive it) the signal whose value is
//      (generation << 32 | slot index).
//   2. The handler answers only if the signal came from this process's
//      dumper with SI_QUEUE, its generation is the active one and the slot
//      is still (generation, kRequested). It claims the slot by CAS to
//      kWriting, unwinds and reads its name into it, publishes kDone, then
//      counts itself in `answered` (a futex word, only a wake-up hint).
//      It makes no system call but prctl(PR_GET_NAME) and the final
//      futex wake; libunwind adds sigprocmask around its cache lock and
//      mincore to check addresses it is unsure of.
//   3. At the deadline the dumper clears the active generation and moves every
//      slot still kRequested to kAbandoned, so an answer that arrives later
//      changes nothing. A slot caught in kWriting is waited for briefly; if it
//      is still being written (the thread was descheduled mid-unwind) it is
//      skipped by every later dump until its writer finishes.
// So a late answer, from a thread that had the signal blocked or from an
// earlier dump, can never write into a slot the current dump reads.

#include "sleuth/capture/thread_dumper.h"

#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "libunwind_api.h"
#include "process_lock.h"
#include "sleuth/common/files.h"
#include "sleuth/profiles/stacks_text.h"
#include "task_status.h"

namespace sleuth::capture {
namespace {

// The handler hands the kernel's ucontext straight to libunwind, which on
// this architecture takes a ucontext_t as its context type.
static_assert(std::is_same_v<unw_context_t, ucontext_t>,
              "the thread dumper passes the signal ucontext to unw_init_local2");

constexpr size_t kMaxThreads = ThreadDumper::kMaxThreads;
constexpr size_t kMaxFrames = ThreadDumper::kMaxFrames;

// Slot states: (generation << 3) | phase.
enum Phase : uint64_t { kIdle = 0, kRequested = 1, kWriting = 2, kDone = 3, kAbandoned = 4 };
constexpr uint64_t Pack(uint32_t generation, Phase phase) {
  return (uint64_t{generation} << 3) | phase;
}
constexpr Phase PhaseOf(uint64_t state) {
  return static_cast<Phase>(state & 7);
}

// One thread's answer. Lives in memory mmap'd once and never unmapped, so a
// handler running late can never touch freed memory. Fields shared between
// dumper and handler are accessed through std::atomic_ref only.
struct Slot {
  uint64_t state;
  uint32_t depth;
  uint32_t truncated;
  char name[16];  // the thread's name (PR_GET_NAME: up to 15 bytes and a NUL)
  uint64_t pcs[kMaxFrames];
  unw_cursor_t cursor;  // here rather than on a stack the host may have nearly used up
};

// Everything the handler reads. Constant-initialized so it is valid before
// any constructor runs.
struct HandlerShared {
  std::atomic<Slot*> slots{nullptr};
  std::atomic<uint32_t> active_generation{0};  // 0: no dump in progress
  std::atomic<pid_t> dump_pid{0};              // getpid() of the dumping process
  std::atomic<uint32_t> answered{0};           // futex word
  std::atomic<uint32_t> expected{0};
  std::atomic<void (*)(bool)> hook{nullptr};
  // libunwind, resolved before the handler is installed: the handler only
  // calls through it and never loads or resolves anything itself.
  std::atomic<const internal::LibunwindApi*> unwind{nullptr};
};
constinit HandlerShared g_shared;
static_assert(std::atomic<uint32_t>::is_always_lock_free &&
              std::atomic<Slot*>::is_always_lock_free &&
              std::atomic<const internal::LibunwindApi*>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex word layout");

// async-signal-safe
long Gettid() {
  return syscall(SYS_gettid);
}

// async-signal-safe
void FutexWake(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

// Unwinds the interrupted context of this thread into `slot`: pcs[0] is the
// exact interrupted pc, the rest are return addresses. Starting from the
// kernel's ucontext skips the handler and the signal trampoline frames.
// async-signal-safe: libunwind documents unw_init_local2, unw_get_reg and
// unw_step for local unwinding as signal-safe. The caching policy is left
// at libunwind's default (UNW_CACHE_GLOBAL: a mutex taken with every signal
// blocked, so a handler never interrupts its own thread holding it). Debian's
// libunwind 1.6 is built without per-thread caches, and there
// UNW_CACHE_PER_THREAD would share the global cache with no lock at all.
void UnwindInterrupted(const internal::LibunwindApi& unwind, Slot& slot, void* ucontext) {
  slot.depth = 0;
  slot.truncated = 0;
  if (unwind.init_local2(&slot.cursor, static_cast<unw_context_t*>(ucontext),
                         UNW_INIT_SIGNAL_FRAME) != 0) {
    return;
  }
  uint32_t depth = 0;
  while (true) {
    unw_word_t ip = 0;
    if (unwind.get_reg(&slot.cursor, UNW_REG_IP, &ip) != 0 || ip == 0) break;
    if (depth == kMaxFrames) {
      slot.truncated = 1;
      break;
    }
    slot.pcs[depth++] = ip;
    if (unwind.step(&slot.cursor) <= 0) break;
  }
  slot.depth = depth;
}

// async-signal-safe
void AnswerDumpRequest(const siginfo_t* info, void* ucontext) {
  if (info == nullptr || ucontext == nullptr || info->si_code != SI_QUEUE) return;
  // Not from our dumper (raise, kill, another process): ignore it.
  if (info->si_pid != g_shared.dump_pid.load(std::memory_order_relaxed)) return;
  const auto token = reinterpret_cast<uintptr_t>(info->si_value.sival_ptr);
  const auto generation = static_cast<uint32_t>(token >> 32);
  const auto index = static_cast<uint32_t>(token);
  if (generation == 0 || index >= kMaxThreads) return;
  if (g_shared.active_generation.load(std::memory_order_acquire) != generation) return;
  Slot* slots = g_shared.slots.load(std::memory_order_acquire);
  const internal::LibunwindApi* unwind = g_shared.unwind.load(std::memory_order_acquire);
  if (slots == nullptr || unwind == nullptr) return;
  Slot& slot = slots[index];
  std::atomic_ref<uint64_t> state(slot.state);
  uint64_t requested = Pack(generation, kRequested);
  if (state.load(std::memory_order_acquire) != requested) return;
  if (!state.compare_exchange_strong(requested, Pack(generation, kWriting),
                                     std::memory_order_acq_rel)) {
    return;
  }
  void (*hook)(bool) = g_shared.hook.load(std::memory_order_acquire);
  if (hook != nullptr) hook(true);
  UnwindInterrupted(*unwind, slot, ucontext);
  // The name as of the dump, by one syscall here rather than three
  // (open/read/close of /proc/self/task/<tid>/comm) in the dumper per thread.
  if (syscall(SYS_prctl, PR_GET_NAME, slot.name, 0, 0, 0) != 0) slot.name[0] = '\0';
  slot.name[sizeof slot.name - 1] = '\0';
  if (hook != nullptr) hook(false);
  state.store(Pack(generation, kDone), std::memory_order_release);
  if (g_shared.answered.fetch_add(1, std::memory_order_acq_rel) + 1 ==
      g_shared.expected.load(std::memory_order_acquire)) {
    FutexWake(&g_shared.answered);
  }
}

// async-signal-safe
void OnDumpSignal(int, siginfo_t* info, void* ucontext) {
  const int saved_errno = errno;
  AnswerDumpRequest(info, ucontext);
  errno = saved_errno;
}

// The calling thread's own stack, this function first. Not in signal
// context. pcs[0] is the return address of the getcontext call made right
// here (through the pointer, so this frame is the one captured, exactly as
// with the unw_getcontext macro); one is subtracted so it points into the
// call instruction and can be read as an exact pc like the leaves of the
// other threads.
__attribute__((noinline)) std::vector<uint64_t> RecordOwnStack(
    const internal::LibunwindApi& unwind) {
  std::vector<uint64_t> pcs;
  unw_context_t context;
  unw_cursor_t cursor;
  if (unwind.getcontext(&context) != 0 || unwind.init_local(&cursor, &context) != 0) return pcs;
  do {
    unw_word_t ip = 0;
    if (unwind.get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip == 0) break;
    pcs.push_back(ip);
  } while (pcs.size() < kMaxFrames && unwind.step(&cursor) > 0);
  if (!pcs.empty()) pcs[0] -= 1;
  return pcs;
}

// Process-wide dumper state outside the handler. Leaked on purpose: a dump
// may still run on another thread while the process exits.
struct DumperState {
  std::mutex install_mutex;  // guards signal, installed
  int signal = 0;
  bool installed = false;
  // Pid of the process whose thread is dumping, 0 when idle. A pid rather
  // than a flag so a child forked in the middle of a dump (whose dumping
  // thread does not exist) can take over.
  std::atomic<pid_t> owner_pid{0};
  // Below: only touched by the owner of the dump.
  uint32_t last_generation = 0;
  // Threads that may still have a signal of ours queued (they had it blocked
  // or were stopped): never queue a second one, real-time signals pile up.
  std::unordered_set<pid_t> maybe_pending;
  // Threads that answered the previous dump. Any other thread is looked at
  // (/proc status) before it is sent anything: a signal queued to a thread
  // that blocks it stays pending, and if that thread then called execve the
  // new program would inherit it with SIG_DFL, which kills. Looking only at
  // new threads keeps repeated dumps of a large process cheap.
  std::unordered_set<pid_t> answered_before;
};

DumperState& State() {
  static DumperState* state = new DumperState;
  return *state;
}

bool IsOurHandler(const struct sigaction& action) {
  return (action.sa_flags & SA_SIGINFO) != 0 && action.sa_sigaction == &OnDumpSignal;
}

bool IsDefault(const struct sigaction& action) {
  return (action.sa_flags & SA_SIGINFO) == 0 && action.sa_handler == SIG_DFL;
}

std::string SignalName(int signal) {
  return "SIGRTMIN+" + std::to_string(signal - SIGRTMIN) + " (" + std::to_string(signal) + ")";
}

Status HandlerReplaced(int signal) {
  return Unavailable("the host replaced sleuth's handler for " + SignalName(signal) +
                     "; thread dumps are off so the host's handler never sees our signals");
}

Status CheckSignalRange(int signal) {
  if (signal < SIGRTMIN + 2 || signal > SIGRTMAX) {
    return InvalidArgument("thread dump signal " + std::to_string(signal) +
                           " is out of range: choose one in [SIGRTMIN+2, SIGRTMAX] = [" +
                           std::to_string(SIGRTMIN + 2) + ", " + std::to_string(SIGRTMAX) + "]");
  }
  return Status::Ok();
}

// The highest real-time signal nobody handles, or 0. Caller holds install_mutex.
int FindFreeSignal() {
  for (int signal = SIGRTMAX; signal >= SIGRTMIN + 2; --signal) {
    struct sigaction current {};
    if (sigaction(signal, nullptr, &current) == 0 && IsDefault(current)) return signal;
  }
  return 0;
}

// Once installed, the handler stays; this says whether the host has since
// taken the signal over. Caller holds install_mutex.
Status StillOurs(const DumperState& state) {
  struct sigaction current {};
  if (sigaction(state.signal, nullptr, &current) != 0 || !IsOurHandler(current)) {
    return HandlerReplaced(state.signal);
  }
  return Status::Ok();
}

// Installs the handler once per process: resolves libunwind and publishes
// it to the handler, maps the slots, warms libunwind up outside signal
// context (its first use initialises global state under a lock), then
// installs the handler for good.
Status EnsureInstalled() {
  DumperState& state = State();
  std::lock_guard lock(state.install_mutex);
  if (state.installed) return StillOurs(state);
  SLEUTH_ASSIGN_OR_RETURN(const internal::LibunwindApi* unwind, internal::LoadLibunwind());
  int signal = state.signal != 0 ? state.signal : FindFreeSignal();
  if (signal == 0) {
    return Unavailable("every real-time signal from SIGRTMIN+2 to SIGRTMAX has a handler in this " +
                       std::string("process; thread dumps need one that is free"));
  }
  g_shared.unwind.store(unwind, std::memory_order_release);
  if (g_shared.slots.load() == nullptr) {
    void* memory = mmap(nullptr, kMaxThreads * sizeof(Slot), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) {
      return ErrnoStatus("thread dumper: cannot map " +
                             std::to_string(kMaxThreads * sizeof(Slot) >> 20) + " MiB of slots",
                         errno);
    }
    g_shared.slots.store(static_cast<Slot*>(memory), std::memory_order_release);
  }
  (void)RecordOwnStack(*unwind);

  struct sigaction action {};
  action.sa_sigaction = &OnDumpSignal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  struct sigaction previous {};
  if (sigaction(signal, &action, &previous) != 0) {
    return ErrnoStatus("thread dumper: cannot install the handler for " + SignalName(signal),
                       errno);
  }
  if (!IsDefault(previous)) {
    // The host installed one between our check and ours: give it back.
    (void)sigaction(signal, &previous, nullptr);
    return Unavailable("the host took " + SignalName(signal) +
                       " while sleuth was installing its handler; retry the dump");
  }
  state.signal = signal;
  state.installed = true;
  return Status::Ok();
}

enum class Outcome {
  kWaiting,
  kAnswered,
  kGone,          // exited before answering: not part of the dump
  kBlocked,       // has the signal blocked
  kStopped,       // stopped or traced
  kStillPending,  // an earlier dump's signal is still queued for it
  kSendFailed,    // rt_tgsigqueueinfo failed (queue full, ...)
  kNoAnswer,      // did not answer in time (uninterruptible sleep, descheduled)
};

std::string_view OutcomeState(Outcome outcome) {
  switch (outcome) {
    case Outcome::kBlocked:
      return "signal_blocked";
    case Outcome::kStopped:
      return "stopped";
    case Outcome::kStillPending:
      return "signal_still_pending";
    case Outcome::kSendFailed:
      return "signal_not_sent";
    case Outcome::kNoAnswer:
      return "no_answer";
    default:
      return "unknown";
  }
}

struct Target {
  pid_t tid = 0;
  uint32_t slot = 0;
  Outcome outcome = Outcome::kWaiting;
  bool signalled = false;  // a request was queued for it (and `slot` is its)
  std::string detail;      // why, for kSendFailed
  std::vector<uint64_t> pcs;
  std::string name;  // from the handler, when it answered
  bool truncated = false;
};

Result<internal::TaskStatus> ReadTaskStatus(pid_t tid) {
  SLEUTH_ASSIGN_OR_RETURN(std::string text,
                          ReadFile("/proc/self/task/" + std::to_string(tid) + "/status", 1 << 16));
  return internal::ParseTaskStatus(text);
}

// Why a thread has not answered yet, if it can be told: gone, stopped or
// blocking the signal. Leaves kWaiting when it may still answer.
Outcome Triage(pid_t tid, int signal) {
  if (syscall(SYS_tgkill, getpid(), tid, 0) != 0 && errno == ESRCH) return Outcome::kGone;
  Result<internal::TaskStatus> status = ReadTaskStatus(tid);
  if (!status.ok()) {
    return status.status().code() == StatusCode::kNotFound ? Outcome::kGone : Outcome::kWaiting;
  }
  switch (status->state) {
    case 'Z':
    case 'X':
      return Outcome::kGone;
    case 'T':
    case 't':
      return Outcome::kStopped;
    default:
      break;
  }
  // Blocked and still queued: it cannot answer. Blocked but no longer
  // queued means the kernel delivered it: the thread is inside the handler,
  // which runs with its own signal blocked, and will answer.
  return internal::HasSignal(status->blocked_signals, signal) &&
                 internal::HasSignal(status->pending_signals, signal)
             ? Outcome::kBlocked
             : Outcome::kWaiting;
}

// The thread's name, or nullopt when the thread no longer exists.
std::optional<std::string> ReadThreadName(pid_t tid) {
  Result<std::string> comm = ReadFile("/proc/self/task/" + std::to_string(tid) + "/comm", 256);
  if (!comm.ok()) return std::nullopt;
  std::string name = std::move(comm).value();
  while (!name.empty() && (name.back() == '\n' || name.back() == '\0')) name.pop_back();
  return name;
}

std::chrono::nanoseconds MonotonicNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

int64_t WallNowNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void FutexWaitFor(std::atomic<uint32_t>* word, uint32_t seen, std::chrono::nanoseconds timeout) {
  if (timeout <= std::chrono::nanoseconds::zero()) return;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, seen, &ts, nullptr, 0);
}

// One dump, run by the owner. Split out of Collect so every exit path goes
// through the same cleanup in Finish().
class DumpRun {
 public:
  DumpRun(int signal, std::chrono::milliseconds timeout, const std::atomic<bool>* cancel)
      : signal_(signal), timeout_(timeout), cancel_(cancel) {}

  Result<Capture> Run();

 private:
  Slot& SlotAt(uint32_t index) { return g_shared.slots.load(std::memory_order_relaxed)[index]; }
  void SendAll(const std::vector<pid_t>& tids);
  void WaitForAnswers();
  void Finish();
  Capture BuildCapture();

  const int signal_;
  const std::chrono::milliseconds timeout_;
  const std::atomic<bool>* const cancel_;
  uint32_t generation_ = 0;
  int64_t start_wall_nanos_ = 0;
  pid_t self_tid_ = 0;
  std::vector<uint64_t> self_pcs_;
  std::vector<Target> targets_;
  size_t sent_ = 0;
  size_t dropped_ = 0;
  bool finished_ = false;
};

void DumpRun::SendAll(const std::vector<pid_t>& tids) {
  DumperState& state = State();
  const pid_t pid = getpid();
  const uid_t uid = getuid();
  uint32_t next_slot = 0;
  targets_.reserve(tids.size());
  for (pid_t tid : tids) {
    if (tid == self_tid_) continue;
    Target target;
    target.tid = tid;
    if (state.answered_before.count(tid) == 0) {
      Result<internal::TaskStatus> status = ReadTaskStatus(tid);
      if (!status.ok()) continue;  // gone
      if (internal::HasSignal(status->pending_signals, signal_)) {
        target.outcome = Outcome::kStillPending;
      } else if (internal::HasSignal(status->blocked_signals, signal_)) {
        target.outcome = Outcome::kBlocked;
      } else if (status->state == 'T' || status->state == 't') {
        target.outcome = Outcome::kStopped;
      }
      if (target.outcome != Outcome::kWaiting) {
        targets_.push_back(std::move(target));
        continue;
      }
      state.maybe_pending.erase(tid);
    }
    // Skip slots an abandoned handler may still be writing.
    while (next_slot < kMaxThreads &&
           PhaseOf(std::atomic_ref<uint64_t>(SlotAt(next_slot).state).load()) == kWriting) {
      ++next_slot;
    }
    if (next_slot >= kMaxThreads) {
      ++dropped_;
      continue;
    }
    target.slot = next_slot++;
    Slot& slot = SlotAt(target.slot);
    std::atomic_ref<uint64_t>(slot.state)
        .store(Pack(generation_, kRequested), std::memory_order_release);
    siginfo_t info{};
    info.si_signo = signal_;
    info.si_code = SI_QUEUE;
    info.si_pid = pid;
    info.si_uid = uid;
    info.si_value.sival_ptr = reinterpret_cast<void*>(
        static_cast<uintptr_t>((uint64_t{generation_} << 32) | target.slot));
    if (syscall(SYS_rt_tgsigqueueinfo, pid, tid, signal_, &info) != 0) {
      const int err = errno;
      uint64_t requested = Pack(generation_, kRequested);
      std::atomic_ref<uint64_t>(slot.state)
          .compare_exchange_strong(requested, Pack(generation_, kAbandoned));
      if (err == ESRCH) continue;  // exited since we listed it
      target.outcome = Outcome::kSendFailed;
      target.detail =
          err == EAGAIN ? "the real-time signal queue is full (RLIMIT_SIGPENDING)" : ErrnoText(err);
    } else {
      target.signalled = true;
      ++sent_;
    }
    targets_.push_back(std::move(target));
  }
}

void DumpRun::WaitForAnswers() {
  using std::chrono::milliseconds;
  const auto deadline = MonotonicNow() + timeout_;
  // Threads that cannot answer (blocked signal, stopped, exited) are found
  // by looking at them once answers stop coming for a moment, so a dump with
  // such a thread does not always cost the whole timeout, and a dump where
  // answers keep arriving reads no /proc files.
  const auto kStall = milliseconds(1);
  const auto kTriageEvery = milliseconds(5);
  auto next_triage = MonotonicNow() + kStall;
  uint32_t last_answered = 0;
  size_t resolved_without_answer = 0;
  while (true) {
    size_t waiting = 0;
    for (Target& target : targets_) {
      const bool may_answer = target.signalled && (target.outcome == Outcome::kWaiting ||
                                                   target.outcome == Outcome::kBlocked ||
                                                   target.outcome == Outcome::kStopped);
      if (!may_answer) continue;
      const uint64_t state =
          std::atomic_ref<uint64_t>(SlotAt(target.slot).state).load(std::memory_order_acquire);
      if (state == Pack(generation_, kDone)) {
        if (target.outcome != Outcome::kWaiting) --resolved_without_answer;
        target.outcome = Outcome::kAnswered;
      } else if (target.outcome == Outcome::kWaiting) {
        ++waiting;
      }
    }
    if (waiting == 0) return;
    auto now = MonotonicNow();
    if (now >= deadline) return;
    if (cancel_ != nullptr && cancel_->load(std::memory_order_relaxed)) return;
    const uint32_t answered = g_shared.answered.load(std::memory_order_acquire);
    if (answered != last_answered) {
      last_answered = answered;
      next_triage = std::max(next_triage, now + kStall);
    }
    if (now >= next_triage) {
      for (Target& target : targets_) {
        if (target.outcome != Outcome::kWaiting) continue;
        target.outcome = Triage(target.tid, signal_);
        if (target.outcome != Outcome::kWaiting) ++resolved_without_answer;
      }
      next_triage = MonotonicNow() + kTriageEvery;
      g_shared.expected.store(static_cast<uint32_t>(sent_ - resolved_without_answer),
                              std::memory_order_release);
      continue;
    }
    // Woken by the last expected answer, or at the next look. A count that
    // already reached `expected` while some slot is not kDone (a late answer
    // from an earlier dump was counted) just means a short sleep.
    FutexWaitFor(&g_shared.answered, answered, std::min(deadline, next_triage) - now);
  }
}

// Ends the generation: no handler may start writing after this, and every
// answer that made it is collected.
void DumpRun::Finish() {
  if (finished_) return;
  finished_ = true;
  g_shared.active_generation.store(0, std::memory_order_release);
  for (Target& target : targets_) {
    if (!target.signalled) continue;
    std::atomic_ref<uint64_t> state(SlotAt(target.slot).state);
    uint64_t current = state.load(std::memory_order_acquire);
    if (current == Pack(generation_, kRequested)) {
      // On failure a handler claimed it first and `current` holds its state.
      state.compare_exchange_strong(current, Pack(generation_, kAbandoned),
                                    std::memory_order_acq_rel);
    }
    if (current == Pack(generation_, kWriting)) {
      // A handler is unwinding right now; it takes microseconds unless the
      // thread was descheduled. Give it a little time, then leave the slot:
      // SendAll skips it until its writer finishes.
      const auto give_up = MonotonicNow() + std::chrono::milliseconds(20);
      while ((current = state.load(std::memory_order_acquire)) == Pack(generation_, kWriting) &&
             MonotonicNow() < give_up) {
        sched_yield();
      }
    }
    if (current == Pack(generation_, kDone)) {
      Slot& slot = SlotAt(target.slot);
      target.outcome = Outcome::kAnswered;
      target.pcs.assign(slot.pcs, slot.pcs + std::min<uint32_t>(slot.depth, kMaxFrames));
      target.truncated = slot.truncated != 0;
      target.name.assign(slot.name, strnlen(slot.name, sizeof slot.name));
    } else if (target.outcome == Outcome::kWaiting || target.outcome == Outcome::kAnswered) {
      target.outcome = Outcome::kNoAnswer;
    }
  }
}

Capture DumpRun::BuildCapture() {
  Capture capture;
  capture.profile = profiles::NewThreadsProfile(start_wall_nanos_);
  profiles::RawProfile& profile = capture.profile;

  auto add_sample = [&](pid_t tid, std::string name, std::vector<uint64_t> pcs,
                        std::string_view thread_state, std::string marker) {
    profiles::RawSample sample;
    sample.pcs = std::move(pcs);
    if (!marker.empty()) sample.names.push_back(std::move(marker));
    sample.values = {1};
    sample.labels.push_back({"thread_id", "", tid, ""});
    sample.labels.push_back({"thread_name", std::move(name), 0, ""});
    if (!thread_state.empty())
      sample.labels.push_back({"thread_state", std::string(thread_state), 0, ""});
    profile.samples.push_back(std::move(sample));
  };

  add_sample(self_tid_, ReadThreadName(self_tid_).value_or(""), std::move(self_pcs_), "", "");
  size_t not_answered = 0;
  size_t truncated = 0;
  std::string reasons;
  DumperState& state = State();
  state.answered_before.clear();
  for (Target& target : targets_) {
    if (target.outcome == Outcome::kAnswered) state.answered_before.insert(target.tid);
    switch (target.outcome) {
      case Outcome::kGone:
        continue;
      case Outcome::kAnswered:
        truncated += target.truncated ? 1 : 0;
        add_sample(target.tid, std::move(target.name), std::move(target.pcs), "", "");
        continue;
      default:
        break;
    }
    // A thread that exited before it could answer (one just being created
    // has every signal blocked) was not live at the end of the dump.
    std::optional<std::string> name = ReadThreadName(target.tid);
    if (!name.has_value()) continue;
    ++not_answered;
    std::string why;
    switch (target.outcome) {
      case Outcome::kBlocked:
        why = "blocks " + SignalName(signal_);
        break;
      case Outcome::kStopped:
        why = "is stopped";
        break;
      case Outcome::kStillPending:
        why = "still has an earlier dump's " + SignalName(signal_) + " pending";
        break;
      case Outcome::kSendFailed:
        why = "could not be signalled: " + target.detail;
        break;
      default:
        why = "did not answer within " + std::to_string(timeout_.count()) + "ms";
        break;
    }
    if (target.signalled || target.outcome == Outcome::kStillPending) {
      state.maybe_pending.insert(target.tid);
    }
    if (reasons.size() < 400) {
      reasons += (reasons.empty() ? "" : "; ") + std::to_string(target.tid) + " " + why;
    }
    add_sample(target.tid, std::move(*name), {}, OutcomeState(target.outcome),
               "[no stack: thread " + why + "]");
  }
  profile.comments.push_back("thread dump by signal " + SignalName(signal_));
  if (not_answered > 0) {
    capture.notes.push_back(std::to_string(not_answered) + " threads gave no stack: " + reasons);
  }
  if (dropped_ > 0) {
    capture.notes.push_back(std::to_string(dropped_) + " threads beyond the first " +
                            std::to_string(kMaxThreads) + " were not dumped");
  }
  if (truncated > 0) {
    capture.notes.push_back(std::to_string(truncated) + " stacks were cut at " +
                            std::to_string(kMaxFrames) + " frames");
  }
  return capture;
}

Result<Capture> DumpRun::Run() {
  DumperState& state = State();
  SLEUTH_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir("/proc/self/task"));
  std::vector<pid_t> tids;
  tids.reserve(names.size());
  for (const std::string& name : names) {
    pid_t tid = 0;
    auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), tid);
    if (ec == std::errc() && ptr == name.data() + name.size() && tid > 0) tids.push_back(tid);
  }
  std::sort(tids.begin(), tids.end());
  std::erase_if(state.maybe_pending,
                [&](pid_t tid) { return !std::binary_search(tids.begin(), tids.end(), tid); });

  self_tid_ = static_cast<pid_t>(Gettid());
  start_wall_nanos_ = WallNowNanos();
  generation_ = ++state.last_generation;
  if (generation_ == 0) generation_ = ++state.last_generation;
  g_shared.expected.store(0, std::memory_order_relaxed);
  g_shared.answered.store(0, std::memory_order_relaxed);
  g_shared.dump_pid.store(getpid(), std::memory_order_relaxed);
  g_shared.active_generation.store(generation_, std::memory_order_release);

  struct FinishOnExit {
    DumpRun* run;
    ~FinishOnExit() { run->Finish(); }
  } finish_on_exit{this};

  SendAll(tids);
  g_shared.expected.store(static_cast<uint32_t>(sent_), std::memory_order_release);
  self_pcs_ = RecordOwnStack(*g_shared.unwind.load(std::memory_order_acquire));
  WaitForAnswers();
  Finish();
  return BuildCapture();
}

}  // namespace

// libunwind is opened here, long before any handler can run, so nothing is
// ever loaded or resolved in signal context. A failure is reported by
// Available() and Collect().
ThreadDumper::ThreadDumper(ThreadDumperOptions options) : options_(options) {
  (void)internal::LoadLibunwind();
}

Status ThreadDumper::Available() const {
  if (Result<const internal::LibunwindApi*> unwind = internal::LoadLibunwind(); !unwind.ok()) {
    return unwind.status();
  }
  DumperState& state = State();
  std::lock_guard lock(state.install_mutex);
  if (state.installed) return StillOurs(state);
  if (state.signal != 0) {
    struct sigaction current {};
    if (sigaction(state.signal, nullptr, &current) != 0 || !IsDefault(current)) {
      return Unavailable("the thread dump signal " + SignalName(state.signal) +
                         " already has a handler in this process; choose another");
    }
    return Status::Ok();
  }
  if (FindFreeSignal() == 0) {
    return Unavailable(
        "every real-time signal from SIGRTMIN+2 to SIGRTMAX has a handler in this process; "
        "thread dumps need one that is free");
  }
  return Status::Ok();
}

Result<Capture> ThreadDumper::Collect(const CaptureRequest& request) {
  try {
    if (options_.answer_timeout <= std::chrono::milliseconds::zero()) {
      return InvalidArgument("thread dump answer timeout must be positive, got " +
                             std::to_string(options_.answer_timeout.count()) + "ms");
    }
    SLEUTH_RETURN_IF_ERROR(EnsureInstalled());
    internal::ScopedProcessTryLock ownership(State().owner_pid);
    if (!ownership.locked()) {
      return Status(StatusCode::kBusy, "a thread dump is already running in this process");
    }
    DumpRun run(State().signal, options_.answer_timeout, request.cancel);
    return run.Run();
  } catch (const std::exception& e) {
    return Internal(std::string("thread dump failed: ") + e.what());
  }
}

Status ThreadDumper::SetSignal(int signal) {
  SLEUTH_RETURN_IF_ERROR(CheckSignalRange(signal));
  DumperState& state = State();
  std::lock_guard lock(state.install_mutex);
  if (state.installed) {
    if (state.signal == signal) return Status::Ok();
    return Status(StatusCode::kBusy, "the thread dumper already uses " + SignalName(state.signal) +
                                         " and never moves its handler; set the signal before "
                                         "the first dump");
  }
  struct sigaction current {};
  if (sigaction(signal, nullptr, &current) != 0 || !IsDefault(current)) {
    return Unavailable(SignalName(signal) +
                       " already has a handler in this process; choose one "
                       "whose disposition is SIG_DFL");
  }
  state.signal = signal;
  return Status::Ok();
}

int ThreadDumper::CurrentSignal() {
  DumperState& state = State();
  std::lock_guard lock(state.install_mutex);
  return state.installed ? state.signal : 0;
}

void SetThreadDumpHandlerHookForTesting(void (*hook)(bool entering)) {
  g_shared.hook.store(hook, std::memory_order_release);
}

}  // namespace sleuth::capture
