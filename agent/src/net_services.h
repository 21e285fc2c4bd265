// What the agent needs from the network: serving its Prometheus metrics and
// shipping its dumps. Both live in libsleuth-net.so, a private plugin
// installed beside libsleuth.so and loaded (dlopen RTLD_LOCAL) only when
// upload.url/upload.sinks or metrics.listen is set: libcurl, its TLS and
// Kerberos libraries, prometheus-cpp and civetweb then stay out of every
// host that does not use them (start-up cost, resident memory, and room
// under a tight RLIMIT_AS). The plugin is built from the same tree with the
// same compiler, so a C++ interface crosses the boundary safely; only one
// C symbol (kNetEntryPoint) is looked up.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "sleuth/agent/metrics.h"
#include "sleuth/common/clock.h"
#include "sleuth/common/log.h"
#include "sleuth/common/status.h"
#include "sleuth/config/config.h"

namespace sleuth::agent {

// The agent's side of the uploader (uploader::Uploader behind it).
class UploadService {
 public:
  virtual ~UploadService();
  [[nodiscard]] virtual Status Start() = 0;
  virtual void Notify() = 0;  // async-signal-safe
  virtual void Stop(std::chrono::nanoseconds grace) = 0;
};

class NetServices {
 public:
  virtual ~NetServices();
  // Prometheus metrics; they exist (and count) before ServeMetrics().
  virtual AgentMetrics& metrics() = 0;
  // Starts serving /metrics on "host:port".
  [[nodiscard]] virtual Status ServeMetrics(const std::string& listen) = 0;
  // An uploader of `dump_dir` whose metrics join those served.
  virtual std::unique_ptr<UploadService> MakeUploader(const config::UploadSection& config,
                                                      const std::string& dump_dir,
                                                      const Clock& clock) = 0;
};

// The plugin's entry point: lines it logs go through the agent's log (its
// own copy of common/ has its own level and fd), so log_level and log_file
// apply to them.
struct NetInit {
  int abi_version;
  void (*write_log)(log::Level level, std::string_view message) noexcept;
  bool (*log_enabled)(log::Level level) noexcept;
};
inline constexpr int kNetAbiVersion = 1;
inline constexpr const char* kNetEntryPoint = "sleuth_net_create";
inline constexpr const char* kNetLibraryName = "libsleuth-net.so";
using NetCreateFn = NetServices* (*)(const NetInit* init);

// Loads the plugin from beside libsleuth.so (or SLEUTH_NET_LIBRARY, for
// tests) once per process. kUnavailable saying what is missing and where
// it was looked for.
[[nodiscard]] Result<std::unique_ptr<NetServices>> LoadNetServices();

}  // namespace sleuth::agent
