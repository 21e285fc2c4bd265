#include "sleuth/uploader/sink.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "sleuth/common/files.h"
#include "sleuth/common/log.h"
#include "sleuth/uploader/spool.h"

namespace sleuth::uploader {
namespace {

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Reads a secret from a file. The error names the file, never its content.
Result<std::string> ReadSecretFile(const std::string& sink, std::string_view setting,
                                   const std::string& path) {
  Result<std::string> content = ReadFile(path, 64 * 1024);
  if (!content.ok()) {
    return InvalidArgument("sink \"" + sink + "\": cannot read upload." + std::string(setting) +
                           " " + path + ": " + content.status().message());
  }
  std::string secret = std::move(*content);
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) {
    return InvalidArgument("sink \"" + sink + "\": upload." + std::string(setting) + " " + path +
                           " is empty");
  }
  if (HasControl(secret)) {
    return InvalidArgument("sink \"" + sink + "\": upload." + std::string(setting) + " " + path +
                           " holds control characters (one secret on one line is expected)");
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
    log::Warn("upload: " + path + " (upload." + std::string(setting) + " of sink \"" + sink +
              "\") is readable by other users; chmod 600 it");
  }
  return secret;
}

Status CheckReadable(const std::string& sink, std::string_view setting, const std::string& path) {
  if (path.empty()) return Status::Ok();
  if (::access(path.c_str(), R_OK) != 0) {
    return InvalidArgument("sink \"" + sink + "\": upload." + std::string(setting) + " " + path +
                           " is not readable: " + ErrnoText(errno));
  }
  return Status::Ok();
}

}  // namespace

Result<Sink> ResolveSink(const config::SinkConfig& config, const EnvLookup& getenv) {
  Sink sink;
  sink.name = config.name;
  SLEUTH_RETURN_IF_ERROR(CheckSinkName(sink.name));
  sink.url = config.url;
  while (!sink.url.empty() && sink.url.back() == '/') sink.url.pop_back();
  if (sink.url.rfind("http://", 0) != 0 && sink.url.rfind("https://", 0) != 0) {
    return InvalidArgument("sink \"" + sink.name +
                           "\": upload.url must start with http:// or "
                           "https:// (e.g. http://127.0.0.1:4040)");
  }
  if (HasControl(sink.url) || sink.url.find(' ') != std::string::npos) {
    return InvalidArgument("sink \"" + sink.name +
                           "\": upload.url holds spaces or control "
                           "characters");
  }
  Result<Protocol> protocol = ParseProtocol(config.protocol);
  if (!protocol.ok()) return protocol.status().WithContext("sink \"" + sink.name + "\"");
  sink.protocol = *protocol;

  // The environment is one per process, so its secrets belong to the sink
  // named "default" (the keys directly under [upload]); a further sink never
  // receives them by accident and names its own files.
  auto env = [&](const char* name) -> const char* {
    if (sink.name != "default" || !getenv) return nullptr;
    const char* value = getenv(name);
    return value != nullptr && *value != '\0' ? value : nullptr;
  };
  sink.username = config.username;
  if (!config.password_file.empty()) {
    if (sink.username.empty()) {
      return InvalidArgument("sink \"" + sink.name +
                             "\": upload.password_file is set but "
                             "upload.username is empty; set the user name too");
    }
    SLEUTH_ASSIGN_OR_RETURN(sink.password,
                            ReadSecretFile(sink.name, "password_file", config.password_file));
  } else if (!sink.username.empty()) {
    if (const char* value = env(kPasswordEnv)) sink.password = value;
  }
  if (!config.token_file.empty()) {
    SLEUTH_ASSIGN_OR_RETURN(sink.token, ReadSecretFile(sink.name, "token_file", config.token_file));
  } else if (const char* value = env(kTokenEnv)) {
    sink.token = value;
  }
  if (HasControl(sink.password) || HasControl(sink.token)) {
    return InvalidArgument("sink \"" + sink.name + "\": $" + std::string(kPasswordEnv) + " or $" +
                           kTokenEnv + " holds control characters");
  }
  sink.tenant_id = config.tenant_id;
  if (HasControl(sink.tenant_id)) {
    return InvalidArgument("sink \"" + sink.name + "\": upload.tenant_id holds control characters");
  }
  for (const auto& [name, value] : config.headers) {
    if (name.empty() || HasControl(name) || name.find(':') != std::string::npos ||
        name.find(' ') != std::string::npos) {
      return InvalidArgument("sink \"" + sink.name +
                             "\": upload.headers has an invalid header "
                             "name \"" +
                             name + "\"");
    }
    if (HasControl(value)) {
      return InvalidArgument("sink \"" + sink.name + "\": the value of header " + name +
                             " in upload.headers holds control characters");
    }
    sink.headers.emplace_back(name, value);
  }
  sink.ca_file = config.ca_file;
  sink.cert_file = config.cert_file;
  sink.key_file = config.key_file;
  if (sink.cert_file.empty() != sink.key_file.empty()) {
    return InvalidArgument("sink \"" + sink.name +
                           "\": set both upload.cert_file and "
                           "upload.key_file for a client certificate, or neither");
  }
  SLEUTH_RETURN_IF_ERROR(CheckReadable(sink.name, "ca_file", sink.ca_file));
  SLEUTH_RETURN_IF_ERROR(CheckReadable(sink.name, "cert_file", sink.cert_file));
  SLEUTH_RETURN_IF_ERROR(CheckReadable(sink.name, "key_file", sink.key_file));
  sink.insecure_skip_verify = config.insecure_skip_verify;
  return sink;
}

void Redactor::Add(std::string_view secret) {
  if (secret.size() < 3) return;
  if (std::find(secrets_.begin(), secrets_.end(), secret) != secrets_.end()) return;
  secrets_.emplace_back(secret);
  // Longest first, so a secret that contains another is replaced whole.
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

void Redactor::AddSink(const Sink& sink) {
  Add(sink.password);
  Add(sink.token);
  for (const auto& [name, value] : sink.headers) Add(value);
  if (!sink.password.empty()) Add(Base64(sink.username + ":" + sink.password));
}

std::string Redactor::Redact(std::string_view text) const {
  std::string out(text);
  for (const std::string& secret : secrets_) {
    size_t pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), "[redacted]");
      pos += 10;
    }
  }
  return out;
}

std::string Base64(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (uint32_t{static_cast<unsigned char>(data[i])} << 16) |
                 (uint32_t{static_cast<unsigned char>(data[i + 1])} << 8) |
                 static_cast<unsigned char>(data[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < data.size()) {
    uint32_t v = uint32_t{static_cast<unsigned char>(data[i])} << 16;
    if (i + 1 < data.size()) v |= uint32_t{static_cast<unsigned char>(data[i + 1])} << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace sleuth::uploader
