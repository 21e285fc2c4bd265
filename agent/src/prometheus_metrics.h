// AgentMetrics served with prometheus-cpp: gauges for every reading and
// limit, counters of dumps and of suppressed rule matches, a histogram of
// capture time, and whatever else joins the registry (the uploader's
// metrics). Lives in the plugin libsleuth-net.so only.
// Thread-safety: thread safe (prometheus-cpp metrics are atomic).
#pragma once

#include <memory>
#include <string>

#include "sleuth/agent/metrics.h"
#include "sleuth/common/status.h"

namespace prometheus {
class Registry;
class Exposer;
class Gauge;
template <typename T>
class Family;
class Counter;
class Histogram;
}  // namespace prometheus

namespace sleuth::agent {

class PrometheusMetrics final : public AgentMetrics {
 public:
  PrometheusMetrics();
  ~PrometheusMetrics() override;

  // Starts serving /metrics on `listen` ("host:port"). Errors name the
  // address and say why (in use, bad address).
  Status Serve(const std::string& listen);

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  void SetReadings(const MetricReadings& readings) override;
  void CountDump(const std::string& kind, const std::string& reason) override;
  void CountDumpFailure(const std::string& kind) override;
  void CountSuppressed(const std::string& metric, const std::string& why) override;
  void ObserveCaptureSeconds(const std::string& kind, double seconds) override;

 private:
  explicit PrometheusMetrics(std::shared_ptr<prometheus::Registry> registry);
  prometheus::Gauge& cpu_percent;
  prometheus::Gauge& memory_percent;
  prometheus::Gauge& rss_bytes;
  prometheus::Gauge& threads;
  prometheus::Gauge& heap_inuse_bytes;
  prometheus::Gauge& heap_percent;
  prometheus::Gauge& cpu_limit_cores;
  prometheus::Gauge& memory_limit_bytes;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>& dumps_;
  prometheus::Family<prometheus::Counter>& dump_failures_;
  prometheus::Family<prometheus::Counter>& suppressed_;
  prometheus::Family<prometheus::Histogram>& capture_seconds_;
};

}  // namespace sleuth::agent
