#include "prometheus_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <exception>

#include "quiet_thread.h"

namespace sleuth::agent {
namespace {

prometheus::Gauge& NewGauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

const prometheus::Histogram::BucketBoundaries& CaptureBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return kBuckets;
}

}  // namespace

// The registry is built first; members below refer into it.
static std::shared_ptr<prometheus::Registry> MakeRegistry() {
  return std::make_shared<prometheus::Registry>();
}

PrometheusMetrics::PrometheusMetrics() : PrometheusMetrics(MakeRegistry()) {}

PrometheusMetrics::PrometheusMetrics(std::shared_ptr<prometheus::Registry> r)
    : cpu_percent(NewGauge(*r, "sleuth_cpu_percent",
                           "Process CPU use as percent of its CPU limit (cgroup quota, else "
                           "cpuset/affinity cores, else host cores)")),
      memory_percent(
          NewGauge(*r, "sleuth_memory_percent", "Process RSS as percent of its memory limit")),
      rss_bytes(NewGauge(*r, "sleuth_rss_bytes", "Process resident set size in bytes")),
      threads(NewGauge(*r, "sleuth_threads", "Live threads of the process, the agent's own left out")),
      heap_inuse_bytes(NewGauge(*r, "sleuth_heap_inuse_bytes",
                                "Heap bytes in use (tcmalloc, else glibc mallinfo2)")),
      heap_percent(
          NewGauge(*r, "sleuth_heap_percent", "Heap bytes in use as percent of the memory limit")),
      cpu_limit_cores(NewGauge(*r, "sleuth_cpu_limit_cores", "CPU limit of the process in cores")),
      memory_limit_bytes(
          NewGauge(*r, "sleuth_memory_limit_bytes", "Memory limit of the process in bytes")),
      registry_(std::move(r)),
      dumps_(prometheus::BuildCounter()
                 .Name("sleuth_dumps_total")
                 .Help("Dumps written, by kind and reason")
                 .Register(*registry_)),
      dump_failures_(prometheus::BuildCounter()
                         .Name("sleuth_dump_failures_total")
                         .Help("Dumps that could not be captured or written, by kind")
                         .Register(*registry_)),
      suppressed_(prometheus::BuildCounter()
                      .Name("sleuth_rule_suppressed_total")
                      .Help("Rule matches held back, by metric and why (cooldown, cpu_max, max)")
                      .Register(*registry_)),
      capture_seconds_(prometheus::BuildHistogram()
                           .Name("sleuth_dump_capture_seconds")
                           .Help("Time to capture, encode and write one dump, by kind")
                           .Register(*registry_)) {
  // Every kind's histogram exists from the start, so a scrape shows zeros
  // rather than nothing before the first dump.
  for (const char* kind : {"cpu", "heap", "threads", "memory"})
    capture_seconds_.Add({{"kind", kind}}, CaptureBuckets());
}

PrometheusMetrics::~PrometheusMetrics() = default;

Status PrometheusMetrics::Serve(const std::string& listen) {
  // civetweb's threads inherit this mask: they must never take a host signal.
  ScopedBlockAllSignals quiet;
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/1);
    exposer_->RegisterCollectable(registry_);
  } catch (const std::exception& e) {
    return InvalidArgument("metrics.listen \"" + listen + "\": cannot serve metrics there (" +
                           e.what() + "); use a free host:port such as 127.0.0.1:9464");
  }
  return Status::Ok();
}

void PrometheusMetrics::SetReadings(const MetricReadings& r) {
  if (r.cpu_percent) cpu_percent.Set(*r.cpu_percent);
  memory_percent.Set(r.memory_percent);
  rss_bytes.Set(r.rss_bytes);
  threads.Set(r.threads);
  if (r.heap_inuse_bytes) heap_inuse_bytes.Set(*r.heap_inuse_bytes);
  if (r.heap_percent) heap_percent.Set(*r.heap_percent);
  cpu_limit_cores.Set(r.cpu_limit_cores);
  memory_limit_bytes.Set(r.memory_limit_bytes);
}

void PrometheusMetrics::CountDump(const std::string& kind, const std::string& reason) {
  dumps_.Add({{"kind", kind}, {"reason", reason}}).Increment();
}

void PrometheusMetrics::CountDumpFailure(const std::string& kind) {
  dump_failures_.Add({{"kind", kind}}).Increment();
}

void PrometheusMetrics::CountSuppressed(const std::string& metric, const std::string& why) {
  suppressed_.Add({{"metric", metric}, {"why", why}}).Increment();
}

void PrometheusMetrics::ObserveCaptureSeconds(const std::string& kind, double seconds) {
  capture_seconds_.Add({{"kind", kind}}, CaptureBuckets()).Observe(seconds);
}

}  // namespace sleuth::agent
