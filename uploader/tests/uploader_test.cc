// The uploader against a real HTTP server on loopback (tests/receiver.py):
// every protocol, retries, timeouts, refusals, Retry-After, several sinks,
// the spool cap, restarts, keep-alive and secrets.
#include "sleuth/uploader/uploader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <set>

#include "push.pb.h"
#include "sleuth/common/log.h"
#include "sleuth/testing/pprof_oracle.h"
#include "test_util.h"

namespace sleuth::uploader {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace testing;  // NOLINT: the test helpers
using std::chrono::milliseconds;
using std::chrono::seconds;

class UploaderTest : public DirTest {
 protected:
  std::unique_ptr<Uploader> Make(const config::UploadSection& cfg, UploaderOptions options = {}) {
    if (!options.getenv) {
      options.getenv = [this](const char* name) -> const char* {
        auto it = env_.find(name);
        return it == env_.end() ? nullptr : it->second.c_str();
      };
    }
    return std::make_unique<Uploader>(cfg, dumps_, registry_, SystemClock::Instance(), options);
  }

  // Runs a one-shot uploader until it ends by itself.
  UploadStats Drain(const config::UploadSection& cfg, UploaderOptions options = {}) {
    options.exit_when_drained = true;
    auto up = Make(cfg, options);
    Status started = up->Start();
    EXPECT_TRUE(started.ok()) << started.message();
    EXPECT_TRUE(up->WaitDone(seconds(60))) << "the uploader did not drain";
    up->Stop(Nanos(0));
    return up->Stats();
  }

  bool Delivered(const std::string& base, const std::string& sink = "default") {
    return PathExists(dumps_ + "/.sleuth-upload/" + sink + "/" + base + ".done");
  }

  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::map<std::string, std::string> env_;
};

std::map<std::string, std::string> PushLabels(const RecordedRequest& r,
                                              std::string* raw_profile = nullptr) {
  sleuth::uploader_test::PushRequest push;
  EXPECT_TRUE(push.ParseFromString(r.body)) << "not a PushRequest";
  std::map<std::string, std::string> labels;
  if (push.series_size() != 1) {
    ADD_FAILURE() << "expected one series, got " << push.series_size();
    return labels;
  }
  for (const auto& l : push.series(0).labels()) labels[l.name()] = l.value();
  EXPECT_EQ(push.series(0).samples_size(), 1);
  if (raw_profile != nullptr && push.series(0).samples_size() == 1) {
    *raw_profile = push.series(0).samples(0).raw_profile();
  }
  return labels;
}

// ---------------------------------------------------------------- protocols

TEST_F(UploaderTest, PushesEveryKindToPyroscopeWithLabelsAuthAndHeaders) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  std::map<std::string, std::string> kinds;  // event id -> kind
  for (const char* kind : {"cpu", "heap", "memory", "threads"}) {
    DumpSpec spec;
    spec.kind = kind;
    kinds[Dump(spec).event_id] = kind;
  }
  config::UploadSection cfg = FastConfig(rx->url() + "/");
  cfg.sinks[0].username = "agent";
  cfg.sinks[0].tenant_id = "team-a";
  cfg.sinks[0].headers = {{"X-Extra", "yes"}};
  env_["SLEUTH_UPLOAD_PASSWORD"] = "pa55word";
  UploadStats stats = Drain(cfg);
  EXPECT_EQ(stats.delivered, 4u);

  std::vector<RecordedRequest> got = rx->Requests();
  ASSERT_EQ(got.size(), 4u);
  std::set<std::string> seen;
  for (const RecordedRequest& r : got) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/push.v1.PusherService/Push");
    EXPECT_EQ(r.Header("content-type"), "application/proto");
    EXPECT_EQ(r.Header("connect-protocol-version"), "1");
    EXPECT_EQ(r.Header("authorization"), "Basic " + Base64("agent:pa55word"));
    EXPECT_EQ(r.Header("x-scope-orgid"), "team-a");
    EXPECT_EQ(r.Header("x-extra"), "yes");
    std::string raw;
    std::map<std::string, std::string> labels = PushLabels(r, &raw);
    const std::string& id = labels["sleuth_event_id"];
    ASSERT_EQ(kinds.count(id), 1u) << "unknown event id " << id;
    EXPECT_TRUE(seen.insert(id).second) << "sent twice: " << id;
    EXPECT_EQ(r.Header("idempotency-key"), id);
    EXPECT_EQ(r.Header("x-sleuth-event-id"), id);
    const std::string& kind = kinds[id];
    EXPECT_EQ(labels["__name__"], PyroscopeProfileName(kind));
    EXPECT_EQ(labels["sleuth_kind"], kind);
    EXPECT_EQ(labels["service_name"], "testsvc");
    EXPECT_EQ(labels["pid"], "4242");
    EXPECT_EQ(labels["hostname"], "testhost");
    EXPECT_EQ(labels["sleuth_reason"], "abs");
    EXPECT_EQ(labels["env"], "test");
    sleuth::testing::DecodedProfile p = sleuth::testing::DecodePprofGz(raw);
    EXPECT_TRUE(p.ok()) << p.ErrorText();
    EXPECT_FALSE(p.samples.empty());
  }
  EXPECT_EQ(
      MetricValue(*registry_, "sleuth_uploads_total", {{"sink", "default"}, {"result", "success"}}),
      4);
  EXPECT_EQ(MetricValue(*registry_, "sleuth_upload_duration_seconds", {{"sink", "default"}}), 4);
  EXPECT_GT(MetricValue(*registry_, "sleuth_upload_last_success_timestamp_seconds",
                        {{"sink", "default"}}),
            1.6e9);
}

TEST_F(UploaderTest, IngestsThroughTheLegacyApiWithABearerToken) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  DumpSpec spec;
  spec.service = "my.app";
  WrittenDump d = Dump(spec);
  config::UploadSection cfg = FastConfig(rx->url(), "pyroscope-ingest");
  env_["SLEUTH_UPLOAD_TOKEN"] = "t0ken-value";
  EXPECT_EQ(Drain(cfg).delivered, 1u);
  std::vector<RecordedRequest> got = rx->Requests();
  ASSERT_EQ(got.size(), 1u);
  const RecordedRequest& r = got[0];
  EXPECT_EQ(r.path, "/ingest");
  EXPECT_EQ(r.Header("authorization"), "Bearer t0ken-value");
  EXPECT_EQ(r.Header("content-type"), "binary/octet-stream");
  EXPECT_THAT(r.query, HasSubstr("name=my.app%7Benv%3Dtest%2Chostname%3Dtesthost%2Cpid%3D4242%2C"
                                 "sleuth_event_id%3D" +
                                 d.event_id));
  EXPECT_THAT(r.query, HasSubstr("&spyName=sleuth&format=pprof"));
  EXPECT_THAT(r.query, HasSubstr("&from=1764497702&until=1764497708"));
  Result<std::string> file = ReadFile(dumps_ + "/" + d.base + ".pb.gz");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(r.body, *file);
  EXPECT_TRUE(sleuth::testing::DecodePprofGz(r.body).ok());
}

TEST_F(UploaderTest, PostsHolmesStyleMultipart) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  DumpSpec spec;
  spec.kind = "threads";
  spec.reason = "manual";
  WrittenDump d = Dump(spec);
  config::UploadSection cfg = FastConfig(rx->url() + "/api/profiles", "http");
  env_["SLEUTH_UPLOAD_TOKEN"] = "holmes-token";
  EXPECT_EQ(Drain(cfg).delivered, 1u);
  std::vector<RecordedRequest> got = rx->Requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "/api/profiles");
  auto parts = ParseMultipart(got[0].body, got[0].Header("content-type"));
  ASSERT_EQ(parts.size(), 6u) << got[0].Header("content-type");
  Result<std::string> profile = ReadFile(dumps_ + "/" + d.base + ".pb.gz");
  Result<std::string> sidecar = ReadFile(dumps_ + "/" + d.base + ".json");
  ASSERT_TRUE(profile.ok() && sidecar.ok());
  EXPECT_EQ(parts["profile"].content, *profile);
  EXPECT_THAT(parts["profile"].headers, HasSubstr("filename=\"" + d.base + ".pb.gz\""));
  EXPECT_EQ(parts["profile_type"].content, "threads");
  EXPECT_EQ(parts["event_id"].content, d.event_id);
  EXPECT_EQ(parts["comment"].content, "manual");
  EXPECT_EQ(parts["token"].content, "holmes-token");
  EXPECT_EQ(parts["metadata"].content, *sidecar);
  EXPECT_TRUE(sleuth::testing::DecodePprofGz(parts["profile"].content).ok());
}

// ---------------------------------------------------------------- failures

TEST_F(UploaderTest, ServerErrorThenSuccessDeliversExactlyOnce) {
  auto rx = StartReceiver(R"({"responses": [{"status": 500, "body": "boom"}, {"status": 503}]})");
  ASSERT_TRUE(rx);
  WrittenDump d = Dump();
  UploadStats stats = Drain(FastConfig(rx->url()));
  EXPECT_EQ(stats.delivered, 1u);
  EXPECT_EQ(stats.retries, 2u);
  std::vector<RecordedRequest> got = rx->Requests();
  ASSERT_EQ(got.size(), 3u);
  int accepted = 0;
  for (const RecordedRequest& r : got) {
    EXPECT_EQ(r.Header("x-sleuth-event-id"), d.event_id);
    accepted += r.status == 200;
  }
  EXPECT_EQ(accepted, 1);
  EXPECT_TRUE(Delivered(d.base));
  EXPECT_EQ(MetricValue(*registry_, "sleuth_upload_retries_total", {{"sink", "default"}}), 2);
  EXPECT_EQ(
      MetricValue(*registry_, "sleuth_uploads_total", {{"sink", "default"}, {"result", "retry"}}),
      2);
}

TEST_F(UploaderTest, TimedOutRequestIsRetried) {
  auto rx = StartReceiver(R"({"responses": [{"status": 200, "delay_ms": 3000}]})");
  ASSERT_TRUE(rx);
  WrittenDump d = Dump();
  config::UploadSection cfg = FastConfig(rx->url());
  cfg.timeout = milliseconds(300);
  UploadStats stats = Drain(cfg);
  EXPECT_EQ(stats.delivered, 1u);
  EXPECT_EQ(stats.retries, 1u);
  EXPECT_EQ(rx->Requests().size(), 2u);
  EXPECT_TRUE(Delivered(d.base));
}

TEST_F(UploaderTest, ConnectionRefusedThenServerAppearsDeliversAll) {
  Result<int> port = PickFreePort();
  ASSERT_TRUE(port.ok());
  std::vector<WrittenDump> dumps;
  for (int i = 0; i < 5; ++i) dumps.push_back(Dump());
  auto up = Make(FastConfig("http://127.0.0.1:" + std::to_string(*port)));
  ASSERT_TRUE(up->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return up->Stats().retries >= 3; }));
  EXPECT_EQ(up->Stats().delivered, 0u);
  auto rx = StartReceiver("", *port);
  ASSERT_TRUE(rx);
  ASSERT_TRUE(WaitFor([&] { return up->Stats().delivered == 5; }));
  up->Stop(seconds(1));
  std::multiset<std::string> ids;
  for (const RecordedRequest& r : rx->Requests()) ids.insert(r.Header("x-sleuth-event-id"));
  ASSERT_EQ(ids.size(), 5u);
  for (const WrittenDump& d : dumps) EXPECT_EQ(ids.count(d.event_id), 1u);
}

TEST_F(UploaderTest, UnauthorizedIsLoggedOnceSetAsideAndNotRetried) {
  auto rx = StartReceiver(
      R"({"default": {"status": 401, "body": "{\"code\":\"unauthenticated\",\"message\":\"invalid credentials for tenant acme\"}"}})");
  ASSERT_TRUE(rx);
  WrittenDump first = Dump();
  WrittenDump second = Dump();
  std::string log_path = root_ + "/log.txt";
  ASSERT_TRUE(log::SetFile(log_path).ok());
  UploadStats stats = Drain(FastConfig(rx->url()));
  ASSERT_TRUE(log::SetFile("").ok());
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_EQ(stats.retries, 0u);
  // One request: the sink is refused as a whole, so the second dump waits.
  EXPECT_EQ(rx->Requests().size(), 1u);
  EXPECT_TRUE(PathExists(dumps_ + "/failed/default/" + first.base + ".json"));
  EXPECT_TRUE(PathExists(dumps_ + "/failed/default/" + first.base + ".pb.gz"));
  Result<std::string> reason = ReadFile(dumps_ + "/failed/default/" + first.base + ".reason");
  ASSERT_TRUE(reason.ok());
  EXPECT_THAT(*reason, HasSubstr("HTTP 401: invalid credentials for tenant acme"));
  Result<std::string> log_text = ReadFile(log_path);
  ASSERT_TRUE(log_text.ok());
  EXPECT_THAT(*log_text, HasSubstr("refused " + first.base +
                                   ": HTTP 401: invalid credentials "
                                   "for tenant acme; set aside in failed/default/"));
  EXPECT_THAT(*log_text, HasSubstr("check upload.username"));
  EXPECT_EQ(MetricValue(*registry_, "sleuth_uploads_total",
                        {{"sink", "default"}, {"result", "rejected"}}),
            1);

  // What is left, and why.
  auto up = Make(FastConfig(rx->url()));
  std::map<std::string, Undelivered> left;
  ASSERT_TRUE(up->ForEachUndelivered([&](const Undelivered& u) { left[u.base] = u; }).ok());
  ASSERT_EQ(left.size(), 2u);
  EXPECT_TRUE(left[first.base].set_aside);
  EXPECT_FALSE(left[second.base].set_aside);

  // Fixed server: --retry-failed requeues, and everything arrives.
  ASSERT_TRUE(rx->Script(R"({"default": {"status": 200}})").ok());
  Result<uint64_t> requeued = up->RequeueFailed();
  ASSERT_TRUE(requeued.ok());
  EXPECT_EQ(*requeued, 1u);
  EXPECT_EQ(Drain(FastConfig(rx->url())).delivered, 2u);
  EXPECT_TRUE(Delivered(first.base));
  EXPECT_TRUE(Delivered(second.base));
}

TEST_F(UploaderTest, BadRequestSetsTheDumpAsideAndGoesOn) {
  auto rx = StartReceiver(R"({"responses": [{"status": 400, "body": "malformed profile"}]})");
  ASSERT_TRUE(rx);
  WrittenDump bad = Dump(), good = Dump();
  UploadStats stats = Drain(FastConfig(rx->url()));
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_EQ(stats.delivered, 1u);
  EXPECT_EQ(rx->Requests().size(), 2u);
  EXPECT_TRUE(PathExists(dumps_ + "/failed/default/" + bad.base + ".json"));
  EXPECT_TRUE(Delivered(good.base));
}

TEST_F(UploaderTest, TooManyRequestsWaitsWhatRetryAfterAsks) {
  auto rx = StartReceiver(R"({"responses": [{"status": 429, "headers": {"Retry-After": "1"}}]})");
  ASSERT_TRUE(rx);
  Dump();
  config::UploadSection cfg = FastConfig(rx->url());
  cfg.retry_initial = milliseconds(10);  // without Retry-After it would retry at once
  cfg.retry_max = milliseconds(20);
  UploadStats stats = Drain(cfg);
  EXPECT_EQ(stats.delivered, 1u);
  std::vector<RecordedRequest> got = rx->Requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].status, 429);
  EXPECT_GE(got[1].time - got[0].time, 0.9) << "Retry-After: 1 was not honoured";
}

TEST_F(UploaderTest, MalformedSidecarIsSetAsideWithoutStallingTheQueue) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  std::string broken = "svc.1.cpu.20200101T000000.000Z.00000000000000000000000000000000";
  ASSERT_TRUE(WriteFileAtomic(dumps_ + "/" + broken + ".pb.gz", "x").ok());
  ASSERT_TRUE(WriteFileAtomic(dumps_ + "/" + broken + ".json", "{\"event_id\": 12").ok());
  WrittenDump good = Dump();
  UploadStats stats = Drain(FastConfig(rx->url()));
  EXPECT_EQ(stats.invalid, 1u);
  EXPECT_EQ(stats.delivered, 1u);
  EXPECT_TRUE(Delivered(good.base));
  EXPECT_FALSE(PathExists(dumps_ + "/" + broken + ".json"));
  Result<std::string> reason = ReadFile(dumps_ + "/failed/_invalid/" + broken + ".reason");
  ASSERT_TRUE(reason.ok());
  EXPECT_THAT(*reason, HasSubstr("not valid JSON"));
}

TEST_F(UploaderTest, DumpsRemovedByRetentionAreSkipped) {
  Result<int> port = PickFreePort();
  ASSERT_TRUE(port.ok());
  std::vector<WrittenDump> dumps;
  for (int i = 0; i < 6; ++i) dumps.push_back(Dump());
  auto up = Make(FastConfig("http://127.0.0.1:" + std::to_string(*port)));
  ASSERT_TRUE(up->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return up->Stats().retries >= 2; }));
  for (int i = 1; i < 6; i += 2) {  // what the agent's retention would do
    for (const char* ext : {".json", ".pb.gz"})
      ::unlink((dumps_ + "/" + dumps[i].base + ext).c_str());
  }
  auto rx = StartReceiver("", *port);
  ASSERT_TRUE(rx);
  ASSERT_TRUE(WaitFor([&] { return up->Stats().delivered == 3; }));
  up->Stop(seconds(1));
  EXPECT_EQ(rx->Requests().size(), 3u);
  EXPECT_GE(up->Stats().vanished, 1u);
  for (int i = 0; i < 6; i += 2) EXPECT_TRUE(Delivered(dumps[i].base));
}

// ---------------------------------------------------------------- spool cap

TEST_F(UploaderTest, SpoolCapEvictsTheOldestAndLogsEachRemoval) {
  Result<int> port = PickFreePort();
  ASSERT_TRUE(port.ok());
  std::vector<WrittenDump> dumps;
  for (int i = 0; i < 20; ++i) dumps.push_back(Dump());
  config::UploadSection cfg = FastConfig("http://127.0.0.1:" + std::to_string(*port));
  cfg.max_spool_bytes = dumps[0].bytes * 10 + dumps[0].bytes / 2;
  std::string log_path = root_ + "/log.txt";
  ASSERT_TRUE(log::SetFile(log_path).ok());
  UploaderOptions options;
  options.accounting_interval = milliseconds(50);
  auto up = Make(cfg, options);
  ASSERT_TRUE(up->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return up->Stats().evicted >= 10; }));
  auto rx = StartReceiver("", *port);
  ASSERT_TRUE(rx);
  ASSERT_TRUE(WaitFor([&] { return up->Stats().delivered + up->Stats().evicted == 20; }));
  up->Stop(seconds(1));
  ASSERT_TRUE(log::SetFile("").ok());
  UploadStats stats = up->Stats();
  EXPECT_EQ(stats.evicted, 10u);
  EXPECT_EQ(stats.delivered, 10u);
  EXPECT_EQ(MetricValue(*registry_, "sleuth_upload_evicted_total"), 10);
  // The newest survive; every eviction was logged.
  for (int i = 11; i < 20; ++i) EXPECT_TRUE(Delivered(dumps[i].base)) << i;
  Result<std::string> log_text = ReadFile(log_path);
  ASSERT_TRUE(log_text.ok());
  int logged = 0;
  for (const WrittenDump& d : dumps) {
    if (log_text->find("evicted " + d.base) != std::string::npos) {
      ++logged;
      EXPECT_FALSE(PathExists(dumps_ + "/" + d.base + ".json"));
    }
  }
  EXPECT_EQ(logged, 10);
  EXPECT_THAT(*log_text, HasSubstr("upload.max_spool_bytes"));
}

// ---------------------------------------------------------------- sinks

TEST_F(UploaderTest, DeliversEachDumpToEachSink) {
  auto rx = StartReceiver();
  auto flaky = StartReceiver(R"({"responses": [{"status": 502}, {"status": 502}]})");
  ASSERT_TRUE(rx && flaky);
  std::vector<WrittenDump> dumps;
  for (int i = 0; i < 4; ++i) dumps.push_back(Dump());
  config::UploadSection cfg = FastConfig(rx->url(), "pyroscope");
  config::SinkConfig ingest;
  ingest.name = "legacy";
  ingest.url = rx->url();
  ingest.protocol = "pyroscope-ingest";
  config::SinkConfig holmes;
  holmes.name = "holmes";
  holmes.url = flaky->url() + "/upload";
  holmes.protocol = "http";
  cfg.sinks.push_back(ingest);
  cfg.sinks.push_back(holmes);
  UploadStats stats = Drain(cfg);
  EXPECT_EQ(stats.delivered, 12u);
  std::map<std::string, std::multiset<std::string>> by_endpoint;
  for (const RecordedRequest& r : rx->Requests())
    by_endpoint[r.endpoint].insert(r.Header("x-sleuth-event-id"));
  for (const RecordedRequest& r : flaky->Requests()) {
    if (r.status == 200) by_endpoint[r.endpoint].insert(r.Header("x-sleuth-event-id"));
  }
  for (const char* endpoint : {"push", "ingest", "http"}) {
    ASSERT_EQ(by_endpoint[endpoint].size(), 4u) << endpoint;
    for (const WrittenDump& d : dumps)
      EXPECT_EQ(by_endpoint[endpoint].count(d.event_id), 1u) << endpoint;
  }
  for (const WrittenDump& d : dumps) {
    for (const char* sink : {"default", "legacy", "holmes"}) EXPECT_TRUE(Delivered(d.base, sink));
  }
}

// ---------------------------------------------------------------- lifecycle

TEST_F(UploaderTest, RestartSendsNothingAlreadyAcknowledged) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  for (int i = 0; i < 5; ++i) Dump();
  EXPECT_EQ(Drain(FastConfig(rx->url())).delivered, 5u);
  EXPECT_EQ(Drain(FastConfig(rx->url())).delivered, 0u);
  EXPECT_EQ(rx->Requests().size(), 5u);
}

TEST_F(UploaderTest, ReusesConnections) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  for (int i = 0; i < 40; ++i) Dump();
  EXPECT_EQ(Drain(FastConfig(rx->url())).delivered, 40u);
  Result<ReceiverStats> stats = rx->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->requests, 40);
  // concurrency 2 => two connections, kept alive (one more for the stats call).
  EXPECT_LE(stats->connections, 3);
}

TEST_F(UploaderTest, NotifyWakesTheUploaderAtOnce) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  UploaderOptions options;
  options.rescan_interval = std::chrono::hours(1);
  options.full_rescan_interval = std::chrono::hours(1);
  auto up = Make(FastConfig(rx->url()), options);
  ASSERT_TRUE(up->Start().ok());
  std::this_thread::sleep_for(milliseconds(100));  // let it find the empty directory
  WrittenDump d = Dump();
  up->Notify();
  EXPECT_TRUE(WaitFor([&] { return up->Stats().delivered == 1; }, seconds(10)));
  up->Stop(seconds(1));
  EXPECT_TRUE(Delivered(d.base));
}

TEST_F(UploaderTest, FindsDumpsWithoutNotify) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  UploaderOptions options;
  options.rescan_interval = milliseconds(50);
  auto up = Make(FastConfig(rx->url()), options);
  ASSERT_TRUE(up->Start().ok());
  std::this_thread::sleep_for(milliseconds(100));
  WrittenDump d = Dump();
  EXPECT_TRUE(WaitFor([&] { return up->Stats().delivered == 1; }, seconds(10)));
  up->Stop(seconds(1));
}

TEST_F(UploaderTest, StopReturnsWithinItsGraceAndKeepsTheDumpQueued) {
  auto rx = StartReceiver(R"({"default": {"status": 200, "delay_ms": 10000}})");
  ASSERT_TRUE(rx);
  WrittenDump d = Dump();
  auto up = Make(FastConfig(rx->url()));
  ASSERT_TRUE(up->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return rx->Requests().size() == 1; }));
  auto before = std::chrono::steady_clock::now();
  up->Stop(milliseconds(200));
  auto took = std::chrono::steady_clock::now() - before;
  // The answer would take 10s; Stop must not wait for it. (A generous bound:
  // what matters is "nowhere near 10s", not the exact figure.)
  EXPECT_LT(took, seconds(3));
  EXPECT_FALSE(Delivered(d.base));
  ASSERT_TRUE(rx->Script(R"({"default": {"status": 200}})").ok());
  EXPECT_EQ(Drain(FastConfig(rx->url())).delivered, 1u);
}

TEST_F(UploaderTest, OneShipperPerDirectory) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  auto first = Make(FastConfig(rx->url()));
  ASSERT_TRUE(first->Start().ok());
  UploaderOptions options;
  options.wait_for_lock = false;
  auto second = Make(FastConfig(rx->url()), options);
  Status s = second->Start();
  EXPECT_EQ(s.code(), StatusCode::kBusy) << s.message();
  first->Stop(Nanos(0));
}

TEST_F(UploaderTest, RefusesBadConfigurationClearly) {
  config::UploadSection none;
  Status s = Make(none)->Start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("set upload.url"));
  config::UploadSection twice = FastConfig("http://127.0.0.1:1");
  twice.sinks.push_back(twice.sinks[0]);
  EXPECT_THAT(Make(twice)->Start().message(), HasSubstr("two upload sinks are named \"default\""));
}

// ---------------------------------------------------------------- TLS

TEST_F(UploaderTest, VerifiesTlsUnlessToldNotToAndWarnsWhenNot) {
  std::string cert = root_ + "/cert.pem", key = root_ + "/key.pem";
  std::string make_cert =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '" +
      key + "' -out '" + cert + "' >/dev/null 2>&1";
  if (std::system(make_cert.c_str()) != 0) GTEST_SKIP() << "no openssl to make a certificate";
  auto rx = StartReceiver("", 0, true, cert, key);
  ASSERT_TRUE(rx);
  ASSERT_THAT(rx->url(), HasSubstr("https://"));
  WrittenDump first = Dump();

  // Verification is on by default: a self-signed server is not trusted.
  std::string log_path = root_ + "/log.txt";
  ASSERT_TRUE(log::SetFile(log_path).ok());
  UploaderOptions give_up_soon;
  give_up_soon.give_up_after = milliseconds(200);
  UploadStats stats = Drain(FastConfig(rx->url()), give_up_soon);
  EXPECT_EQ(stats.delivered, 0u);
  EXPECT_GE(stats.retries, 1u);
  EXPECT_TRUE(rx->Requests().empty());

  // Trusted through upload.ca_file.
  config::UploadSection with_ca = FastConfig(rx->url());
  with_ca.sinks[0].ca_file = cert;
  EXPECT_EQ(Drain(with_ca).delivered, 1u);

  // Not verified at all, with a warning at each start.
  Dump();
  config::UploadSection insecure = FastConfig(rx->url());
  insecure.sinks[0].insecure_skip_verify = true;
  EXPECT_EQ(Drain(insecure).delivered, 1u);
  EXPECT_EQ(Drain(insecure).delivered, 0u);
  ASSERT_TRUE(log::SetFile("").ok());
  Result<std::string> log_text = ReadFile(log_path);
  ASSERT_TRUE(log_text.ok());
  EXPECT_THAT(*log_text, HasSubstr("SSL certificate problem"));
  size_t warnings = 0;
  for (size_t at = 0;
       (at = log_text->find("does not verify TLS certificates", at)) != std::string::npos; ++at) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 2u);
}

// ---------------------------------------------------------------- secrets

TEST_F(UploaderTest, SecretsNeverReachLogsStateOrMetrics) {
  const std::string password = "hunter2-Sup3rSecret";
  const std::string token = "tok-Zm9vYmFyYmF6";
  const std::string header_secret = "hdr-k3y-value";
  // A hostile server that echoes the credentials back in its errors.
  std::string echo = "bad credentials " + password + " " + token + " " + header_secret + " " +
                     Base64("agent:" + password);
  auto rx = StartReceiver(R"({"responses": [{"status": 500, "body": ")" + echo +
                          R"("}], "default": {"status": 403, "body": ")" + echo + R"("}})");
  ASSERT_TRUE(rx);
  Dump();
  Dump();
  config::UploadSection cfg = FastConfig(rx->url());
  cfg.sinks[0].username = "agent";
  cfg.sinks[0].headers = {{"X-Api-Key", header_secret}};
  std::string secrets_dir = root_ + "/secrets";
  ASSERT_TRUE(MakeDirs(secrets_dir).ok());
  ASSERT_TRUE(WriteFileAtomic(secrets_dir + "/password", password + "\n").ok());
  cfg.sinks[0].password_file = secrets_dir + "/password";
  env_["SLEUTH_UPLOAD_TOKEN"] = token;
  config::SinkConfig unreachable = cfg.sinks[0];
  unreachable.name = "down";
  Result<int> port = PickFreePort();
  ASSERT_TRUE(port.ok());
  unreachable.url = "http://127.0.0.1:" + std::to_string(*port);
  cfg.sinks.push_back(unreachable);

  std::string log_path = root_ + "/log.txt";
  ASSERT_TRUE(log::SetFile(log_path).ok());
  log::Level level = log::GetLevel();
  log::SetLevel(log::Level::kDebug);
  UploaderOptions options;
  options.give_up_after = milliseconds(300);
  UploadStats stats = Drain(cfg, options);
  log::SetLevel(level);
  ASSERT_TRUE(log::SetFile("").ok());
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_GE(stats.retries, 2u);

  // The secrets did travel where they belong...
  std::vector<RecordedRequest> got = rx->Requests();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].Header("authorization"), "Basic " + Base64("agent:" + password));
  EXPECT_EQ(got[0].Header("x-api-key"), header_secret);
  // ...and nowhere else.
  std::vector<std::string> texts;
  Result<std::string> log_text = ReadFile(log_path);
  ASSERT_TRUE(log_text.ok());
  EXPECT_THAT(*log_text, HasSubstr("[redacted]"));  // the echo was seen, and hidden
  texts.push_back(*log_text);
  std::string failed_dir = dumps_ + "/failed/default";
  Result<std::vector<std::string>> failed = ListDir(failed_dir);
  ASSERT_TRUE(failed.ok());
  for (const std::string& name : *failed) texts.push_back(*ReadFile(failed_dir + "/" + name));
  texts.push_back(prometheus::TextSerializer().Serialize(registry_->Collect()));
  auto up = Make(cfg);
  ASSERT_TRUE(
      up->ForEachUndelivered([&](const Undelivered& u) { texts.push_back(u.reason); }).ok());
  for (const std::string& text : texts) {
    for (const std::string& secret :
         {password, token, header_secret, Base64("agent:" + password)}) {
      EXPECT_THAT(text, Not(HasSubstr(secret))) << "a secret leaked into: " << text.substr(0, 300);
    }
  }
}

}  // namespace
}  // namespace sleuth::uploader
