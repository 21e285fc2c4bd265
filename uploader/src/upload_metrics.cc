#include "upload_metrics.h"

#include <exception>

namespace sleuth::uploader {

Status UploadMetrics::Init(const std::shared_ptr<prometheus::Registry>& registry,
                           const std::vector<std::string>& sinks) {
  registry_ = registry;
  sinks_.assign(sinks.size(), PerSink{});
  if (!registry) return Status::Ok();
  try {
    auto& uploads = prometheus::BuildCounter()
                        .Name("sleuth_uploads_total")
                        .Help(
                            "Upload attempts by sink and result (success, retry, rejected, "
                            "invalid, unrecorded: an outcome the spool could not record).")
                        .Register(*registry);
    auto& retries = prometheus::BuildCounter()
                        .Name("sleuth_upload_retries_total")
                        .Help("Upload attempts that failed transiently and will be retried.")
                        .Register(*registry);
    auto& last_success = prometheus::BuildGauge()
                             .Name("sleuth_upload_last_success_timestamp_seconds")
                             .Help("Unix time of the last upload a sink acknowledged.")
                             .Register(*registry);
    auto& duration = prometheus::BuildHistogram()
                         .Name("sleuth_upload_duration_seconds")
                         .Help(
                             "Time of one upload request, from start to the server's answer "
                             "or the error.")
                         .Register(*registry);
    const prometheus::Histogram::BucketBoundaries buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                             0.5,   1,    2.5,   5,    10,  30};
    for (size_t i = 0; i < sinks.size(); ++i) {
      const std::string& name = sinks[i];
      PerSink& s = sinks_[i];
      s.success = &uploads.Add({{"sink", name}, {"result", "success"}});
      s.retry = &uploads.Add({{"sink", name}, {"result", "retry"}});
      s.rejected = &uploads.Add({{"sink", name}, {"result", "rejected"}});
      s.invalid = &uploads.Add({{"sink", name}, {"result", "invalid"}});
      s.unrecorded = &uploads.Add({{"sink", name}, {"result", "unrecorded"}});
      s.retries = &retries.Add({{"sink", name}});
      s.last_success_seconds = &last_success.Add({{"sink", name}});
      s.duration_seconds = &duration.Add({{"sink", name}}, buckets);
    }
    queue_dumps_ = &prometheus::BuildGauge()
                        .Name("sleuth_upload_queue_dumps")
                        .Help("Dumps waiting for delivery to at least one sink.")
                        .Register(*registry)
                        .Add({});
    queue_bytes_ = &prometheus::BuildGauge()
                        .Name("sleuth_upload_queue_bytes")
                        .Help("Bytes of the dumps waiting for delivery.")
                        .Register(*registry)
                        .Add({});
    evicted_ = &prometheus::BuildCounter()
                    .Name("sleuth_upload_evicted_total")
                    .Help(
                        "Undelivered dumps removed to keep the spool under "
                        "upload.max_spool_bytes.")
                    .Register(*registry)
                    .Add({});
  } catch (const std::exception& e) {
    // prometheus-cpp throws when a name is registered with another type.
    return Internal(std::string("cannot register upload metrics: ") + e.what());
  }
  return Status::Ok();
}

void UploadMetrics::SetQueue(uint64_t dumps, uint64_t bytes) {
  if (queue_dumps_ != nullptr) queue_dumps_->Set(static_cast<double>(dumps));
  if (queue_bytes_ != nullptr) queue_bytes_->Set(static_cast<double>(bytes));
}

void UploadMetrics::AddEvicted() {
  Inc(evicted_);
}

}  // namespace sleuth::uploader
