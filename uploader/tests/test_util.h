// Shared fixture code of the uploader's integration tests: a fresh
// directory per test, a receiver, configs and polling helpers.
#pragma once

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "dump_factory.h"
#include "receiver_process.h"
#include "sleuth/common/files.h"
#include "sleuth/config/config.h"

namespace sleuth::uploader::testing {

inline void RemoveTree(const std::string& path) {
  int rc = std::system(("rm -rf '" + path + "'").c_str());
  (void)rc;  // best effort: a leftover temp dir only costs disk
}

inline bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Polls `done` every 10 ms for up to `timeout`. Returns its last value.
inline bool WaitFor(const std::function<bool()>& done,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// One sink, fast retries (tests must not wait seconds for a backoff).
inline config::UploadSection FastConfig(const std::string& url,
                                        const std::string& protocol = "pyroscope") {
  config::UploadSection cfg;
  config::SinkConfig sink;
  sink.url = url;
  sink.protocol = protocol;
  cfg.sinks.push_back(sink);
  cfg.retry_initial = std::chrono::milliseconds(20);
  cfg.retry_max = std::chrono::milliseconds(200);
  cfg.timeout = std::chrono::seconds(5);
  cfg.concurrency = 2;
  return cfg;
}

// The value of one sample of a family in the registry, or -1.
inline double MetricValue(prometheus::Registry& registry, const std::string& name,
                          const std::map<std::string, std::string>& labels = {}) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const prometheus::ClientMetric::Label& l : m.label) {
          if (l.name == k && l.value == v) found = true;
        }
        match = match && found;
      }
      if (!match) continue;
      if (family.type == prometheus::MetricType::Counter) return m.counter.value;
      if (family.type == prometheus::MetricType::Gauge) return m.gauge.value;
      if (family.type == prometheus::MetricType::Histogram) {
        return static_cast<double>(m.histogram.sample_count);
      }
    }
  }
  return -1;
}

class DirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = ::testing::TempDir() + "/" + info->test_suite_name() + "_" + info->name() + "_" +
            std::to_string(::getpid());
    ASSERT_EQ(std::system(("rm -rf '" + root_ + "'").c_str()), 0);
    dumps_ = root_ + "/dumps";
    ASSERT_TRUE(MakeDirs(dumps_).ok());
  }

  // A passing test leaves nothing behind; a failing one keeps its files.
  void TearDown() override {
    if (!HasFailure()) RemoveTree(root_);
  }

  std::unique_ptr<ReceiverProcess> StartReceiver(const std::string& script = "", int port = 0,
                                                 bool save_bodies = true,
                                                 const std::string& tls_cert = "",
                                                 const std::string& tls_key = "") {
    ReceiverProcess::Options options;
    options.tls_cert = tls_cert;
    options.tls_key = tls_key;
    options.record_dir = root_ + "/received" + std::to_string(++receivers_);
    options.port = port;
    options.script_json = script;
    options.save_bodies = save_bodies;
    auto started = ReceiverProcess::Start(options);
    EXPECT_TRUE(started.ok()) << started.status().message();
    return started.ok() ? std::move(*started) : nullptr;
  }

  WrittenDump Dump(DumpSpec spec = {}) {
    spec.time_unix_nanos +=
        static_cast<int64_t>(++dumps_written_) * 1'000'000;  // distinct, ordered
    Result<WrittenDump> d = WriteDump(dumps_, spec);
    EXPECT_TRUE(d.ok()) << d.status().message();
    return d.ok() ? *d : WrittenDump{};
  }

  std::string root_;
  std::string dumps_;
  int receivers_ = 0;
  int dumps_written_ = 0;
};

}  // namespace sleuth::uploader::testing
