// Parsing, checking and printing of option values, driven by the row's type.
#include "option_value.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

#include "sleuth/common/units.h"

namespace sleuth::config {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool HasControlChar(std::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
  }
  return false;
}

std::string Quote(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

std::string JoinAllowed(const Option& option) {
  std::string out;
  for (size_t i = 0; i < option.allowed.size(); ++i) {
    if (i > 0) out += i + 1 == option.allowed.size() ? " or " : ", ";
    out += option.allowed[i];
  }
  return out;
}

std::string Expected(const Option& option) {
  switch (option.type) {
    case OptionType::kBool:
      return "true or false";
    case OptionType::kInt:
      if (!option.named_value.empty())
        return "a whole number or \"" + std::string(option.named_value) + "\"";
      return "a whole number";
    case OptionType::kNumber:
      return "a number";
    case OptionType::kPercent:
      return "a percent from 0 to 100";
    case OptionType::kDuration:
      return "a duration with a unit (ns, us, ms, s, m or h)";
    case OptionType::kSize:
      return "a size in bytes, optionally with a unit (KiB, MiB, GiB, TiB, KB, MB, GB or TB)";
    case OptionType::kString:
      return "a string";
    case OptionType::kEnum:
      return "one of " + JoinAllowed(option);
    case OptionType::kAddress:
      return "a host:port string";
    case OptionType::kUrl:
      return "an http:// or https:// URL string";
    case OptionType::kStringMap:
      return "a table of strings (k=v,k2=v2 outside the TOML file)";
  }
  return "a value";
}

// How the offending value is shown in a message; a secret is not shown.
std::string Got(const Option& option, const RawValue& raw) {
  switch (raw.kind) {
    case RawValue::Kind::kText:
      return option.secret_values ? "a string" : "the string " + Quote(raw.text);
    case RawValue::Kind::kBool:
      return "the boolean " + raw.text;
    case RawValue::Kind::kInteger:
      return "the integer " + raw.text;
    case RawValue::Kind::kFloat:
      return "the number " + raw.text;
    case RawValue::Kind::kTable:
      return "a table";
    case RawValue::Kind::kOther:
      return "a TOML " + raw.text;
  }
  return "a value";
}

Status WrongKind(const Option& option, const RawValue& raw) {
  std::string message = "expected " + Expected(option) + ", got " + Got(option, raw);
  if (option.type == OptionType::kDuration &&
      (raw.kind == RawValue::Kind::kInteger || raw.kind == RawValue::Kind::kFloat))
    message += " (a bare number has no unit: write it as a string with one)";
  return InvalidArgument(std::move(message));
}

Status BadText(const Option& option, std::string_view text, std::string_view why = {}) {
  std::string message = "expected " + Expected(option) + ", got ";
  message += option.secret_values ? "a value that is not" : Quote(text);
  if (!why.empty()) message += " (" + std::string(why) + ")";
  return InvalidArgument(std::move(message));
}

Result<Value> ParseBool(const Option& option, std::string_view text) {
  std::string word = Lower(Trim(text));
  if (word == "true" || word == "1" || word == "yes" || word == "on") return Value(true);
  if (word == "false" || word == "0" || word == "no" || word == "off") return Value(false);
  return BadText(option, text);
}

Result<Value> ParseInt(const Option& option, std::string_view text) {
  std::string_view s = Trim(text);
  if (!option.named_value.empty() && s == option.named_value) return Value(option.named_value_int);
  int64_t number = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), number);
  if (s.empty() || ec == std::errc::invalid_argument || end != s.data() + s.size())
    return BadText(option, text);
  if (ec == std::errc::result_out_of_range || number > std::numeric_limits<int>::max() ||
      number < std::numeric_limits<int>::min())
    return BadText(option, text, "too large");
  return Value(static_cast<int>(number));
}

Result<Value> ParseNumber(const Option& option, std::string_view text) {
  std::string_view s = Trim(text);
  if (option.type == OptionType::kPercent && !s.empty() && s.back() == '%')
    s = Trim(s.substr(0, s.size() - 1));
  double number = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), number);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(number))
    return BadText(option, text);
  return Value(number);
}

bool IsLabelName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

// RFC 9110 token characters.
bool IsHeaderName(std::string_view name) {
  constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  if (name.empty()) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && kSpecials.find(c) == std::string_view::npos)
      return false;
  return true;
}

Status CheckMap(const Option& option, const StringMap& map) {
  for (const auto& [key, value] : map) {
    if (option.map_keys == MapKeys::kLabelName && !IsLabelName(key))
      return InvalidArgument("label name " + Quote(key) +
                             " is not valid: use letters, digits and _, not starting with a "
                             "digit");
    if (option.map_keys == MapKeys::kHeaderName && !IsHeaderName(key))
      return InvalidArgument("header name " + Quote(key) +
                             " is not valid: use letters, digits and !#$%&'*+-.^_`|~");
    if (HasControlChar(value))
      return InvalidArgument("the value of " + Quote(key) +
                             " contains a control character (such as a newline)");
  }
  return Status::Ok();
}

// "k=v,k2=v2"; "\," is a comma inside a value and "\\" a backslash.
Result<StringMap> ParseMap(const Option& option, std::string_view text) {
  StringMap map;
  std::vector<std::string> entries(1);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == ',' || text[i + 1] == '\\')) {
      entries.back() += text[++i];
    } else if (text[i] == ',') {
      entries.emplace_back();
    } else {
      entries.back() += text[i];
    }
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    std::string_view entry = Trim(entries[i]);
    if (entry.empty()) continue;
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos)
      return InvalidArgument("entry " + std::to_string(i + 1) +
                             " has no '=': write key=value pairs separated by commas");
    std::string key(Trim(entry.substr(0, eq)));
    if (!map.emplace(key, std::string(Trim(entry.substr(eq + 1)))).second)
      return InvalidArgument("key " + Quote(key) + " is given twice");
  }
  SLEUTH_RETURN_IF_ERROR(CheckMap(option, map));
  return map;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

Status CheckAddress(const Option& option, std::string_view text) {
  auto bad = [&](std::string_view why) { return BadText(option, text, why); };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("no :port");
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (!AllDigits(port) || port.size() > 5 || std::stoul(std::string(port)) > 65535)
    return bad("the port must be a number from 0 to 65535");
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    for (char c : host.substr(1, host.size() - 2))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.')
        return bad("not an IPv6 address inside [ ]");
    return Status::Ok();
  }
  if (host.empty()) return bad("the host is missing; use 0.0.0.0 for every interface");
  for (char c : host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
      return bad("the host must be a name or an IPv4 address, or an IPv6 address in [ ]");
  return Status::Ok();
}

Status CheckUrl(const Option& option, std::string_view text) {
  auto bad = [&](std::string_view why) { return BadText(option, text, why); };
  std::string lower = Lower(text);
  size_t scheme_end = 0;
  if (lower.starts_with("http://")) {
    scheme_end = 7;
  } else if (lower.starts_with("https://")) {
    scheme_end = 8;
  } else {
    return bad("it must start with http:// or https://");
  }
  if (HasControlChar(text) || text.find_first_of(" \t") != std::string_view::npos)
    return bad("it contains a space or control character");
  std::string_view rest = text.substr(scheme_end);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty()) return bad("the host is missing");
  // Credentials in a URL end up in logs and error messages.
  if (authority.find('@') != std::string_view::npos)
    return InvalidArgument(
        "the URL must not contain credentials (user:password@): use upload.username with "
        "upload.password_file or SLEUTH_UPLOAD_PASSWORD instead");
  return Status::Ok();
}

Result<Value> ParseText(const Option& option, std::string_view text) {
  switch (option.type) {
    case OptionType::kBool:
      return ParseBool(option, text);
    case OptionType::kInt:
      return ParseInt(option, text);
    case OptionType::kNumber:
    case OptionType::kPercent:
      return ParseNumber(option, text);
    case OptionType::kDuration: {
      if (Trim(text).starts_with('-')) return BadText(option, text, "it is negative");
      Result<Nanos> duration = ParseDuration(text);
      if (!duration.ok()) return duration.status();
      return Value(*duration);
    }
    case OptionType::kSize: {
      if (Trim(text).starts_with('-')) return BadText(option, text, "it is negative");
      Result<uint64_t> size = ParseSize(text);
      if (!size.ok()) return size.status();
      return Value(*size);
    }
    case OptionType::kString:
    case OptionType::kEnum:
    case OptionType::kAddress:
    case OptionType::kUrl:
      break;
    case OptionType::kStringMap: {
      Result<StringMap> map = ParseMap(option, text);
      if (!map.ok()) return map.status();
      return Value(*map);
    }
  }
  // The string types.
  if (HasControlChar(text)) return BadText(option, text, "it contains a control character");
  if (text.empty()) {
    if (option.non_empty) return BadText(option, text, "it must not be empty");
    if (option.type != OptionType::kEnum) return Value(std::string());
  }
  if (option.type == OptionType::kEnum) {
    for (std::string_view allowed : option.allowed)
      if (allowed == text) return Value(std::string(text));
    return BadText(option, text);
  }
  if (option.type == OptionType::kAddress) SLEUTH_RETURN_IF_ERROR(CheckAddress(option, text));
  if (option.type == OptionType::kUrl) SLEUTH_RETURN_IF_ERROR(CheckUrl(option, text));
  return Value(std::string(text));
}

Status CheckBounds(const Option& option, const Value& value) {
  double number = NumberOf(value);
  auto out_of_range = [&](std::string_view rule) {
    return InvalidArgument(FormatOptionText(option, value) + " is out of range: it must be " +
                           std::string(rule));
  };
  if (option.positive && number <= 0) return out_of_range("greater than 0");
  if (!option.at_least.empty()) {
    Result<Value> bound = ParseText(option, option.at_least);
    if (bound.ok() && number < NumberOf(*bound))
      return out_of_range("at least " + std::string(option.at_least));
  }
  if (!option.at_most.empty()) {
    Result<Value> bound = ParseText(option, option.at_most);
    if (bound.ok() && number > NumberOf(*bound))
      return out_of_range("at most " + std::string(option.at_most));
  }
  return Status::Ok();
}

Result<Value> ParseAccepted(const Option& option, const RawValue& raw) {
  using K = RawValue::Kind;
  const OptionType type = option.type;
  switch (raw.kind) {
    case K::kText:
      return ParseText(option, raw.text);
    case K::kBool:
      if (type == OptionType::kBool) return ParseText(option, raw.text);
      break;
    case K::kInteger:
      if (type == OptionType::kInt || type == OptionType::kNumber || type == OptionType::kPercent ||
          type == OptionType::kSize)
        return ParseText(option, raw.text);
      break;
    case K::kFloat:
      if (type == OptionType::kNumber || type == OptionType::kPercent)
        return ParseText(option, raw.text);
      break;
    case K::kTable:
      if (type == OptionType::kStringMap) {
        SLEUTH_RETURN_IF_ERROR(CheckMap(option, raw.table));
        return Value(raw.table);
      }
      break;
    case K::kOther:
      break;
  }
  return WrongKind(option, raw);
}

std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          constexpr char kHex[] = "0123456789ABCDEF";
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string EscapeMapText(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

Result<Value> ParseRawValue(const Option& option, const RawValue& raw) {
  Result<Value> value = ParseAccepted(option, raw);
  if (!value.ok()) return value;
  // The named value ("history") stands outside the numeric range on
  // purpose; the number it stands for (-1) typed as a number does not.
  bool named = !option.named_value.empty() && raw.kind == RawValue::Kind::kText &&
               Trim(raw.text) == option.named_value;
  if (!named) SLEUTH_RETURN_IF_ERROR(CheckBounds(option, *value));
  return value;
}

Result<Value> ParseOptionText(const Option& option, std::string_view text) {
  return ParseRawValue(option, RawValue{.kind = RawValue::Kind::kText, .text = std::string(text)});
}

std::string_view ExampleText(const Option& option) {
  return option.example.empty() ? option.default_text : option.example;
}

std::string FormatNumber(double number) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), number);
  if (ec != std::errc()) return std::to_string(number);
  return std::string(buffer, end);
}

double NumberOf(const Value& value) {
  if (const auto* b = std::get_if<bool>(&value)) return *b ? 1 : 0;
  if (const auto* i = std::get_if<int>(&value)) return *i;
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* n = std::get_if<Nanos>(&value)) return static_cast<double>(n->count());
  if (const auto* u = std::get_if<uint64_t>(&value)) return static_cast<double>(*u);
  return 0;
}

std::string FormatOptionText(const Option& option, const Value& value) {
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  if (const auto* i = std::get_if<int>(&value)) {
    if (!option.named_value.empty() && *i == option.named_value_int)
      return std::string(option.named_value);
    return std::to_string(*i);
  }
  if (const auto* d = std::get_if<double>(&value)) return FormatNumber(*d);
  if (const auto* n = std::get_if<Nanos>(&value)) return FormatDuration(*n);
  if (const auto* u = std::get_if<uint64_t>(&value)) return FormatSize(*u);
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  std::string out;
  for (const auto& [key, entry] : std::get<StringMap>(value)) {
    if (!out.empty()) out += ',';
    out += EscapeMapText(key) + "=" + EscapeMapText(entry);
  }
  return out;
}

std::string FormatOptionToml(const Option& option, const Value& value) {
  if (std::holds_alternative<bool>(value) || std::holds_alternative<double>(value))
    return FormatOptionText(option, value);
  if (const auto* i = std::get_if<int>(&value)) {
    std::string text = FormatOptionText(option, value);
    return !option.named_value.empty() && *i == option.named_value_int ? TomlString(text) : text;
  }
  if (const auto* map = std::get_if<StringMap>(&value)) {
    if (map->empty()) return "{}";
    std::string out = "{ ";
    bool first = true;
    for (const auto& [key, entry] : *map) {
      if (!first) out += ", ";
      first = false;
      out += TomlString(key) + " = " + TomlString(entry);
    }
    return out + " }";
  }
  return TomlString(FormatOptionText(option, value));
}

Value ReadField(FieldRef field) {
  return std::visit([](auto* pointer) { return Value(*pointer); }, field);
}

Status WriteField(FieldRef field, const Value& value) {
  if (field.index() != value.index())
    return Internal("option value of the wrong type for its field (index " +
                    std::to_string(value.index()) + ", field " + std::to_string(field.index()) +
                    ")");
  std::visit(
      [&](auto* pointer) {
        using Field = std::remove_pointer_t<decltype(pointer)>;
        *pointer = std::get<Field>(value);
      },
      field);
  return Status::Ok();
}

}  // namespace sleuth::config
