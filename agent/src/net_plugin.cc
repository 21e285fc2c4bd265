// libsleuth-net.so: the agent's network side (see net_services.h). Exports
// one C function, kNetEntryPoint; everything else is hidden.
#include <exception>
#include <new>

#include "net_services.h"
#include "prometheus_metrics.h"
#include "quiet_thread.h"
#include "sleuth/uploader/uploader.h"

namespace sleuth::agent {
namespace {

class PluginUploader final : public UploadService {
 public:
  PluginUploader(const config::UploadSection& config, const std::string& dump_dir,
                 std::shared_ptr<prometheus::Registry> registry, const Clock& clock)
      : uploader_(config, dump_dir, std::move(registry), clock) {}
  Status Start() override {
    ScopedBlockAllSignals quiet;  // libcurl may start resolver threads
    return uploader_.Start();
  }
  void Notify() override { uploader_.Notify(); }
  void Stop(std::chrono::nanoseconds grace) override { uploader_.Stop(grace); }

 private:
  uploader::Uploader uploader_;
};

class PluginServices final : public NetServices {
 public:
  AgentMetrics& metrics() override { return metrics_; }
  Status ServeMetrics(const std::string& listen) override { return metrics_.Serve(listen); }
  std::unique_ptr<UploadService> MakeUploader(const config::UploadSection& config,
                                              const std::string& dump_dir,
                                              const Clock& clock) override {
    return std::make_unique<PluginUploader>(config, dump_dir, metrics_.registry(), clock);
  }

 private:
  PrometheusMetrics metrics_;
};

}  // namespace
}  // namespace sleuth::agent

extern "C" __attribute__((visibility("default"))) sleuth::agent::NetServices* sleuth_net_create(
    const sleuth::agent::NetInit* init) {
  using namespace sleuth::agent;
  if (init == nullptr || init->abi_version != kNetAbiVersion) return nullptr;
  sleuth::log::ForwardTo(init->write_log, init->log_enabled);
  try {
    return new PluginServices();
  } catch (...) {  // std::bad_alloc, or prometheus-cpp refusing a name
    return nullptr;
  }
}
