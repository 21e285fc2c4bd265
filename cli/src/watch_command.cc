// sleuth watch --pid N: the collectors and the rules, from outside the
// process. Prints one line per reading with each rule's verdict.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <thread>

#include "cli_config.h"
#include "commands.h"
#include "exit_codes.h"
#include "sleuth/collectors/sampler.h"
#include "sleuth/common/clock.h"
#include "sleuth/rules/rule.h"

namespace sleuth::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void OnSignal(int) { g_interrupted = true; }  // async-signal-safe

rules::RuleSpec SpecOf(const config::MetricRule& m, int warmup) {
  return rules::RuleSpec{.enable = m.enable, .min = m.min, .diff = m.diff, .abs = m.abs,
                         .max = m.max, .cooldown = m.cooldown, .warmup = warmup};
}

std::string Verdict(const char* metric, const rules::Decision& d) {
  if (d.fire) return std::string(metric) + "=FIRE(" + std::string(rules::ReasonName(d.reason)) + ")";
  return std::string(metric) + "=" + std::string(rules::QuietName(d.quiet));
}

}  // namespace

int RunWatchCommand(int argc, char** argv) {
  cxxopts::Options options("sleuth watch",
                           "Samples a process every agent.interval and prints its readings and the "
                           "rules' verdicts (cpu is percent of the process's CPU limit).");
  AddConfigFlags(options);
  options.add_options()("p,pid", "the process to watch", cxxopts::value<int>())(
      "n,count", "stop after this many readings (0 = until it exits or Ctrl-C)",
      cxxopts::value<int>()->default_value("0"));
  auto flags = ParseFlags(options, argc, argv);
  if (!flags.ok()) {
    if (flags.status().code() == StatusCode::kNotFound) return kExitOk;
    std::fprintf(stderr, "sleuth watch: %s\n", flags.status().message().c_str());
    return kExitUsage;
  }
  if (!flags->count("pid")) {
    std::fprintf(stderr, "sleuth watch: --pid is required (the process id to watch)\n");
    return kExitUsage;
  }
  pid_t pid = (*flags)["pid"].as<int>();
  int count = (*flags)["count"].as<int>();
  if (pid <= 0 || count < 0) {
    std::fprintf(stderr, "sleuth watch: --pid must be a positive process id and --count >= 0\n");
    return kExitUsage;
  }
  auto cfg = LoadFromFlags(*flags);
  if (!cfg.ok()) {
    std::fprintf(stderr, "sleuth watch: invalid configuration:\n%s\n", cfg.status().message().c_str());
    return kExitConfig;
  }
  if (kill(pid, 0) != 0 && errno == ESRCH) {
    std::fprintf(stderr, "sleuth watch: no process %d\n", pid);
    return kExitGone;
  }
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);

  const Clock& clock = SystemClock::Instance();
  collectors::Sampler sampler(pid, clock,
                              collectors::SamplerOptions{.use_smaps_rollup = cfg->agent.use_smaps_rollup});
  int warmup = cfg->agent.EffectiveWarmup();
  size_t history = static_cast<size_t>(cfg->agent.history);
  rules::MetricRule cpu(SpecOf(cfg->cpu, warmup), history);
  rules::MetricRule memory(SpecOf(cfg->memory, warmup), history);
  rules::MetricRule threads(SpecOf(cfg->threads, warmup), history);

  for (int i = 0; (count == 0 || i < count) && !g_interrupted; i++) {
    if (i > 0) {
      // Sleep in short steps so Ctrl-C is prompt.
      auto until = clock.Monotonic() + cfg->agent.interval;
      while (!g_interrupted && clock.Monotonic() < until)
        std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(
            until - clock.Monotonic(), std::chrono::milliseconds(100)));
    }
    auto r = sampler.Sample();
    if (!r.ok()) {
      std::fprintf(stderr, "sleuth watch: %s\n", r.status().message().c_str());
      return r.status().code() == StatusCode::kGone ? kExitGone
             : r.status().code() == StatusCode::kPermission ? kExitPermission
                                                            : kExitFailure;
    }
    auto now = r->monotonic;
    bool gate = cfg->agent.cpu_max > 0 && r->cpu_percent && *r->cpu_percent >= cfg->agent.cpu_max;
    std::string verdicts;
    if (r->cpu_percent) verdicts += Verdict("cpu", cpu.Observe(*r->cpu_percent, now, gate));
    else verdicts += "cpu=first_reading";
    rules::Decision md = memory.Observe(r->memory_percent, now, gate);
    rules::Decision td = threads.Observe(r->threads, now, gate);
    verdicts += " " + Verdict("memory", md) + " " + Verdict("threads", td);
    char cpu_text[32] = "-";
    if (r->cpu_percent) std::snprintf(cpu_text, sizeof cpu_text, "%.1f%%", *r->cpu_percent);
    std::printf("pid %d cpu %s of %.2f cores (%s)  rss %.1f MiB = %.2f%% of %.1f MiB (%s)  "
                "threads %d  | %s\n",
                pid, cpu_text, r->limits.cpu_limit_cores, r->limits.cpu_limit_source.c_str(),
                static_cast<double>(r->rss_bytes) / (1 << 20), r->memory_percent,
                static_cast<double>(r->limits.memory_limit_bytes) / (1 << 20),
                r->limits.memory_limit_source.c_str(), r->threads, verdicts.c_str());
    std::fflush(stdout);
    // The watcher only reports; a firing rule's dump comes from the agent
    // inside the process (LD_PRELOAD), which can profile it.
    if (md.fire) memory.RecordDump(now);
    if (td.fire) threads.RecordDump(now);
  }
  return kExitOk;
}

}  // namespace sleuth::cli
