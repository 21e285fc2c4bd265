// Validation means what it says: every option's bounds come from its row,
// each value the agent could not use is refused with a short message that
// names the option, and oversized input is refused before it is parsed.
// The reproductions of issue 7 ("`config check` passes what then fails or
// misbehaves at run time") come first; then the bounds of every row.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "option_value.h"
#include "sleuth/common/files.h"
#include "sleuth/common/units.h"
#include "sleuth/config/load.h"
#include "sleuth/config/option_table.h"

namespace sleuth::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Nothing a test of invalid input gets back may be longer than this: the
// option, a prefix of the value, the bound, why, and an example fit in it.
constexpr size_t kShortMessageBytes = 300;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sleuth_bounds.XXXXXX");
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
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The error of a load that must fail ("" if it loaded).
std::string ErrorOf(const ConfigSources& sources) {
  Result<Config> config = LoadConfig(sources);
  EXPECT_FALSE(config.ok()) << "loaded without error";
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  return config.status().message();
}

std::string ErrorOfSet(const std::string& arg) {
  return ErrorOf({.set_args = {arg}});
}

// ------------------------------------------------ the reproductions

TEST(IssueReproductionTest, SinkNameOver64CharactersIsRefused) {
  std::string name(65, 's');
  std::string error = ErrorOfSet("upload.sinks." + name + ".url=http://127.0.0.1:4040");
  EXPECT_THAT(error, HasSubstr("1 to 64"));
  TempDir dir;
  std::string file =
      dir.Write("c.toml", "[upload.sinks." + name + "]\nurl = \"http://127.0.0.1:4040\"\n");
  error = ErrorOf({.file_path = file});
  EXPECT_THAT(error, HasSubstr("upload.sinks."));
  EXPECT_THAT(error, HasSubstr("1 to 64"));
  // 64 is fine, as the uploader's CheckSinkName allows.
  EXPECT_TRUE(LoadConfig({.set_args = {"upload.sinks." + std::string(64, 's') +
                                       ".url=http://127.0.0.1:4040"}})
                  .ok());
  // The uploader also wants a letter or digit first.
  EXPECT_THAT(ErrorOfSet("upload.sinks.-x.url=http://127.0.0.1:4040"),
              HasSubstr("starting with a letter or digit"));
}

TEST(IssueReproductionTest, LongServiceNameIsRefusedWithoutEchoingIt) {
  std::string service(300, 'x');
  std::string error = ErrorOf({.env = {"SLEUTH_AGENT_SERVICE=" + service}});
  EXPECT_THAT(error, StartsWith("environment variable SLEUTH_AGENT_SERVICE: agent.service"));
  EXPECT_THAT(error, HasSubstr("300 bytes long: at most 64"));
  EXPECT_THAT(error, Not(HasSubstr(std::string(100, 'x'))));
  EXPECT_LT(error.size(), kShortMessageBytes) << error;
  // A name goes into file names: no '/'.
  EXPECT_THAT(ErrorOfSet("agent.service=a/b"), HasSubstr("letters, digits"));
}

TEST(IssueReproductionTest, NanosecondIntervalIsRefused) {
  std::string error = ErrorOf({.env = {"SLEUTH_AGENT_INTERVAL=1ns"}});
  EXPECT_THAT(error, HasSubstr("agent.interval: 1ns is out of range: it must be at least 100ms"));
  EXPECT_THAT(error, HasSubstr("e.g. SLEUTH_AGENT_INTERVAL=5s"));
  EXPECT_TRUE(LoadConfig({.env = {"SLEUTH_AGENT_INTERVAL=100ms"}}).ok());
}

TEST(IssueReproductionTest, NanosecondUploadTimeoutIsRefused) {
  EXPECT_THAT(ErrorOfSet("upload.timeout=1ns"),
              HasSubstr("--set upload.timeout: 1ns is out of range: it must be at least 100ms"));
}

TEST(IssueReproductionTest, ListenAddressMustBeValid) {
  EXPECT_THAT(ErrorOfSet("metrics.listen=256.0.0.1:80"),
              HasSubstr("metrics.listen: expected a host:port string, got \"256.0.0.1:80\" "
                        "(not a valid IPv4 address"));
  EXPECT_THAT(ErrorOfSet("metrics.listen=127.0.0.1:0"), HasSubstr("1 to 65535"));
  EXPECT_THAT(ErrorOfSet("watch.listen=[::g]:80"), HasSubstr("IPv6"));
  EXPECT_THAT(ErrorOfSet("watch.listen=-bad-.example:80"), HasSubstr("the host must be a name"));
  EXPECT_TRUE(LoadConfig({.set_args = {"metrics.listen=[::1]:9464",
                                       "watch.listen=metrics.example.com:9465"}})
                  .ok());
}

TEST(IssueReproductionTest, RelativeDumpDirIsRefused) {
  std::string error = ErrorOf({.env = {"SLEUTH_AGENT_DUMP_DIR=../../etc"}});
  EXPECT_THAT(error, HasSubstr("agent.dump_dir"));
  EXPECT_THAT(error, HasSubstr("absolute path"));
  EXPECT_THAT(ErrorOfSet("agent.dump_dir=/var/tmp/../../etc"), HasSubstr(".. components"));
  EXPECT_THAT(ErrorOfSet("agent.log_file=sleuth.log"), HasSubstr("absolute path"));
  EXPECT_THAT(ErrorOfSet("upload.ca_file=ca.pem"), HasSubstr("absolute path"));
}

// A 10 MB unknown key, through every source: refused with a short message
// that shows at most a prefix of it. (How fast is measured by hand; tests
// assert no times.)
TEST(IssueReproductionTest, HugeUnknownKeyIsRefusedShortly) {
  const std::string huge(10 << 20, 'k');
  TempDir dir;
  std::string file = dir.Write("huge.toml", "[agent]\n" + huge + " = 1\n");
  for (const ConfigSources& sources :
       {ConfigSources{.file_path = file}, ConfigSources{.env = {"SLEUTH_CONFIG=" + file}},
        ConfigSources{.env = {"SLEUTH_" + huge + "=1"}},
        ConfigSources{.env = {"SLEUTH_AGENT_SERVICE=" + huge}},
        ConfigSources{.set_args = {"agent." + huge + "=1"}},
        ConfigSources{.set_args = {"agent.service=" + huge}}, ConfigSources{.set_args = {huge}}}) {
    std::string error = ErrorOf(sources);
    EXPECT_LT(error.size(), kShortMessageBytes) << error.substr(0, 1000);
    EXPECT_THAT(error, Not(HasSubstr(std::string(kShownBytes + 1, 'k'))));
  }
  EXPECT_THAT(ErrorOf({.file_path = file}),
              HasSubstr("10485773 bytes, more than the 1MiB a config file may hold"));
  EXPECT_THAT(ErrorOf({.env = {"SLEUTH_" + huge + "=1"}}), HasSubstr("no sleuth option"));
  EXPECT_THAT(ErrorOfSet("agent.service=" + huge), HasSubstr("more than the 4KiB"));
}

// Under the file limit, an unknown key of most of a megabyte still gets a
// short message (its start, its length) and no "did you mean".
TEST(IssueReproductionTest, LongUnknownKeyInsideTheFileLimitIsShownByItsStart) {
  TempDir dir;
  std::string file = dir.Write("long.toml", "[agent]\n" + std::string(900 << 10, 'q') + " = 1\n");
  std::string error = ErrorOf({.file_path = file});
  EXPECT_LT(error.size(), kShortMessageBytes) << error.substr(0, 1000);
  EXPECT_THAT(error, HasSubstr("unknown key"));
  EXPECT_THAT(error, HasSubstr("(921606 bytes)"));
  EXPECT_THAT(error, Not(HasSubstr("did you mean")));
}

TEST(IssueReproductionTest, MillionsOfLabelsAreRefused) {
  std::string labels;
  for (int i = 0; i < 1200000; ++i) labels += "l" + std::to_string(i) + "=v,";
  std::string error = ErrorOf({.env = {"SLEUTH_AGENT_LABELS=" + labels}});
  EXPECT_LT(error.size(), kShortMessageBytes) << error.substr(0, 1000);
  EXPECT_THAT(error, HasSubstr("SLEUTH_AGENT_LABELS"));

  // In the file, as a table: as many as fit in 1 MiB are counted, not kept.
  std::string table = "[agent.labels]\n";
  for (int i = 0; table.size() < kMaxConfigFileBytes - 32; ++i)
    table += "l" + std::to_string(i) + " = \"v\"\n";
  TempDir dir;
  error = ErrorOf({.file_path = dir.Write("labels.toml", table)});
  EXPECT_LT(error.size(), kShortMessageBytes) << error.substr(0, 1000);
  EXPECT_THAT(error, HasSubstr("agent.labels: "));
  EXPECT_THAT(error, HasSubstr("entries are too many: at most 20"));

  // As text within the value limit.
  std::string text;
  for (int i = 0; i < 21; ++i) text += "l" + std::to_string(i) + "=v,";
  EXPECT_THAT(ErrorOfSet("agent.labels=" + text), HasSubstr("at most 20"));
}

// ------------------------------------------------ other run-time failures

TEST(ValidationTest, LabelsSleuthSetsItselfAreRefused) {
  for (const char* name : {"service_name", "hostname", "pid", "sleuth_kind", "__name__"})
    EXPECT_THAT(ErrorOfSet(std::string("agent.labels=") + name + "=x"),
                HasSubstr("set by sleuth itself"))
        << name;
}

TEST(ValidationTest, PasswordFileNeedsAUserName) {
  EXPECT_THAT(ErrorOf({.set_args = {"upload.url=http://127.0.0.1:4040",
                                    "upload.password_file=/run/secrets/p"}}),
              HasSubstr("upload.password_file is set (--set upload.password_file) but "
                        "upload.username is not"));
}

TEST(ValidationTest, UrlHostAndPortAreChecked) {
  EXPECT_THAT(ErrorOfSet("upload.url=http://256.1.1.1:4040"), HasSubstr("IPv4"));
  EXPECT_THAT(ErrorOfSet("upload.url=http://host:0/x"), HasSubstr("1 to 65535"));
  EXPECT_THAT(ErrorOfSet("upload.url=http://:80"), HasSubstr("host is missing"));
  EXPECT_TRUE(LoadConfig({.set_args = {"upload.url=https://[::1]:4040/p?q"}}).ok());
}

TEST(ValidationTest, ConfigFileThatIsNotARegularFileIsRefusedWithoutBlocking) {
  TempDir dir;
  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(ErrorOf({.file_path = fifo}), HasSubstr("not a regular file"));
  EXPECT_THAT(ErrorOf({.file_path = dir.path()}), HasSubstr("not a regular file"));
}

TEST(ValidationTest, ManyProblemsAreCountedNotAllListed) {
  std::string text = "[agent]\n";
  for (int i = 0; i < 5000; ++i) text += "unknown_" + std::to_string(i) + " = 1\n";
  TempDir dir;
  std::string error = ErrorOf({.file_path = dir.Write("many.toml", text)});
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), static_cast<long>(kMaxProblems));
  EXPECT_THAT(error,
              HasSubstr("... and " + std::to_string(5000 - kMaxProblems) + " more problems"));
}

TEST(ValidationTest, ControlCharactersAreNotEchoed) {
  std::string error = ErrorOfSet("agent.service=a\nFAKE LOG LINE");
  EXPECT_THAT(error, Not(HasSubstr("\n")));
  EXPECT_THAT(error, HasSubstr("control character"));
}

// ------------------------------------------------ every row's bounds

bool IsStringType(OptionType type) {
  return type == OptionType::kString || type == OptionType::kAddress || type == OptionType::kUrl;
}

// Every option the type alone does not bound declares bounds, and says why.
TEST(BoundsTableTest, EveryOptionIsBoundedAndSaysWhy) {
  for (const Option& option : Options()) {
    SCOPED_TRACE(std::string(option.key));
    if (option.type == OptionType::kBool || option.type == OptionType::kEnum) continue;
    EXPECT_FALSE(option.bounds_why.empty());
    EXPECT_FALSE(BoundsText(option).empty());
    if (IsStringType(option.type)) {
      EXPECT_GT(option.max_length, 0u);
      EXPECT_LE(option.max_length, kMaxValueBytes);
    } else if (option.type == OptionType::kStringMap) {
      EXPECT_GT(option.max_entries, 0u);
      EXPECT_GT(option.max_key_length, 0u);
      EXPECT_GT(option.max_value_length, 0u);
    } else {
      EXPECT_FALSE(option.at_least.empty());
      EXPECT_FALSE(option.at_most.empty());
    }
  }
}

// The smallest step below or above a bound, in the option's own syntax.
std::string Step(const Option& option, std::string_view bound, int direction) {
  Value value = *ParseOptionText(option, bound);
  if (auto* i = std::get_if<int>(&value)) return std::to_string(*i + direction);
  if (auto* d = std::get_if<double>(&value)) return FormatNumber(*d + direction * 0.5);
  if (auto* n = std::get_if<Nanos>(&value)) {
    if (n->count() == 0 && direction < 0) return "-1ns";
    return FormatDuration(*n + Nanos(direction));
  }
  if (auto* u = std::get_if<uint64_t>(&value)) {
    if (*u == 0 && direction < 0) return "-1";
    return std::to_string(*u + direction);
  }
  ADD_FAILURE() << "no step for " << option.key;
  return "";
}

// Each bounded number: its bounds pass; one step outside fails, and the
// message names the option and the bound.
TEST(BoundsTableTest, NumericBoundsPassAndOneStepBeyondFails) {
  for (const Option& option : Options()) {
    if (option.at_least.empty() && option.at_most.empty()) continue;
    SCOPED_TRACE(std::string(option.key));
    const std::string key(option.key);
    const std::string prefix = option.per_sink() ? "upload.url=http://127.0.0.1:1" : "";
    auto load = [&](const std::string& text) {
      ConfigSources sources{.set_args = {key + "=" + text}};
      if (!prefix.empty()) sources.set_args.insert(sources.set_args.begin(), prefix);
      return LoadConfig(sources);
    };
    for (auto [bound, direction, word] :
         {std::tuple{option.at_least, -1, "at least"}, std::tuple{option.at_most, +1, "at most"}}) {
      if (bound.empty()) continue;
      // A bound may break a cross-option rule (cpu.min = 100 is above
      // cpu.abs): only the row's own check is asked about here.
      Result<Value> at_bound = ParseOptionText(option, bound);
      EXPECT_TRUE(at_bound.ok()) << bound << ": " << at_bound.status().message();
      std::string beyond = Step(option, bound, direction);
      Result<Config> loaded = load(beyond);
      ASSERT_FALSE(loaded.ok()) << key << "=" << beyond << " was accepted";
      const std::string& message = loaded.status().message();
      EXPECT_THAT(message, StartsWith("--set " + key + ": ")) << message;
      if (!beyond.starts_with('-')) {
        EXPECT_THAT(message, HasSubstr(std::string(word) + " " + std::string(bound)));
      }
      EXPECT_THAT(message, HasSubstr("e.g. --set " + key + "="));
    }
    // The default is inside.
    EXPECT_TRUE(ParseOptionText(option, option.default_text).ok());
  }
}

// A valid text of exactly `length` bytes for a string row.
std::string TextOfLength(const Option& option, size_t length) {
  switch (option.type) {
    case OptionType::kUrl:
      return "http://h/" + std::string(length - 9, 'p');
    case OptionType::kAddress: {
      // A DNS name of labels of 63 bytes at most, then a port.
      std::string port = ":65535";
      std::string host;
      while (host.size() < length - port.size()) {
        size_t left = length - port.size() - host.size();
        if (!host.empty()) {
          host += '.';
          --left;
        }
        host += std::string(std::min<size_t>(left, 63), 'h');
      }
      return host + port;
    }
    default:
      break;
  }
  if (option.form == TextForm::kAbsolutePath) return "/" + std::string(length - 1, 'p');
  return std::string(length, 'n');
}

TEST(BoundsTableTest, StringLengthBoundsPassAndOneByteMoreFails) {
  for (const Option& option : Options()) {
    if (!IsStringType(option.type)) continue;
    SCOPED_TRACE(std::string(option.key));
    const std::string key(option.key);
    std::string longest = TextOfLength(option, option.max_length);
    ASSERT_EQ(longest.size(), option.max_length);
    Result<Value> value = ParseOptionText(option, longest);
    EXPECT_TRUE(value.ok()) << value.status().message();
    std::string too_long = TextOfLength(option, option.max_length + 1);
    Result<Config> loaded = LoadConfig({.set_args = {key + "=" + too_long}});
    ASSERT_FALSE(loaded.ok());
    const std::string& message = loaded.status().message();
    EXPECT_THAT(message, StartsWith("--set " + key + ": "));
    EXPECT_THAT(message, HasSubstr("at most " + std::to_string(option.max_length)));
    EXPECT_LT(message.size(), 2 * kShortMessageBytes) << message;
  }
}

TEST(BoundsTableTest, TableBoundsPassAndOneMoreFails) {
  for (const Option& option : Options()) {
    if (option.type != OptionType::kStringMap) continue;
    SCOPED_TRACE(std::string(option.key));
    const std::string key(option.key);
    auto name = [&](size_t i, size_t length) {
      std::string n = "n" + std::to_string(i);
      return n + std::string(length - n.size(), 'x');
    };
    auto entries = [&](size_t count, size_t key_length, size_t value_length) {
      std::string text;
      for (size_t i = 0; i < count; ++i)
        text += name(i, key_length) + "=" + std::string(value_length, 'v') + ",";
      return text;
    };
    EXPECT_TRUE(ParseOptionText(option, entries(option.max_entries, 8, 1)).ok());
    EXPECT_TRUE(ParseOptionText(option, entries(1, option.max_key_length, 1)).ok());
    EXPECT_TRUE(ParseOptionText(option, entries(1, 8, option.max_value_length)).ok());
    for (const std::string& text :
         {entries(option.max_entries + 1, 8, 1), entries(1, option.max_key_length + 1, 1),
          entries(1, 8, option.max_value_length + 1)}) {
      Result<Config> loaded = LoadConfig({.set_args = {key + "=" + text}});
      ASSERT_FALSE(loaded.ok());
      EXPECT_THAT(loaded.status().message(), StartsWith("--set " + key + ": "));
      EXPECT_THAT(loaded.status().message(), HasSubstr("at most"));
    }
  }
}

// What the reference prints for a few rows, so the words stay readable.
TEST(BoundsTableTest, BoundsText) {
  EXPECT_EQ(BoundsText(*FindOption("agent.interval")), "100ms to 1h");
  EXPECT_EQ(BoundsText(*FindOption("agent.warmup")), "0 to 1000, or history");
  EXPECT_EQ(BoundsText(*FindOption("agent.service")),
            "A-Z a-z 0-9 . _ -, starting with a letter or digit, at most 64 bytes; or empty");
  EXPECT_EQ(BoundsText(*FindOption("agent.dump_dir")),
            "an absolute path without . or .. components, at most 1024 bytes; or empty");
  EXPECT_EQ(BoundsText(*FindOption("agent.follow_fork")), "");
}

}  // namespace
}  // namespace sleuth::config
