// Parsing, checking and printing of option values, driven by the row's type.
#include "option_value.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <iterator>
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
  return Shown(s);
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
      switch (option.form) {
        case TextForm::kText:
          return "a string";
        case TextForm::kName:
          return "a name";
        case TextForm::kAbsolutePath:
          return "an absolute path";
        case TextForm::kTenantId:
          return "a tenant ID";
        case TextForm::kUserName:
          return "a user name";
      }
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

// Names sleuth gives labels itself (uploader/src/protocols.cc, OwnLabels):
// an agent label with one of them would be dropped without a word.
bool IsReservedLabelName(std::string_view name) {
  constexpr std::string_view kOwn[] = {"service_name", "hostname", "pid"};
  if (name.starts_with("__") || name.starts_with("sleuth_")) return true;
  return std::find(std::begin(kOwn), std::end(kOwn), name) != std::end(kOwn);
}

Status CheckMap(const Option& option, const StringMap& map) {
  if (option.max_entries > 0 && map.size() > option.max_entries)
    return InvalidArgument(std::to_string(map.size()) + " entries are too many: at most " +
                           std::to_string(option.max_entries) + " are allowed");
  for (const auto& [key, value] : map) {
    if (option.max_key_length > 0 && key.size() > option.max_key_length)
      return InvalidArgument("the name " + Quote(key) + " is " + std::to_string(key.size()) +
                             " bytes long: at most " + std::to_string(option.max_key_length) +
                             " are allowed");
    if (option.max_value_length > 0 && value.size() > option.max_value_length)
      return InvalidArgument("the value of " + Quote(key) + " is " + std::to_string(value.size()) +
                             " bytes long: at most " + std::to_string(option.max_value_length) +
                             " are allowed");
    if (option.map_keys == MapKeys::kLabelName && IsLabelName(key) && IsReservedLabelName(key))
      return InvalidArgument("label name " + Quote(key) +
                             " is set by sleuth itself (service_name, hostname, pid, sleuth_*, "
                             "__*): choose another name");
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
    if (option.max_entries > 0 && entries.size() > option.max_entries + 1)
      return InvalidArgument("more than " + std::to_string(option.max_entries) +
                             " entries: at most " + std::to_string(option.max_entries) +
                             " are allowed");
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

// Why `host` cannot be connected to or listened on, or empty. A host is an
// IPv6 literal in [ ], an IPv4 literal, or a DNS name (RFC 1123: labels of
// letters, digits and -, 1 to 63 bytes each, 253 in all, one trailing dot
// allowed).
std::string HostProblem(std::string_view host) {
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return "an IPv6 address must be inside [ ]";
    std::string literal(host.substr(1, host.size() - 2));
    in6_addr address;
    if (inet_pton(AF_INET6, literal.c_str(), &address) != 1)
      return "not a valid IPv6 address inside [ ]";
    return {};
  }
  if (host.find_first_not_of("0123456789.") == std::string_view::npos) {
    in_addr address;
    if (inet_pton(AF_INET, std::string(host).c_str(), &address) != 1)
      return "not a valid IPv4 address (four numbers from 0 to 255, e.g. 127.0.0.1)";
    return {};
  }
  constexpr std::string_view kWhat =
      "the host must be a name (letters, digits, - and . only), an IPv4 address, or an IPv6 "
      "address in [ ]";
  if (host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 253) return std::string(kWhat);
  size_t begin = 0;
  while (begin <= host.size()) {
    size_t end = std::min(host.find('.', begin), host.size());
    std::string_view label = host.substr(begin, end - begin);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return std::string(kWhat);
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return std::string(kWhat);
    begin = end + 1;
  }
  return {};
}

bool IsPort(std::string_view port) {
  if (!AllDigits(port) || port.size() > 5) return false;
  unsigned long number = std::stoul(std::string(port));
  return number >= 1 && number <= 65535;
}

Status CheckAddress(const Option& option, std::string_view text) {
  auto bad = [&](std::string_view why) { return BadText(option, text, why); };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("no :port");
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (!IsPort(port)) return bad("the port must be a number from 1 to 65535");
  if (host.empty()) return bad("the host is missing; use 0.0.0.0 for every interface");
  if (std::string problem = HostProblem(host); !problem.empty()) return bad(problem);
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
  std::string_view host = authority;
  std::string_view port;
  size_t bracket = authority.rfind(']');
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (!IsPort(port)) return bad("the port must be a number from 1 to 65535");
  }
  if (host.empty()) return bad("the host is missing");
  if (std::string problem = HostProblem(host); !problem.empty()) return bad(problem);
  return Status::Ok();
}

// Why `text` does not have the row's form, or empty.
std::string FormProblem(TextForm form, std::string_view text) {
  auto only = [&](std::string_view extra) {
    for (char c : text)
      if (!std::isalnum(static_cast<unsigned char>(c)) && extra.find(c) == std::string_view::npos)
        return false;
    return true;
  };
  switch (form) {
    case TextForm::kText:
      return {};
    case TextForm::kName:
      if (!only("._-") || !std::isalnum(static_cast<unsigned char>(text.front())))
        return "use letters, digits, '.', '_' and '-', starting with a letter or digit";
      return {};
    case TextForm::kAbsolutePath: {
      if (text.front() != '/')
        return "it must be an absolute path (starting with /), not relative to the process's "
               "working directory";
      for (size_t begin = 1; begin <= text.size();) {
        size_t end = std::min(text.find('/', begin), text.size());
        std::string_view part = text.substr(begin, end - begin);
        if (part == "." || part == "..")
          return "it must not contain . or .. components: write the directory it means";
        begin = end + 1;
      }
      return {};
    }
    case TextForm::kTenantId:
      if (!only("!._*'()-") || text == "." || text == "..")
        return "use letters, digits and !._*'()- (Grafana's tenant ID characters), not . or ..";
      return {};
    case TextForm::kUserName:
      if (text.find(':') != std::string_view::npos)
        return "a basic-auth user name cannot contain ':'";
      return {};
  }
  return {};
}

// The longest text of a boolean, number, duration or size that could be
// valid ("1h30m15s250ms", "1099511627776"); anything longer is refused
// before parsing, so no parser sees a huge input.
constexpr size_t kMaxScalarBytes = 64;

Result<Value> ParseText(const Option& option, std::string_view text) {
  bool scalar = option.type != OptionType::kString && option.type != OptionType::kEnum &&
                option.type != OptionType::kAddress && option.type != OptionType::kUrl &&
                option.type != OptionType::kStringMap;
  if (scalar && text.size() > kMaxScalarBytes)
    return BadText(option, text, "it is " + std::to_string(text.size()) + " bytes long");
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
  if (option.max_length > 0 && text.size() > option.max_length)
    return BadText(option, text,
                   "it is " + std::to_string(text.size()) + " bytes long: at most " +
                       std::to_string(option.max_length) + " are allowed");
  if (HasControlChar(text)) return BadText(option, text, "it contains a control character");
  if (text.empty()) {
    if (option.non_empty) return BadText(option, text, "it must not be empty");
    if (option.type != OptionType::kEnum) return Value(std::string());
  }
  if (option.type == OptionType::kString) {
    if (std::string problem = FormProblem(option.form, text); !problem.empty())
      return BadText(option, text, problem);
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
    std::string message =
        FormatOptionText(option, value) + " is out of range: it must be " + std::string(rule);
    if (!option.bounds_why.empty()) message += " (" + std::string(option.bounds_why) + ")";
    return InvalidArgument(std::move(message));
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

std::string Shown(std::string_view text) {
  size_t cut = text.size();
  if (text.size() > kShownBytes) {
    cut = kShownBytes;
    // Never cut a UTF-8 sequence in two.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  }
  std::string out = "\"";
  for (char c : text.substr(0, cut)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      // A newline in a value must not start a fake line in the log.
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  if (cut < text.size()) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

std::string BoundsText(const Option& option) {
  auto bytes = [](size_t n) { return std::to_string(n) + " bytes"; };
  std::string out;
  switch (option.type) {
    case OptionType::kBool:
    case OptionType::kEnum:
      return {};
    case OptionType::kInt:
    case OptionType::kNumber:
    case OptionType::kPercent:
    case OptionType::kDuration:
    case OptionType::kSize: {
      std::string low = !option.at_least.empty() ? std::string(option.at_least)
                        : option.positive        ? std::string("above 0")
                                                 : std::string();
      if (!low.empty() && !option.at_most.empty()) {
        out = low + " to " + std::string(option.at_most);
      } else if (!low.empty()) {
        out = low.starts_with("above") ? low : "at least " + low;
      } else if (!option.at_most.empty()) {
        out = "at most " + std::string(option.at_most);
      }
      if (!option.named_value.empty()) out += ", or " + std::string(option.named_value);
      return out;
    }
    case OptionType::kString:
      switch (option.form) {
        case TextForm::kText:
          out = "text";
          break;
        case TextForm::kName:
          out = "A-Z a-z 0-9 . _ -, starting with a letter or digit";
          break;
        case TextForm::kAbsolutePath:
          out = "an absolute path without . or .. components";
          break;
        case TextForm::kTenantId:
          out = "A-Z a-z 0-9 ! . _ * ' ( ) -";
          break;
        case TextForm::kUserName:
          out = "text without :";
          break;
      }
      if (option.max_length > 0) out += ", at most " + bytes(option.max_length);
      break;
    case OptionType::kAddress:
      out = "host:port, the host a name, an IPv4 address or [IPv6], the port 1 to 65535";
      break;
    case OptionType::kUrl:
      out = "an http:// or https:// URL";
      if (option.max_length > 0) out += " of at most " + bytes(option.max_length);
      break;
    case OptionType::kStringMap:
      out = "at most " + std::to_string(option.max_entries) + " entries, names of at most " +
            bytes(option.max_key_length) + ", values of at most " + bytes(option.max_value_length);
      return out;
  }
  if (!option.non_empty) out += "; or empty";
  return out;
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
