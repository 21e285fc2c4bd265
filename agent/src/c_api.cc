// libsleuth.so's C API and its life in a host process: autostart when
// preloaded, fork handling, and a bounded stop at exit.
#include <pthread.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <thread>

#include "quiet_thread.h"
#include "sleuth/agent/agent.h"
#include "sleuth/common/log.h"
#include "sleuth/config/load.h"
#include "sleuth/sleuth.h"

#define SLEUTH_EXPORT extern "C" __attribute__((visibility("default")))

namespace sleuth::agent {
namespace {

// One table gives every code its text.
struct ErrorText {
  int code;
  const char* text;
};
constexpr ErrorText kErrors[] = {
    {SLEUTH_OK, "success"},
    {SLEUTH_EINVAL, "invalid argument"},
    {SLEUTH_ECONFIG, "invalid configuration (the log says which key and why)"},
    {SLEUTH_ERUNNING, "the agent is already running"},
    {SLEUTH_ENOTRUNNING, "the agent is not running"},
    {SLEUTH_EREFUSED, "the agent refuses to run in this process (setuid/setgid or SLEUTH_DISABLE)"},
    {SLEUTH_EUNAVAILABLE, "that kind of dump cannot be taken in this process (the log says why)"},
    {SLEUTH_EBUSY, "a dump of that kind is already queued or running"},
    {SLEUTH_EINTERNAL, "internal error (the log has details)"},
};

int CodeOf(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return SLEUTH_OK;
    case StatusCode::kInvalidArgument:
      return SLEUTH_EINVAL;
    case StatusCode::kBusy:
      return SLEUTH_EBUSY;
    case StatusCode::kUnavailable:
      return SLEUTH_EUNAVAILABLE;
    case StatusCode::kPermission:
      return SLEUTH_EREFUSED;
    default:
      return SLEUTH_EINTERNAL;
  }
}

void StopAtExit();

// g_mu guards g_agent and g_config. pthread_atfork holds it across fork()
// so a child never inherits it half-held.
std::mutex g_mu;
Agent* g_agent = nullptr;
std::unique_ptr<config::Config> g_config;  // what the running agent was started with
bool g_atfork_registered = false;

// Setuid/setgid programs (AT_SECURE) must never load code paths or write
// files chosen by an unprivileged user's environment.
bool RefusedHere() {
  return getauxval(AT_SECURE) != 0;
}

Status ApplyLogging(const config::Config& cfg) {
  auto level = log::ParseLevel(cfg.agent.log_level);
  if (!level.ok()) return level.status();
  log::SetLevel(*level);
  return log::SetFile(cfg.agent.log_file);
}

// Requires g_mu.
int StartLocked(const config::Config& cfg) {
  if (g_agent != nullptr) return SLEUTH_ERUNNING;
  if (Status s = ApplyLogging(cfg); !s.ok()) {
    log::Error("agent not started: " + s.message());
    return SLEUTH_ECONFIG;
  }
  auto agent = Agent::Create(cfg);
  if (!agent.ok()) {
    log::Error("agent not started: " + agent.status().message());
    return agent.status().code() == StatusCode::kInvalidArgument ? SLEUTH_ECONFIG
                                                                 : CodeOf(agent.status());
  }
  if (Status s = (*agent)->Start(); !s.ok()) {
    log::Error("agent not started: " + s.message());
    return CodeOf(s);
  }
  g_agent = agent->release();
  g_config = std::make_unique<config::Config>(cfg);
  // When started after main() (linked, not preloaded), statics first used
  // by the agent are destroyed before this library's destructor would run;
  // an atexit handler registered now runs before them.
  static bool atexit_registered = false;
  if (!atexit_registered) atexit_registered = atexit(StopAtExit) == 0;
  return SLEUTH_OK;
}

// A child that follows the parent gets its agent from a thread of its own,
// a moment after fork() returns: most children exec at once (and the new
// image gets its own agent from LD_PRELOAD), and nothing heavy should run
// inside fork() itself.
void StartInChild(config::Config cfg) {
  cfg.metrics.listen.clear();  // the parent's port is taken (by the parent)
  auto starter = StartQuietThread("sleuth-start", [cfg] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_agent == nullptr) (void)StartLocked(cfg);
  });
  if (starter.ok()) starter->detach();
}

void PrepareFork() {
  g_mu.lock();
}
void ParentAfterFork() {
  g_mu.unlock();
}
void ChildAfterFork() {
  // The mutex was locked by the forking thread, which is this thread now.
  std::unique_ptr<config::Config> cfg;
  if (g_agent != nullptr) {
    g_agent->AbandonAfterFork();
    g_agent = nullptr;
    cfg = std::move(g_config);
  }
  g_mu.unlock();
  if (cfg && cfg->agent.follow_fork) {
    try {
      StartInChild(*cfg);
    } catch (...) {  // never let anything escape into the host's fork()
    }
  }
}

void RegisterAtForkLocked() {
  if (g_atfork_registered) return;
  pthread_atfork(PrepareFork, ParentAfterFork, ChildAfterFork);
  g_atfork_registered = true;
}

int StartFromEnvironment(const char* config_path) {
  if (RefusedHere()) {
    log::Error("agent not started: this is a setuid/setgid program; sleuth refuses to run in it");
    return SLEUTH_EREFUSED;
  }
  config::ConfigSources sources;
  if (config_path != nullptr) sources.file_path = config_path;
  sources.env = config::EnvironFromProcess();
  auto cfg = config::LoadConfig(sources);
  if (!cfg.ok()) {
    log::Error("agent not started, the host runs without it: " + cfg.status().message());
    return SLEUTH_ECONFIG;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  RegisterAtForkLocked();
  return StartLocked(*cfg);
}

bool DisabledByEnvironment() {
  const char* v = getenv("SLEUTH_DISABLE");
  return v != nullptr && v[0] != '\0' && strcmp(v, "0") != 0;
}

// True when this library was loaded by LD_PRELOAD rather than linked: then
// the agent starts by itself.
bool Preloaded() {
  const char* preload = getenv("LD_PRELOAD");
  return preload != nullptr && strstr(preload, "libsleuth") != nullptr;
}

__attribute__((constructor)) void AutoStart() {
  if (!Preloaded() || DisabledByEnvironment()) return;
  try {
    (void)StartFromEnvironment(nullptr);
  } catch (...) {  // nothing may escape into the host's start-up
  }
}

__attribute__((destructor)) void StopAtExit() {
  // exit() runs this; _exit() does not (then nothing of ours runs, and the
  // next start removes any partial file).
  Agent* agent = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    agent = g_agent;
    g_agent = nullptr;
  }
  if (agent != nullptr) {
    try {
      agent->Stop();
    } catch (...) {
    }
    // Not deleted: host threads may still be running; the OS frees it.
  }
}

// Runs `fn`, turning anything thrown into SLEUTH_EINTERNAL: no exception
// ever crosses the C API into the host.
template <typename Fn>
int Guarded(const char* what, Fn fn) {
  // The handlers allocate nothing: the exception is often std::bad_alloc
  // from a host that ran out of memory.
  char line[256];
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    std::snprintf(line, sizeof line, "%s: out of memory; the agent did nothing", what);
    log::Error(line);
    return SLEUTH_EINTERNAL;
  } catch (const std::exception& e) {
    std::snprintf(line, sizeof line, "%s: unexpected error: %s", what, e.what());
    log::Error(line);
  } catch (...) {
    std::snprintf(line, sizeof line, "%s: unexpected error", what);
    log::Error(line);
  }
  return SLEUTH_EINTERNAL;
}

}  // namespace
}  // namespace sleuth::agent

using namespace sleuth::agent;

SLEUTH_EXPORT int sleuth_start(const char* config_path) {
  if (DisabledByEnvironment()) return SLEUTH_EREFUSED;
  return Guarded("sleuth_start", [&]() -> int { return StartFromEnvironment(config_path); });
}

SLEUTH_EXPORT int sleuth_stop(void) {
  return Guarded("sleuth_stop", [&]() -> int {
    Agent* agent = nullptr;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      agent = g_agent;
      g_agent = nullptr;
      g_config.reset();
    }
    if (agent == nullptr) return SLEUTH_ENOTRUNNING;
    delete agent;  // stops it (and leaks its state if a capture outlived the grace)
    return SLEUTH_OK;
  });
}

SLEUTH_EXPORT int sleuth_dump(const char* kind, const char* reason) {
  return Guarded("sleuth_dump", [&]() -> int {
    if (kind == nullptr) return SLEUTH_EINVAL;
    auto parsed = ParseDumpKind(kind);
    if (!parsed.ok()) {
      sleuth::log::Warn("sleuth_dump: " + parsed.status().message());
      return SLEUTH_EINVAL;
    }
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_agent == nullptr) return SLEUTH_ENOTRUNNING;
    sleuth::Status s = g_agent->RequestDump(*parsed, "manual", reason ? reason : "manual");
    // The host learns the outcome from the return code; a busy agent is
    // normal (a rule's dump is running), not worth a line on its stderr.
    if (!s.ok())
      sleuth::log::Write(s.code() == sleuth::StatusCode::kBusy ? sleuth::log::Level::kInfo
                                                               : sleuth::log::Level::kWarn,
                         "sleuth_dump(" + std::string(kind) + "): " + s.message());
    return CodeOf(s);
  });
}

SLEUTH_EXPORT const char* sleuth_strerror(int code) {
  for (const auto& e : kErrors)
    if (e.code == code) return e.text;
  return "unknown sleuth error code";
}
