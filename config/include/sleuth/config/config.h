// sleuth's configuration as typed values. Every field here is described by
// exactly one row of the option table (option_table.h), which drives
// validation, `sleuth config defaults`, the README reference and the
// SLEUTH_<SECTION>_<KEY> environment overrides. The default member
// initializers below equal the table's defaults (config_test proves it), so
// Config{} is the configuration with nothing set. Load one with LoadConfig()
// (load.h).
//
// Units: cpu thresholds are percent of the process's CPU limit; memory and
// heap thresholds are percent of its memory limit; threads thresholds are a
// thread count. Durations are std::chrono::nanoseconds; sizes are bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sleuth::config {

using Nanos = std::chrono::nanoseconds;

// The rule of one metric (Holmes's min / diff / abs / max / cooldown).
struct MetricRule {
  bool enable = true;
  double min = 0;     // nothing fires below this
  double diff = 0;    // fire when >= diff percent above the history average
  double abs = 0;     // fire when above this
  double max = 0;     // nothing fires at or above this; 0 = no maximum
  Nanos cooldown{0};  // quiet period for this metric after a dump

  bool operator==(const MetricRule&) const = default;
};

struct AgentSection {
  Nanos interval = std::chrono::seconds(5);
  int history = 10;
  int warmup = -1;       // -1: same as history
  std::string dump_dir;  // empty: the private default, dumps::DefaultDumpDir()
  std::string service;   // empty: the process name
  std::map<std::string, std::string> labels;
  double cpu_max = 0;  // 0 = off
  int max_dumps = 100;
  uint64_t max_dump_bytes = 1ull << 30;
  std::string log_level = "warn";
  std::string log_file;  // empty: stderr
  bool follow_fork = false;
  bool use_smaps_rollup = false;

  int EffectiveWarmup() const { return warmup < 0 ? history : warmup; }
  bool operator==(const AgentSection&) const = default;
};

struct CpuSection : MetricRule {
  Nanos profile_duration = std::chrono::seconds(5);
  int profile_hz = 100;

  bool operator==(const CpuSection&) const = default;
};

struct HeapSection : MetricRule {
  uint64_t sample_bytes = 512 * 1024;

  bool operator==(const HeapSection&) const = default;
};

// One upload destination. The keys directly under [upload] describe the
// sink named "default"; further sinks are [upload.sinks.<name>] tables with
// the same keys.
struct SinkConfig {
  std::string name = "default";
  std::string url;                     // empty: this sink is off
  std::string protocol = "pyroscope";  // pyroscope | pyroscope-ingest | http
  std::string username;
  std::string password_file;  // else SLEUTH_UPLOAD_PASSWORD
  std::string token_file;     // else SLEUTH_UPLOAD_TOKEN
  std::string tenant_id;      // X-Scope-OrgID
  std::map<std::string, std::string> headers;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure_skip_verify = false;

  bool operator==(const SinkConfig&) const = default;
};

struct UploadSection {
  std::vector<SinkConfig> sinks;  // only those with a url
  Nanos retry_initial = std::chrono::seconds(1);
  Nanos retry_max = std::chrono::minutes(5);
  Nanos timeout = std::chrono::seconds(10);
  Nanos exit_grace = std::chrono::seconds(1);
  int concurrency = 2;
  uint64_t max_spool_bytes = 1ull << 30;

  bool operator==(const UploadSection&) const = default;
};

struct MetricsSection {
  std::string listen;  // e.g. 127.0.0.1:9464; empty = off

  bool operator==(const MetricsSection&) const = default;
};

struct WatchSection {
  std::string listen;  // webhook listener of `sleuth watch`; empty = off

  bool operator==(const WatchSection&) const = default;
};

// The per-metric defaults are spelled positionally because CpuSection and
// HeapSection extend MetricRule, and C++20 cannot designate a base's fields.
// Order: enable, min, diff, abs, max, cooldown.
struct Config {
  AgentSection agent;
  CpuSection cpu{{true, 10, 25, 70, 0, std::chrono::minutes(1)}};
  MetricRule memory{true, 10, 25, 80, 0, std::chrono::minutes(1)};
  MetricRule threads{true, 100, 25, 2000, 0, std::chrono::hours(1)};
  HeapSection heap{{true, 10, 25, 80, 0, std::chrono::minutes(1)}};
  UploadSection upload;
  MetricsSection metrics;
  WatchSection watch;

  bool operator==(const Config&) const = default;
};

}  // namespace sleuth::config
