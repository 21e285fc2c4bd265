// The agent: watches its own process on a thread of its own, feeds each
// reading to the rules, and when one fires captures the matching profile on
// a capture thread, writes it with its sidecar and tells the uploader.
//
// Threads (all named, all started with every signal blocked):
//   sleuth-agent    collection loop: sample, evaluate, schedule. Never waits
//                   for a capture, so a running CPU profile never delays the
//                   checks of the other metrics.
//   sleuth-cpu      runs CPU profiles (they take agent.cpu.profile_duration).
//   sleuth-capture  runs the instant captures: threads, heap, memory.
//   sleuth-upload   the uploader's (when upload sinks are configured).
// Thread-safety: Start/Stop/RequestDump are thread safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sleuth/common/status.h"
#include "sleuth/config/config.h"

namespace sleuth::agent {

enum class DumpKind { kCpu, kHeap, kThreads, kMemory };
std::string_view DumpKindName(DumpKind kind);
Result<DumpKind> ParseDumpKind(std::string_view name);

class Agent {
 public:
  // Validates what the config alone cannot (dump_dir creatable, listen
  // address usable) and prepares the engines; starts nothing.
  static Result<std::unique_ptr<Agent>> Create(const config::Config& config);
  ~Agent();  // Stop()s if still running.

  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  Status Start();
  // Bounded: abandons a profile in progress, gives the uploader
  // upload.exit_grace, and never blocks longer than about that plus 1s.
  void Stop();

  // Queues a dump whatever the rules say. kBusy if one of that kind is
  // already queued or running; kUnavailable if this process cannot produce it
  // (e.g. CPU profiles while the host owns SIGPROF).
  Status RequestDump(DumpKind kind, std::string reason, std::string comment);

  // For a fork child: forget this agent without touching its locks or
  // threads (which did not survive the fork). The object is leaked on purpose.
  void AbandonAfterFork();

  struct Impl;

 private:
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sleuth::agent
