// The agent's Prometheus metrics: gauges for every reading and limit,
// counters of dumps and of suppressed rule matches, and a histogram of
// capture time. Served by prometheus-cpp's exposer when metrics.listen is set;
// the registry also carries the uploader's metrics.
// Thread-safety: thread safe (prometheus-cpp metrics are atomic).
#pragma once

#include <memory>
#include <string>

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

class AgentMetrics {
 public:
  AgentMetrics();
  ~AgentMetrics();

  // Starts serving /metrics on `listen` ("host:port"). Errors name the
  // address and say why (in use, bad address).
  Status Serve(const std::string& listen);

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  prometheus::Gauge& cpu_percent;
  prometheus::Gauge& memory_percent;
  prometheus::Gauge& rss_bytes;
  prometheus::Gauge& threads;
  prometheus::Gauge& heap_inuse_bytes;
  prometheus::Gauge& heap_percent;
  prometheus::Gauge& cpu_limit_cores;
  prometheus::Gauge& memory_limit_bytes;

  void CountDump(const std::string& kind, const std::string& reason);
  void CountDumpFailure(const std::string& kind);
  void CountSuppressed(const std::string& metric, const std::string& why);
  void ObserveCaptureSeconds(const std::string& kind, double seconds);

 private:
  explicit AgentMetrics(std::shared_ptr<prometheus::Registry> registry);
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>& dumps_;
  prometheus::Family<prometheus::Counter>& dump_failures_;
  prometheus::Family<prometheus::Counter>& suppressed_;
  prometheus::Family<prometheus::Histogram>& capture_seconds_;
};

}  // namespace sleuth::agent
