// The agent's metrics, as the agent loop sees them: the latest readings and
// limits, counters of dumps and of suppressed rule matches, and the time
// each capture took. The loop only calls this interface; where metrics are
// served (metrics.listen set) the implementation is prometheus-cpp's, in the
// private plugin libsleuth-net.so (net_services.h), so a host that serves no
// metrics never maps prometheus-cpp or civetweb. Otherwise NoMetrics()
// drops everything.
// Thread-safety: implementations are thread safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

namespace sleuth::agent {

struct MetricReadings {
  std::optional<double> cpu_percent;
  double memory_percent = 0;
  double rss_bytes = 0;
  double threads = 0;  // the host's threads, the agent's own left out
  std::optional<double> heap_inuse_bytes;
  std::optional<double> heap_percent;
  double cpu_limit_cores = 0;
  double memory_limit_bytes = 0;
};

class AgentMetrics {
 public:
  virtual ~AgentMetrics();
  virtual void SetReadings(const MetricReadings& readings) = 0;
  virtual void CountDump(const std::string& kind, const std::string& reason) = 0;
  virtual void CountDumpFailure(const std::string& kind) = 0;
  virtual void CountSuppressed(const std::string& metric, const std::string& why) = 0;
  virtual void ObserveCaptureSeconds(const std::string& kind, double seconds) = 0;
};

// Metrics nobody reads: every call does nothing.
std::unique_ptr<AgentMetrics> NoMetrics();

}  // namespace sleuth::agent
