// LoadConfig: applies the sources in order through the option table and
// collects every problem instead of stopping at the first, so a user fixes a
// broken config in one go.
#include "sleuth/config/load.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <map>
#include <tuple>

#include "nearest.h"
#include "option_value.h"
#include "sleuth/common/files.h"
#include "sleuth/common/units.h"
#include "sleuth/config/option_table.h"

extern char** environ;

namespace sleuth::config {
namespace {

constexpr std::string_view kSinksPrefix = "upload.sinks.";
constexpr std::string_view kDefaultSink = "default";

// Where a value came from, for error messages.
struct Origin {
  enum class Kind { kDefault, kFile, kEnv, kSet };
  Kind kind = Kind::kDefault;
  std::string where;  // "path:line:column", the variable's name, or the --set key
  uint32_t line = 0;  // kFile only, for ordering errors
  uint32_t column = 0;

  std::string Describe() const {
    switch (kind) {
      case Kind::kDefault:
        return "default";
      case Kind::kFile:
        return where;
      case Kind::kEnv:
        return "environment variable " + where;
      case Kind::kSet:
        return "--set " + where;
    }
    return where;
  }
};

Origin FileOrigin(const std::string& path, const toml::source_region& region) {
  return Origin{.kind = Origin::Kind::kFile,
                .where = path + ":" + std::to_string(region.begin.line) + ":" +
                         std::to_string(region.begin.column),
                .line = region.begin.line,
                .column = region.begin.column};
}

std::string TomlTypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "value";
}

// "an integer", "a string": for "got ..." in messages.
std::string ATomlType(toml::node_type type) {
  std::string name = TomlTypeName(type);
  bool vowel = std::string_view("aeiou").find(name.front()) != std::string_view::npos;
  return (vowel ? "an " : "a ") + name;
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A sink's name is a directory name under .sleuth-upload/ and a label of
// the uploader's metrics; the uploader's CheckSinkName (spool.cc) refuses
// anything else at run time, so the config refuses it first.
constexpr size_t kMaxSinkNameBytes = 64;
constexpr std::string_view kSinkNameRule =
    "a sink name is 1 to 64 letters, digits, _ and -, starting with a letter or digit";

bool IsSinkName(std::string_view name) {
  if (name.empty() || name.size() > kMaxSinkNameBytes ||
      !std::isalnum(static_cast<unsigned char>(name.front())))
    return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

// A key or name as a message shows it: real keys whole, a huge one by its
// start only.
std::string ShortKey(std::string_view key) {
  if (key.size() <= 2 * kShownBytes) return std::string(key);
  return Shown(key);
}

// "; did you mean X?" (with `before` and `after` around X), or nothing
// when no candidate is near enough to say.
std::string DidYouMean(std::string_view word, std::span<const std::string> candidates,
                       std::string_view before = {}, std::string_view after = {}) {
  std::string nearest = NearestKey(word, candidates);
  if (nearest.empty()) return {};
  return "; did you mean " + std::string(before) + nearest + std::string(after) + "?";
}

std::vector<std::string> AllKeys() {
  std::vector<std::string> keys;
  for (const Option& option : Options()) keys.emplace_back(option.key);
  return keys;
}

std::vector<std::string> SinkKeys(std::string_view sink_name) {
  std::vector<std::string> keys;
  for (const Option& option : Options())
    if (option.per_sink())
      keys.push_back(std::string(kSinksPrefix) + std::string(sink_name) + "." +
                     std::string(option.name()));
  return keys;
}

// Why `full_key` (upload.sinks.NAME.KEY) is refused; `option` is the row
// of upload.KEY if there is one.
// `suggestion` is Loader::Suggest's "; did you mean ...?" or empty.
std::string NotASinkKey(const Option* option, const std::string& suggestion) {
  if (option != nullptr)
    return std::string(option->key) + " applies to every sink: set it under [upload]";
  return "unknown key for a sink" + suggestion;
}

class Loader {
 public:
  void ReadFile(const std::string& path, std::string_view named_by);
  void ReadEnv(const std::vector<std::string>& env);
  void ReadSets(const std::vector<std::string>& args);
  Result<Config> Finish();

 private:
  enum Phase { kFilePhase, kEnvPhase, kSetPhase, kCheckPhase };
  struct Problem {
    Phase phase;
    uint32_t line;
    uint32_t column;
    size_t sequence;
    std::string text;
  };

  void WalkSection(const std::string& path, std::string_view section, const toml::table& table);
  void WalkSinks(const std::string& path, const toml::node& sinks);
  void WalkValue(const std::string& path, const Option& option, const std::string& sink_name,
                 const toml::node& node);
  void Apply(const Option& option, const std::string& sink_name, const RawValue& raw,
             const Origin& origin);
  void CheckConstraint(const Constraint& constraint, const std::string& sink_name);

  static std::string FullKey(const Option& option, const std::string& sink_name);
  std::string Example(const Option& option, const std::string& sink_name,
                      const Origin& origin) const;
  SinkConfig& Sink(const std::string& sink_name);
  std::string OriginOf(const std::string& full_key) const;
  void Report(Phase phase, const Origin& origin, std::string_view key, std::string message);
  // DidYouMean while few problems are known: a file of 100000 unknown keys
  // must not cost 100000 searches when only kMaxProblems are shown.
  std::string Suggest(std::string_view word, std::span<const std::string> candidates,
                      std::string_view before = {}, std::string_view after = {}) const {
    if (problems_.size() >= kMaxSuggestions) return {};
    return DidYouMean(word, candidates, before, after);
  }
  static constexpr size_t kMaxSuggestions = kMaxProblems;

  Config config_;
  SinkConfig default_sink_;
  std::map<std::string, SinkConfig> named_sinks_;
  std::map<std::string, Origin> sink_origins_;  // where each named sink was first given
  std::map<std::string, Origin> origins_;       // full key -> where it was last set
  std::vector<Problem> problems_;
};

std::string Loader::FullKey(const Option& option, const std::string& sink_name) {
  if (sink_name.empty()) return std::string(option.key);
  return std::string(kSinksPrefix) + sink_name + "." + std::string(option.name());
}

SinkConfig& Loader::Sink(const std::string& sink_name) {
  if (sink_name.empty()) return default_sink_;
  SinkConfig& sink = named_sinks_[sink_name];
  sink.name = sink_name;
  return sink;
}

std::string Loader::OriginOf(const std::string& full_key) const {
  auto it = origins_.find(full_key);
  return it == origins_.end() ? "default" : it->second.Describe();
}

void Loader::Report(Phase phase, const Origin& origin, std::string_view key, std::string message) {
  std::string text;
  switch (origin.kind) {
    case Origin::Kind::kFile:
      text = origin.where + ": ";
      break;
    case Origin::Kind::kEnv:
      text = "environment variable " + ShortKey(origin.where) + ": ";
      break;
    case Origin::Kind::kSet:
      text = "--set ";
      break;
    case Origin::Kind::kDefault:
      break;
  }
  if (!key.empty()) text += ShortKey(key) + ": ";
  text += message;
  problems_.push_back(
      Problem{phase, origin.line, origin.column, problems_.size(), std::move(text)});
}

std::string Loader::Example(const Option& option, const std::string& sink_name,
                            const Origin& origin) const {
  std::string_view text = ExampleText(option);
  switch (origin.kind) {
    case Origin::Kind::kFile: {
      Result<Value> value = ParseOptionText(option, text);
      return std::string(option.name()) + " = " +
             (value.ok() ? FormatOptionToml(option, *value) : std::string(text));
    }
    case Origin::Kind::kEnv:
      return EnvVarName(option) + "=" + std::string(text);
    case Origin::Kind::kSet:
    case Origin::Kind::kDefault:
      break;
  }
  return "--set " + FullKey(option, sink_name) + "=" + std::string(text);
}

void Loader::Apply(const Option& option, const std::string& sink_name, const RawValue& raw,
                   const Origin& origin) {
  Phase phase = origin.kind == Origin::Kind::kFile  ? kFilePhase
                : origin.kind == Origin::Kind::kEnv ? kEnvPhase
                                                    : kSetPhase;
  std::string key = FullKey(option, sink_name);
  Result<Value> value = ParseRawValue(option, raw);
  if (!value.ok()) {
    Report(phase, origin, key,
           value.status().message() + "; e.g. " + Example(option, sink_name, origin));
    return;
  }
  Status written = WriteField(FieldOf(option, config_, Sink(sink_name)), *value);
  if (!written.ok()) {
    Report(phase, origin, key, written.message());
    return;
  }
  origins_[key] = origin;
}

// The whole of a config file, refused before any of it is parsed if it is
// not a regular file (a FIFO or a terminal would block the host's start) or
// is larger than kMaxConfigFileBytes.
Result<std::string> ReadConfigText(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  SLEUTH_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(path, O_RDONLY | O_NONBLOCK));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("cannot stat it", errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("it is not a regular file");
  auto too_large = [](uint64_t size) {
    return InvalidArgument("it is " + std::to_string(size) + " bytes, more than the " +
                           FormatSize(kMaxConfigFileBytes) +
                           " a config file may hold; is it the right file?");
  };
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigFileBytes) return too_large(st.st_size);
  std::string text(kMaxConfigFileBytes + 1, '\0');
  size_t used = 0;
  while (used < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("cannot read it", errno);
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  // It grew since fstat.
  if (used > kMaxConfigFileBytes) return too_large(used);
  text.resize(used);
  return text;
}

void Loader::ReadFile(const std::string& path, std::string_view named_by) {
  if (path.size() > PATH_MAX) {
    Report(kFilePhase, Origin{}, "",
           "config file path (named by " + std::string(named_by) + ") is " +
               std::to_string(path.size()) + " bytes, longer than PATH_MAX");
    return;
  }
  Result<std::string> text = ReadConfigText(path);
  if (!text.ok()) {
    Report(kFilePhase, Origin{}, "",
           "config file " + path + " (named by " + std::string(named_by) +
               ") cannot be read: " + text.status().message());
    return;
  }
  toml::table root;
  try {
    root = toml::parse(*text, path);
  } catch (const toml::parse_error& error) {
    Origin origin = FileOrigin(path, error.source());
    Report(kFilePhase, origin, "", "not valid TOML: " + std::string(error.description()));
    return;
  }
  std::vector<std::string> section_names;
  for (const Section& section : Sections()) section_names.emplace_back(section.name);
  for (auto&& [key, node] : root) {
    const std::string name(key.str());
    Origin origin = FileOrigin(path, key.source());
    bool known = std::find(section_names.begin(), section_names.end(), name) != section_names.end();
    if (const toml::table* table = node.as_table(); table != nullptr && known) {
      WalkSection(path, name, *table);
    } else if (known) {
      Report(kFilePhase, origin, name,
             "expected a table ([" + name + "]), got " + ATomlType(node.type()));
    } else if (node.is_table()) {
      Report(kFilePhase, origin, "[" + ShortKey(name) + "]",
             "unknown section" + Suggest(name, section_names, "[", "]"));
    } else {
      Report(kFilePhase, origin, name,
             "options belong in a section" + Suggest(name, AllKeys()) +
                 " (write it under its [section] header)");
    }
  }
}

void Loader::WalkSection(const std::string& path, std::string_view section,
                         const toml::table& table) {
  for (auto&& [key, node] : table) {
    std::string full = std::string(section) + "." + std::string(key.str());
    if (full == "upload.sinks") {
      WalkSinks(path, node);
      continue;
    }
    const Option* option = FindOption(full);
    if (option == nullptr) {
      Report(kFilePhase, FileOrigin(path, key.source()), full,
             "unknown key" + Suggest(full, AllKeys()));
      continue;
    }
    WalkValue(path, *option, "", node);
  }
}

void Loader::WalkSinks(const std::string& path, const toml::node& sinks) {
  const toml::table* table = sinks.as_table();
  if (table == nullptr) {
    Report(kFilePhase, FileOrigin(path, sinks.source()), "upload.sinks",
           "expected tables [upload.sinks.NAME], got " + ATomlType(sinks.type()));
    return;
  }
  for (auto&& [key, node] : *table) {
    const std::string name(key.str());
    Origin origin = FileOrigin(path, key.source());
    std::string sink_key = std::string(kSinksPrefix) + name;
    if (!IsSinkName(name) || name == kDefaultSink) {
      Report(kFilePhase, origin, sink_key,
             name == kDefaultSink
                 ? "the sink named default is the one the keys directly under [upload] "
                   "describe; give this one another name"
                 : std::string(kSinkNameRule));
      continue;
    }
    const toml::table* sink_table = node.as_table();
    if (sink_table == nullptr) {
      Report(kFilePhase, origin, sink_key,
             "expected a table [" + sink_key + "], got " + ATomlType(node.type()));
      continue;
    }
    Sink(name);
    sink_origins_.emplace(name, origin);
    for (auto&& [sink_option, value] : *sink_table) {
      const Option* option = FindOption("upload." + std::string(sink_option.str()));
      if (option == nullptr || !option->per_sink()) {
        std::string full = sink_key + "." + std::string(sink_option.str());
        Report(kFilePhase, FileOrigin(path, sink_option.source()), full,
               NotASinkKey(option, Suggest(full, SinkKeys(name))));
        continue;
      }
      WalkValue(path, *option, name, value);
    }
  }
}

void Loader::WalkValue(const std::string& path, const Option& option, const std::string& sink_name,
                       const toml::node& node) {
  Origin origin = FileOrigin(path, node.source());
  RawValue raw;
  if (const auto* s = node.as_string()) {
    raw = RawValue{.kind = RawValue::Kind::kText, .text = s->get()};
  } else if (const auto* b = node.as_boolean()) {
    raw = RawValue{.kind = RawValue::Kind::kBool, .text = b->get() ? "true" : "false"};
  } else if (const auto* i = node.as_integer()) {
    raw = RawValue{.kind = RawValue::Kind::kInteger, .text = std::to_string(i->get())};
  } else if (const auto* f = node.as_floating_point()) {
    raw = RawValue{.kind = RawValue::Kind::kFloat, .text = FormatNumber(f->get())};
  } else if (const auto* table = node.as_table()) {
    if (option.max_entries > 0 && table->size() > option.max_entries) {
      Report(kFilePhase, origin, FullKey(option, sink_name),
             std::to_string(table->size()) + " entries are too many: at most " +
                 std::to_string(option.max_entries) + " are allowed (" +
                 std::string(option.bounds_why) + ")");
      return;
    }
    raw.kind = RawValue::Kind::kTable;
    for (auto&& [key, entry] : *table) {
      if (const auto* entry_text = entry.as_string()) {
        raw.table.emplace(std::string(key.str()), entry_text->get());
        continue;
      }
      Report(kFilePhase, FileOrigin(path, entry.source()),
             FullKey(option, sink_name) + "." + std::string(key.str()),
             "expected a string, got " + ATomlType(entry.type()) + "; e.g. " +
                 Example(option, sink_name, origin));
      return;
    }
  } else {
    raw = RawValue{.kind = RawValue::Kind::kOther, .text = TomlTypeName(node.type())};
  }
  Apply(option, sink_name, raw, origin);
}

void Loader::ReadEnv(const std::vector<std::string>& env) {
  std::map<std::string, const Option*> by_name;
  std::vector<std::string> names;
  for (const Option& option : Options()) {
    by_name.emplace(EnvVarName(option), &option);
    names.push_back(EnvVarName(option));
  }
  for (const EnvVar& allowed : NonOptionEnvVars()) names.emplace_back(allowed.name);
  for (const std::string& entry : env) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || !entry.starts_with("SLEUTH_")) continue;
    std::string name = entry.substr(0, eq);
    if (name.size() > kMaxKeyBytes) {
      Report(kEnvPhase, Origin{.kind = Origin::Kind::kEnv, .where = name}, "",
             "a name of " + std::to_string(name.size()) + " bytes is no sleuth option (none is " +
                 "longer than " + std::to_string(kMaxKeyBytes) + "); unset it");
      continue;
    }
    if (entry.size() - eq - 1 > kMaxValueBytes) {
      Report(kEnvPhase, Origin{.kind = Origin::Kind::kEnv, .where = name}, "",
             "the value is " + std::to_string(entry.size() - eq - 1) + " bytes, more than the " +
                 FormatSize(kMaxValueBytes) + " a variable may hold; put it in the config file");
      continue;
    }
    auto allowed = NonOptionEnvVars();
    if (std::any_of(allowed.begin(), allowed.end(),
                    [&](const EnvVar& var) { return var.name == name; }))
      continue;
    Origin origin{.kind = Origin::Kind::kEnv, .where = name};
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      std::string message = "not a sleuth option" + Suggest(name, names);
      if (name.starts_with("SLEUTH_UPLOAD_SINKS_"))
        message += " (named sinks are set in the config file or with --set upload.sinks.NAME.KEY)";
      Report(kEnvPhase, origin, "", std::move(message));
      continue;
    }
    Apply(*it->second, "", RawValue{.kind = RawValue::Kind::kText, .text = entry.substr(eq + 1)},
          origin);
  }
}

void Loader::ReadSets(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    size_t eq = arg.find('=');
    if (eq == std::string::npos) {
      Report(kSetPhase, Origin{.kind = Origin::Kind::kSet, .where = arg}, arg,
             "expected section.key=value, e.g. --set cpu.abs=50");
      continue;
    }
    if (eq > kMaxKeyBytes) {
      Report(kSetPhase, Origin{.kind = Origin::Kind::kSet, .where = arg}, arg.substr(0, eq),
             "a key of " + std::to_string(eq) + " bytes is no sleuth option (none is longer than " +
                 std::to_string(kMaxKeyBytes) + ")");
      continue;
    }
    if (arg.size() - eq - 1 > kMaxValueBytes) {
      Report(kSetPhase, Origin{.kind = Origin::Kind::kSet, .where = arg}, arg.substr(0, eq),
             "the value is " + std::to_string(arg.size() - eq - 1) + " bytes, more than the " +
                 FormatSize(kMaxValueBytes) + " a --set value may hold; put it in the config file");
      continue;
    }
    std::string key(TrimSpaces(std::string_view(arg).substr(0, eq)));
    Origin origin{.kind = Origin::Kind::kSet, .where = key};
    RawValue raw{.kind = RawValue::Kind::kText, .text = arg.substr(eq + 1)};
    if (key.starts_with(kSinksPrefix)) {
      std::string rest = key.substr(kSinksPrefix.size());
      size_t dot = rest.rfind('.');
      std::string name = dot == std::string::npos ? "" : rest.substr(0, dot);
      if (!IsSinkName(name) || name == kDefaultSink) {
        Report(kSetPhase, origin, key,
               "expected upload.sinks.NAME.KEY with a NAME other than default (" +
                   std::string(kSinkNameRule) +
                   "), e.g. --set upload.sinks.backup.url=http://127.0.0.1:4040");
        continue;
      }
      const Option* option = FindOption("upload." + rest.substr(dot + 1));
      if (option == nullptr || !option->per_sink()) {
        Report(kSetPhase, origin, key, NotASinkKey(option, Suggest(key, SinkKeys(name))));
        continue;
      }
      if (!named_sinks_.contains(name)) sink_origins_.emplace(name, origin);
      Apply(*option, name, raw, origin);
      continue;
    }
    const Option* option = FindOption(key);
    if (option == nullptr) {
      Report(kSetPhase, origin, key, "unknown key" + Suggest(key, AllKeys()));
      continue;
    }
    Apply(*option, "", raw, origin);
  }
}

void Loader::CheckConstraint(const Constraint& constraint, const std::string& sink_name) {
  const Option* first = FindOption(constraint.first);
  const Option* second = FindOption(constraint.second);
  if (first == nullptr || second == nullptr) {
    Report(kCheckPhase, Origin{}, "",
           "internal: constraint names an unknown option " + std::string(constraint.first) +
               " or " + std::string(constraint.second));
    return;
  }
  SinkConfig& sink = Sink(sink_name);
  Value a = ReadField(FieldOf(*first, config_, sink));
  Value b = ReadField(FieldOf(*second, config_, sink));
  std::string a_key = FullKey(*first, sink_name);
  std::string b_key = FullKey(*second, sink_name);
  auto shown = [&](const Option& option, const std::string& key, const Value& value) {
    return key + " = " + FormatOptionText(option, value) + " (" + OriginOf(key) + ")";
  };
  double x = NumberOf(a);
  double y = NumberOf(b);
  std::string problem;
  switch (constraint.kind) {
    case ConstraintKind::kAtMostWhenBothSet:
      if (x > 0 && y > 0 && x > y)
        problem = shown(*second, b_key, b) + " is below " + shown(*first, a_key, a);
      break;
    case ConstraintKind::kBelowUnlessZero:
      if (y != 0 && x >= y)
        problem =
            shown(*second, b_key, b) + " must be 0 (none) or above " + shown(*first, a_key, a);
      break;
    case ConstraintKind::kAtMost:
      if (x > y) problem = shown(*second, b_key, b) + " is below " + shown(*first, a_key, a);
      break;
    case ConstraintKind::kRequires:
      if (!FormatOptionText(*first, a).empty() && FormatOptionText(*second, b).empty())
        problem = a_key + " is set (" + OriginOf(a_key) + ") but " + b_key + " is not";
      break;
    case ConstraintKind::kBothOrNeither: {
      bool a_set = !FormatOptionText(*first, a).empty();
      bool b_set = !FormatOptionText(*second, b).empty();
      if (a_set != b_set) {
        const std::string& set_key = a_set ? a_key : b_key;
        problem = set_key + " is set (" + OriginOf(set_key) + ") but " + (a_set ? b_key : a_key) +
                  " is not";
      }
      break;
    }
  }
  if (!problem.empty())
    Report(kCheckPhase, Origin{}, "", problem + ": " + std::string(constraint.why));
}

Result<Config> Loader::Finish() {
  std::vector<std::string> sink_names = {""};
  for (const auto& [name, sink] : named_sinks_) {
    sink_names.push_back(name);
    if (sink.url.empty()) {
      auto where = sink_origins_.find(name);
      Origin origin = where == sink_origins_.end() ? Origin{} : where->second;
      Report(kCheckPhase, Origin{}, std::string(kSinksPrefix) + name,
             "has no url (given at " + origin.Describe() + "); every named sink needs one");
    }
  }
  for (const Constraint& constraint : Constraints()) {
    const Option* first = FindOption(constraint.first);
    if (first != nullptr && first->per_sink()) {
      for (const std::string& name : sink_names) CheckConstraint(constraint, name);
    } else {
      CheckConstraint(constraint, "");
    }
  }
  if (!problems_.empty()) {
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
      return std::tie(a.phase, a.line, a.column, a.sequence) <
             std::tie(b.phase, b.line, b.column, b.sequence);
    });
    std::string message;
    for (size_t i = 0; i < problems_.size() && i < kMaxProblems; ++i) {
      if (!message.empty()) message += '\n';
      message += problems_[i].text;
    }
    if (problems_.size() > kMaxProblems)
      message += "\n... and " + std::to_string(problems_.size() - kMaxProblems) + " more problems";
    return InvalidArgument(std::move(message));
  }
  Config config = config_;
  if (!default_sink_.url.empty()) {
    config.upload.sinks.push_back(default_sink_);
    config.upload.sinks.back().name = std::string(kDefaultSink);
  }
  for (const auto& [name, sink] : named_sinks_) config.upload.sinks.push_back(sink);
  return config;
}

}  // namespace

Result<Config> LoadConfig(const ConfigSources& sources) {
  try {
    Loader loader;
    std::string path = sources.file_path;
    std::string_view named_by = "--config";
    if (path.empty() && sources.use_env_config_path) {
      for (const std::string& entry : sources.env)
        if (entry.starts_with("SLEUTH_CONFIG=")) path = entry.substr(sizeof("SLEUTH_CONFIG=") - 1);
      named_by = "SLEUTH_CONFIG";
    }
    if (!path.empty()) loader.ReadFile(path, named_by);
    loader.ReadEnv(sources.env);
    loader.ReadSets(sources.set_args);
    return loader.Finish();
  } catch (const std::exception& e) {
    return Internal(std::string("loading the configuration failed: ") + e.what());
  }
}

std::vector<std::string> EnvironFromProcess() {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry)
    env.emplace_back(*entry);
  return env;
}

}  // namespace sleuth::config
