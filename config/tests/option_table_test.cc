#include "sleuth/config/option_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "option_value.h"

namespace sleuth::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The FieldRef alternative each type must bind to.
size_t FieldIndexFor(OptionType type) {
  switch (type) {
    case OptionType::kBool:
      return 0;
    case OptionType::kInt:
      return 1;
    case OptionType::kNumber:
    case OptionType::kPercent:
      return 2;
    case OptionType::kDuration:
      return 3;
    case OptionType::kSize:
      return 4;
    case OptionType::kString:
    case OptionType::kEnum:
    case OptionType::kAddress:
    case OptionType::kUrl:
      return 5;
    case OptionType::kStringMap:
      return 6;
  }
  return 99;
}

TEST(OptionTableTest, EveryRowIsWellFormed) {
  std::set<std::string_view> keys;
  std::set<std::string_view> sections;
  for (const Section& section : Sections()) sections.insert(section.name);
  for (const Option& option : Options()) {
    SCOPED_TRACE(std::string(option.key));
    EXPECT_TRUE(keys.insert(option.key).second) << "duplicate key";
    EXPECT_EQ(std::count(option.key.begin(), option.key.end(), '.'), 1);
    EXPECT_TRUE(sections.contains(option.section())) << "section not in Sections()";
    EXPECT_FALSE(option.doc.empty());
    EXPECT_FALSE(option.why.empty());
    EXPECT_EQ(option.doc.find('\n'), std::string_view::npos);
    EXPECT_EQ(option.why.find('\n'), std::string_view::npos);
    EXPECT_NE(option.config_field == nullptr, option.sink_field == nullptr)
        << "exactly one accessor";
    if (option.per_sink()) {
      EXPECT_EQ(option.section(), "upload");
    }
    Config config;
    SinkConfig sink;
    EXPECT_EQ(FieldOf(option, config, sink).index(), FieldIndexFor(option.type))
        << "the type does not match the field it binds";
    EXPECT_FALSE(ExampleText(option).empty()) << "needs an example for error messages";
    EXPECT_TRUE(ParseOptionText(option, ExampleText(option)).ok());
    if (option.type == OptionType::kEnum) {
      EXPECT_FALSE(option.allowed.empty());
      EXPECT_NE(std::find(option.allowed.begin(), option.allowed.end(), option.default_text),
                option.allowed.end());
    }
    if (!option.at_least.empty()) {
      EXPECT_TRUE(ParseOptionText(option, option.at_least).ok());
    }
    if (!option.at_most.empty()) {
      EXPECT_TRUE(ParseOptionText(option, option.at_most).ok());
    }
  }
}

TEST(OptionTableTest, EverySectionHasOptionsAndDoc) {
  for (const Section& section : Sections()) {
    EXPECT_FALSE(section.doc.empty()) << section.name;
    EXPECT_TRUE(std::any_of(Options().begin(), Options().end(), [&](const Option& o) {
      return o.section() == section.name;
    })) << section.name;
  }
}

// Config{} is "nothing set": each default member initializer must equal the
// table's default text, row by row.
TEST(OptionTableTest, DefaultTextsEqualConfigDefaults) {
  Config from_table;
  SinkConfig sink_from_table;
  for (const Option& option : Options()) {
    SCOPED_TRACE(std::string(option.key));
    Result<Value> value = ParseOptionText(option, option.default_text);
    ASSERT_TRUE(value.ok()) << value.status().message();
    Config defaults;
    SinkConfig default_sink;
    EXPECT_EQ(*value, ReadField(FieldOf(option, defaults, default_sink)))
        << "default_text " << option.default_text << " differs from config.h";
    ASSERT_TRUE(WriteField(FieldOf(option, from_table, sink_from_table), *value).ok());
  }
  EXPECT_EQ(from_table, Config{});
  EXPECT_EQ(sink_from_table, SinkConfig{});
}

// A value that differs from the row's default.
Value OtherValue(const Option& option) {
  Value value = *ParseOptionText(option, option.default_text);
  if (auto* b = std::get_if<bool>(&value)) return !*b;
  if (auto* i = std::get_if<int>(&value)) return *i + 1;
  if (auto* d = std::get_if<double>(&value)) return *d + 1;
  if (auto* n = std::get_if<Nanos>(&value)) return *n + std::chrono::seconds(1);
  if (auto* u = std::get_if<uint64_t>(&value)) return *u + 1;
  if (option.type == OptionType::kEnum)
    return std::string(option.allowed[0] == option.default_text ? option.allowed[1]
                                                                : option.allowed[0]);
  if (option.example.empty()) return std::string(option.default_text) + "2";
  return *ParseOptionText(option, option.example);
}

// Each row writes its own field and no other row's.
TEST(OptionTableTest, EveryRowBindsItsOwnField) {
  for (const Option& option : Options()) {
    SCOPED_TRACE(std::string(option.key));
    Config config;
    SinkConfig sink;
    Value other = OtherValue(option);
    ASSERT_TRUE(WriteField(FieldOf(option, config, sink), other).ok());
    EXPECT_EQ(ReadField(FieldOf(option, config, sink)), other);
    EXPECT_TRUE(config != Config{} || sink != SinkConfig{});
    for (const Option& rest : Options()) {
      if (&rest == &option) continue;
      Config defaults;
      SinkConfig default_sink;
      EXPECT_EQ(ReadField(FieldOf(rest, config, sink)),
                ReadField(FieldOf(rest, defaults, default_sink)))
          << rest.key << " changed too";
    }
  }
}

TEST(OptionTableTest, PerSinkRowsAreTheSinkKeys) {
  std::set<std::string_view> per_sink;
  for (const Option& option : Options())
    if (option.per_sink()) per_sink.insert(option.name());
  EXPECT_EQ(per_sink, (std::set<std::string_view>{
                          "url", "protocol", "username", "password_file", "token_file", "tenant_id",
                          "headers", "ca_file", "cert_file", "key_file", "insecure_skip_verify"}));
}

TEST(OptionTableTest, ConstraintsNameComparableOptions) {
  for (const Constraint& constraint : Constraints()) {
    SCOPED_TRACE(std::string(constraint.first) + " / " + std::string(constraint.second));
    const Option* first = FindOption(constraint.first);
    const Option* second = FindOption(constraint.second);
    ASSERT_NE(first, nullptr);
    ASSERT_NE(second, nullptr);
    EXPECT_EQ(first->per_sink(), second->per_sink());
    Config config;
    SinkConfig sink;
    EXPECT_EQ(FieldOf(*first, config, sink).index(), FieldOf(*second, config, sink).index());
    EXPECT_FALSE(constraint.why.empty());
  }
}

TEST(OptionTableTest, EnvVarNames) {
  EXPECT_EQ(EnvVarName(*FindOption("agent.dump_dir")), "SLEUTH_AGENT_DUMP_DIR");
  EXPECT_EQ(EnvVarName(*FindOption("cpu.abs")), "SLEUTH_CPU_ABS");
  EXPECT_EQ(EnvVarName(*FindOption("upload.url")), "SLEUTH_UPLOAD_URL");
  EXPECT_EQ(FindOption("cpu.nope"), nullptr);
  std::set<std::string> names;
  for (const Option& option : Options()) EXPECT_TRUE(names.insert(EnvVarName(option)).second);
  for (const EnvVar& var : NonOptionEnvVars()) {
    EXPECT_FALSE(names.contains(std::string(var.name))) << var.name << " shadows an option";
    EXPECT_FALSE(var.doc.empty());
  }
}

struct TextCase {
  std::string_view key;
  std::string_view text;
  // The value printed back by FormatOptionText, or, when `error` is set, a
  // part of the error message.
  std::string_view want;
  bool error = false;
};

class ParseTextTest : public ::testing::TestWithParam<TextCase> {};

TEST_P(ParseTextTest, ParsesOrExplains) {
  const TextCase& c = GetParam();
  const Option* option = FindOption(c.key);
  ASSERT_NE(option, nullptr);
  Result<Value> value = ParseOptionText(*option, c.text);
  if (c.error) {
    ASSERT_FALSE(value.ok()) << "parsed as " << FormatOptionText(*option, *value);
    EXPECT_THAT(value.status().message(), HasSubstr(std::string(c.want)));
    return;
  }
  ASSERT_TRUE(value.ok()) << value.status().message();
  EXPECT_EQ(FormatOptionText(*option, *value), c.want);
  // What is printed parses back to the same value.
  Result<Value> again = ParseOptionText(*option, FormatOptionText(*option, *value));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(*again, *value);
}

INSTANTIATE_TEST_SUITE_P(
    Values, ParseTextTest,
    ::testing::Values(
        // durations, every unit (cpu.cooldown goes down to 0)
        TextCase{"agent.interval", "250ms", "250ms"}, TextCase{"cpu.cooldown", "1500us", "1500us"},
        TextCase{"cpu.cooldown", "10ns", "10ns"}, TextCase{"agent.interval", "90s", "90s"},
        TextCase{"agent.interval", "1h", "1h"}, TextCase{"cpu.cooldown", "1h30m", "90m"},
        TextCase{"cpu.cooldown", "2h", "2h"},
        TextCase{"agent.interval", "5", "a unit is missing", true},
        TextCase{"agent.interval", "5parsecs", "unknown unit \"parsecs\"", true},
        TextCase{"agent.interval", "5 sec", "invalid duration \"5 sec\"", true},
        TextCase{"agent.interval", "-5s", "negative", true},
        TextCase{"agent.interval", "0s", "must be at least 100ms", true},
        TextCase{"agent.interval", "99ms", "must be at least 100ms", true},
        TextCase{"agent.interval", "61m", "must be at most 1h", true},
        TextCase{"cpu.cooldown", "0s", "0s"}, TextCase{"cpu.cooldown", "0", "0s"},
        // sizes, every unit
        TextCase{"agent.max_dump_bytes", "1048576", "1MiB"},
        TextCase{"heap.sample_bytes", "4096", "4KiB"},
        TextCase{"agent.max_dump_bytes", "1536KiB", "1536KiB"},
        TextCase{"agent.max_dump_bytes", "64MiB", "64MiB"},
        TextCase{"agent.max_dump_bytes", "2GiB", "2GiB"},
        TextCase{"agent.max_dump_bytes", "1TiB", "1TiB"},
        TextCase{"agent.max_dump_bytes", "10MB", "10000000B"},
        TextCase{"heap.sample_bytes", "10KB", "10000B"},
        TextCase{"agent.max_dump_bytes", "1GB", "1000000000B"},
        TextCase{"agent.max_dump_bytes", "1TB", "976562500KiB"},
        TextCase{"agent.max_dump_bytes", "-1", "negative", true},
        TextCase{"agent.max_dump_bytes", "12XB", "unknown unit", true},
        TextCase{"agent.max_dump_bytes", "0", "must be at least 1MiB", true},
        TextCase{"heap.sample_bytes", "0", "must be at least 4KiB", true},
        // percents and numbers
        TextCase{"cpu.abs", "50", "50"}, TextCase{"cpu.abs", "50%", "50"},
        TextCase{"cpu.abs", "12.5", "12.5"}, TextCase{"cpu.abs", "100", "100"},
        TextCase{"cpu.abs", "101", "must be at most 100", true},
        TextCase{"cpu.abs", "-1", "must be at least 0", true},
        TextCase{"cpu.abs", "high", "expected a percent from 0 to 100", true},
        TextCase{"cpu.abs", "nan", "expected a percent", true},
        TextCase{"memory.max", "inf", "expected a percent", true},
        TextCase{"heap.abs", "100.5", "at most 100", true},
        TextCase{"agent.cpu_max", "101", "at most 100", true}, TextCase{"cpu.diff", "300", "300"},
        TextCase{"cpu.diff", "-5", "at least 0", true}, TextCase{"threads.abs", "5000", "5000"},
        TextCase{"threads.min", "-1", "at least 0", true},
        // integers
        TextCase{"agent.history", "1", "1"}, TextCase{"agent.history", "0", "at least 1", true},
        TextCase{"agent.history", "1.5", "expected a whole number", true},
        TextCase{"agent.history", "99999999999", "too large", true},
        TextCase{"agent.warmup", "history", "history"}, TextCase{"agent.warmup", "0", "0"},
        TextCase{"agent.warmup", "3", "3"},
        TextCase{"agent.warmup", "-1", "must be at least 0", true},
        TextCase{"agent.warmup", "hist", "a whole number or \"history\"", true},
        TextCase{"cpu.profile_hz", "1", "1"}, TextCase{"cpu.profile_hz", "1000", "1000"},
        TextCase{"cpu.profile_hz", "0", "at least 1", true},
        TextCase{"cpu.profile_hz", "1001", "at most 1000", true},
        TextCase{"upload.concurrency", "0", "at least 1", true},
        TextCase{"agent.max_dumps", "0", "at least 1", true},
        // booleans
        TextCase{"agent.follow_fork", "true", "true"}, TextCase{"agent.follow_fork", "YES", "true"},
        TextCase{"agent.follow_fork", "on", "true"}, TextCase{"agent.follow_fork", "0", "false"},
        TextCase{"agent.follow_fork", "off", "false"},
        TextCase{"agent.follow_fork", "maybe", "expected true or false", true},
        // enums, every value
        TextCase{"agent.log_level", "debug", "debug"}, TextCase{"agent.log_level", "info", "info"},
        TextCase{"agent.log_level", "warn", "warn"}, TextCase{"agent.log_level", "error", "error"},
        TextCase{"agent.log_level", "off", "off"},
        TextCase{"agent.log_level", "verbose", "one of debug, info, warn, error or off", true},
        TextCase{"agent.log_level", "", "one of", true},
        TextCase{"upload.protocol", "pyroscope", "pyroscope"},
        TextCase{"upload.protocol", "pyroscope-ingest", "pyroscope-ingest"},
        TextCase{"upload.protocol", "http", "http"},
        TextCase{"upload.protocol", "grpc", "one of pyroscope, pyroscope-ingest or http", true},
        // strings
        TextCase{"agent.dump_dir", "/x", "/x"}, TextCase{"agent.dump_dir", "", ""},
        TextCase{"agent.dump_dir", "x", "absolute", true}, TextCase{"agent.service", "", ""},
        TextCase{"agent.service", "a\nb", "control character", true},
        // addresses
        TextCase{"metrics.listen", "127.0.0.1:9464", "127.0.0.1:9464"},
        TextCase{"metrics.listen", "[::1]:9464", "[::1]:9464"},
        TextCase{"metrics.listen", "localhost:9464", "localhost:9464"},
        TextCase{"metrics.listen", "localhost:0", "port must be a number from 1 to 65535", true},
        TextCase{"metrics.listen", "", ""}, TextCase{"metrics.listen", "9464", "no :port", true},
        TextCase{"metrics.listen", ":9464", "the host is missing", true},
        TextCase{"watch.listen", "host:99999", "port must be a number from 1 to 65535", true},
        TextCase{"watch.listen", "a b:1", "the host must be", true},
        TextCase{"watch.listen", "[zz]:1", "IPv6", true},
        // URLs
        TextCase{"upload.url", "https://profiles.example.com/p", "https://profiles.example.com/p"},
        TextCase{"upload.url", "http://127.0.0.1:4040", "http://127.0.0.1:4040"},
        TextCase{"upload.url", "", ""},
        TextCase{"upload.url", "ftp://x", "must start with http:// or https://", true},
        TextCase{"upload.url", "http://", "the host is missing", true},
        TextCase{"upload.url", "http://user:pw@host", "must not contain credentials", true},
        TextCase{"upload.url", "http://a b", "space", true},
        // maps
        TextCase{"agent.labels", "team=a, env=prod", "env=prod,team=a"},
        TextCase{"agent.labels", "note=a\\,b", "note=a\\,b"},
        TextCase{"agent.labels", "path=a=b", "path=a=b"}, TextCase{"agent.labels", "", ""},
        TextCase{"agent.labels", "a=1,", "a=1"},
        TextCase{"agent.labels", "noequals", "entry 1 has no '='", true},
        TextCase{"agent.labels", "a=1,a=2", "given twice", true},
        TextCase{"agent.labels", "1x=y", "label name \"1x\" is not valid", true},
        TextCase{"agent.labels", "my-label=y", "label name \"my-label\" is not valid", true},
        TextCase{"upload.headers", "X-Api-Key=abc", "X-Api-Key=abc"},
        TextCase{"upload.headers", "Bad Header=x", "header name \"Bad Header\" is not valid",
                 true}));

TEST(ParseTextTest, SecretValuesAreNotEchoed) {
  const Option& headers = *FindOption("upload.headers");
  Result<Value> value = ParseOptionText(headers, "X-Api-Key=s3cr3t,broken");
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("entry 2 has no '='"));
  EXPECT_THAT(value.status().message(), Not(HasSubstr("s3cr3t")));
  value = ParseOptionText(headers, "X-Api-Key=s3cr3t\nInjected: 1");
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("control character"));
  EXPECT_THAT(value.status().message(), Not(HasSubstr("s3cr3t")));
}

TEST(RawValueTest, NativeTomlKindsAcceptedOrRefused) {
  using K = RawValue::Kind;
  struct Case {
    std::string_view key;
    RawValue raw;
    std::string_view want;  // formatted value, or part of the error
    bool error;
  };
  const Case cases[] = {
      {"cpu.abs", {K::kInteger, "70"}, "70", false},
      {"cpu.abs", {K::kFloat, "70.5"}, "70.5", false},
      {"agent.history", {K::kFloat, "2.5"}, "expected a whole number, got the number 2.5", true},
      {"agent.max_dump_bytes", {K::kInteger, "1048576"}, "1MiB", false},
      {"agent.max_dump_bytes", {K::kFloat, "1.5"}, "expected a size", true},
      {"agent.interval", {K::kInteger, "5"}, "a bare number has no unit", true},
      {"agent.interval", {K::kFloat, "0.5"}, "got the number 0.5", true},
      {"agent.follow_fork", {K::kBool, "true"}, "true", false},
      {"agent.follow_fork", {K::kText, "true"}, "true", false},
      {"agent.follow_fork", {K::kInteger, "1"}, "expected true or false, got the integer 1", true},
      {"agent.service", {K::kBool, "true"}, "expected a name, got the boolean true", true},
      {"metrics.listen", {K::kInteger, "9464"}, "expected a host:port string", true},
      {"agent.log_level", {K::kOther, "array"}, "got a TOML array", true},
      {"agent.labels", {K::kTable, "", {{"team", "a"}}}, "team=a", false},
      {"agent.labels", {K::kText, "team=a"}, "team=a", false},
      {"cpu.abs", {K::kTable, "", {}}, "got a table", true},
      {"cpu.abs", {K::kInteger, "150"}, "150 is out of range: it must be at most 100", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.key) + " " + c.raw.text);
    const Option& option = *FindOption(c.key);
    Result<Value> value = ParseRawValue(option, c.raw);
    if (c.error) {
      ASSERT_FALSE(value.ok());
      EXPECT_THAT(value.status().message(), HasSubstr(std::string(c.want)));
    } else {
      ASSERT_TRUE(value.ok()) << value.status().message();
      EXPECT_EQ(FormatOptionText(option, *value), c.want);
    }
  }
}

TEST(FormatTest, TomlValues) {
  auto toml = [](std::string_view key, std::string_view text) {
    const Option& option = *FindOption(key);
    return FormatOptionToml(option, *ParseOptionText(option, text));
  };
  EXPECT_EQ(toml("agent.interval", "5s"), "\"5s\"");
  EXPECT_EQ(toml("agent.history", "10"), "10");
  EXPECT_EQ(toml("agent.warmup", "history"), "\"history\"");
  EXPECT_EQ(toml("cpu.abs", "12.5"), "12.5");
  EXPECT_EQ(toml("agent.follow_fork", "true"), "true");
  EXPECT_EQ(toml("agent.max_dump_bytes", "1GiB"), "\"1GiB\"");
  EXPECT_EQ(toml("agent.labels", ""), "{}");
  EXPECT_EQ(toml("agent.labels", "b=2,a=x\"y"), "{ \"a\" = \"x\\\"y\", \"b\" = \"2\" }");
  EXPECT_EQ(toml("upload.username", "DOMAIN\\user\t1"), "\"DOMAIN\\\\user\\t1\"");
}

}  // namespace
}  // namespace sleuth::config
