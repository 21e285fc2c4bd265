// Private to sleuth::config: a value as a source gave it, before it is
// checked against its option row.
#pragma once

#include <string>
#include <string_view>

#include "sleuth/common/status.h"
#include "sleuth/config/option_table.h"

namespace sleuth::config {

// Environment variables, --set arguments and TOML strings give text; TOML
// also gives native booleans, numbers and tables, which some option types
// accept and others refuse (a bare number is never a duration).
struct RawValue {
  enum class Kind { kText, kBool, kInteger, kFloat, kTable, kOther };
  Kind kind = Kind::kText;
  // kText: the text. kBool/kInteger/kFloat: the value written as text.
  // kOther: the TOML type's name ("array", "date").
  std::string text = {};
  StringMap table = {};  // kTable
};

// Checks `raw` against the row's type and bounds. The error says what was
// wrong and what was expected; the caller adds where the value came from and
// an example (ExampleText).
[[nodiscard]] Result<Value> ParseRawValue(const Option& option, const RawValue& raw);

// The row's example (or its default when it has none) as text.
std::string_view ExampleText(const Option& option);

// `text` in double quotes, for a message. Past kShownBytes only its start
// is shown, then "..." and its length: a message never echoes a huge input.
inline constexpr size_t kShownBytes = 40;
std::string Shown(std::string_view text);

// Describes a number for messages: 10 -> "10", 12.5 -> "12.5".
std::string FormatNumber(double number);

// The value as a number, for comparisons: durations in nanoseconds, sizes
// in bytes, booleans as 0/1; strings and maps are 0.
double NumberOf(const Value& value);

}  // namespace sleuth::config
