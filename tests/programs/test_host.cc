// test_host: the small programs the integration tests preload libsleuth.so
// into, one mode per behaviour under test. Each mode prints a deterministic
// transcript on stdout and exits with a known status, so a test can compare a
// run with the agent to a run without it.
//
// Functions the tests look for in profiles are `static` and noinline: they
// have no dynamic symbol, so finding their names proves .symtab symbolization.
#include <dirent.h>
#include <fcntl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Calls sleuth_dump if libsleuth.so is loaded (preloaded), without linking it.
int RequestDump(const char* kind, const char* reason) {
  using DumpFn = int (*)(const char*, const char*);
  auto fn = reinterpret_cast<DumpFn>(dlsym(RTLD_DEFAULT, "sleuth_dump"));
  return fn ? fn(kind, reason) : -1;
}

// Like RequestDump, but a busy agent (SLEUTH_EBUSY = 7: a dump of that kind
// is queued or running, e.g. one a rule asked for) is asked again, as a
// host that wants its dump would; gives up after 60 s.
int RequestDumpPatiently(const char* kind, const char* reason) {
  constexpr int kBusy = 7;
  auto give_up = Clock::now() + std::chrono::seconds(60);
  int rc = RequestDump(kind, reason);
  while (rc == kBusy && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    rc = RequestDump(kind, reason);
  }
  return rc;
}

// Complete dumps (sidecars) in the agent's dump directory.
int CountSidecars() {
  const char* dir = std::getenv("SLEUTH_AGENT_DUMP_DIR");
  if (dir == nullptr) return 0;
  DIR* d = opendir(dir);
  if (d == nullptr) return 0;
  int n = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) n++;
  }
  closedir(d);
  return n;
}

// TEST_HOST_WAIT_DUMPS=N: the test wants N complete dumps before the host
// moves on, however loaded the machine is. Waiting for them instead of for
// a fixed time keeps the transcript the same and the test independent of
// the machine's speed. Bounded (120 s) so a missing dump fails the test
// instead of hanging it.
int WantedDumps() {
  const char* wanted = std::getenv("TEST_HOST_WAIT_DUMPS");
  bool agent_loaded = dlsym(RTLD_DEFAULT, "sleuth_dump") != nullptr;
  return wanted != nullptr && agent_loaded ? atoi(wanted) : 0;
}

bool DumpsPending(Clock::time_point give_up) {
  int wanted = WantedDumps();
  return wanted > 0 && CountSidecars() < wanted && Clock::now() < give_up;
}

// Sleeps `ms`, or, when the test waits for dumps, until they exist.
void WaitForDumpsOrSleep(int ms) {
  if (WantedDumps() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return;
  }
  auto give_up = Clock::now() + std::chrono::seconds(120);
  while (DumpsPending(give_up)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

volatile uint64_t g_sink;

__attribute__((noinline)) static uint64_t BurnHotLoop(std::chrono::milliseconds how_long) {
  uint64_t x = 1;
  auto until = Clock::now() + how_long;
  while (Clock::now() < until) {
    for (int i = 0; i < 100000; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
  }
  g_sink = x;
  return x;
}

__attribute__((noinline)) static uint64_t ColdLoop(std::chrono::milliseconds how_long) {
  uint64_t x = 3;
  auto until = Clock::now() + how_long;
  while (Clock::now() < until) {
    for (int i = 0; i < 1000; i++) x ^= x << 7;
    std::this_thread::sleep_for(std::chrono::milliseconds(9));
  }
  g_sink = x;
  return x;
}

// cpu: idle for argv[2] ms, then burn for argv[3] ms (and on, while the
// test waits for dumps: the profile must see the hot phase, however late
// the loaded machine lets the rule fire).
int ModeCpu(int argc, char** argv) {
  int idle_ms = argc > 2 ? atoi(argv[2]) : 1000;
  int burn_ms = argc > 3 ? atoi(argv[3]) : 3000;
  ColdLoop(std::chrono::milliseconds(idle_ms));
  BurnHotLoop(std::chrono::milliseconds(burn_ms));
  auto give_up = Clock::now() + std::chrono::seconds(120);
  while (DumpsPending(give_up)) BurnHotLoop(std::chrono::milliseconds(50));
  std::printf("cpu: done\n");
  return 0;
}

std::mutex g_park_mu;
std::condition_variable g_park_cv;
bool g_release = false;
std::atomic<int> g_parked{0};

__attribute__((noinline)) static void ParkedThreadBody() {
  std::unique_lock<std::mutex> lock(g_park_mu);
  g_parked++;
  g_park_cv.wait(lock, [] { return g_release; });
}

// threads: start N parked threads, ask for a thread dump, wait, release.
int ModeThreads(int argc, char** argv) {
  int n = argc > 2 ? atoi(argv[2]) : 50;
  int wait_ms = argc > 3 ? atoi(argv[3]) : 1500;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; i++) {
    threads.emplace_back(ParkedThreadBody);
    char name[32];  // the kernel keeps 15 characters; "parked-NNNN" fits
    std::snprintf(name, sizeof name, "parked-%d", i);
    pthread_setname_np(threads.back().native_handle(), name);
  }
  while (g_parked < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  int rc = RequestDump("threads", "test");
  WaitForDumpsOrSleep(wait_ms);
  {
    std::lock_guard<std::mutex> lock(g_park_mu);
    g_release = true;
  }
  g_park_cv.notify_all();
  for (auto& t : threads) t.join();
  std::printf("threads: %d joined (dump request %s)\n", n, rc == 0 ? "queued" : "not queued");
  return 0;
}

// churn: start and end hundreds of short threads in waves.
int ModeChurn(int argc, char** argv) {
  int waves = argc > 2 ? atoi(argv[2]) : 20;
  long total = 0;
  for (int w = 0; w < waves; w++) {
    std::vector<std::thread> ts;
    std::atomic<long> sum{0};
    for (int i = 0; i < 50; i++) ts.emplace_back([&sum, i] { sum += i; });
    for (auto& t : ts) t.join();
    total += sum;
    if (w % 5 == 0) RequestDump("threads", "churn");
  }
  std::printf("churn: total %ld\n", total);
  return 0;
}

__attribute__((noinline)) static void* LeakyAllocator(size_t bytes) {
  void* p = malloc(bytes);
  memset(p, 0x5a, bytes);
  return p;
}

// leak: allocate argv[2] MiB in 64 KiB blocks from LeakyAllocator, ask for a
// heap dump, then wait.
int ModeLeak(int argc, char** argv) {
  int mib = argc > 2 ? atoi(argv[2]) : 64;
  int wait_ms = argc > 3 ? atoi(argv[3]) : 1500;
  std::vector<void*> kept;
  for (int i = 0; i < mib * 16; i++) kept.push_back(LeakyAllocator(64 * 1024));
  int rc = RequestDumpPatiently("heap", "test");
  WaitForDumpsOrSleep(wait_ms);
  std::printf("leak: %d MiB kept (dump request %d)\n", mib, rc);
  return 0;
}

// fork: fork a child that prints and exits 7, exec /bin/echo in another.
int ModeFork(int, char**) {
  std::fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    std::printf("fork: child says hello\n");
    std::fflush(stdout);
    // Give a child agent (if follow_fork) a moment to exist and be harmless.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    _exit(7);
  }
  int status = 0;
  waitpid(child, &status, 0);
  std::printf("fork: child exited %d\n", WEXITSTATUS(status));
  std::fflush(stdout);
  pid_t execer = fork();
  if (execer == 0) {
    execl("/bin/echo", "echo", "fork: exec works", static_cast<char*>(nullptr));
    _exit(127);
  }
  waitpid(execer, &status, 0);
  std::printf("fork: exec child exited %d\n", WEXITSTATUS(status));
  return 3;
}

std::atomic<long> g_sigprof_ticks{0};
void OnSigprof(int) { g_sigprof_ticks++; }

// sigprof: the host profiles itself with its own SIGPROF handler and timer,
// while it asks the agent for a CPU profile (which must neither take the
// handler nor disturb the host's timer). The transcript is the same with
// and without the agent; the test looks for the agent's dump itself.
int ModeSigprof(int, char**) {
  struct sigaction sa = {};
  sa.sa_handler = OnSigprof;
  sigaction(SIGPROF, &sa, nullptr);
  struct itimerval tv = {{0, 10000}, {0, 10000}};
  setitimer(ITIMER_PROF, &tv, nullptr);
  int rc = RequestDump("cpu", "test");
  BurnHotLoop(std::chrono::milliseconds(1500));
  auto give_up = Clock::now() + std::chrono::seconds(120);
  while (rc == 0 && DumpsPending(give_up)) BurnHotLoop(std::chrono::milliseconds(50));
  struct itimerval off = {};
  setitimer(ITIMER_PROF, &off, nullptr);
  struct sigaction now = {};
  sigaction(SIGPROF, nullptr, &now);
  bool mine = now.sa_handler == OnSigprof;
  std::printf("sigprof: handler still mine: %s, ticks counted: %s\n", mine ? "yes" : "no",
              g_sigprof_ticks > 0 ? "yes" : "no");
  return 0;
}

// dlopen: load and unload a library repeatedly and call into it.
int ModeDlopen(int argc, char** argv) {
  int rounds = argc > 2 ? atoi(argv[2]) : 200;
  double total = 0;
  for (int i = 0; i < rounds; i++) {
    void* h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
    if (!h) return 10;
    auto cosine = reinterpret_cast<double (*)(double)>(dlsym(h, "cos"));
    total += cosine(0.0);
    dlclose(h);
    if (i % 50 == 0) RequestDump("threads", "dlopen");
  }
  std::printf("dlopen: total %.0f\n", total);
  return 0;
}

// exit / _exit in the middle of a CPU profile.
int ModeExitMidDump(int argc, char** argv) {
  bool hard = argc > 2 && std::string(argv[2]) == "_exit";
  int rc = RequestDump("cpu", "test");
  BurnHotLoop(std::chrono::milliseconds(400));
  (void)rc;  // differs with and without the agent; the transcript must not
  std::printf("exit: leaving mid-dump\n");
  std::fflush(stdout);
  if (hard) _exit(5);
  exit(4);
}

// exceptions: the host's own C++ exceptions must still unwind normally.
int ModeExceptions(int, char**) {
  int caught = 0;
  for (int i = 0; i < 1000; i++) {
    try {
      if (i % 2) throw std::runtime_error("odd");
      throw i;
    } catch (const std::runtime_error&) {
      caught++;
    } catch (int) {
      caught++;
    }
  }
  std::printf("exceptions: caught %d\n", caught);
  return 0;
}

// idle: just live for argv[2] ms (for overhead measurements and metrics).
int ModeIdle(int argc, char** argv) {
  int ms = argc > 2 ? atoi(argv[2]) : 1000;
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  std::printf("idle: done\n");
  return 0;
}

// closefds DIR: a daemon's start: close every descriptor above stderr
// (the agent's among them), open files of its own that take the freed
// numbers, write them, ask for a thread dump and wait for it, write again,
// and read them back. Prints what the files hold.
int ModeCloseFds(int argc, char** argv) {
  if (argc < 3) return 2;
  std::string dir = argv[2];
  syscall(SYS_close_range, 3u, ~0u, 0u);
  std::vector<int> fds;
  for (int i = 0; i < 8; i++) {
    std::string path = dir + "/data-" + std::to_string(i);
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return 10;
    fds.push_back(fd);
    std::string line = "first " + std::to_string(i) + "\n";
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 11;
  }
  int rc = RequestDumpPatiently("threads", "closefds");
  WaitForDumpsOrSleep(300);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the agent's ticks run on
  for (size_t i = 0; i < fds.size(); i++) {
    std::string line = "second " + std::to_string(i) + "\n";
    if (write(fds[i], line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 12;
  }
  std::string all;
  for (int fd : fds) {
    char buf[256];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    if (n < 0) return 13;
    all.append(buf, static_cast<size_t>(n));
    close(fd);
  }
  (void)rc;  // differs with and without the agent; the transcript must not
  std::printf("closefds: files hold %zu bytes:\n%s", all.size(), all.c_str());
  return 0;
}

// nomem: a host that runs into its address-space limit, keeps going after
// malloc returns NULL, and lives on while the agent (ticking, dumping)
// meets the same limit. Prints how it fared.
int ModeNoMem(int, char**) {
  rlimit limit{};
  getrlimit(RLIMIT_AS, &limit);
  // Room for what is mapped now plus 64 MiB; then allocate until refused.
  long pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  rlim_t cap = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) + (64u << 20);
  limit.rlim_cur = cap;
  if (setrlimit(RLIMIT_AS, &limit) != 0) return 10;
  std::vector<void*> blocks;
  blocks.reserve(100000);
  int refused = 0;
  while (refused < 100) {
    void* p = malloc(256 * 1024);
    if (p == nullptr) {
      refused++;
      void* small = malloc(64);
      if (small != nullptr) blocks.push_back(small);
      continue;
    }
    std::memset(p, 1, 4096);
    if (blocks.size() < blocks.capacity()) blocks.push_back(p);
  }
  (void)RequestDump("threads", "nomem");
  (void)RequestDump("memory", "nomem");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the agent's ticks meet the limit
  for (void* p : blocks) free(p);
  std::printf("nomem: refused %d times and lived on\n", refused);
  return 0;
}

struct Mode {
  const char* name;
  int (*run)(int, char**);
};

constexpr Mode kModes[] = {
    {"cpu", ModeCpu},         {"threads", ModeThreads},   {"churn", ModeChurn},
    {"leak", ModeLeak},       {"fork", ModeFork},         {"sigprof", ModeSigprof},
    {"dlopen", ModeDlopen},   {"exit", ModeExitMidDump},  {"exceptions", ModeExceptions},
    {"idle", ModeIdle},       {"closefds", ModeCloseFds}, {"nomem", ModeNoMem},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: test_host MODE [ARGS...]\n");
    return 2;
  }
  for (const auto& m : kModes)
    if (std::strcmp(argv[1], m.name) == 0) return m.run(argc, argv);
  std::fprintf(stderr, "test_host: unknown mode %s\n", argv[1]);
  return 2;
}
