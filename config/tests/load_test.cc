#include "sleuth/config/load.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "sleuth/common/files.h"
#include "sleuth/config/option_table.h"

namespace sleuth::config {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Fixture(std::string_view name) {
  return std::string(SLEUTH_FIXTURE_DIR) + "/config/" + std::string(name);
}

// A directory for config files written by a test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sleuth_config.XXXXXX");
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string Write(std::string_view name, std::string_view text) const {
    std::string file = path_ + "/" + std::string(name);
    EXPECT_TRUE(WriteFileAtomic(file, text).ok());
    return file;
  }

 private:
  std::string path_;
};

Config MustLoad(const ConfigSources& sources) {
  Result<Config> config = LoadConfig(sources);
  EXPECT_TRUE(config.ok()) << config.status().message();
  return config.ok() ? *config : Config{};
}

// The error lines of a load that must fail.
std::vector<std::string> Errors(const ConfigSources& sources) {
  Result<Config> config = LoadConfig(sources);
  EXPECT_FALSE(config.ok()) << "loaded without error";
  if (config.ok()) return {};
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  std::vector<std::string> lines;
  std::string message = config.status().message();
  size_t start = 0;
  while (start <= message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    lines.push_back(message.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

TEST(LoadConfigTest, NoSourcesGiveTheDefaults) {
  EXPECT_EQ(MustLoad({}), Config{});
  EXPECT_EQ(MustLoad({.env = {"PATH=/bin", "HOME=/root", "SLEUTHX=1", "NOEQUALS"}}), Config{});
}

TEST(LoadConfigTest, GoodFileSetsEveryKind) {
  Config c = MustLoad({.file_path = Fixture("good.toml")});
  EXPECT_EQ(c.agent.interval, seconds(2));
  EXPECT_EQ(c.agent.history, 20);
  EXPECT_EQ(c.agent.warmup, 5);
  EXPECT_EQ(c.agent.EffectiveWarmup(), 5);
  EXPECT_EQ(c.agent.dump_dir, "/var/tmp/sleuth-dumps");
  EXPECT_EQ(c.agent.service, "checkout");
  EXPECT_EQ(c.agent.labels, (StringMap{{"team", "payments"}, {"env", "prod"}}));
  EXPECT_EQ(c.agent.cpu_max, 95.5);
  EXPECT_EQ(c.agent.max_dumps, 50);
  EXPECT_EQ(c.agent.max_dump_bytes, 256u << 20);
  EXPECT_EQ(c.agent.log_level, "debug");
  EXPECT_EQ(c.agent.log_file, "/var/log/sleuth.log");
  EXPECT_TRUE(c.agent.follow_fork);
  EXPECT_TRUE(c.agent.use_smaps_rollup);
  EXPECT_FALSE(c.cpu.enable);
  EXPECT_EQ(c.cpu.min, 5);
  EXPECT_EQ(c.cpu.diff, 50.5);
  EXPECT_EQ(c.cpu.abs, 60);
  EXPECT_EQ(c.cpu.max, 99);
  EXPECT_EQ(c.cpu.cooldown, seconds(90));
  EXPECT_EQ(c.cpu.profile_duration, seconds(10));
  EXPECT_EQ(c.cpu.profile_hz, 250);
  EXPECT_EQ(c.memory.min, 20);
  EXPECT_EQ(c.memory.diff, 25);  // not in the file: the default
  EXPECT_EQ(c.memory.abs, 85);
  EXPECT_EQ(c.memory.cooldown, std::chrono::minutes(2));
  EXPECT_EQ(c.threads.min, 50);
  EXPECT_EQ(c.threads.abs, 500);
  EXPECT_EQ(c.threads.max, 10000);
  EXPECT_EQ(c.threads.cooldown, std::chrono::minutes(30));
  EXPECT_FALSE(c.heap.enable);
  EXPECT_EQ(c.heap.sample_bytes, 1u << 20);
  EXPECT_EQ(c.upload.retry_initial, std::chrono::milliseconds(500));
  EXPECT_EQ(c.upload.retry_max, std::chrono::minutes(1));
  EXPECT_EQ(c.upload.timeout, seconds(3));
  EXPECT_EQ(c.upload.concurrency, 4);
  EXPECT_EQ(c.upload.exit_grace, seconds(0));
  EXPECT_EQ(c.upload.max_spool_bytes, 10'000'000'000u);
  EXPECT_EQ(c.metrics.listen, "127.0.0.1:9464");
  EXPECT_EQ(c.watch.listen, "[::1]:9465");

  ASSERT_EQ(c.upload.sinks.size(), 2u);
  const SinkConfig& main = c.upload.sinks[0];
  EXPECT_EQ(main.name, "default");
  EXPECT_EQ(main.url, "https://profiles.example.com");
  EXPECT_EQ(main.protocol, "pyroscope-ingest");
  EXPECT_EQ(main.username, "sleuth");
  EXPECT_EQ(main.password_file, "/run/secrets/password");
  EXPECT_EQ(main.tenant_id, "tenant-1");
  EXPECT_EQ(main.headers, (StringMap{{"X-Scope-Extra", "1"}}));
  EXPECT_FALSE(main.insecure_skip_verify);
  const SinkConfig& archive = c.upload.sinks[1];
  EXPECT_EQ(archive.name, "archive");
  EXPECT_EQ(archive.url, "http://127.0.0.1:8080/profiles");
  EXPECT_EQ(archive.protocol, "http");
  EXPECT_EQ(archive.token_file, "/run/secrets/token");
  EXPECT_EQ(archive.username, "");  // sinks do not inherit the default sink's keys
  EXPECT_EQ(archive.cert_file, "/etc/sleuth/client.pem");
  EXPECT_EQ(archive.key_file, "/etc/sleuth/client.key");
  EXPECT_TRUE(archive.insecure_skip_verify);
}

// default < file < environment < --set, for every combination of sources.
TEST(LoadConfigTest, LaterSourcesWin) {
  TempDir dir;
  std::string file = dir.Write("c.toml", "[cpu]\nabs = 50\n");
  struct Case {
    bool file, env, set;
    double want;
  };
  const Case cases[] = {
      {false, false, false, 70}, {true, false, false, 50}, {false, true, false, 60},
      {false, false, true, 40},  {true, true, false, 60},  {true, false, true, 40},
      {false, true, true, 40},   {true, true, true, 40},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "file " << c.file << " env " << c.env << " set " << c.set);
    ConfigSources sources;
    if (c.file) sources.file_path = file;
    if (c.env) sources.env = {"SLEUTH_CPU_ABS=60"};
    if (c.set) sources.set_args = {"cpu.abs=40"};
    EXPECT_EQ(MustLoad(sources).cpu.abs, c.want);
  }
}

TEST(LoadConfigTest, LaterSetArgumentsWin) {
  EXPECT_EQ(MustLoad({.set_args = {"cpu.abs=40", "cpu.abs=45"}}).cpu.abs, 45);
  // Spaces around the key and a numeric value are forgiven.
  EXPECT_EQ(MustLoad({.set_args = {" cpu.abs = 42 "}}).cpu.abs, 42);
}

TEST(LoadConfigTest, ConfigFlagBeatsSleuthConfigVariable) {
  TempDir dir;
  std::string flag_file = dir.Write("flag.toml", "[cpu]\nabs = 50\n");
  std::string env_file = dir.Write("env.toml", "[cpu]\nabs = 55\n");
  std::string env_entry = "SLEUTH_CONFIG=" + env_file;
  EXPECT_EQ(MustLoad({.file_path = flag_file, .env = {env_entry}}).cpu.abs, 50);
  EXPECT_EQ(MustLoad({.env = {env_entry}}).cpu.abs, 55);
  EXPECT_EQ(MustLoad({.use_env_config_path = false, .env = {env_entry}}).cpu.abs, 70);
  EXPECT_EQ(MustLoad({.env = {"SLEUTH_CONFIG="}}), Config{});
}

TEST(LoadConfigTest, EnvironmentVariables) {
  Config c = MustLoad({.env = {
                           "SLEUTH_AGENT_DUMP_DIR=/x",
                           "SLEUTH_UPLOAD_URL=http://127.0.0.1:4040",
                           "SLEUTH_UPLOAD_HEADERS=X-A=1,X-B=2",
                           "SLEUTH_AGENT_LABELS=team=a,env=b",
                           "SLEUTH_AGENT_WARMUP=history",
                           "SLEUTH_AGENT_INTERVAL=250ms",
                           "SLEUTH_CPU_ENABLE=false",
                           "SLEUTH_DISABLE=0",
                           "SLEUTH_UPLOAD_PASSWORD=hunter2",
                           "SLEUTH_UPLOAD_TOKEN=tok",
                       }});
  EXPECT_EQ(c.agent.dump_dir, "/x");
  EXPECT_EQ(c.agent.labels, (StringMap{{"team", "a"}, {"env", "b"}}));
  EXPECT_EQ(c.agent.warmup, -1);
  EXPECT_EQ(c.agent.interval, std::chrono::milliseconds(250));
  EXPECT_FALSE(c.cpu.enable);
  ASSERT_EQ(c.upload.sinks.size(), 1u);
  EXPECT_EQ(c.upload.sinks[0].name, "default");
  EXPECT_EQ(c.upload.sinks[0].url, "http://127.0.0.1:4040");
  EXPECT_EQ(c.upload.sinks[0].headers, (StringMap{{"X-A", "1"}, {"X-B", "2"}}));
}

// A source that sets a table replaces it whole.
TEST(LoadConfigTest, TablesAreReplacedNotMerged) {
  TempDir dir;
  std::string file = dir.Write("c.toml", "[agent]\nlabels = { team = \"a\", env = \"b\" }\n");
  EXPECT_EQ(MustLoad({.file_path = file}).agent.labels, (StringMap{{"team", "a"}, {"env", "b"}}));
  EXPECT_EQ(MustLoad({.file_path = file, .env = {"SLEUTH_AGENT_LABELS=zone=c"}}).agent.labels,
            (StringMap{{"zone", "c"}}));
  EXPECT_EQ(MustLoad({.file_path = file, .set_args = {"agent.labels="}}).agent.labels, StringMap{});
  // The string form works in the file too.
  file = dir.Write("d.toml", "[agent]\nlabels = \"team=a,env=b\"\n");
  EXPECT_EQ(MustLoad({.file_path = file}).agent.labels, (StringMap{{"team", "a"}, {"env", "b"}}));
}

TEST(LoadConfigTest, SinksFromSetArguments) {
  Config c = MustLoad({.set_args = {"upload.url=http://127.0.0.1:4040",
                                    "upload.sinks.backup.url=http://127.0.0.1:4041",
                                    "upload.sinks.backup.protocol=http",
                                    "upload.sinks.a-1.url=https://a.example.com"}});
  ASSERT_EQ(c.upload.sinks.size(), 3u);
  EXPECT_EQ(c.upload.sinks[0].name, "default");
  EXPECT_EQ(c.upload.sinks[1].name, "a-1");
  EXPECT_EQ(c.upload.sinks[1].url, "https://a.example.com");
  EXPECT_EQ(c.upload.sinks[1].protocol, "pyroscope");
  EXPECT_EQ(c.upload.sinks[2].name, "backup");
  EXPECT_EQ(c.upload.sinks[2].protocol, "http");
}

TEST(LoadConfigTest, DefaultSinkOnlyWithAUrl) {
  EXPECT_TRUE(MustLoad({.set_args = {"upload.protocol=http"}}).upload.sinks.empty());
  // --set can also switch a sink off again.
  EXPECT_TRUE(
      MustLoad({.env = {"SLEUTH_UPLOAD_URL=http://127.0.0.1:1"}, .set_args = {"upload.url="}})
          .upload.sinks.empty());
}

TEST(LoadConfigTest, NativeTomlTypesAndStrings) {
  TempDir dir;
  std::string file = dir.Write("c.toml",
                               "[agent]\nfollow_fork = \"true\"\nhistory = \"12\"\n"
                               "max_dump_bytes = 4194304\n[cpu]\nabs = 70.5\nmin = \"5%\"\n");
  Config c = MustLoad({.file_path = file});
  EXPECT_TRUE(c.agent.follow_fork);
  EXPECT_EQ(c.agent.history, 12);
  EXPECT_EQ(c.agent.max_dump_bytes, 4194304u);
  EXPECT_EQ(c.cpu.abs, 70.5);
  EXPECT_EQ(c.cpu.min, 5);
}

TEST(LoadConfigErrorsTest, MalformedFileNamesFileLineAndColumn) {
  std::vector<std::string> errors = Errors({.file_path = Fixture("malformed.toml")});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], StartsWith(Fixture("malformed.toml") + ":3:"));
  EXPECT_THAT(errors[0], HasSubstr("not valid TOML: "));
}

TEST(LoadConfigErrorsTest, UnknownKeysNameTheNearestValidOne) {
  std::string path = Fixture("unknown_key.toml");
  EXPECT_THAT(Errors({.file_path = path}),
              ElementsAre(path + ":4:1: cpu.abss: unknown key; did you mean cpu.abs?",
                          path + ":7:1: memory.interval: unknown key; did you mean agent.interval?",
                          path + ":9:2: [cpuu]: unknown section; did you mean [cpu]?"));
}

TEST(LoadConfigErrorsTest, TopLevelKeys) {
  std::string path = Fixture("top_level_key.toml");
  EXPECT_THAT(Errors({.file_path = path}),
              ElementsAre(path + ":1:1: interval: options belong in a section; did you mean "
                                 "agent.interval? (write it under its [section] header)",
                          path + ":2:1: agent: expected a table ([agent]), got an integer"));
}

// Every wrong value of the file is reported at once, in file order, each
// with what was expected and an example in TOML syntax.
TEST(LoadConfigErrorsTest, WrongTypesAreAllReported) {
  std::string path = Fixture("wrong_types.toml");
  EXPECT_THAT(
      Errors({.file_path = path}),
      ElementsAre(
          path + ":3:12: agent.interval: expected a duration with a unit (ns, us, ms, s, m or h), "
                 "got the integer 5 (a bare number has no unit: write it as a string with one); "
                 "e.g. interval = \"5s\"",
          path + ":4:11: agent.history: expected a whole number, got the number 2.5; e.g. "
                 "history = 10",
          path + ":5:15: agent.follow_fork: expected true or false, got \"maybe\"; e.g. "
                 "follow_fork = false",
          path + ":6:13: agent.log_level: expected one of debug, info, warn, error or off, got "
                 "\"verbose\"; e.g. log_level = \"warn\"",
          path + ":7:19: agent.labels.team: expected a string, got an integer; e.g. labels = "
                 "{ \"env\" = \"prod\", \"team\" = \"payments\" }",
          path + ":10:7: cpu.abs: 150 is out of range: it must be at most 100 (a share of a limit "
                 "the process cannot exceed); e.g. abs = 70",
          path +
              ":11:7: cpu.min: -1 is out of range: it must be at least 0 (a share of a limit the "
              "process cannot exceed); e.g. min = 10",
          path + ":12:12: cpu.cooldown: expected a duration with a unit (ns, us, ms, s, m or h), "
                 "got a TOML array; e.g. cooldown = \"1m\"",
          path + ":15:10: metrics.listen: expected a host:port string, got the integer 9464; "
                 "e.g. listen = \"127.0.0.1:9464\""));
}

TEST(LoadConfigErrorsTest, BadSinks) {
  std::string path = Fixture("bad_sinks.toml");
  EXPECT_THAT(
      Errors({.file_path = path}),
      ElementsAre(path + ":9:1: upload.sinks.typo.urll: unknown key for a sink; did you mean "
                         "upload.sinks.typo.url?",
                  path +
                      ":10:1: upload.sinks.typo.retry_max: upload.retry_max applies to every sink: "
                      "set it under [upload]",
                  path + ":12:15: upload.sinks.default: the sink named default is the one the keys "
                         "directly under [upload] describe; give this one another name",
                  "upload.sinks.nourl: has no url (given at " + path +
                      ":4:15); every named sink needs one"));
}

TEST(LoadConfigErrorsTest, ContradictingThresholds) {
  std::string path = Fixture("thresholds.toml");
  EXPECT_THAT(
      Errors({.file_path = path}),
      ElementsAre(
          "cpu.abs = 40 (" + path + ":4:7) is below cpu.min = 50 (" + path +
              ":3:7): readings below min never fire, so an abs below min would never be what "
              "fires",
          "memory.max = 30 (" + path + ":8:7) must be 0 (none) or above memory.min = 30 (" + path +
              ":7:7): nothing fires at or above max, so it must be above min",
          "memory.max = 30 (" + path +
              ":8:7) must be 0 (none) or above memory.abs = 80 "
              "(default): nothing fires at or above max, so an abs at "
              "or above it could never fire",
          "threads.max = 2500 (" + path + ":12:7) must be 0 (none) or above threads.abs = 3000 (" +
              path +
              ":11:7): nothing fires at or above max, so an abs at or above it could "
              "never fire",
          "upload.retry_max = 5m (" + path + ":16:13) is below upload.retry_initial = 10m (" +
              path + ":15:17): the backoff starts at retry_initial and grows up to retry_max",
          "upload.cert_file is set (" + path +
              ":17:13) but upload.key_file is not: a client certificate is useless without its "
              "private key"));
}

TEST(LoadConfigErrorsTest, ConstraintsNameDefaultsAndOtherSources) {
  EXPECT_THAT(Errors({.set_args = {"cpu.abs=5"}}),
              ElementsAre("cpu.abs = 5 (--set cpu.abs) is below cpu.min = 10 (default): "
                          "readings below min never fire, so an abs below min would never be "
                          "what fires"));
  EXPECT_THAT(Errors({.env = {"SLEUTH_CPU_MAX=10"}}),
              ElementsAre(HasSubstr("cpu.max = 10 (environment variable SLEUTH_CPU_MAX) must be "
                                    "0 (none) or above cpu.min = 10 (default)"),
                          HasSubstr("cpu.max = 10 (environment variable SLEUTH_CPU_MAX) must be "
                                    "0 (none) or above cpu.abs = 70 (default)")));
  EXPECT_THAT(Errors({.set_args = {"upload.sinks.b.url=http://h", "upload.sinks.b.key_file=/k"}}),
              ElementsAre("upload.sinks.b.key_file is set (--set upload.sinks.b.key_file) but "
                          "upload.sinks.b.cert_file is not: a client certificate is useless "
                          "without its private key"));
  // Zero means "not set" for min and abs, and "none" for max.
  MustLoad({.set_args = {"cpu.min=0", "cpu.abs=0", "cpu.max=0"}});
  MustLoad({.set_args = {"cpu.min=50", "cpu.abs=50", "cpu.max=51"}});
  MustLoad({.set_args = {"upload.retry_initial=5m", "upload.retry_max=5m"}});
}

TEST(LoadConfigErrorsTest, EnvironmentErrors) {
  EXPECT_THAT(Errors({.env = {"SLEUTH_CPU_ABSS=5", "SLEUTH_CPU_ABS=high", "SLEUTH_CONFG=/x",
                              "SLEUTH_UPLOAD_SINKS_B_URL=http://h"}}),
              ElementsAre("environment variable SLEUTH_CPU_ABSS: not a sleuth option; did you "
                          "mean SLEUTH_CPU_ABS?",
                          "environment variable SLEUTH_CPU_ABS: cpu.abs: expected a percent from "
                          "0 to 100, got \"high\"; e.g. SLEUTH_CPU_ABS=70",
                          "environment variable SLEUTH_CONFG: not a sleuth option; did you mean "
                          "SLEUTH_CONFIG?",
                          HasSubstr("(named sinks are set in the config file or with --set "
                                    "upload.sinks.NAME.KEY)")));
  EXPECT_THAT(Errors({.env = {"SLEUTH_AGENT_INTERVAL=10"}}),
              ElementsAre(HasSubstr("e.g. SLEUTH_AGENT_INTERVAL=5s")));
}

TEST(LoadConfigErrorsTest, SetErrors) {
  EXPECT_THAT(
      Errors({.set_args = {"cpu.abs", "cpu.abss=5", "cpu.abs=", "upload.sinks.b.urll=x",
                           "upload.sinks.default.url=http://h", "upload.sinks.url=http://h",
                           "upload.sinks.b.timeout=1s", "agent.interval=3"}}),
      ElementsAre("--set cpu.abs: expected section.key=value, e.g. --set cpu.abs=50",
                  "--set cpu.abss: unknown key; did you mean cpu.abs?",
                  "--set cpu.abs: expected a percent from 0 to 100, got \"\"; e.g. --set "
                  "cpu.abs=70",
                  "--set upload.sinks.b.urll: unknown key for a sink; did you mean "
                  "upload.sinks.b.url?",
                  HasSubstr("--set upload.sinks.default.url: expected upload.sinks.NAME.KEY"),
                  HasSubstr("--set upload.sinks.url: expected upload.sinks.NAME.KEY"),
                  "--set upload.sinks.b.timeout: upload.timeout applies to every sink: set it "
                  "under [upload]",
                  StartsWith("--set agent.interval: invalid duration \"3\": a unit is "
                             "missing")));
}

TEST(LoadConfigErrorsTest, MissingFileNamesWhoNamedIt) {
  EXPECT_THAT(Errors({.file_path = "/nonexistent/sleuth.toml"}),
              ElementsAre(StartsWith("config file /nonexistent/sleuth.toml (named by --config) "
                                     "cannot be read: ")));
  EXPECT_THAT(Errors({.env = {"SLEUTH_CONFIG=/nonexistent/sleuth.toml"}}),
              ElementsAre(HasSubstr("(named by SLEUTH_CONFIG)")));
}

// One message holds the problems of every source, file first, so a user
// fixes them in one go; the valid values around them change nothing.
TEST(LoadConfigErrorsTest, ProblemsOfAllSourcesAreCollected) {
  std::vector<std::string> errors = Errors({.file_path = Fixture("unknown_key.toml"),
                                            .env = {"SLEUTH_CPU_ABSS=1", "SLEUTH_CPU_MIN=20"},
                                            .set_args = {"cpu.nope=1", "cpu.abs=15"}});
  ASSERT_EQ(errors.size(), 6u);
  EXPECT_THAT(errors[0], HasSubstr("cpu.abss"));
  EXPECT_THAT(errors[2], HasSubstr("[cpuu]"));
  EXPECT_THAT(errors[3], StartsWith("environment variable SLEUTH_CPU_ABSS"));
  EXPECT_THAT(errors[4], StartsWith("--set cpu.nope"));
  EXPECT_THAT(errors[5], StartsWith("cpu.abs = 15 (--set cpu.abs) is below cpu.min = 20"));
}

TEST(LoadConfigTest, EnvironFromProcessCopiesTheEnvironment) {
  ASSERT_EQ(::setenv("SLEUTH_TEST_MARKER_VARIABLE", "v=1", 1), 0);
  std::vector<std::string> env = EnvironFromProcess();
  ::unsetenv("SLEUTH_TEST_MARKER_VARIABLE");
  EXPECT_THAT(env, testing::Contains("SLEUTH_TEST_MARKER_VARIABLE=v=1"));
}

}  // namespace
}  // namespace sleuth::config
