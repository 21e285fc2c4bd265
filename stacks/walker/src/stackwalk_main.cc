// sleuth-stackwalk: the stacks of every thread of a process, taken from
// outside with ptrace, so that no thread of the target runs a signal
// handler, sees a signal or (for almost every system call) notices the
// stop. Read thread_walker.h for how a thread is walked.
//
//   sleuth-stackwalk --pid P                 text for a person, on stdout
//   sleuth-stackwalk --pid P --out-fd N      the line format of walk_output.h on fd N
//
// Options: --exclude-tid T (repeatable), --timeout-ms X (whole walk,
// default 5000), --stop-timeout-ms X (one thread, default 500),
// --max-frames N (default 128), --go-fd N (wait for one byte on fd N
// before touching the target: the agent sends it once it has allowed us to
// trace it under Yama; EOF means "do not walk").
//
// Launched by the agent inside the host, this program is the only thing
// that runs outside the host's own code: it closes every inherited fd but
// its own, resets every signal the host may have ignored or blocked, and on
// SIGINT, SIGTERM or SIGHUP detaches the thread it holds and exits.
//
// Exit codes: 0 walk complete, 1 could not walk, 2 usage, 3 ended early
// (timeout or signal; the output says which threads were reached).
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/profiles/stacks_text.h"
#include "sleuth/profiles/symbolizer.h"
#include "sleuth/stacks/walk_output.h"
#include "thread_walker.h"

namespace {

using sleuth::stacks::walker::WalkOptions;

volatile sig_atomic_t g_stop_signal = 0;

// async-signal-safe
void OnStopSignal(int signal) {
  g_stop_signal = signal;
}

constexpr const char* kUsage =
    "usage: sleuth-stackwalk --pid P [--out-fd N] [--go-fd N] [--exclude-tid T ...]\n"
    "                        [--timeout-ms X] [--stop-timeout-ms X] [--max-frames N]\n"
    "Prints the stack of every thread of process P, stopping one thread at a time with\n"
    "ptrace (no signal is sent to it). Without --out-fd, text for a person on stdout.\n";

struct Arguments {
  WalkOptions walk;
  int out_fd = -1;
  int go_fd = -1;
  long pause_while_stopped_ms = 0;  // tests: hold each thread this long
};

template <typename Int>
bool ParseNumber(const char* text, Int* out) {
  const std::string_view view(text);
  auto [ptr, ec] = std::from_chars(view.data(), view.data() + view.size(), *out);
  return ec == std::errc() && ptr == view.data() + view.size() && !view.empty();
}

bool ParseArguments(int argc, char** argv, Arguments* args, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      *error = "";
      return false;
    }
    if (i + 1 >= argc) {
      *error = std::string(flag) + " needs a value";
      return false;
    }
    const char* value = argv[++i];
    long number = 0;
    if (!ParseNumber(value, &number) || number < 0) {
      *error = std::string(flag) + ": '" + value + "' is not a non-negative number";
      return false;
    }
    if (flag == "--pid") {
      args->walk.pid = static_cast<pid_t>(number);
    } else if (flag == "--out-fd") {
      args->out_fd = static_cast<int>(number);
    } else if (flag == "--go-fd") {
      args->go_fd = static_cast<int>(number);
    } else if (flag == "--exclude-tid") {
      args->walk.exclude_tids.push_back(static_cast<pid_t>(number));
    } else if (flag == "--timeout-ms") {
      args->walk.timeout = std::chrono::milliseconds(number);
    } else if (flag == "--stop-timeout-ms") {
      args->walk.stop_timeout = std::chrono::milliseconds(number);
    } else if (flag == "--max-frames") {
      args->walk.max_frames = static_cast<size_t>(number);
    } else if (flag == "--pause-while-stopped-ms") {
      args->pause_while_stopped_ms = number;
    } else {
      *error = "unknown option " + std::string(flag);
      return false;
    }
  }
  if (args->walk.pid <= 0) {
    *error = "--pid is required";
    return false;
  }
  if (args->walk.max_frames == 0 || args->walk.max_frames > 4096) {
    *error = "--max-frames must be in [1, 4096]";
    return false;
  }
  return true;
}

// Closes every fd inherited from the host but ours and stdio: a host's fd
// without O_CLOEXEC must not be held open by us (a pipe's writer kept open
// would stop its reader from seeing EOF).
void CloseInheritedFds(int keep_a, int keep_b) {
  int keep[2] = {keep_a, keep_b};
  if (keep[0] > keep[1]) std::swap(keep[0], keep[1]);
  unsigned int next = 3;
  for (int fd : keep) {
    if (fd < static_cast<int>(next)) continue;
    if (static_cast<unsigned int>(fd) > next) syscall(SYS_close_range, next, fd - 1, 0);
    next = static_cast<unsigned int>(fd) + 1;
  }
  syscall(SYS_close_range, next, ~0U, 0);
}

// The host may have ignored signals (inherited across exec) or blocked them
// (the agent launches us with every signal blocked): start from defaults,
// then catch the ones that ask us to stop.
void ResetSignals() {
  for (int signal = 1; signal < NSIG; ++signal) {
    if (signal == SIGKILL || signal == SIGSTOP) continue;
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigaction(signal, &action, nullptr);  // fails harmlessly for glibc's reserved ones
  }
  struct sigaction stop {};
  stop.sa_handler = &OnStopSignal;  // no SA_RESTART: a wait or sleep ends early
  sigemptyset(&stop.sa_mask);
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) sigaction(signal, &stop, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, nullptr);  // a reader that went away is an EPIPE
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Waits for the go byte. False on EOF, error, timeout or a stop signal.
bool WaitForGo(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (g_stop_signal == 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd waiting{fd, POLLIN, 0};
    const int ready = poll(&waiting, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    char go = 0;
    const ssize_t got = read(fd, &go, 1);
    if (got < 0 && errno == EINTR) continue;
    return got == 1;
  }
  return false;
}

// False when the reader is gone (EPIPE) or the fd is bad.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t wrote = write(fd, data.data(), data.size());
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) return false;
    data.remove_prefix(static_cast<size_t>(wrote));
  }
  return true;
}

int64_t WallNowNanos() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  Arguments args;
  std::string error;
  if (!ParseArguments(argc, argv, &args, &error)) {
    if (!error.empty()) std::fprintf(stderr, "sleuth-stackwalk: %s\n", error.c_str());
    std::fputs(kUsage, error.empty() ? stdout : stderr);
    return error.empty() ? 0 : 2;
  }
  CloseInheritedFds(args.out_fd, args.go_fd);
  ResetSignals();
  // No PR_SET_PDEATHSIG: the agent launches us through a short-lived
  // launcher, our parent, which exits at once. An agent that goes away is
  // seen on the socket instead: EOF before the go byte, EPIPE after it.
  if (args.go_fd >= 0 && !WaitForGo(args.go_fd, args.walk.timeout)) return 3;
  args.walk.stop_requested = &g_stop_signal;
  if (args.pause_while_stopped_ms > 0) {
    const long pause_ms = args.pause_while_stopped_ms;
    args.walk.while_stopped = [pause_ms](pid_t) {
      // In slices, checking the flag: a stop signal that came before the
      // sleep began (during the unwind) must end it too.
      for (long slept_ms = 0; slept_ms < pause_ms && g_stop_signal == 0; slept_ms += 10) {
        timespec slice{0, 10 * 1000000};
        nanosleep(&slice, nullptr);
      }
    };
  }

  std::string why_not_dwarf;
  std::unique_ptr<sleuth::stacks::walker::StackUnwinder> unwinder =
      sleuth::stacks::walker::MakeBestUnwinder(args.walk.pid, &why_not_dwarf);
  const int64_t start_nanos = WallNowNanos();

  if (args.out_fd >= 0) {
    bool reader_gone = !WriteAll(args.out_fd, sleuth::stacks::FormatHeader(args.walk.pid,
                                                                            unwinder->name()));
    if (reader_gone) return 1;
    sleuth::Result<sleuth::stacks::walker::WalkEnd> end = sleuth::stacks::walker::WalkProcess(
        args.walk, *unwinder, [&](const sleuth::stacks::WalkedThread& thread) {
          // Nobody reads any more: stop walking (each line is written with
          // no thread held, so this never blocks a stopped host thread).
          if (!reader_gone && !WriteAll(args.out_fd, sleuth::stacks::FormatThread(thread))) {
            reader_gone = true;
            g_stop_signal = SIGPIPE;
          }
        });
    if (!end.ok()) {
      WriteAll(args.out_fd, sleuth::stacks::FormatEnd("error", end.status().ToString()));
      return 1;
    }
    WriteAll(args.out_fd, sleuth::stacks::FormatEnd(end->status, end->detail));
    return end->status == "complete" ? 0 : 3;
  }

  // By hand: collect, then symbolize and print like the agent's .txt dump.
  sleuth::stacks::WalkOutput walk;
  walk.pid = args.walk.pid;
  walk.unwinder = std::string(unwinder->name());
  sleuth::Result<sleuth::stacks::walker::WalkEnd> end = sleuth::stacks::walker::WalkProcess(
      args.walk, *unwinder,
      [&](const sleuth::stacks::WalkedThread& thread) { walk.threads.push_back(thread); });
  if (!end.ok()) {
    std::fprintf(stderr, "sleuth-stackwalk: %s\n", end.status().ToString().c_str());
    return 1;
  }
  walk.ended = true;
  walk.end_status = end->status;
  walk.end_detail = end->detail;
  sleuth::stacks::ThreadsDump dump = sleuth::stacks::ToThreadsDump(walk, start_nanos);
  sleuth::Result<sleuth::profiles::Symbolizer> symbolizer =
      sleuth::profiles::Symbolizer::ForProcess(args.walk.pid);
  if (!symbolizer.ok()) {
    std::fprintf(stderr, "sleuth-stackwalk: cannot symbolize: %s\n",
                 symbolizer.status().ToString().c_str());
    sleuth::Result<sleuth::profiles::Symbolizer> empty = sleuth::profiles::Symbolizer::ForMapsText("");
    if (!empty.ok()) return 1;
    symbolizer = std::move(empty);
  }
  std::fputs(sleuth::profiles::RenderStacksText(dump.profile, *symbolizer).c_str(), stdout);
  if (!why_not_dwarf.empty()) dump.notes.push_back("frame-pointer unwinding: " + why_not_dwarf);
  for (const std::string& note : dump.notes) std::fprintf(stdout, "\nnote: %s\n", note.c_str());
  std::fflush(stdout);
  return end->status == "complete" ? 0 : 3;
}
