// The ptrace thread dumper. Read ptrace_thread_dumper.h first; the walk
// itself is in stacks/walker/.

#include "sleuth/capture/ptrace_thread_dumper.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

#include "process_lock.h"
#include "sleuth/common/files.h"
#include "sleuth/common/self_path.h"
#include "sleuth/stacks/walk_output.h"

namespace sleuth::capture {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kCapSysPtrace = 19;
constexpr size_t kChildStackBytes = 64 << 10;

std::atomic<pid_t> g_walk_owner{0};

int64_t WallNowNanos() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

// A field of /proc/self/status ("Seccomp", "CapEff"), or "".
std::string SelfStatusField(std::string_view field) {
  Result<std::string> text = ReadFile("/proc/self/status", 1 << 16);
  if (!text.ok()) return "";
  const std::string key = "\n" + std::string(field) + ":";
  const size_t at = text->find(key);
  if (at == std::string::npos) return "";
  const size_t begin = text->find_first_not_of(" \t", at + key.size());
  if (begin == std::string::npos) return "";
  return text->substr(begin, text->find('\n', begin) - begin);
}

bool HaveCapSysPtrace() {
  const std::string effective = SelfStatusField("CapEff");
  uint64_t mask = 0;
  auto [ptr, ec] = std::from_chars(effective.data(), effective.data() + effective.size(), mask, 16);
  return ec == std::errc() && ((mask >> kCapSysPtrace) & 1) != 0;
}

YamaDecision ReadYama() {
  Result<std::string> scope = ReadFile("/proc/sys/kernel/yama/ptrace_scope", 64);
  if (!scope.ok()) {
    if (scope.status().code() == StatusCode::kNotFound) return DecideYama(std::nullopt, false);
    return DecideYama("?", HaveCapSysPtrace());
  }
  return DecideYama(*scope, HaveCapSysPtrace());
}

// Why ptrace of this process would be refused whatever Yama says, or "".
std::string WhyPtraceRefused(bool allow_under_seccomp) {
  if (!allow_under_seccomp) {
    const std::string seccomp = SelfStatusField("Seccomp");
    if (!seccomp.empty() && seccomp != "0") {
      return "this process runs under a seccomp " +
             std::string(seccomp == "1" ? "strict mode" : "filter") +
             ", which may refuse the walker's clone, execve or ptrace or kill the process for "
             "them";
    }
  }
  const int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  if (dumpable == 0 && !HaveCapSysPtrace()) {
    return "this process is not dumpable (prctl(PR_SET_DUMPABLE, 0), or it changed "
           "credentials), so ptrace is refused without CAP_SYS_PTRACE";
  }
  return "";
}

// Everything the launch touches, built before the clone: the launcher and
// the walker-to-be share our memory until exec and must not allocate.
struct ChildLaunch {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int keep_fd = -1;
  char* walker_stack_top = nullptr;
  volatile pid_t walker_pid = 0;  // written by the launcher
  volatile int child_errno = 0;   // written by whichever step failed
};

// The walker-to-be: clears FD_CLOEXEC on its own copy of the socket (the
// launcher has its own fd table, no CLONE_FILES, and so does this child)
// and execs. Raw system calls: nothing goes through a wrapper a sanitizer
// or the host may have interposed. errno is the host thread's (same TLS
// pointer); the host restores it.
// async-signal-safe
__attribute__((no_sanitize("address", "undefined"))) int WalkerChildMain(void* raw) {
  auto* launch = static_cast<ChildLaunch*>(raw);
  long rc = syscall(SYS_fcntl, launch->keep_fd, F_SETFD, 0);
  if (rc == 0) rc = syscall(SYS_execve, launch->path, launch->argv, launch->envp);
  launch->child_errno = rc == -1 ? errno : ENOEXEC;
  syscall(SYS_exit, 127);
  return 127;
}

// The launcher, our direct child (exit signal 0, never execs, so it stays
// invisible to the host's wait(-1) and sends no SIGCHLD). It starts the
// walker (again CLONE_VM | CLONE_VFORK: it resumes once the walker has
// exec'ed) and exits at once, so the walker is orphaned and reparented to
// the pid namespace's init (or the nearest subreaper above the host).
// Why not exec in our direct child: execve resets a process's exit signal
// to SIGCHLD (de_thread), so an exec'ed child of the host would signal it
// and show up in its wait(-1).
// async-signal-safe
__attribute__((no_sanitize("address", "undefined"))) int LauncherMain(void* raw) {
  auto* launch = static_cast<ChildLaunch*>(raw);
  const pid_t walker = clone(&WalkerChildMain, launch->walker_stack_top, CLONE_VM | CLONE_VFORK,
                             launch);
  if (walker < 0) {
    launch->child_errno = errno;
  } else if (launch->child_errno != 0) {
    // Its exec failed and it exited (exit signal 0): reap it here.
    syscall(SYS_wait4, walker, nullptr, __WALL, nullptr);
  } else {
    launch->walker_pid = walker;
  }
  syscall(SYS_exit, 0);
  return 0;
}

// The raw system call, because glibc's pthread_sigmask never blocks its own
// internal signals (SIGCANCEL, SIGSETXID), which must not reach the child
// either.
class AllSignalsBlocked {
 public:
  AllSignalsBlocked() {
    const uint64_t all = ~uint64_t{0};
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &previous_, sizeof all);
  }
  ~AllSignalsBlocked() {
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &previous_, nullptr, sizeof previous_);
  }
  AllSignalsBlocked(const AllSignalsBlocked&) = delete;
  AllSignalsBlocked& operator=(const AllSignalsBlocked&) = delete;

 private:
  uint64_t previous_ = 0;
};

// True when an orphaned descendant of this process is reparented to it.
bool HostReapsOrphans() {
  int subreaper = 0;
  return getpid() == 1 || (prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0) == 0 && subreaper != 0);
}

// The running walker, held by a pidfd (it is not our child: signalling it
// by pid could hit a reused pid once init has reaped it). On every path the
// destructor makes sure it has exited, so no host thread stays traced: a
// pidfd turns readable only after the kernel has released the exited
// process's tracees.
class WalkerProcess {
 public:
  WalkerProcess(pid_t pid, ScopedFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  WalkerProcess(const WalkerProcess&) = delete;
  WalkerProcess& operator=(const WalkerProcess&) = delete;
  ~WalkerProcess() { End(); }

  // Waits until `deadline` for the walker to exit; true once it has.
  bool WaitExit(Clock::time_point deadline) {
    while (!exited_) {
      if (!pidfd_.valid()) return false;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd waiting{pidfd_.get(), POLLIN, 0};
      const int ready = poll(&waiting, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
      if (ready > 0) {
        exited_ = true;
        // When the host reaps its orphans (pid 1 of a namespace, or a
        // subreaper) the walker ended up our child, a zombie holding its
        // pid: reap it unless the host's own wait did. Otherwise it is not
        // ours, init reaps it, and its pid may already be someone else's.
        if (HostReapsOrphans()) (void)waitpid(pid_, nullptr, __WALL | WNOHANG);
        break;
      }
      if (ready < 0 && errno != EINTR) return false;
      if (ready == 0 && Clock::now() >= deadline) return false;
    }
    return true;
  }

  // Asks the walker to stop (it detaches the thread it holds and writes
  // its end line), then forces it (the kernel detaches its tracees).
  void End() {
    if (exited_ || !pidfd_.valid()) return;
    if (Signal(SIGTERM) && WaitExit(Clock::now() + std::chrono::seconds(1))) return;
    if (Signal(SIGKILL)) (void)WaitExit(Clock::now() + std::chrono::seconds(10));
  }

 private:
  bool Signal(int signal) {
    return syscall(SYS_pidfd_send_signal, pidfd_.get(), signal, nullptr, 0) == 0;
  }
  pid_t pid_;
  ScopedFd pidfd_;
  bool exited_ = false;
};

// Names the walker as our ptracer for Yama scope 1, and clears it again.
class PtracerExemption {
 public:
  PtracerExemption() = default;
  PtracerExemption(const PtracerExemption&) = delete;
  PtracerExemption& operator=(const PtracerExemption&) = delete;
  ~PtracerExemption() {
    if (set_) prctl(PR_SET_PTRACER, 0, 0, 0, 0);
  }
  Status Set(pid_t walker) {
    if (prctl(PR_SET_PTRACER, static_cast<unsigned long>(walker), 0, 0, 0) != 0) {
      return ErrnoStatus("prctl(PR_SET_PTRACER) for the stack walker", errno);
    }
    set_ = true;
    return Status::Ok();
  }

 private:
  bool set_ = false;
};

// Reads everything the walker writes until it closes its end, the deadline
// passes or `cancel` turns true. False when it stopped early.
bool ReadUntilEof(int fd, Clock::time_point deadline, const std::atomic<bool>* cancel,
                  std::string* out) {
  char buffer[16 << 10];
  while (true) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd waiting{fd, POLLIN, 0};
    const int ready = poll(&waiting, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    const ssize_t got = read(fd, buffer, sizeof buffer);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) return true;
    out->append(buffer, static_cast<size_t>(got));
    if (out->size() > (64u << 20)) return false;  // a walker gone wrong
  }
}

// The walker's argv, owned here; argv() points into it.
class Argv {
 public:
  void Add(std::string arg) { strings_.push_back(std::move(arg)); }
  char* const* Build() {
    pointers_.clear();
    for (std::string& s : strings_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
    return pointers_.data();
  }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

Result<Capture> Walk(const PtraceThreadDumperOptions& options, const std::string& walker_path,
                     const CaptureRequest& request) {
  const YamaDecision yama = ReadYama();
  if (yama.policy == YamaPolicy::kRefused) return Unavailable(yama.reason);

  int sockets[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
    return ErrnoStatus("stack walker: socketpair", errno);
  }
  ScopedFd ours(sockets[0]);
  ScopedFd theirs(sockets[1]);

  Argv argv;
  argv.Add(walker_path);
  argv.Add("--pid");
  argv.Add(std::to_string(getpid()));
  argv.Add("--out-fd");
  argv.Add(std::to_string(theirs.get()));
  argv.Add("--go-fd");
  argv.Add(std::to_string(theirs.get()));
  argv.Add("--timeout-ms");
  argv.Add(std::to_string(options.walk_timeout.count()));
  argv.Add("--stop-timeout-ms");
  argv.Add(std::to_string(options.stop_timeout.count()));
  argv.Add("--max-frames");
  argv.Add(std::to_string(PtraceThreadDumper::kMaxFrames));
  for (pid_t tid : request.exclude_tids) {
    argv.Add("--exclude-tid");
    argv.Add(std::to_string(tid));
  }
  for (const std::string& arg : options.extra_walker_args) argv.Add(arg);
  char* empty_env[] = {nullptr};
  ChildLaunch launch;
  launch.path = walker_path.c_str();
  launch.argv = argv.Build();
  launch.envp = empty_env;
  launch.keep_fd = theirs.get();

  // Two stacks in one mapping: the launcher's (top half) and the walker
  // child's until its exec (bottom half).
  void* stack = mmap(nullptr, 2 * kChildStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return ErrnoStatus("stack walker: mmap of the launch stack", errno);
  launch.walker_stack_top = static_cast<char*>(stack) + kChildStackBytes;
  const int saved_errno = errno;
  pid_t launcher = -1;
  int clone_errno = 0;
  {
    AllSignalsBlocked blocked;
    // Exit signal 0 (the low byte of the flags): no SIGCHLD, invisible to
    // wait(-1). CLONE_VFORK: we resume once the launcher has exited, after
    // the walker's exec, so the stacks can go right after.
    launcher = clone(&LauncherMain, static_cast<char*>(stack) + 2 * kChildStackBytes,
                     CLONE_VM | CLONE_VFORK, &launch);
    clone_errno = errno;
  }
  munmap(stack, 2 * kChildStackBytes);
  if (launcher > 0) {
    while (waitpid(launcher, nullptr, __WALL) < 0 && errno == EINTR) {
    }
  }
  errno = saved_errno;
  if (launcher < 0) return ErrnoStatus("stack walker: clone", clone_errno);
  const pid_t pid = launch.walker_pid;
  if (pid <= 0) {
    return Unavailable("cannot run the stack walker " + walker_path + ": " +
                       ErrnoText(launch.child_errno != 0 ? launch.child_errno : ECHILD));
  }
  theirs.reset();
  // The walker cannot exit on its own before it has its go byte, so its pid
  // is still its own here; a hang-up on the socket would say otherwise.
  ScopedFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));  // O_CLOEXEC by definition
  const int pidfd_errno = errno;
  if (pollfd hangup{ours.get(), 0, 0}; poll(&hangup, 1, 0) == 1 && (hangup.revents & POLLHUP)) {
    return Unavailable("the stack walker " + walker_path + " exited before it started");
  }
  if (!pidfd.valid()) {
    // No pidfd (kernel before 5.3): a walker we cannot end safely is not
    // started; EOF is its signal not to walk.
    return Unavailable("pidfd_open for the stack walker: " + ErrnoText(pidfd_errno));
  }
  WalkerProcess walker(pid, std::move(pidfd));

  PtracerExemption exemption;
  if (yama.policy == YamaPolicy::kNamePtracer) SLEUTH_RETURN_IF_ERROR(exemption.Set(pid));
  const int64_t start_nanos = WallNowNanos();
  // MSG_NOSIGNAL: a walker that already died is an EPIPE, never a SIGPIPE
  // to the host.
  if (send(ours.get(), "g", 1, MSG_NOSIGNAL) != 1) {
    const int err = errno;
    walker.End();
    return Unavailable("the stack walker exited before it started: " + ErrnoText(err));
  }

  std::string output;
  // The walker bounds itself; this bound is for a walker that hangs.
  const Clock::time_point deadline =
      Clock::now() + options.walk_timeout + options.stop_timeout + std::chrono::seconds(5);
  const bool finished = ReadUntilEof(ours.get(), deadline, request.cancel, &output);
  if (!finished) {
    walker.End();
    // What it wrote while it detached and ended.
    (void)ReadUntilEof(ours.get(), Clock::now() + std::chrono::milliseconds(200), nullptr, &output);
  }
  // Its end line is written after the last detach, but a walker that was
  // ended may still hold a thread until the kernel has released it.
  if (!walker.WaitExit(Clock::now() + std::chrono::seconds(5))) walker.End();

  Result<stacks::WalkOutput> walk = stacks::ParseWalkOutput(output);
  if (!walk.ok()) {
    return Unavailable("the stack walker gave no usable output: " + walk.status().ToString());
  }
  if (walk->pid != getpid()) {
    return Internal("the stack walker walked pid " + std::to_string(walk->pid));
  }
  stacks::ThreadsDump dump = stacks::ToThreadsDump(*walk, start_nanos);
  Capture capture;
  capture.profile = std::move(dump.profile);
  capture.notes = std::move(dump.notes);
  if (!finished) {
    capture.notes.push_back(request.cancel != nullptr && request.cancel->load()
                                ? "the thread dump was cancelled; the walker was ended"
                                : "the stack walker did not finish in time and was ended");
  }
  if (walk->unwinder != "dwarf") {
    capture.notes.push_back("stacks were unwound by frame pointers only (" + walk->unwinder +
                            "): frames of code built without them may be missing");
  }
  return capture;
}

}  // namespace

YamaDecision DecideYama(std::optional<std::string_view> ptrace_scope_text,
                        bool have_cap_sys_ptrace) {
  if (!ptrace_scope_text.has_value()) return {YamaPolicy::kNoRestriction, ""};
  std::string_view text = *ptrace_scope_text;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  int scope = -1;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), scope);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return {YamaPolicy::kRefused, "cannot read Yama's ptrace_scope ('" + std::string(text) +
                                      "' in /proc/sys/kernel/yama/ptrace_scope)"};
  }
  switch (scope) {
    case 0:
      return {YamaPolicy::kNoRestriction, ""};
    case 1:
      // A process with CAP_SYS_PTRACE passes Yama's relational check, and so
      // does the walker it starts (same credentials).
      if (have_cap_sys_ptrace) return {YamaPolicy::kNoRestriction, ""};
      return {YamaPolicy::kNamePtracer, ""};
    case 2:
      if (have_cap_sys_ptrace) return {YamaPolicy::kNoRestriction, ""};
      return {YamaPolicy::kRefused,
              "Yama ptrace_scope is 2 (admin-only attach): the stack walker needs CAP_SYS_PTRACE; "
              "grant it to the process or set kernel.yama.ptrace_scope to 1"};
    case 3:
      return {YamaPolicy::kRefused,
              "Yama ptrace_scope is 3 (no attach): ptrace is off on this machine until reboot"};
    default:
      return {YamaPolicy::kRefused,
              "unknown Yama ptrace_scope " + std::to_string(scope) + "; not trying ptrace"};
  }
}

std::string WalkerBesideThisLibrary() {
  Result<std::string> path = PathBesideThisLibrary("sleuth-stackwalk");
  return path.ok() ? *path : std::string();
}

PtraceThreadDumper::PtraceThreadDumper(PtraceThreadDumperOptions options)
    : options_(std::move(options)) {}

std::string PtraceThreadDumper::WalkerPath() const {
  if (!options_.walker_path.empty()) return options_.walker_path;
  if (const char* env = std::getenv("SLEUTH_STACKWALK"); env != nullptr && *env != '\0') {
    return env;
  }
  return WalkerBesideThisLibrary();
}

Status PtraceThreadDumper::Available() const {
  try {
    const std::string walker = WalkerPath();
    if (walker.empty()) {
      return Unavailable("cannot tell where sleuth-stackwalk is; set SLEUTH_STACKWALK");
    }
    if (access(walker.c_str(), X_OK) != 0) {
      return Unavailable("the stack walker " + walker + " is not there or not executable (" +
                         ErrnoText(errno) +
                         "); install it beside libsleuth.so or set SLEUTH_STACKWALK");
    }
    if (std::string why = WhyPtraceRefused(options_.allow_under_seccomp); !why.empty()) {
      return Unavailable(why);
    }
    const YamaDecision yama = ReadYama();
    if (yama.policy == YamaPolicy::kRefused) return Unavailable(yama.reason);
    return Status::Ok();
  } catch (const std::exception& e) {
    return Internal(std::string("ptrace thread dumper: ") + e.what());
  }
}

Result<Capture> PtraceThreadDumper::Collect(const CaptureRequest& request) {
  try {
    if (options_.walk_timeout <= std::chrono::milliseconds::zero() ||
        options_.stop_timeout <= std::chrono::milliseconds::zero()) {
      return InvalidArgument("ptrace thread dump timeouts must be positive");
    }
    SLEUTH_RETURN_IF_ERROR(Available());
    internal::ScopedProcessTryLock ownership(g_walk_owner);
    if (!ownership.locked()) {
      return Status(StatusCode::kBusy, "a thread dump is already running in this process");
    }
    return Walk(options_, WalkerPath(), request);
  } catch (const std::exception& e) {
    return Internal(std::string("ptrace thread dump failed: ") + e.what());
  }
}

}  // namespace sleuth::capture
