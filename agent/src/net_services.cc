#include "net_services.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "sleuth/common/self_path.h"

namespace sleuth::agent {

namespace {

class DiscardedMetrics final : public AgentMetrics {
 public:
  void SetReadings(const MetricReadings&) override {}
  void CountDump(const std::string&, const std::string&) override {}
  void CountDumpFailure(const std::string&) override {}
  void CountSuppressed(const std::string&, const std::string&) override {}
  void ObserveCaptureSeconds(const std::string&, double) override {}
};

}  // namespace

std::unique_ptr<AgentMetrics> NoMetrics() { return std::make_unique<DiscardedMetrics>(); }

Result<std::unique_ptr<NetServices>> LoadNetServices() {
  std::string path;
  if (const char* forced = std::getenv("SLEUTH_NET_LIBRARY"); forced != nullptr && *forced != 0) {
    path = forced;
  } else {
    auto beside = PathBesideThisLibrary(kNetLibraryName);
    if (!beside.ok()) return beside.status();
    path = *beside;
  }
  // Never unloaded: threads the plugin starts (civetweb's, libcurl's) may
  // outlive a stop that had to abandon them.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return Unavailable("cannot load " + path + " (" + (why ? why : "unknown error") +
                       "): uploads and metrics need it; install it beside libsleuth.so, or "
                       "unset upload.url/upload.sinks and metrics.listen");
  }
  auto create = reinterpret_cast<NetCreateFn>(dlsym(handle, kNetEntryPoint));
  if (create == nullptr)
    return Unavailable(path + " has no " + kNetEntryPoint + ": it is not sleuth's network plugin");
  NetInit init{.abi_version = kNetAbiVersion, .write_log = &log::Write, .log_enabled = &log::Enabled};
  NetServices* services = create(&init);
  if (services == nullptr)
    return Unavailable(path + " refused to start (another sleuth version, or out of memory)");
  return std::unique_ptr<NetServices>(services);
}

}  // namespace sleuth::agent
