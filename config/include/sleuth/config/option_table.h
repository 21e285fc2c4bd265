// The option table: one row per configuration option. Everything else in
// sleuth::config is derived from it: parsing and validation of the TOML file,
// the SLEUTH_<SECTION>_<KEY> environment overrides and `--set` arguments,
// `sleuth config defaults`, the effective-config rendering and the README's
// option reference. Adding an option means adding a field to config.h and a
// row here; no other code names individual options.
//
// Thread-safety: the table is immutable after static initialization; every
// function here is thread safe.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "sleuth/common/status.h"
#include "sleuth/config/config.h"

namespace sleuth::config {

using StringMap = std::map<std::string, std::string>;

// How an option's value is written and checked. The type fixes the C++ field
// type the row binds to (see FieldRef).
enum class OptionType {
  kBool,       // true/false (also 1/0, yes/no, on/off outside TOML)       -> bool
  kInt,        // a whole number                                           -> int
  kNumber,     // a number, possibly fractional                            -> double
  kPercent,    // a number from 0 to 100 ("50" or "50%")                   -> double
  kDuration,   // a number with a unit: 250ms, 5s, 1m, 1h30m               -> Nanos
  kSize,       // bytes, optionally with a unit: 512KiB, 64MiB             -> uint64_t
  kString,     // free text (no control characters)                        -> std::string
  kEnum,       // one of Option::allowed                                   -> std::string
  kAddress,    // host:port to listen on, or empty for off                 -> std::string
  kUrl,        // http:// or https:// URL without credentials, or empty    -> std::string
  kStringMap,  // TOML table of strings, or "k=v,k2=v2" outside TOML       -> StringMap
};

// What the keys of a kStringMap option must look like.
enum class MapKeys {
  kLabelName,   // [A-Za-z_][A-Za-z0-9_]*: Prometheus and Pyroscope label names
  kHeaderName,  // an HTTP header field name (RFC 9110 token)
};

// What the text of a string option (kString) must look like, beyond having
// no control characters. Each form exists because the text ends up somewhere
// that has rules of its own.
enum class TextForm {
  kText,          // anything without control characters
  kName,          // [A-Za-z0-9._-], starting with a letter or digit: file names, labels
  kAbsolutePath,  // "/..." with no "." or ".." component: the host's cwd must not matter
  kTenantId,      // [A-Za-z0-9!._*'()-], not "." or "..": Grafana's tenant ID rules
  kUserName,      // no ':' (it ends the user name in HTTP basic auth)
};

// A pointer to the field one row describes. The alternatives are in the same
// order as Value's.
using FieldRef = std::variant<bool*, int*, double*, Nanos*, uint64_t*, std::string*, StringMap*>;
// A parsed option value.
using Value = std::variant<bool, int, double, Nanos, uint64_t, std::string, StringMap>;

struct Option {
  std::string_view key;  // "section.name"
  OptionType type;
  // The default in the syntax of environment variables and --set; parsing
  // it must give the field's default member initializer.
  std::string_view default_text;
  std::string_view doc;  // one line: what it does, with its unit
  std::string_view why;  // why the default is what it is
  // Used in error messages and the reference when the default is empty.
  std::string_view example = {};
  std::span<const std::string_view> allowed = {};  // kEnum: accepted values
  // Bounds, written as values of this option; empty: unbounded.
  std::string_view at_least = {};
  std::string_view at_most = {};
  bool positive = false;   // must be greater than zero
  bool non_empty = false;  // strings: may not be empty
  // String types (kString, kAddress, kUrl): the longest text accepted, in
  // bytes, and what it must look like (kString only). Every string row sets
  // max_length (config_test checks it).
  size_t max_length = 0;
  TextForm form = TextForm::kText;
  // kStringMap: the most entries, and the longest key and value, in bytes.
  size_t max_entries = 0;
  size_t max_key_length = 0;
  size_t max_value_length = 0;
  // Why the bounds are what they are: what breaks past them. Rendered in
  // the reference beside the bounds themselves (BoundsText()).
  std::string_view bounds_why = {};
  // A word a kInt option accepts in place of a number, and the number it
  // stands for (agent.warmup's "history" = -1).
  std::string_view named_value = {};
  int named_value_int = 0;
  MapKeys map_keys = MapKeys::kLabelName;
  // The values may hold secrets (an Authorization header): they are never
  // echoed in error messages or in RenderEffectiveToml().
  bool secret_values = false;
  // Exactly one accessor is set. Per-sink rows describe a SinkConfig field:
  // the keys directly under [upload] fill the sink named "default", and
  // [upload.sinks.<name>] tables fill further sinks with the same keys.
  FieldRef (*config_field)(Config&) = nullptr;
  FieldRef (*sink_field)(SinkConfig&) = nullptr;

  bool per_sink() const { return sink_field != nullptr; }
  std::string_view section() const { return key.substr(0, key.find('.')); }
  std::string_view name() const { return key.substr(key.find('.') + 1); }
};

// A section of the file, in the order they are rendered, with the sentence
// that introduces it in the reference.
struct Section {
  std::string_view name;
  std::string_view doc;
};

// How two options must relate; checked once all sources are applied.
enum class ConstraintKind {
  kAtMostWhenBothSet,  // first <= second, unless either is 0
  kBelowUnlessZero,    // second == 0 or first < second
  kAtMost,             // first <= second
  kBothOrNeither,      // strings: both empty or both set
  kRequires,           // strings: when first is set, second is set too
};

// For per-sink options (`upload.cert_file`), the constraint holds within
// each sink.
struct Constraint {
  std::string_view first;
  std::string_view second;
  ConstraintKind kind;
  std::string_view why;  // what would go wrong otherwise
};

std::span<const Option> Options();
std::span<const Section> Sections();
std::span<const Constraint> Constraints();

// The row for "section.name", or nullptr.
const Option* FindOption(std::string_view key);

// "SLEUTH_" + upper-case section + "_" + upper-case name, e.g.
// SLEUTH_AGENT_DUMP_DIR for agent.dump_dir.
std::string EnvVarName(const Option& option);

// Environment variables starting with SLEUTH_ that are not options, each
// read by the part of sleuth its doc names. SLEUTH_UPLOAD_PASSWORD and
// SLEUTH_UPLOAD_TOKEN are secrets the uploader reads itself; they never
// enter a Config.
struct EnvVar {
  std::string_view name;
  std::string_view doc;
};
std::span<const EnvVar> NonOptionEnvVars();

// The row's field in `config`, or in `sink` for per-sink rows.
FieldRef FieldOf(const Option& option, Config& config, SinkConfig& sink);

// The row's bounds in words, e.g. "100ms to 1h", "1 to 64 characters of
// A-Z a-z 0-9 . _ -, starting with a letter or digit", "an absolute path of
// at most 1024 bytes"; empty when the type alone bounds it (bool, enum).
std::string BoundsText(const Option& option);

// Parses text in the syntax of environment variables and --set (the syntax
// of default_text) and checks the row's bounds. Errors say what was
// expected; they never echo the value of a secret_values option.
[[nodiscard]] Result<Value> ParseOptionText(const Option& option, std::string_view text);

// The value as text that ParseOptionText() reads back to the same value.
std::string FormatOptionText(const Option& option, const Value& value);
// The value as a TOML value (quoted string, number, boolean or inline table)
// that the TOML loader reads back to the same value.
std::string FormatOptionToml(const Option& option, const Value& value);

// Reads and writes the field a row describes. WriteField fails (kInternal)
// only if the value's type is not the field's.
Value ReadField(FieldRef field);
[[nodiscard]] Status WriteField(FieldRef field, const Value& value);

}  // namespace sleuth::config
