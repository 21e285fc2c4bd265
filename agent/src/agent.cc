#include "sleuth/agent/agent.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "engines.h"
#include "net_services.h"
#include "quiet_thread.h"
#include "sleuth/agent/dump_writer.h"
#include "sleuth/agent/metrics.h"
#include "sleuth/collectors/process_info.h"
#include "sleuth/collectors/sampler.h"
#include "sleuth/common/clock.h"
#include "sleuth/common/log.h"
#include "sleuth/common/units.h"
#include "sleuth/rules/rule.h"
#include "sleuth/uploader/spool.h"

namespace sleuth::agent {

std::string_view DumpKindName(DumpKind kind) {
  switch (kind) {
    case DumpKind::kCpu:
      return "cpu";
    case DumpKind::kHeap:
      return "heap";
    case DumpKind::kThreads:
      return "threads";
    case DumpKind::kMemory:
      return "memory";
  }
  return "?";
}

Result<DumpKind> ParseDumpKind(std::string_view name) {
  if (name == "cpu") return DumpKind::kCpu;
  if (name == "heap") return DumpKind::kHeap;
  if (name == "threads") return DumpKind::kThreads;
  if (name == "memory") return DumpKind::kMemory;
  return InvalidArgument("unknown dump kind \"" + std::string(name) +
                         "\" (expected cpu, heap, threads or memory)");
}

namespace {

using std::chrono::nanoseconds;

rules::RuleSpec SpecOf(const config::MetricRule& m, int warmup) {
  return rules::RuleSpec{.enable = m.enable,
                         .min = m.min,
                         .diff = m.diff,
                         .abs = m.abs,
                         .max = m.max,
                         .cooldown = m.cooldown,
                         .warmup = warmup};
}

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

}  // namespace

struct Job {
  DumpKind kind;
  std::string reason;  // abs | diff | manual | alert
  std::string metric;  // the rule's metric, or ""
  std::string comment;
  std::optional<rules::Decision> decision;
  collectors::Limits limits;
};

// One capture thread with its queue.
struct CaptureQueue {
  explicit CaptureQueue(const char* thread_name) : name(thread_name) {}
  const char* name;
  std::deque<Job> jobs;
  std::optional<DumpKind> running;  // the job being captured now
  std::thread thread;
};

struct Agent::Impl {
  explicit Impl(const config::Config& c)
      : cfg(c),
        writer(c.agent.dump_dir, c.agent.max_dumps, c.agent.max_dump_bytes),
        cpu_rule(SpecOf(c.cpu, c.agent.EffectiveWarmup()), c.agent.history),
        memory_rule(SpecOf(c.memory, c.agent.EffectiveWarmup()), c.agent.history),
        threads_rule(SpecOf(c.threads, c.agent.EffectiveWarmup()), c.agent.history),
        heap_rule(SpecOf(c.heap, c.agent.EffectiveWarmup()), c.agent.history) {}

  config::Config cfg;
  const Clock& clock = SystemClock::Instance();
  DumpWriter writer;
  std::optional<collectors::Sampler> sampler;  // new at each Start()
  rules::MetricRule cpu_rule, memory_rule, threads_rule, heap_rule;
  Engines engines;
  // Loaded only when uploads or metrics are configured (net_services.h).
  std::unique_ptr<NetServices> net;
  std::unique_ptr<AgentMetrics> no_metrics = NoMetrics();
  AgentMetrics& metrics() { return net ? net->metrics() : *no_metrics; }
  std::unique_ptr<UploadService> upload;

  // Identity, read once at start.
  pid_t pid = 0;
  std::string hostname, service, executable, build_id;
  std::vector<std::string> cmdline;

  std::mutex mu;  // guards everything below
  std::condition_variable wake;
  bool running = false;
  bool stopping = false;
  collectors::Limits last_limits;
  CaptureQueue cpu_queue = CaptureQueue("sleuth-cpu");
  CaptureQueue instant_queue = CaptureQueue("sleuth-capture");
  std::thread collector;
  std::atomic<bool> cancel{false};
  bool warned_gone = false;
  // Thread ids of the agent's own threads (its loops, and those libraries
  // start for it: civetweb's, libcurl's), left out of the threads reading
  // and of dumps. Guarded by mu.
  std::vector<pid_t> own_tids;
  int live_threads = 0;            // agent threads whose body has not returned
  std::condition_variable exited;  // signalled as each one returns
  bool abandoned_threads = false;  // some were detached: never free this Impl

  // Runs `body` on a quiet thread counted in live_threads.
  Result<std::thread> Launch(const char* name, std::function<void()> body) {
    {
      std::lock_guard<std::mutex> lock(mu);
      live_threads++;
    }
    auto t = StartQuietThread(name, [this, body = std::move(body)] {
      {
        std::lock_guard<std::mutex> lock(mu);
        own_tids.push_back(static_cast<pid_t>(gettid()));
      }
      body();
      std::lock_guard<std::mutex> lock(mu);
      live_threads--;
      exited.notify_all();
    });
    if (!t.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      live_threads--;
    }
    return t;
  }
  // The agent's threads that are alive now (a library's short-lived
  // threads come and go). Requires mu.
  std::vector<pid_t> LiveOwnTidsLocked() {
    auto threads = collectors::ListThreads(pid);
    if (!threads.ok()) return own_tids;
    std::vector<pid_t> live;
    for (pid_t tid : own_tids)
      if (std::binary_search(threads->begin(), threads->end(), tid)) live.push_back(tid);
    own_tids = live;
    return live;
  }
  // Records the threads that appeared while `start` ran (a library's
  // threads, started for the agent while the host was not starting any:
  // Start() runs in the preload constructor or in sleuth_start()).
  template <typename Fn>
  auto RecordingNewThreads(Fn start) {
    auto before = collectors::ListThreads(pid);
    auto result = start();
    auto after = collectors::ListThreads(pid);
    if (before.ok() && after.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      for (pid_t tid : *after)
        if (std::find(before->begin(), before->end(), tid) == before->end())
          own_tids.push_back(tid);
    }
    return result;
  }
  bool HeapReadingWanted() const { return cfg.heap.enable || !cfg.metrics.listen.empty(); }

  CaptureQueue& QueueFor(DumpKind kind) {
    return kind == DumpKind::kCpu ? cpu_queue : instant_queue;
  }

  // Requires mu. kBusy when a job of this kind waits or runs already.
  Status Enqueue(Job job) {
    CaptureQueue& q = QueueFor(job.kind);
    for (const Job& j : q.jobs)
      if (j.kind == job.kind)
        return Status(StatusCode::kBusy, std::string("a ") + std::string(DumpKindName(job.kind)) +
                                             " dump is already queued");
    if (q.running == job.kind)
      return Status(StatusCode::kBusy, std::string("a ") + std::string(DumpKindName(job.kind)) +
                                           " dump is already running");
    q.jobs.push_back(std::move(job));
    wake.notify_all();
    return Status::Ok();
  }

  void CollectLoop();
  void Tick();
  void Consider(const char* metric, rules::MetricRule& rule, double value, bool gate, DumpKind kind,
                const collectors::Limits& limits);
  void CaptureLoop(CaptureQueue& q);
  void RunJob(const Job& job);
};

void Agent::Impl::CollectLoop() {
  std::unique_lock<std::mutex> lock(mu);
  while (!stopping) {
    lock.unlock();
    Tick();
    lock.lock();
    wake.wait_for(lock, cfg.agent.interval, [this] { return stopping; });
  }
}

void Agent::Impl::Tick() {
  auto reading = sampler->Sample();
  if (!reading.ok()) {
    if (!warned_gone) log::Warn("cannot sample this process: " + reading.status().message());
    warned_gone = true;
    return;
  }
  const collectors::Reading& r = *reading;
  // mallinfo2 walks the allocator's bins under its locks: only when used.
  Result<uint64_t> heap =
      HeapReadingWanted() ? engines.HeapInUseBytes() : Result<uint64_t>(Unavailable("not read"));
  double memory_limit = static_cast<double>(r.limits.memory_limit_bytes);
  std::optional<double> heap_percent;
  if (heap.ok() && memory_limit > 0)
    heap_percent = static_cast<double>(*heap) * 100.0 / memory_limit;

  int own_threads;
  {
    std::lock_guard<std::mutex> lock(mu);
    own_threads = static_cast<int>(LiveOwnTidsLocked().size());
  }
  // The host's threads only: the agent's own never count towards the rule.
  int host_threads = std::max(1, r.threads - own_threads);
  metrics().SetReadings(MetricReadings{
      .cpu_percent = r.cpu_percent,
      .memory_percent = r.memory_percent,
      .rss_bytes = static_cast<double>(r.rss_bytes),
      .threads = static_cast<double>(host_threads),
      .heap_inuse_bytes =
          heap.ok() ? std::optional<double>(static_cast<double>(*heap)) : std::nullopt,
      .heap_percent = heap_percent,
      .cpu_limit_cores = r.limits.cpu_limit_cores,
      .memory_limit_bytes = memory_limit});

  bool gate = cfg.agent.cpu_max > 0 && r.cpu_percent && *r.cpu_percent >= cfg.agent.cpu_max;
  {
    std::lock_guard<std::mutex> lock(mu);
    last_limits = r.limits;
  }
  DumpKind memory_kind = engines.HeapAvailable().ok() ? DumpKind::kHeap : DumpKind::kMemory;
  if (r.cpu_percent) Consider("cpu", cpu_rule, *r.cpu_percent, gate, DumpKind::kCpu, r.limits);
  Consider("memory", memory_rule, r.memory_percent, gate, memory_kind, r.limits);
  Consider("threads", threads_rule, host_threads, gate, DumpKind::kThreads, r.limits);
  if (heap_percent) Consider("heap", heap_rule, *heap_percent, gate, memory_kind, r.limits);
}

void Agent::Impl::Consider(const char* metric, rules::MetricRule& rule, double value, bool gate,
                           DumpKind kind, const collectors::Limits& limits) {
  nanoseconds now = clock.Monotonic();
  rules::Decision d = rule.Observe(value, now, gate);
  if (rules::IsSuppression(d.quiet)) {
    metrics().CountSuppressed(metric, std::string(rules::QuietName(d.quiet)));
    log::Debug(std::string(metric) + ": " + d.Describe());
  }
  if (!d.fire) return;
  log::Info(std::string(metric) + " rule: " + d.Describe() + "; taking a " +
            std::string(DumpKindName(kind)) + " dump");
  Job job{kind, std::string(rules::ReasonName(d.reason)), metric, "", d, limits};
  std::lock_guard<std::mutex> lock(mu);
  Status s = Enqueue(std::move(job));
  if (s.ok()) {
    rule.RecordDump(now);
  } else {
    metrics().CountSuppressed(metric, "busy");
    log::Debug(std::string(metric) + ": " + s.message());
  }
}

void Agent::Impl::CaptureLoop(CaptureQueue& q) {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    wake.wait(lock, [&] { return stopping || !q.jobs.empty(); });
    if (stopping) return;
    Job job = std::move(q.jobs.front());
    q.jobs.pop_front();
    q.running = job.kind;
    lock.unlock();
    RunJob(job);
    lock.lock();
    q.running.reset();
  }
}

void Agent::Impl::RunJob(const Job& job) {
  std::string kind(DumpKindName(job.kind));
  nanoseconds started = clock.Monotonic();
  DumpMeta meta;
  meta.event_id = NewEventId();
  meta.kind = kind;
  meta.reason = job.reason;
  meta.metric = job.metric;
  meta.comment = job.comment;
  if (job.decision) {
    meta.value = job.decision->value;
    meta.average = job.decision->average;
    const rules::RuleSpec& r = job.decision->rule;
    meta.thresholds = DumpMeta::Thresholds{r.min, r.diff, r.abs, r.max,
                                           std::chrono::duration<double>(r.cooldown).count()};
  }
  meta.cpu_limit_cores = job.limits.cpu_limit_cores;
  meta.cpu_limit_source = job.limits.cpu_limit_source;
  meta.memory_limit_bytes = job.limits.memory_limit_bytes;
  meta.memory_limit_source = job.limits.memory_limit_source;
  meta.pid = pid;
  meta.hostname = hostname;
  meta.service = service;
  meta.labels = cfg.agent.labels;
  meta.cmdline = cmdline;
  meta.executable = executable;
  meta.build_id = build_id;
  meta.start_time_unix_nanos = clock.Wall().count();

  CaptureOptions options{.duration = cfg.cpu.profile_duration,
                         .hz = cfg.cpu.profile_hz,
                         .scratch_dir = cfg.agent.dump_dir,
                         .cancel = &cancel,
                         .exclude_tids = {}};
  {
    std::lock_guard<std::mutex> lock(mu);
    options.exclude_tids = LiveOwnTidsLocked();
  }
  auto captured = engines.Capture(job.kind, options);
  if (cancel) {
    // Stopping (often: the host is exiting, within upload.exit_grace). A
    // CPU profile keeps what it collected, with its true duration; other
    // kinds were cut short and are dropped.
    if (job.kind != DumpKind::kCpu || !captured.ok() || captured->duration_nanos <= 0) {
      log::Info("stopping: dropped the " + kind + " dump in progress");
      return;
    }
    captured->notes.push_back(
        "the process was stopping: profiled for " +
        FormatDuration(std::chrono::nanoseconds(captured->duration_nanos)) + " of the " +
        FormatDuration(cfg.cpu.profile_duration) + " asked for");
  }
  if (!captured.ok()) {
    metrics().CountDumpFailure(kind);
    log::Warn("cannot take a " + kind + " dump: " + captured.status().message());
    return;
  }
  meta.duration_nanos = captured->duration_nanos;
  meta.notes = captured->notes;
  auto written = writer.Write(meta, captured->profile_gz, captured->text);
  if (!written.ok()) {
    metrics().CountDumpFailure(kind);
    log::Error("cannot write a " + kind + " dump: " + written.status().message());
    return;
  }
  double seconds = std::chrono::duration<double>(clock.Monotonic() - started).count();
  metrics().CountDump(kind, job.reason);
  metrics().ObserveCaptureSeconds(kind, seconds);
  log::Info("wrote " + written->profile_path + " (" + std::to_string(written->bytes) + " bytes)");
  std::lock_guard<std::mutex> lock(mu);  // Stop() may be tearing the uploader down
  if (upload) upload->Notify();
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Agent::~Agent() {
  if (!impl_) return;
  Stop();
  // Threads that did not finish in time still use the Impl: leak it.
  if (impl_->abandoned_threads) (void)impl_.release();
}

Result<std::unique_ptr<Agent>> Agent::Create(const config::Config& config) {
  auto impl = std::make_unique<Impl>(config);
  SLEUTH_RETURN_IF_ERROR(impl->writer.Prepare());
  impl->cfg.agent.dump_dir = impl->writer.dir();  // "" means the private default
  impl->pid = getpid();
  impl->hostname = Hostname();
  auto name = collectors::ProcessName(impl->pid);
  impl->service = !config.agent.service.empty() ? config.agent.service
                                                : (name.ok() ? *name : std::string("unknown"));
  if (auto cmd = collectors::ReadCmdline(impl->pid); cmd.ok()) impl->cmdline = *cmd;
  if (auto exe = collectors::ExecutablePath(impl->pid); exe.ok()) impl->executable = *exe;
  impl->build_id = BuildIdOf(impl->executable);
  SLEUTH_RETURN_IF_ERROR(impl->engines.Init(config));
  if (!config.upload.sinks.empty()) {
    // Retention must not delete what waits for upload: the uploader's own
    // cap (upload.max_spool_bytes) decides about undelivered dumps.
    std::vector<std::string> sinks;
    for (const auto& sink : config.upload.sinks) sinks.push_back(sink.name);
    auto spool = std::make_shared<uploader::Spool>(config.agent.dump_dir, sinks);
    impl->writer.SetRetentionExemption(
        [spool](const std::string& base) { return spool->IsPendingForAny(base); });
  }
  if (!config.metrics.listen.empty() || !config.upload.sinks.empty()) {
    auto net = LoadNetServices();
    if (!net.ok()) return net.status();
    impl->net = std::move(*net);
  }
  if (!config.metrics.listen.empty()) {
    Impl& s = *impl;
    SLEUTH_RETURN_IF_ERROR(
        s.RecordingNewThreads([&] { return s.net->ServeMetrics(config.metrics.listen); }));
  }
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

Status Agent::Start() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.running || s.stopping) return Status(StatusCode::kBusy, "the agent is already running");
    if (s.abandoned_threads)
      return Status(StatusCode::kBusy, "the agent's previous threads have not finished");
    s.cancel = false;
    s.warned_gone = false;
  }
  // Fresh state: warm-up starts again and the first CPU reading does not
  // average over the time the agent was stopped.
  s.cpu_rule.Reset();
  s.memory_rule.Reset();
  s.threads_rule.Reset();
  s.heap_rule.Reset();
  s.sampler.emplace(s.pid, s.clock,
                    collectors::SamplerOptions{.use_smaps_rollup = s.cfg.agent.use_smaps_rollup});
  if (!s.cfg.upload.sinks.empty()) {
    s.upload = s.net->MakeUploader(s.cfg.upload, s.cfg.agent.dump_dir, s.clock);
    Status started = s.RecordingNewThreads([&] { return s.upload->Start(); });
    if (!started.ok()) {
      s.upload.reset();
      return started.WithContext("cannot start the uploader");
    }
  }
  auto fail = [&](const Status& why) {
    Stop();
    return why;
  };
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.running = true;
  }
  auto collector = s.Launch("sleuth-agent", [&s] { s.CollectLoop(); });
  if (!collector.ok()) return fail(collector.status());
  s.collector = std::move(*collector);
  auto cpu = s.Launch(s.cpu_queue.name, [&s] { s.CaptureLoop(s.cpu_queue); });
  if (!cpu.ok()) return fail(cpu.status());
  s.cpu_queue.thread = std::move(*cpu);
  auto instant = s.Launch(s.instant_queue.name, [&s] { s.CaptureLoop(s.instant_queue); });
  if (!instant.ok()) return fail(instant.status());
  s.instant_queue.thread = std::move(*instant);
  log::Info("agent started: pid " + std::to_string(s.pid) + ", service " + s.service +
            ", interval " + FormatDuration(s.cfg.agent.interval) + ", dumps in " +
            s.cfg.agent.dump_dir);
  return Status::Ok();
}

void Agent::Stop() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.running || s.stopping) return;
    s.stopping = true;
    s.cancel = true;  // a CPU profile or thread dump in progress ends now
    s.wake.notify_all();
  }
  // One deadline for everything, so the host's exit waits at most
  // upload.exit_grace (and never less than a short moment for our own
  // threads to notice).
  auto grace =
      std::max<std::chrono::nanoseconds>(s.cfg.upload.exit_grace, std::chrono::milliseconds(200));
  auto deadline = std::chrono::steady_clock::now() + grace;
  bool all_exited;
  {
    std::unique_lock<std::mutex> lock(s.mu);
    all_exited = s.exited.wait_until(lock, deadline, [&] { return s.live_threads == 0; });
  }
  for (std::thread* t : {&s.collector, &s.cpu_queue.thread, &s.instant_queue.thread}) {
    if (!t->joinable()) continue;
    if (all_exited) {
      t->join();
    } else {
      t->detach();  // still busy (e.g. writing a dump): it ends on its own
    }
  }
  if (s.upload) {
    // What is left of the grace goes to uploads in flight; the rest stays
    // queued on disk for the next start or `sleuth upload`.
    auto left = std::max<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now(),
                                                   std::chrono::nanoseconds(0));
    s.upload->Stop(std::min<std::chrono::nanoseconds>(left, s.cfg.upload.exit_grace));
  }
  std::lock_guard<std::mutex> lock(s.mu);
  s.upload.reset();
  if (!all_exited) {
    s.abandoned_threads = true;
    log::Warn("agent stopped without waiting for a capture still finishing");
  }
  s.cpu_queue.jobs.clear();
  s.instant_queue.jobs.clear();
  s.running = false;
  s.stopping = false;
  log::Info("agent stopped");
}

Status Agent::RequestDump(DumpKind kind, std::string reason, std::string comment) {
  Impl& s = *impl_;
  // Without tcmalloc a heap request still leaves evidence: the memory
  // dump, whose sidecar says why it is not a heap profile.
  if (kind == DumpKind::kHeap && !s.engines.Available(kind).ok()) kind = DumpKind::kMemory;
  SLEUTH_RETURN_IF_ERROR(s.engines.Available(kind));
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.running || s.stopping) return Status(StatusCode::kUnavailable, "the agent is not running");
  return s.Enqueue(
      Job{kind, std::move(reason), "", std::move(comment), std::nullopt, s.last_limits});
}

void Agent::AbandonAfterFork() {
  // The threads are gone in the child and mu may be held by one of them:
  // touch nothing, leak everything.
  (void)impl_.release();
}

}  // namespace sleuth::agent
