// The walker against a real target: a forked child of the test with a
// sleeping, a signal-blocking spinning and a polling thread (see
// walk_target_threads.h), walked by the sleuth-stackwalk program and by
// WalkProcess directly.
#include "thread_walker.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sleuth/common/files.h"
#include "sleuth/stacks/walk_output.h"
#include "walk_target_threads.h"

extern char** environ;

namespace sleuth::stacks::walker {
namespace {

using sleuth_walk_target::StackInTargetText;

constexpr auto kGenerous = std::chrono::seconds(30);

bool WaitFor(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + kGenerous;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

std::string ReadLine(int fd) {
  std::string line;
  char c = 0;
  while (read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

std::string ReadAll(int fd) {
  std::string all;
  char buffer[4096];
  while (true) {
    const ssize_t got = read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    all.append(buffer, static_cast<size_t>(got));
  }
  return all;
}

// A forked child running TargetThreads; its main thread waits in read()
// for the word to stop, then reports how its threads' calls ended.
class ForkedTarget {
 public:
  explicit ForkedTarget(int64_t sleep_ms) {
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      close(to_child[1]);
      close(from_child[0]);
      {
        sleuth_walk_target::TargetThreads threads(sleep_ms);
        char ready[96];
        const int n = std::snprintf(ready, sizeof ready, "%d %d %d %d\n",
                                    sleuth_walk_target::Gettid(), threads.sleeper_tid(),
                                    threads.spinner_tid(), threads.poller_tid());
        (void)!write(from_child[1], ready, static_cast<size_t>(n));
        char go = 0;
        const ssize_t got = read(to_child[0], &go, 1);
        const int read_errno = got < 0 ? errno : 0;
        threads.Stop();
        const auto& sleep = threads.sleep_outcome();
        char done[160];
        const int m = std::snprintf(done, sizeof done, "%d %lld %lld %d %d %zd %d\n", sleep.rc,
                                    static_cast<long long>(sleep.requested_ns),
                                    static_cast<long long>(sleep.elapsed_ns), threads.poll_rc(),
                                    threads.poll_errno(), got, read_errno);
        (void)!write(from_child[1], done, static_cast<size_t>(m));
      }
      _exit(0);
    }
    close(to_child[0]);
    close(from_child[1]);
    to_child_ = to_child[1];
    from_child_ = from_child[0];
    const std::string ready = ReadLine(from_child_);
    if (std::sscanf(ready.c_str(), "%d %d %d %d", &main_tid_, &sleeper_, &spinner_, &poller_) !=
        4) {
      ADD_FAILURE() << "target did not start: '" << ready << "'";
    }
  }
  ~ForkedTarget() {
    if (pid_ > 0) {
      if (!finished_) kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(to_child_);
    close(from_child_);
  }

  pid_t pid() const { return pid_; }
  pid_t main_tid() const { return main_tid_; }
  pid_t sleeper() const { return sleeper_; }
  pid_t spinner() const { return spinner_; }
  pid_t poller() const { return poller_; }

  struct Report {
    int sleep_rc = -1;
    long long requested_ns = 0, elapsed_ns = 0;
    int poll_rc = -1, poll_errno = 0;
    long read_rc = -1;
    int read_errno = 0;
  };
  // Tells the child to stop and reads how its calls ended.
  Report Finish() {
    finished_ = true;
    (void)!write(to_child_, "g", 1);
    const std::string done = ReadLine(from_child_);
    Report report;
    if (std::sscanf(done.c_str(), "%d %lld %lld %d %d %ld %d", &report.sleep_rc,
                    &report.requested_ns, &report.elapsed_ns, &report.poll_rc, &report.poll_errno,
                    &report.read_rc, &report.read_errno) != 7) {
      ADD_FAILURE() << "target report: '" << done << "'";
    }
    return report;
  }

 private:
  pid_t pid_ = -1;
  int to_child_ = -1, from_child_ = -1;
  pid_t main_tid_ = 0, sleeper_ = 0, spinner_ = 0, poller_ = 0;
  bool finished_ = false;
};

std::vector<pid_t> Threads(pid_t pid) {
  std::vector<pid_t> tids;
  Result<std::vector<std::string>> names = ListDir("/proc/" + std::to_string(pid) + "/task");
  if (!names.ok()) return tids;
  for (const std::string& name : *names) tids.push_back(std::stoi(name));
  return tids;
}

std::string StatusField(pid_t pid, pid_t tid, const std::string& field) {
  Result<std::string> text =
      ReadFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  if (!text.ok()) return "";
  const size_t at = text->find("\n" + field + ":");
  if (at == std::string::npos) return "";
  const size_t begin = text->find_first_not_of(" \t", at + field.size() + 2);
  return text->substr(begin, text->find('\n', begin) - begin);
}

// Every thread untraced and none left in a ptrace stop.
void ExpectNoThreadTracedOrStopped(pid_t pid) {
  for (pid_t tid : Threads(pid)) {
    EXPECT_EQ(StatusField(pid, tid, "TracerPid"), "0") << "thread " << tid;
    const std::string state = StatusField(pid, tid, "State");
    EXPECT_NE(state.rfind("t", 0), 0u) << "thread " << tid << " is " << state;
    EXPECT_NE(state.rfind("T", 0), 0u) << "thread " << tid << " is " << state;
  }
}

void ExpectUndisturbed(const ForkedTarget::Report& report) {
  EXPECT_EQ(report.sleep_rc, 0) << "clock_nanosleep returned " << strerror(report.sleep_rc);
  EXPECT_GE(report.elapsed_ns, report.requested_ns) << "the sleep was cut short";
  EXPECT_EQ(report.poll_rc, 1) << "poll: " << strerror(report.poll_errno);
  EXPECT_EQ(report.read_rc, 1) << "read: " << strerror(report.read_errno);
}

struct Walker {
  pid_t pid = -1;
  int out = -1;  // read end of its --out-fd
};

// Starts the program with an output pipe as its fd 5 (plus `args`), and an
// fd the test does not mark O_CLOEXEC, which it must close.
Walker StartWalker(const std::vector<std::string>& args, int* leaked_fd = nullptr) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) std::abort();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 5);
  std::vector<std::string> all = {SLEUTH_STACKWALK_PATH, "--out-fd", "5"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : all) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int leak[2] = {-1, -1};
  if (leaked_fd != nullptr && pipe(leak) == 0) *leaked_fd = leak[0];
  Walker walker;
  if (posix_spawn(&walker.pid, SLEUTH_STACKWALK_PATH, &actions, nullptr, argv.data(), environ) !=
      0) {
    ADD_FAILURE() << "cannot start " << SLEUTH_STACKWALK_PATH;
  }
  posix_spawn_file_actions_destroy(&actions);
  if (leak[0] >= 0) {
    close(leak[1]);
    if (leaked_fd == nullptr) close(leak[0]);
  }
  close(out[1]);
  walker.out = out[0];
  return walker;
}

int WaitExit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(StackwalkProgramTest, TakesEveryStackWithoutShorteningASleep) {
  ForkedTarget target(3000);
  Walker walker = StartWalker({"--pid", std::to_string(target.pid())});
  const std::string output = ReadAll(walker.out);
  close(walker.out);
  EXPECT_EQ(WaitExit(walker.pid), 0) << output;
  // The stop has ended by the time the walker exits: nobody is traced.
  ExpectNoThreadTracedOrStopped(target.pid());

  Result<WalkOutput> walk = ParseWalkOutput(output);
  ASSERT_TRUE(walk.ok()) << walk.status().ToString() << "\n" << output;
  EXPECT_TRUE(walk->ended);
  EXPECT_EQ(walk->end_status, "complete");
  EXPECT_EQ(walk->pid, target.pid());
  std::map<pid_t, WalkedThread> by_tid;
  for (const WalkedThread& thread : walk->threads) by_tid[thread.tid] = thread;
  EXPECT_EQ(by_tid.size(), 4u) << output;
  for (pid_t tid : {target.sleeper(), target.spinner(), target.poller()}) {
    ASSERT_TRUE(by_tid.count(tid)) << "thread " << tid << " missing\n" << output;
    EXPECT_EQ(by_tid[tid].problem, ThreadProblem::kNone) << by_tid[tid].detail;
    EXPECT_TRUE(StackInTargetText(by_tid[tid].pcs))
        << "thread " << tid << " (" << by_tid[tid].name << ") has no frame in its function\n"
        << output;
  }
  EXPECT_EQ(by_tid[target.spinner()].name, "target spin");
  EXPECT_EQ(by_tid[target.sleeper()].name, "target-sleep");
  // Caught in their calls, which the kernel restarts: ERESTART_RESTARTBLOCK.
  EXPECT_EQ(by_tid[target.sleeper()].syscall, SYS_clock_nanosleep);
  EXPECT_EQ(by_tid[target.sleeper()].syscall_result, -516);
  EXPECT_EQ(by_tid[target.poller()].syscall, SYS_poll);
  EXPECT_FALSE(by_tid[target.poller()].StopInterruptedSyscall());
  EXPECT_EQ(by_tid[target.spinner()].syscall, -1);  // in user code

  ExpectUndisturbed(target.Finish());
}

// Holds the first thread (the target's main, lowest tid) stopped until
// the test acts, so the test can act mid-walk.
Walker StartPausedWalker(const ForkedTarget& target, int* leaked_fd = nullptr) {
  Walker walker = StartWalker({"--pid", std::to_string(target.pid()), "--pause-while-stopped-ms",
                               "600000", "--timeout-ms", "600000"},
                              leaked_fd);
  const bool held = WaitFor([&] {
    return StatusField(target.pid(), target.main_tid(), "TracerPid") ==
               std::to_string(walker.pid) &&
           StatusField(target.pid(), target.main_tid(), "State").rfind("t", 0) == 0;
  });
  EXPECT_TRUE(held) << "the walker never stopped the target's main thread";
  return walker;
}

TEST(StackwalkProgramTest, KilledMidWalkLeavesNoThreadStopped) {
  ForkedTarget target(3000);
  Walker walker = StartPausedWalker(target);
  ASSERT_EQ(kill(walker.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit(walker.pid), 128 + SIGKILL);
  close(walker.out);
  // The kernel detached the tracee when its tracer died (exit_ptrace runs
  // before the tracer can be reaped): no thread stays stopped or traced.
  ExpectNoThreadTracedOrStopped(target.pid());
  // And the held thread runs: it answers, and its read() was restarted.
  ExpectUndisturbed(target.Finish());
}

TEST(StackwalkProgramTest, TerminatedMidWalkDetachesReportsAndClosedInheritedFds) {
  ForkedTarget target(3000);
  int leaked = -1;
  Walker walker = StartPausedWalker(target, &leaked);
  ASSERT_GE(leaked, 0);
  // The walker keeps only stdio and its output fd of what it inherited;
  // anything else is a file it opened itself (the unwinder reads the
  // target's ELF files), never the pipe the test leaked to it.
  const auto link_of = [](const std::string& path) {
    char target[4096] = {};
    const ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
    return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
  };
  const std::string leaked_pipe = link_of("/proc/self/fd/" + std::to_string(leaked));
  ASSERT_EQ(leaked_pipe.rfind("pipe:", 0), 0u) << leaked_pipe;
  const std::string walker_fds = "/proc/" + std::to_string(walker.pid) + "/fd";
  Result<std::vector<std::string>> fds = ListDir(walker_fds);
  ASSERT_TRUE(fds.ok());
  std::set<std::string> open(fds->begin(), fds->end());
  EXPECT_TRUE(open.count("5"));
  for (const std::string& fd : open) {
    if (fd == "0" || fd == "1" || fd == "2" || fd == "5") continue;
    const std::string target = link_of(walker_fds + "/" + fd);
    EXPECT_EQ(target.rfind('/', 0), 0u) << "fd " << fd << " -> " << target;
    EXPECT_NE(target, leaked_pipe);
  }
  close(leaked);

  ASSERT_EQ(kill(walker.pid, SIGTERM), 0);
  const std::string output = ReadAll(walker.out);
  close(walker.out);
  EXPECT_EQ(WaitExit(walker.pid), 3);
  ExpectNoThreadTracedOrStopped(target.pid());
  Result<WalkOutput> walk = ParseWalkOutput(output);
  ASSERT_TRUE(walk.ok()) << walk.status().ToString();
  EXPECT_TRUE(walk->ended);
  EXPECT_EQ(walk->end_status, "signal");
  // Every thread is still named: the held one with its stack if the
  // signal came after its unwind (or without, if it came during the stop
  // before it), the others not reached.
  EXPECT_EQ(walk->threads.size(), 4u) << output;
  for (const WalkedThread& thread : walk->threads) {
    if (thread.tid == target.main_tid()) {
      EXPECT_TRUE(thread.problem == ThreadProblem::kNone ||
                  thread.problem == ThreadProblem::kNotWalked)
          << ThreadProblemToken(thread.problem);
    } else {
      EXPECT_EQ(thread.problem, ThreadProblem::kNotWalked) << thread.tid;
    }
  }
  ExpectUndisturbed(target.Finish());
}

TEST(StackwalkProgramTest, DoesNothingWithoutTheGoByte) {
  ForkedTarget target(100);
  int go[2];
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 5);
  posix_spawn_file_actions_adddup2(&actions, go[0], 6);
  std::vector<std::string> all = {SLEUTH_STACKWALK_PATH, "--out-fd", "5", "--go-fd", "6",
                                  "--pid", std::to_string(target.pid())};
  std::vector<char*> argv;
  for (std::string& arg : all) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, SLEUTH_STACKWALK_PATH, &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(go[0]);
  close(go[1]);  // EOF instead of the go byte
  EXPECT_EQ(ReadAll(out[0]), "");
  close(out[0]);
  EXPECT_EQ(WaitExit(pid), 3);
  ExpectUndisturbed(target.Finish());
}

TEST(StackwalkProgramTest, PrintsTextByHand) {
  ForkedTarget target(100);
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  std::vector<std::string> all = {SLEUTH_STACKWALK_PATH, "--pid", std::to_string(target.pid())};
  std::vector<char*> argv;
  for (std::string& arg : all) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, SLEUTH_STACKWALK_PATH, &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  const std::string text = ReadAll(out[0]);
  close(out[0]);
  EXPECT_EQ(WaitExit(pid), 0) << text;
  EXPECT_NE(text.find("Thread " + std::to_string(target.spinner()) + " (target spin):\n#0  0x"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("SleuthTargetSpin"), std::string::npos) << text;
  EXPECT_NE(text.find("Thread " + std::to_string(target.poller()) + " (target-poll):"),
            std::string::npos);
  target.Finish();
}

// The kernel fact the dump's notes rest on: epoll_wait is one of the calls
// that return EINTR after any stop (signal(7)), and the walker sees that in
// the register at the stop.
TEST(WalkProcessTest, ReportsThatAStopMadeEpollWaitReturnEintr) {
  int report[2];
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  const pid_t child = fork();
  if (child == 0) {
    const int epoll = epoll_create1(EPOLL_CLOEXEC);
    epoll_event event{};
    const int rc = epoll_wait(epoll, &event, 1, 20000);
    const int err = rc < 0 ? errno : 0;
    (void)!write(report[1], &err, sizeof err);
    _exit(0);
  }
  close(report[1]);
  ASSERT_TRUE(WaitFor([&] { return sleuth_walk_target::BlockedSyscall(child, child) == SYS_epoll_wait; }));
  WalkOptions options;
  options.pid = child;
  std::unique_ptr<StackUnwinder> unwinder = MakeFramePointerUnwinder(child);
  std::vector<WalkedThread> threads;
  Result<WalkEnd> end =
      WalkProcess(options, *unwinder, [&](const WalkedThread& thread) { threads.push_back(thread); });
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  ASSERT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads[0].syscall, SYS_epoll_wait);
  EXPECT_TRUE(threads[0].StopInterruptedSyscall()) << threads[0].syscall_result;
  int err = 0;
  ASSERT_EQ(read(report[0], &err, sizeof err), static_cast<ssize_t>(sizeof err));
  EXPECT_EQ(err, EINTR);
  close(report[0]);
  waitpid(child, nullptr, 0);
}

TEST(WalkProcessTest, ExcludesThreadsAndReportsOnesTracedByAnother) {
  ForkedTarget target(3000);  // the sleeper must still sleep when walked
  // A "debugger" holds the spinner (seized, not stopped).
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  const pid_t debugger = fork();
  if (debugger == 0) {
    const bool seized = ptrace(PTRACE_SEIZE, target.spinner(), nullptr, nullptr) == 0;
    (void)!write(ready[1], seized ? "y" : "n", 1);
    pause();
    _exit(0);
  }
  char seized = 0;
  ASSERT_EQ(read(ready[0], &seized, 1), 1);
  ASSERT_EQ(seized, 'y');

  WalkOptions options;
  options.pid = target.pid();
  options.exclude_tids = {target.poller()};
  std::unique_ptr<StackUnwinder> unwinder = MakeFramePointerUnwinder(target.pid());
  std::map<pid_t, WalkedThread> by_tid;
  Result<WalkEnd> end = WalkProcess(options, *unwinder,
                                    [&](const WalkedThread& thread) { by_tid[thread.tid] = thread; });
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(end->status, "complete");
  EXPECT_FALSE(by_tid.count(target.poller()));
  ASSERT_TRUE(by_tid.count(target.spinner()));
  EXPECT_EQ(by_tid[target.spinner()].problem, ThreadProblem::kTraced);
  EXPECT_EQ(by_tid[target.spinner()].detail, "by pid " + std::to_string(debugger));
  EXPECT_TRUE(StackInTargetText(by_tid[target.sleeper()].pcs));
  EXPECT_EQ(StatusField(target.pid(), target.sleeper(), "TracerPid"), "0");

  kill(debugger, SIGKILL);
  waitpid(debugger, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  ExpectNoThreadTracedOrStopped(target.pid());
  ExpectUndisturbed(target.Finish());
}

}  // namespace
}  // namespace sleuth::stacks::walker
