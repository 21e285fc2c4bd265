// The uploader's Prometheus metrics, on the registry it was given (or none).
// Thread-safety: the metric objects are thread safe; construction is not.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

#include "sleuth/common/status.h"

namespace sleuth::uploader {

class UploadMetrics {
 public:
  struct PerSink {
    prometheus::Counter* success = nullptr;
    prometheus::Counter* retry = nullptr;
    prometheus::Counter* rejected = nullptr;
    prometheus::Counter* invalid = nullptr;
    prometheus::Counter* unrecorded = nullptr;  // delivered or refused, but not recorded on disk
    prometheus::Counter* retries = nullptr;
    prometheus::Gauge* last_success_seconds = nullptr;
    prometheus::Histogram* duration_seconds = nullptr;
  };

  // Registers (or finds, after a restart of the uploader) the families on
  // `registry`; with a null registry every method is a no-op.
  [[nodiscard]] Status Init(const std::shared_ptr<prometheus::Registry>& registry,
                            const std::vector<std::string>& sinks);

  const PerSink& sink(size_t i) const { return sinks_[i]; }
  void SetQueue(uint64_t dumps, uint64_t bytes);
  void AddEvicted();

  static void Inc(prometheus::Counter* c) {
    if (c != nullptr) c->Increment();
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<PerSink> sinks_;
  prometheus::Gauge* queue_dumps_ = nullptr;
  prometheus::Gauge* queue_bytes_ = nullptr;
  prometheus::Counter* evicted_ = nullptr;
};

}  // namespace sleuth::uploader
