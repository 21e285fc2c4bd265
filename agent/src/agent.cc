#include "sleuth/agent/agent.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "engines.h"
#include "sleuth/agent/dump_writer.h"
#include "sleuth/agent/metrics.h"

#include <prometheus/gauge.h>
#include "sleuth/collectors/process_info.h"
#include "sleuth/collectors/sampler.h"
#include "sleuth/common/clock.h"
#include "sleuth/common/log.h"
#include "sleuth/rules/rule.h"
#include "sleuth/uploader/uploader.h"

namespace sleuth::agent {

std::string_view DumpKindName(DumpKind kind) {
  switch (kind) {
    case DumpKind::kCpu: return "cpu";
    case DumpKind::kHeap: return "heap";
    case DumpKind::kThreads: return "threads";
    case DumpKind::kMemory: return "memory";
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

// Starts a thread with every signal blocked (so the host's signals are
// delivered to the host's threads, never to ours) and named `name`.
std::thread StartQuietThread(const char* name, std::function<void()> body) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  std::thread t([name, body = std::move(body)] {
    pthread_setname_np(pthread_self(), name);
    body();
  });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

rules::RuleSpec SpecOf(const config::MetricRule& m, int warmup) {
  return rules::RuleSpec{.enable = m.enable, .min = m.min, .diff = m.diff, .abs = m.abs,
                         .max = m.max, .cooldown = m.cooldown, .warmup = warmup};
}

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

}  // namespace

struct Job {
  DumpKind kind;
  std::string reason;   // abs | diff | manual | alert
  std::string metric;   // the rule's metric, or ""
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
        sampler(getpid(), clock, collectors::SamplerOptions{.use_smaps_rollup = c.agent.use_smaps_rollup}),
        cpu_rule(SpecOf(c.cpu, c.agent.EffectiveWarmup()), c.agent.history),
        memory_rule(SpecOf(c.memory, c.agent.EffectiveWarmup()), c.agent.history),
        threads_rule(SpecOf(c.threads, c.agent.EffectiveWarmup()), c.agent.history),
        heap_rule(SpecOf(c.heap, c.agent.EffectiveWarmup()), c.agent.history) {}

  config::Config cfg;
  const Clock& clock = SystemClock::Instance();
  DumpWriter writer;
  collectors::Sampler sampler;
  rules::MetricRule cpu_rule, memory_rule, threads_rule, heap_rule;
  Engines engines;
  AgentMetrics metrics;
  std::unique_ptr<uploader::Uploader> upload;

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

  CaptureQueue& QueueFor(DumpKind kind) { return kind == DumpKind::kCpu ? cpu_queue : instant_queue; }

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
  void Consider(const char* metric, rules::MetricRule& rule, double value, bool gate,
                DumpKind kind, const collectors::Limits& limits);
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
  auto reading = sampler.Sample();
  if (!reading.ok()) {
    if (!warned_gone) log::Warn("cannot sample this process: " + reading.status().message());
    warned_gone = true;
    return;
  }
  const collectors::Reading& r = *reading;
  auto heap = engines.HeapInUseBytes();
  double memory_limit = static_cast<double>(r.limits.memory_limit_bytes);
  std::optional<double> heap_percent;
  if (heap.ok() && memory_limit > 0) heap_percent = static_cast<double>(*heap) * 100.0 / memory_limit;

  if (r.cpu_percent) metrics.cpu_percent.Set(*r.cpu_percent);
  metrics.memory_percent.Set(r.memory_percent);
  metrics.rss_bytes.Set(static_cast<double>(r.rss_bytes));
  metrics.threads.Set(r.threads);
  if (heap.ok()) metrics.heap_inuse_bytes.Set(static_cast<double>(*heap));
  if (heap_percent) metrics.heap_percent.Set(*heap_percent);
  metrics.cpu_limit_cores.Set(r.limits.cpu_limit_cores);
  metrics.memory_limit_bytes.Set(memory_limit);

  bool gate = cfg.agent.cpu_max > 0 && r.cpu_percent && *r.cpu_percent >= cfg.agent.cpu_max;
  {
    std::lock_guard<std::mutex> lock(mu);
    last_limits = r.limits;
  }
  DumpKind memory_kind = engines.HeapAvailable().ok() ? DumpKind::kHeap : DumpKind::kMemory;
  if (r.cpu_percent) Consider("cpu", cpu_rule, *r.cpu_percent, gate, DumpKind::kCpu, r.limits);
  Consider("memory", memory_rule, r.memory_percent, gate, memory_kind, r.limits);
  Consider("threads", threads_rule, r.threads, gate, DumpKind::kThreads, r.limits);
  if (heap_percent) Consider("heap", heap_rule, *heap_percent, gate, memory_kind, r.limits);
}

void Agent::Impl::Consider(const char* metric, rules::MetricRule& rule, double value, bool gate,
                           DumpKind kind, const collectors::Limits& limits) {
  nanoseconds now = clock.Monotonic();
  rules::Decision d = rule.Observe(value, now, gate);
  if (rules::IsSuppression(d.quiet)) {
    metrics.CountSuppressed(metric, std::string(rules::QuietName(d.quiet)));
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
    metrics.CountSuppressed(metric, "busy");
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
    meta.thresholds = DumpMeta::Thresholds{
        r.min, r.diff, r.abs, r.max, std::chrono::duration<double>(r.cooldown).count()};
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
                         .cancel = &cancel};
  auto captured = engines.Capture(job.kind, options);
  if (!captured.ok()) {
    metrics.CountDumpFailure(kind);
    log::Warn("cannot take a " + kind + " dump: " + captured.status().message());
    return;
  }
  meta.duration_nanos = captured->duration_nanos;
  meta.notes = captured->notes;
  auto written = writer.Write(meta, captured->profile_gz, captured->text);
  if (!written.ok()) {
    metrics.CountDumpFailure(kind);
    log::Error("cannot write a " + kind + " dump: " + written.status().message());
    return;
  }
  double seconds = std::chrono::duration<double>(clock.Monotonic() - started).count();
  metrics.CountDump(kind, job.reason);
  metrics.ObserveCaptureSeconds(kind, seconds);
  log::Info("wrote " + written->profile_path + " (" + std::to_string(written->bytes) + " bytes)");
  if (upload) upload->Notify();
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Agent::~Agent() {
  if (impl_) Stop();
}

Result<std::unique_ptr<Agent>> Agent::Create(const config::Config& config) {
  auto impl = std::make_unique<Impl>(config);
  SLEUTH_RETURN_IF_ERROR(impl->writer.Prepare());
  impl->pid = getpid();
  impl->hostname = Hostname();
  auto name = collectors::ProcessName(impl->pid);
  impl->service = !config.agent.service.empty() ? config.agent.service
                                                 : (name.ok() ? *name : std::string("unknown"));
  if (auto cmd = collectors::ReadCmdline(impl->pid); cmd.ok()) impl->cmdline = *cmd;
  if (auto exe = collectors::ExecutablePath(impl->pid); exe.ok()) impl->executable = *exe;
  impl->build_id = BuildIdOf(impl->executable);
  SLEUTH_RETURN_IF_ERROR(impl->engines.Init(config));
  if (!config.metrics.listen.empty()) SLEUTH_RETURN_IF_ERROR(impl->metrics.Serve(config.metrics.listen));
  if (!config.upload.sinks.empty()) {
    impl->upload = std::make_unique<uploader::Uploader>(config.upload, config.agent.dump_dir,
                                                        impl->metrics.registry(), impl->clock);
  }
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

Status Agent::Start() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.running) return Status(StatusCode::kBusy, "the agent is already running");
  s.stopping = false;
  s.cancel = false;
  s.cpu_rule.Reset();
  s.memory_rule.Reset();
  s.threads_rule.Reset();
  s.heap_rule.Reset();
  if (s.upload) SLEUTH_RETURN_IF_ERROR(s.upload->Start());
  s.collector = StartQuietThread("sleuth-agent", [&s] { s.CollectLoop(); });
  s.cpu_queue.thread = StartQuietThread(s.cpu_queue.name, [&s] { s.CaptureLoop(s.cpu_queue); });
  s.instant_queue.thread =
      StartQuietThread(s.instant_queue.name, [&s] { s.CaptureLoop(s.instant_queue); });
  s.running = true;
  log::Info("agent started: pid " + std::to_string(s.pid) + ", service " + s.service +
            ", interval " + std::to_string(std::chrono::duration<double>(s.cfg.agent.interval).count()) +
            "s, dumps in " + s.cfg.agent.dump_dir);
  return Status::Ok();
}

void Agent::Stop() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.running) return;
    s.stopping = true;
    s.cancel = true;  // a CPU profile in progress ends now
    s.wake.notify_all();
  }
  for (std::thread* t : {&s.collector, &s.cpu_queue.thread, &s.instant_queue.thread})
    if (t->joinable()) t->join();
  if (s.upload) s.upload->Stop(s.cfg.upload.exit_grace);
  std::lock_guard<std::mutex> lock(s.mu);
  s.cpu_queue.jobs.clear();
  s.instant_queue.jobs.clear();
  s.running = false;
  log::Info("agent stopped");
}

Status Agent::RequestDump(DumpKind kind, std::string reason, std::string comment) {
  Impl& s = *impl_;
  SLEUTH_RETURN_IF_ERROR(s.engines.Available(kind));
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.running) return Status(StatusCode::kUnavailable, "the agent is not running");
  return s.Enqueue(Job{kind, std::move(reason), "", std::move(comment), std::nullopt, s.last_limits});
}

void Agent::AbandonAfterFork() {
  // The threads are gone in the child and mu may be held by one of them:
  // touch nothing, leak everything.
  (void)impl_.release();
}

}  // namespace sleuth::agent
