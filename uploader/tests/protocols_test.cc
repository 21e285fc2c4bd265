// Pure parts of the uploader: sidecar parsing, request building for each
// protocol (decoded with an independent protobuf schema and the pprof
// oracle), retry decisions, secrets and their redaction.
#include "sleuth/uploader/protocols.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "dump_factory.h"
#include "push.pb.h"
#include "sleuth/common/files.h"
#include "sleuth/testing/pprof_oracle.h"
#include "sleuth/uploader/retry.h"
#include "sleuth/uploader/sidecar.h"
#include "sleuth/uploader/sink.h"

namespace sleuth::uploader {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Fixture(const std::string& name) {
  Result<std::string> text = ReadFile(std::string(SLEUTH_FIXTURE_DIR) + "/uploader/" + name);
  EXPECT_TRUE(text.ok()) << text.status().message();
  return text.ok() ? *text : std::string();
}

DumpMeta FixtureMeta() {
  Result<DumpMeta> meta = ParseSidecar(Fixture("sidecar_cpu.json"));
  EXPECT_TRUE(meta.ok()) << meta.status().message();
  return meta.ok() ? *meta : DumpMeta{};
}

// ------------------------------------------------------------------ sidecar

TEST(SidecarTest, ParsesTheAgentsSidecar) {
  DumpMeta meta = FixtureMeta();
  EXPECT_EQ(meta.event_id, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(meta.kind, "cpu");
  EXPECT_EQ(meta.reason, "diff");
  EXPECT_EQ(meta.service, "checkout.api");
  EXPECT_EQ(meta.hostname, "web-7");
  EXPECT_EQ(meta.pid, 31337);
  EXPECT_EQ(meta.start_time_unix_nanos, 1796033702123000000);
  EXPECT_EQ(meta.duration_nanos, 5000000000);
  EXPECT_EQ(meta.labels.at("region"), "eu-west-1");
}

TEST(SidecarTest, RejectsBrokenSidecarsSayingWhatIsWrong) {
  struct Case {
    const char* file;
    const char* says;
  } cases[] = {
      {"sidecar_truncated.json", "not valid JSON"},
      {"sidecar_bad_event_id.json", "\"event_id\" must be 32 lowercase hex digits"},
      {"sidecar_no_service.json", "\"service\" must be present"},
      {"sidecar_pid_string.json", "\"pid\" must be an integer"},
  };
  for (const Case& c : cases) {
    Result<DumpMeta> meta = ParseSidecar(Fixture(c.file));
    ASSERT_FALSE(meta.ok()) << c.file;
    EXPECT_THAT(meta.status().message(), HasSubstr(c.says)) << c.file;
  }
  EXPECT_FALSE(ParseSidecar("[1, 2]").ok());
  EXPECT_FALSE(ParseSidecar("").ok());
}

// ------------------------------------------------------------------ pyroscope

std::map<std::string, std::string> LabelsOf(const sleuth::uploader_test::RawProfileSeries& s) {
  std::map<std::string, std::string> out;
  for (const auto& l : s.labels()) {
    EXPECT_TRUE(out.emplace(l.name(), l.value()).second) << "duplicate label " << l.name();
  }
  return out;
}

TEST(PyroscopePushTest, EncodesOneSeriesWithTheDumpsLabelsAndProfile) {
  DumpMeta meta = FixtureMeta();
  std::string profile = testing::Gzip(testing::MakeProfile("cpu", 3));
  HttpRequest req = BuildPyroscopePush("http://pyro:4040/base", meta, profile);
  EXPECT_EQ(req.url, "http://pyro:4040/base/push.v1.PusherService/Push");
  EXPECT_THAT(req.headers, ::testing::Contains("Content-Type: application/proto"));

  sleuth::uploader_test::PushRequest decoded;
  ASSERT_TRUE(decoded.ParseFromString(req.body));
  ASSERT_EQ(decoded.series_size(), 1);
  const auto& series = decoded.series(0);
  std::map<std::string, std::string> labels = LabelsOf(series);
  EXPECT_EQ(labels["__name__"], "process_cpu");
  EXPECT_EQ(labels["__delta__"], "false");
  EXPECT_EQ(labels["service_name"], "checkout.api");  // not the agent label's spoof
  EXPECT_EQ(labels["hostname"], "web-7");
  EXPECT_EQ(labels["pid"], "31337");
  EXPECT_EQ(labels["sleuth_kind"], "cpu");
  EXPECT_EQ(labels["sleuth_reason"], "diff");
  EXPECT_EQ(labels["sleuth_event_id"], meta.event_id);
  EXPECT_EQ(labels["env"], "prod");
  EXPECT_EQ(labels["team_name"], "payments");  // '-' is not valid in a label name
  EXPECT_EQ(labels.count("team-name"), 0u);
  // Pyroscope rejects unsorted or duplicate label names.
  for (int i = 1; i < series.labels_size(); ++i) {
    EXPECT_LT(series.labels(i - 1).name(), series.labels(i).name());
  }
  ASSERT_EQ(series.samples_size(), 1);
  EXPECT_EQ(series.samples(0).id(), "01234567-89ab-cdef-0123-456789abcdef");
  EXPECT_EQ(series.samples(0).raw_profile(), profile);
  sleuth::testing::DecodedProfile p =
      sleuth::testing::DecodePprofGz(series.samples(0).raw_profile());
  EXPECT_TRUE(p.ok()) << p.ErrorText();
  EXPECT_GT(p.Total("cpu"), 0);
}

TEST(PyroscopePushTest, NamesEachKindTheWayPyroscopeExpects) {
  EXPECT_EQ(PyroscopeProfileName("cpu"), "process_cpu");
  EXPECT_EQ(PyroscopeProfileName("heap"), "memory");
  EXPECT_EQ(PyroscopeProfileName("memory"), "memory");
  EXPECT_EQ(PyroscopeProfileName("threads"), "threads");
}

TEST(PyroscopePushTest, DropsEmptyLabelValues) {
  DumpMeta meta = FixtureMeta();
  meta.hostname.clear();
  meta.labels["blank"] = "";
  for (const auto& [name, value] : PyroscopeLabels(meta)) {
    EXPECT_FALSE(value.empty()) << name;
  }
}

// ------------------------------------------------------------------ ingest

TEST(PyroscopeIngestTest, PutsServiceAndLabelsInTheNameAndTheProfileInTheBody) {
  DumpMeta meta = FixtureMeta();
  meta.labels["odd"] = "a,b=c{d}";
  std::string profile = testing::Gzip(testing::MakeProfile("cpu", 0));
  HttpRequest req = BuildPyroscopeIngest("http://pyro:4040", meta, profile);
  EXPECT_EQ(IngestName(meta),
            "checkout.api{env=prod,hostname=web-7,odd=a_b_c_d_,pid=31337,region=eu-west-1,"
            "sleuth_event_id=0123456789abcdef0123456789abcdef,"
            "sleuth_kind=cpu,sleuth_reason=diff,team_name=payments}");
  EXPECT_EQ(req.url, "http://pyro:4040/ingest?name=" + PercentEncode(IngestName(meta)) +
                         "&from=1796033702&until=1796033708&spyName=sleuth&format=pprof");
  EXPECT_THAT(req.url, HasSubstr("name=checkout.api%7Benv%3Dprod%2C"));
  EXPECT_EQ(req.body, profile);
  EXPECT_THAT(req.headers, ::testing::Contains("Content-Type: binary/octet-stream"));
}

TEST(PyroscopeIngestTest, APointInTimeDumpStillSpansASecond) {
  DumpMeta meta = FixtureMeta();
  meta.start_time_unix_nanos = 1'000'000'000'000'000'000;
  meta.duration_nanos = 0;
  HttpRequest req = BuildPyroscopeIngest("http://x", meta, "p");
  EXPECT_THAT(req.url, HasSubstr("&from=1000000000&until=1000000001&"));
}

// ------------------------------------------------------------------ http

// Splits a multipart body into name -> (headers, content).
std::map<std::string, std::pair<std::string, std::string>> Parts(const std::string& body,
                                                                 const std::string& boundary) {
  std::map<std::string, std::pair<std::string, std::string>> parts;
  std::string delimiter = "--" + boundary;
  size_t pos = body.find(delimiter);
  while (pos != std::string::npos) {
    size_t start = pos + delimiter.size();
    if (body.compare(start, 2, "--") == 0) break;
    start += 2;  // CRLF
    size_t next = body.find("\r\n" + delimiter, start);
    if (next == std::string::npos) break;
    std::string part = body.substr(start, next - start);
    size_t blank = part.find("\r\n\r\n");
    std::string headers = part.substr(0, blank);
    std::string content = part.substr(blank + 4);
    size_t name_at = headers.find("name=\"") + 6;
    std::string name = headers.substr(name_at, headers.find('"', name_at) - name_at);
    parts[name] = {headers, content};
    pos = next + 2;
  }
  return parts;
}

TEST(HttpMultipartTest, SendsHolmesStyleParts) {
  DumpMeta meta = FixtureMeta();
  std::string sidecar = Fixture("sidecar_cpu.json");
  std::string profile = testing::Gzip(testing::MakeProfile("cpu", 1));
  HttpRequest req = BuildHttpMultipart("http://h/upload", meta, profile, sidecar, "x.pb.gz",
                                       "tok3n", "BOUNDARY42");
  EXPECT_EQ(req.url, "http://h/upload");
  EXPECT_THAT(req.headers,
              ::testing::Contains("Content-Type: multipart/form-data; boundary=BOUNDARY42"));
  auto parts = Parts(req.body, "BOUNDARY42");
  ASSERT_EQ(parts.size(), 6u);
  EXPECT_EQ(parts["profile"].second, profile);
  EXPECT_THAT(parts["profile"].first, HasSubstr("filename=\"x.pb.gz\""));
  EXPECT_EQ(parts["profile_type"].second, "cpu");
  EXPECT_EQ(parts["event_id"].second, meta.event_id);
  EXPECT_EQ(parts["comment"].second, "diff");
  EXPECT_EQ(parts["token"].second, "tok3n");
  EXPECT_EQ(parts["metadata"].second, sidecar);
  EXPECT_THAT(parts["metadata"].first, HasSubstr("application/json"));
}

// ------------------------------------------------------------------ retry

TEST(RetryTest, ClassifiesAnswers) {
  EXPECT_EQ(Classify(200), Outcome::kDelivered);
  EXPECT_EQ(Classify(204), Outcome::kDelivered);
  EXPECT_EQ(Classify(0), Outcome::kRetry);
  EXPECT_EQ(Classify(408), Outcome::kRetry);
  EXPECT_EQ(Classify(429), Outcome::kRetry);
  EXPECT_EQ(Classify(500), Outcome::kRetry);
  EXPECT_EQ(Classify(503), Outcome::kRetry);
  EXPECT_EQ(Classify(400), Outcome::kRejected);
  EXPECT_EQ(Classify(413), Outcome::kRejected);
  EXPECT_EQ(Classify(422), Outcome::kRejected);
  EXPECT_EQ(Classify(401), Outcome::kSinkRejected);
  EXPECT_EQ(Classify(403), Outcome::kSinkRejected);
  EXPECT_EQ(Classify(404), Outcome::kSinkRejected);
  EXPECT_EQ(Classify(301), Outcome::kSinkRejected);
}

TEST(RetryTest, BacksOffExponentiallyWithJitterWithinBounds) {
  using std::chrono::seconds;
  const Nanos initial = seconds(1), max = std::chrono::minutes(5);
  // Without jitter (u=1) the delay doubles per failure, capped at max.
  EXPECT_EQ(BackoffDelay(1, initial, max, 0.999999), initial);
  EXPECT_EQ(BackoffDelay(2, initial, max, 1.0), seconds(2));
  EXPECT_EQ(BackoffDelay(3, initial, max, 1.0), seconds(4));
  EXPECT_EQ(BackoffDelay(20, initial, max, 1.0), max);
  EXPECT_EQ(BackoffDelay(1000, initial, max, 1.0), max);
  // Jitter keeps at least half, and never goes under retry_initial.
  EXPECT_EQ(BackoffDelay(3, initial, max, 0.0), seconds(2));
  EXPECT_EQ(BackoffDelay(1, initial, max, 0.0), initial);
  for (int failures = 1; failures < 40; ++failures) {
    for (double u : {0.0, 0.25, 0.5, 0.99}) {
      Nanos d = BackoffDelay(failures, initial, max, u);
      EXPECT_GE(d, initial);
      EXPECT_LE(d, max);
    }
  }
}

TEST(RetryTest, ParsesRetryAfterSecondsAndDates) {
  using std::chrono::seconds;
  const seconds now(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(ParseRetryAfter("120", now), seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), seconds(0));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now), seconds(30));
  EXPECT_EQ(ParseRetryAfter("Wednesday, 21-Oct-15 07:29:00 GMT", now), seconds(60));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now), seconds(0));  // past
  EXPECT_FALSE(ParseRetryAfter("soon", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("-5", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("", now).has_value());
}

TEST(RetryTest, ExtractsTheServersMessage) {
  EXPECT_EQ(ServerMessage(R"({"code":"unauthenticated","message":"bad token"})"), "bad token");
  EXPECT_EQ(ServerMessage("plain\ntext\r\n"), "plain text");
  std::string huge(1000, 'x');
  EXPECT_EQ(ServerMessage(huge, 10), "xxxxxxxxxx...");
}

// ------------------------------------------------------------------ sinks

EnvLookup Env(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(SinkTest, TakesSecretsFromFilesOrTheEnvironment) {
  std::string dir = ::testing::TempDir() + "/sink_secrets";
  ASSERT_TRUE(MakeDirs(dir).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/password", "from-file\n").ok());

  config::SinkConfig cfg;
  cfg.url = "https://pyro.example:4040/";
  cfg.username = "agent";
  cfg.password_file = dir + "/password";
  Result<Sink> sink = ResolveSink(cfg, Env({{kPasswordEnv, "from-env"}, {kTokenEnv, "tok"}}));
  ASSERT_TRUE(sink.ok()) << sink.status().message();
  EXPECT_EQ(sink->url, "https://pyro.example:4040");
  EXPECT_EQ(sink->password, "from-file");  // the file wins, without its newline
  EXPECT_EQ(sink->token, "tok");

  cfg.password_file.clear();
  sink = ResolveSink(cfg, Env({{kPasswordEnv, "from-env"}}));
  ASSERT_TRUE(sink.ok());
  EXPECT_EQ(sink->password, "from-env");

  // A named sink never receives the environment's secrets.
  cfg.name = "second";
  sink = ResolveSink(cfg, Env({{kPasswordEnv, "from-env"}, {kTokenEnv, "tok"}}));
  ASSERT_TRUE(sink.ok());
  EXPECT_EQ(sink->password, "");
  EXPECT_EQ(sink->token, "");
}

TEST(SinkTest, RefusesBadSettingsWithoutEchoingSecrets) {
  std::string dir = ::testing::TempDir() + "/sink_bad";
  ASSERT_TRUE(MakeDirs(dir).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/token", "s3cr3t-token\nsecond line\n").ok());
  config::SinkConfig cfg;
  cfg.url = "http://h:1";
  cfg.token_file = dir + "/token";
  Result<Sink> sink = ResolveSink(cfg, Env({}));
  ASSERT_FALSE(sink.ok());
  EXPECT_THAT(sink.status().message(), HasSubstr("control characters"));
  EXPECT_THAT(sink.status().message(), Not(HasSubstr("s3cr3t")));

  cfg.token_file = dir + "/missing";
  sink = ResolveSink(cfg, Env({}));
  ASSERT_FALSE(sink.ok());
  EXPECT_THAT(sink.status().message(), HasSubstr("upload.token_file"));

  cfg = config::SinkConfig();
  cfg.url = "ftp://h";
  EXPECT_THAT(ResolveSink(cfg, Env({})).status().message(), HasSubstr("http:// or https://"));
  cfg.url = "http://h";
  cfg.protocol = "grpc";
  EXPECT_THAT(ResolveSink(cfg, Env({})).status().message(), HasSubstr("unknown upload protocol"));
  cfg.protocol = "http";
  cfg.cert_file = "/etc/passwd";
  EXPECT_THAT(ResolveSink(cfg, Env({})).status().message(), HasSubstr("upload.key_file"));
  cfg.cert_file.clear();
  cfg.name = "bad/name";
  EXPECT_THAT(ResolveSink(cfg, Env({})).status().message(), HasSubstr("invalid sink name"));
}

TEST(RedactorTest, HidesSecretsAndTheirBasicAuthForm) {
  Sink sink;
  sink.username = "agent";
  sink.password = "hunter2-pass";
  sink.token = "tok-123456";
  sink.headers = {{"X-Api-Key", "key-abcdef"}};
  Redactor r;
  r.AddSink(sink);
  std::string line = "echo: hunter2-pass tok-123456 key-abcdef " + Base64("agent:hunter2-pass");
  std::string redacted = r.Redact(line);
  EXPECT_THAT(redacted, Not(HasSubstr("hunter2")));
  EXPECT_THAT(redacted, Not(HasSubstr("tok-123456")));
  EXPECT_THAT(redacted, Not(HasSubstr("key-abcdef")));
  EXPECT_THAT(redacted, Not(HasSubstr(Base64("agent:hunter2-pass"))));
  EXPECT_THAT(redacted, HasSubstr("[redacted]"));
  EXPECT_EQ(Base64("agent:pw"), "YWdlbnQ6cHc=");
  EXPECT_EQ(Base64("ab"), "YWI=");
}

}  // namespace
}  // namespace sleuth::uploader
