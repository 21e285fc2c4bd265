#include "sleuth/config/render.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "sleuth/common/files.h"
#include "sleuth/config/load.h"
#include "sleuth/config/option_table.h"

namespace sleuth::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Loads `toml` through a real file, as `sleuth --config` would.
Result<Config> LoadText(std::string_view toml) {
  std::string pattern = std::filesystem::temp_directory_path() / "sleuth_render.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return IoError("mkdtemp failed");
  std::string file = pattern + "/c.toml";
  Status written = WriteFileAtomic(file, toml);
  Result<Config> config =
      written.ok() ? LoadConfig({.file_path = file, .use_env_config_path = false}) : written;
  std::error_code ignored;
  std::filesystem::remove_all(pattern, ignored);
  return config;
}

TEST(RenderDefaultsTomlTest, LoadsBackToTheDefaults) {
  std::string toml = RenderDefaultsToml();
  Result<Config> config = LoadText(toml);
  ASSERT_TRUE(config.ok()) << config.status().message() << "\n" << toml;
  EXPECT_EQ(*config, Config{});
}

TEST(RenderDefaultsTomlTest, ShowsEveryOptionWithItsDocAndReason) {
  std::string toml = RenderDefaultsToml();
  for (const Section& section : Sections())
    EXPECT_THAT(toml, HasSubstr("\n[" + std::string(section.name) + "]\n"));
  for (const Option& option : Options()) {
    SCOPED_TRACE(std::string(option.key));
    Value value = *ParseOptionText(option, option.default_text);
    EXPECT_THAT(toml, HasSubstr("\n" + std::string(option.name()) + " = " +
                                FormatOptionToml(option, value) + "\n"));
    // Comments are wrapped, so look for the first words only.
    EXPECT_THAT(toml, HasSubstr(std::string(option.doc.substr(0, 30))));
    EXPECT_THAT(toml, HasSubstr(std::string(option.why.substr(0, 30))));
  }
  EXPECT_THAT(toml, HasSubstr("# [upload.sinks.backup]"));
  // The units are stated.
  EXPECT_THAT(toml, HasSubstr("percent of the process's CPU limit"));
  EXPECT_THAT(toml, HasSubstr("RSS in percent of the memory limit"));
  EXPECT_THAT(toml, HasSubstr("The count of live threads"));
  EXPECT_THAT(toml, HasSubstr("In-use heap bytes (tcmalloc) in percent of the memory limit"));
  for (size_t start = 0, end; start < toml.size(); start = end + 1) {
    end = toml.find('\n', start);
    if (end == std::string::npos) end = toml.size();
    EXPECT_LE(end - start, 100u) << toml.substr(start, end - start);
  }
}

TEST(RenderEffectiveTomlTest, RoundTripsALoadedConfig) {
  Result<Config> loaded = LoadConfig({
      .file_path = std::string(SLEUTH_FIXTURE_DIR) + "/config/good.toml",
      .set_args = {"upload.headers=", "upload.sinks.zeta.url=http://127.0.0.1:9",
                   "agent.labels=quote=a\"b,comma=x\\,y,back=c\\\\d", "agent.warmup=history"},
  });
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  std::string toml = RenderEffectiveToml(*loaded);
  Result<Config> again = LoadText(toml);
  ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << toml;
  EXPECT_EQ(*again, *loaded) << toml;
  EXPECT_THAT(toml, HasSubstr("\n[upload.sinks.archive]\n"));
  EXPECT_THAT(toml, HasSubstr("\n[upload.sinks.zeta]\n"));
  // A changed value names its default; an unchanged one does not.
  EXPECT_THAT(toml, HasSubstr("# Default: 70.\nabs = 60\n"));
  EXPECT_THAT(toml, HasSubstr("# Default: empty.\nservice = \"checkout\"\n"));
  EXPECT_THAT(toml, Not(HasSubstr("# Default: 25.\ndiff = 25\n")));
}

TEST(RenderEffectiveTomlTest, DefaultsRoundTrip) {
  Result<Config> again = LoadText(RenderEffectiveToml(Config{}));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(*again, Config{});
}

TEST(RenderEffectiveTomlTest, NeverShowsSecrets) {
  Result<Config> loaded = LoadConfig({
      .env = {"SLEUTH_UPLOAD_PASSWORD=hunter2", "SLEUTH_UPLOAD_TOKEN=t0ken",
              "SLEUTH_UPLOAD_URL=http://127.0.0.1:4040", "SLEUTH_UPLOAD_HEADERS=X-Api-Key=s3cr3t"},
      .set_args = {"upload.sinks.b.url=http://127.0.0.1:4041",
                   "upload.sinks.b.headers=Authorization=Bearer abc123"},
  });
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  std::string toml = RenderEffectiveToml(*loaded);
  for (const char* secret : {"hunter2", "t0ken", "s3cr3t", "abc123"})
    EXPECT_THAT(toml, Not(HasSubstr(secret)));
  EXPECT_THAT(toml, HasSubstr("headers = { \"X-Api-Key\" = \"(hidden)\" }"));
  EXPECT_THAT(toml, HasSubstr("headers = { \"Authorization\" = \"(hidden)\" }"));
}

TEST(RenderMarkdownReferenceTest, HasARowPerOption) {
  std::string markdown = RenderMarkdownReference();
  for (const Option& option : Options()) {
    SCOPED_TRACE(std::string(option.key));
    EXPECT_THAT(markdown,
                HasSubstr("| `" + std::string(option.key) + "`<br>`" + EnvVarName(option) + "`"));
  }
  for (const EnvVar& var : NonOptionEnvVars())
    EXPECT_THAT(markdown, HasSubstr("- `" + std::string(var.name) + "`: "));
  EXPECT_THAT(markdown, HasSubstr("| `upload.protocol`<br>`SLEUTH_UPLOAD_PROTOCOL`<br>per sink | "
                                  "`pyroscope`, `pyroscope-ingest`, `http` | `pyroscope` |"));
  EXPECT_THAT(markdown, HasSubstr("| `agent.warmup`<br>`SLEUTH_AGENT_WARMUP` | integer or "
                                  "`history` | `history` |"));
  EXPECT_THAT(markdown, HasSubstr("One busy thread on an unlimited 2-core machine reads 50."));
  // Every table row has exactly its six cells: no stray '|' in the text.
  size_t rows = 0;
  for (size_t start = 0, end; start < markdown.size(); start = end + 1) {
    end = markdown.find('\n', start);
    std::string line = markdown.substr(start, end - start);
    if (!line.starts_with("| `")) continue;
    ++rows;
    size_t bars = 0;
    for (size_t i = 0; i < line.size(); ++i)
      if (line[i] == '|' && (i == 0 || line[i - 1] != '\\')) ++bars;
    EXPECT_EQ(bars, 7u) << line;
  }
  EXPECT_EQ(rows, Options().size());
}

TEST(RenderMarkdownReferenceTest, WithRenderedReferenceReplacesTheSection) {
  std::string readme = "# x\n\n<!-- options:begin -->\nold text\n<!-- options:end -->\ntail\n";
  Result<std::string> updated = WithRenderedReference(readme);
  ASSERT_TRUE(updated.ok()) << updated.status().message();
  EXPECT_EQ(*updated, "# x\n\n<!-- options:begin -->\n" + RenderMarkdownReference() +
                          "<!-- options:end -->\ntail\n");
  EXPECT_EQ(*WithRenderedReference(*updated), *updated);
  EXPECT_FALSE(WithRenderedReference("# no markers\n").ok());
  EXPECT_FALSE(WithRenderedReference("<!-- options:end -->\n<!-- options:begin -->\n").ok());
}

// README.md's reference must be exactly what the table renders, so the
// documentation can never drift from the code.
TEST(RenderMarkdownReferenceTest, ReadmeIsUpToDate) {
  std::string path = std::string(SLEUTH_SOURCE_DIR) + "/README.md";
  Result<std::string> readme = ReadFile(path);
  ASSERT_TRUE(readme.ok()) << readme.status().message();
  size_t begin = readme->find(kReadmeBeginMarker);
  size_t end = readme->find(kReadmeEndMarker);
  ASSERT_NE(begin, std::string::npos) << path << " lacks " << kReadmeBeginMarker;
  ASSERT_NE(end, std::string::npos) << path << " lacks " << kReadmeEndMarker;
  size_t content = readme->find('\n', begin) + 1;
  ASSERT_LE(content, end);
  std::string in_readme = readme->substr(content, end - content);
  std::string rendered = RenderMarkdownReference();
  if (in_readme == rendered) return;
  // Show the first line that differs rather than two pages of Markdown.
  size_t line = 1;
  size_t at = 0;
  while (at < in_readme.size() && at < rendered.size() && in_readme[at] == rendered[at]) {
    if (in_readme[at] == '\n') ++line;
    ++at;
  }
  size_t line_start = in_readme.rfind('\n', at == 0 ? 0 : at - 1);
  line_start = line_start == std::string::npos || at == 0 ? 0 : line_start + 1;
  auto line_at = [&](const std::string& text) {
    return line_start >= text.size()
               ? std::string("(end)")
               : text.substr(line_start, text.find('\n', line_start) - line_start);
  };
  ADD_FAILURE() << "README.md's option reference is out of date; line " << line
                << " of the section differs.\n  README:   " << line_at(in_readme)
                << "\n  rendered: " << line_at(rendered) << "\nRegenerate it with:\n"
                << "  cmake --build <build dir> --target sleuth_config_render && "
                << "<build dir>/config/sleuth_config_render update-readme README.md";
}

}  // namespace
}  // namespace sleuth::config
