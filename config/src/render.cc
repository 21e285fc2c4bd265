#include "sleuth/config/render.h"

#include <algorithm>
#include <cctype>

#include "option_value.h"
#include "sleuth/config/option_table.h"

namespace sleuth::config {
namespace {

constexpr size_t kCommentWidth = 100;
constexpr std::string_view kHiddenValue = "(hidden)";

// The row's bounds and why they are what they are: "100ms to 1h. Below ...".
std::string AllowedText(const Option& option) {
  std::string bounds = BoundsText(option);
  if (bounds.empty()) return bounds;
  if (!option.bounds_why.empty()) {
    std::string why(option.bounds_why);
    why.front() = static_cast<char>(std::toupper(static_cast<unsigned char>(why.front())));
    bounds += ". " + why;
    if (bounds.back() != '.') bounds += '.';
  }
  return bounds;
}

// "# "-prefixed lines of at most kCommentWidth characters, broken at spaces.
std::string Comment(std::string_view text) {
  std::string out;
  std::string line = "#";
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(start, end - start);
    if (line.size() > 1 && line.size() + 1 + word.size() > kCommentWidth) {
      out += line + "\n";
      line = "#";
    }
    line += " ";
    line += word;
    start = end + 1;
  }
  return out + line + "\n";
}

Value DefaultValue(const Option& option) {
  Result<Value> value = ParseOptionText(option, option.default_text);
  // The table's tests prove every default parses; an empty value of the
  // right type keeps a rendering going if one ever did not.
  if (value.ok()) return *value;
  Config config;
  SinkConfig sink;
  return ReadField(FieldOf(option, config, sink));
}

Value Hidden(const Option& option, Value value) {
  if (!option.secret_values) return value;
  if (auto* map = std::get_if<StringMap>(&value))
    for (auto& [key, entry] : *map) entry = kHiddenValue;
  return value;
}

const char kTomlHeader[] =
    "Any option can also be set with an environment variable SLEUTH_<SECTION>_<KEY>=value or "
    "with --set section.key=value; later sources win: defaults < this file < environment < "
    "--set. Durations: 250ms, 5s, 1m, 1h30m. Sizes: 512KiB, 64MiB, 1GiB (KB, MB and GB are "
    "decimal).";

// One TOML file: every option of `config`, with comments. `effective`
// adds the default where the value differs and hides secret values;
// otherwise the reasons for the defaults are given.
std::string RenderToml(const Config& config, bool effective) {
  Config scratch = config;  // the row accessors take a mutable Config
  SinkConfig default_sink;
  std::vector<SinkConfig> named_sinks;
  for (const SinkConfig& sink : config.upload.sinks) {
    if (sink.name == "default") {
      default_sink = sink;
    } else {
      named_sinks.push_back(sink);
    }
  }

  std::string out;
  if (effective) {
    out += Comment(
        "sleuth's effective configuration: the defaults with the config file, the environment "
        "and --set applied. Values of upload.headers are shown as " +
        std::string(kHiddenValue) + ".");
  } else {
    out += Comment(
        "sleuth configuration: every option at its default (`sleuth config defaults`). Load a "
        "file like this one with --config FILE or SLEUTH_CONFIG=FILE.");
  }
  out += Comment(kTomlHeader);

  auto render_option = [&](const Option& option, SinkConfig& sink, bool with_docs) {
    Value value = ReadField(FieldOf(option, scratch, sink));
    Value default_value = DefaultValue(option);
    if (with_docs) {
      out += "\n" + Comment((option.per_sink() ? "(per sink) " : "") + std::string(option.doc));
      if (!effective) {
        std::string shown = FormatOptionText(option, default_value);
        out += Comment("Why " + (shown.empty() ? "empty" : shown) + ": " + std::string(option.why));
        if (std::string bounds = AllowedText(option); !bounds.empty())
          out += Comment("Allowed: " + bounds);
      } else if (value != default_value) {
        std::string shown = FormatOptionText(option, default_value);
        out += Comment("Default: " + (shown.empty() ? "empty" : shown) + ".");
      }
    }
    out += std::string(option.name()) + " = " +
           FormatOptionToml(option, effective ? Hidden(option, value) : value) + "\n";
  };

  for (const Section& section : Sections()) {
    out += "\n" + Comment(section.doc);
    out += "[" + std::string(section.name) + "]\n";
    for (const Option& option : Options())
      if (option.section() == section.name) render_option(option, default_sink, true);
    if (section.name != "upload") continue;
    if (!effective) {
      out += "\n" + Comment(
                        "More sinks: each [upload.sinks.NAME] table takes the per-sink keys "
                        "above, and every dump goes to every sink. For example:");
      out +=
          "# [upload.sinks.backup]\n# url = \"https://profiles.example.com\"\n"
          "# protocol = \"http\"\n";
    }
    for (SinkConfig& sink : named_sinks) {
      out += "\n[upload.sinks." + sink.name + "]\n";
      for (const Option& option : Options())
        if (option.per_sink()) render_option(option, sink, false);
    }
  }
  return out;
}

std::string MarkdownCell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string Code(std::string_view text) {
  return "`" + std::string(text) + "`";
}

std::string TypeName(const Option& option) {
  switch (option.type) {
    case OptionType::kBool:
      return "bool";
    case OptionType::kInt:
      return option.named_value.empty() ? "integer" : "integer or " + Code(option.named_value);
    case OptionType::kNumber:
      return "number";
    case OptionType::kPercent:
      return "percent";
    case OptionType::kDuration:
      return "duration";
    case OptionType::kSize:
      return "size";
    case OptionType::kString:
      return "string";
    case OptionType::kEnum: {
      std::string out;
      for (std::string_view allowed : option.allowed) {
        if (!out.empty()) out += ", ";
        out += Code(allowed);
      }
      return out;
    }
    case OptionType::kAddress:
      return "host:port";
    case OptionType::kUrl:
      return "URL";
    case OptionType::kStringMap:
      return "table";
  }
  return "value";
}

}  // namespace

std::string RenderDefaultsToml() {
  Config defaults;
  SinkConfig default_sink;
  for (const Option& option : Options()) {
    // Rendered from the table's default texts, not from Config{}; tests
    // prove the two agree.
    (void)WriteField(FieldOf(option, defaults, default_sink), DefaultValue(option));
  }
  if (!default_sink.url.empty()) defaults.upload.sinks.push_back(default_sink);
  return RenderToml(defaults, /*effective=*/false);
}

std::string RenderEffectiveToml(const Config& config) {
  return RenderToml(config, /*effective=*/true);
}

std::string RenderMarkdownReference() {
  std::string out =
      "Every option has a default and can be set, later sources winning, in the TOML file "
      "named by `--config FILE` (else by the `SLEUTH_CONFIG` environment variable), by the "
      "environment variable shown under its key (`SLEUTH_<SECTION>_<KEY>`), and with "
      "`--set section.key=value`. Durations are written `250ms`, `5s`, `1m`, `1h30m`; sizes "
      "`512KiB`, `64MiB`, `1GiB` (`KB`, `MB`, `GB` are decimal); tables are TOML tables in the "
      "file and `k=v,k2=v2` elsewhere. Percents are 0 to 100 (`50` or `50%`): a cpu, memory "
      "or heap reading is a share of a limit the process cannot exceed, so a threshold above "
      "100 could never fire. A bad value, an unknown key or an unknown `SLEUTH_*` "
      "variable is an error that names where it came from; nothing falls back silently. "
      "`sleuth config defaults` prints every option as a commented TOML file.\n\n"
      "The other `SLEUTH_*` variables sleuth reads:\n\n";
  for (const EnvVar& var : NonOptionEnvVars())
    out += "- " + Code(var.name) + ": " + std::string(var.doc) + "\n";
  for (const Section& section : Sections()) {
    out += "\n### " + Code("[" + std::string(section.name) + "]") + "\n\n";
    out += std::string(section.doc) + "\n\n";
    out += "| Key | Type | Default | What it does | Why this default | Allowed |\n";
    out += "|---|---|---|---|---|---|\n";
    for (const Option& option : Options()) {
      if (option.section() != section.name) continue;
      std::string key = Code(option.key) + "<br>" + Code(EnvVarName(option));
      if (option.per_sink()) key += "<br>per sink";
      std::string default_text = option.default_text.empty() ? "empty" : Code(option.default_text);
      out += "| " + key + " | " + MarkdownCell(TypeName(option)) + " | " + default_text + " | " +
             MarkdownCell(option.doc) + " | " + MarkdownCell(option.why) + " | " +
             MarkdownCell(AllowedText(option)) + " |\n";
    }
  }
  return out;
}

Result<std::string> WithRenderedReference(std::string_view readme) {
  size_t begin = readme.find(kReadmeBeginMarker);
  size_t end = readme.find(kReadmeEndMarker);
  if (begin == std::string_view::npos || end == std::string_view::npos || end < begin)
    return InvalidArgument("README has no " + std::string(kReadmeBeginMarker) + " ... " +
                           std::string(kReadmeEndMarker) + " section");
  size_t content = readme.find('\n', begin);
  if (content == std::string_view::npos || content >= end)
    return InvalidArgument("README's " + std::string(kReadmeBeginMarker) +
                           " must be on a line of its own");
  return std::string(readme.substr(0, content + 1)) + RenderMarkdownReference() +
         std::string(readme.substr(end));
}

}  // namespace sleuth::config
