// Text renderings of the option table and of a Config. Pure functions;
// thread safe.
#pragma once

#include <string>
#include <string_view>

#include "sleuth/common/status.h"
#include "sleuth/config/config.h"

namespace sleuth::config {

// A TOML file setting every option to its default, each with its doc and
// the reason for the default as comments (`sleuth config defaults`).
// LoadConfig reads it back to Config{}.
std::string RenderDefaultsToml();

// `config` as a TOML file that LoadConfig reads back to `config`, except
// that the values of secret options (upload.headers) are replaced by
// "(hidden)". Sinks other than the one named "default" become
// [upload.sinks.NAME] tables. Secrets that are not in a Config
// (SLEUTH_UPLOAD_PASSWORD, SLEUTH_UPLOAD_TOKEN) never appear.
std::string RenderEffectiveToml(const Config& config);

// The README's option reference: an introduction to the sources and units
// and one Markdown table per section (`sleuth config reference`).
std::string RenderMarkdownReference();

// README.md holds RenderMarkdownReference() between these two lines.
inline constexpr std::string_view kReadmeBeginMarker = "<!-- options:begin -->";
inline constexpr std::string_view kReadmeEndMarker = "<!-- options:end -->";

// `readme` with the text between the marker lines replaced by
// RenderMarkdownReference(). Fails when the markers are missing.
[[nodiscard]] Result<std::string> WithRenderedReference(std::string_view readme);

}  // namespace sleuth::config
