// A configured upload destination made ready to use: its protocol parsed,
// its secrets read, its settings checked. And the Redactor that keeps those
// secrets out of every line the uploader writes.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sleuth/common/status.h"
#include "sleuth/config/config.h"
#include "sleuth/uploader/protocols.h"

namespace sleuth::uploader {

// Looks up an environment variable; returns nullptr when unset. Injected so
// tests need not touch the process environment.
using EnvLookup = std::function<const char*(const char*)>;

inline constexpr char kPasswordEnv[] = "SLEUTH_UPLOAD_PASSWORD";
inline constexpr char kTokenEnv[] = "SLEUTH_UPLOAD_TOKEN";

struct Sink {
  std::string name;
  std::string url;  // no trailing slash
  Protocol protocol = Protocol::kPyroscope;
  // Basic auth when `username` is set. The bearer token goes in an
  // Authorization header when there is no username, and, for the http
  // protocol, in the token part too.
  std::string username;
  std::string password;  // secret
  std::string token;     // secret
  std::string tenant_id;
  std::vector<std::pair<std::string, std::string>> headers;  // values are secret
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure_skip_verify = false;
};

// Builds a Sink from its configuration. The password comes from
// password_file if set, else from $SLEUTH_UPLOAD_PASSWORD (only with a
// username); the token from token_file, else $SLEUTH_UPLOAD_TOKEN. The
// environment variables apply to the sink named "default" only, so a second
// backend never receives the first one's secrets. One trailing newline of a
// secret file is dropped. Errors name the sink and the setting, never a
// secret's value.
[[nodiscard]] Result<Sink> ResolveSink(const config::SinkConfig& config, const EnvLookup& getenv);

// Replaces every secret it knows with "[redacted]". Thread-compatible to
// build, thread safe to use once built.
class Redactor {
 public:
  // Adds a secret; values shorter than 3 characters are ignored (redacting
  // every "a" of a log line would hide more than it protects).
  void Add(std::string_view secret);
  // Adds a sink's password, token, header values and the base64 form of its
  // basic-auth credentials (what a server might echo back).
  void AddSink(const Sink& sink);
  std::string Redact(std::string_view text) const;

 private:
  std::vector<std::string> secrets_;
};

std::string Base64(std::string_view data);

}  // namespace sleuth::uploader
