#include "sleuth/uploader/protocols.h"

#include <algorithm>
#include <map>

#include "sleuth/common/proto_writer.h"

namespace sleuth::uploader {
namespace {

// Field numbers of Grafana Pyroscope's push.v1 and types.v1 messages.
constexpr uint32_t kPushRequestSeries = 1;
constexpr uint32_t kSeriesLabels = 1;
constexpr uint32_t kSeriesSamples = 2;
constexpr uint32_t kLabelPairName = 1;
constexpr uint32_t kLabelPairValue = 2;
constexpr uint32_t kRawSampleRawProfile = 1;
constexpr uint32_t kRawSampleId = 2;

bool IsLabelChar(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  return !first && c >= '0' && c <= '9';
}

std::string SanitizeLabelName(std::string_view name) {
  std::string out(name);
  for (size_t i = 0; i < out.size(); ++i) {
    if (!IsLabelChar(out[i], i == 0)) out[i] = '_';
  }
  if (out.empty()) out = "_";
  return out;
}

// The labels sleuth sets itself; an agent label may not override them.
std::map<std::string, std::string> OwnLabels(const DumpMeta& meta) {
  return {
      {"__name__", PyroscopeProfileName(meta.kind)},
      {"__delta__", "false"},
      {"service_name", meta.service},
      {"hostname", meta.hostname},
      {"pid", std::to_string(meta.pid)},
      {"sleuth_event_id", meta.event_id},
      {"sleuth_kind", meta.kind},
      {"sleuth_reason", meta.reason},
  };
}

// Replaces what the legacy ingest key syntax reserves.
std::string IngestSafe(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '{' || c == '}' || c == ',' || c == '=' || c == ' ' || c == '\t' || c == '\n' ||
        c == '\r' || c == '"') {
      c = '_';
    }
  }
  return out;
}

void AppendPart(std::string* body, std::string_view boundary, std::string_view name,
                std::string_view content, std::string_view content_type = {},
                std::string_view file_name = {}) {
  *body += "--";
  *body += boundary;
  *body += "\r\nContent-Disposition: form-data; name=\"";
  *body += name;
  *body += '"';
  if (!file_name.empty()) {
    *body += "; filename=\"";
    *body += file_name;
    *body += '"';
  }
  *body += "\r\n";
  if (!content_type.empty()) {
    *body += "Content-Type: ";
    *body += content_type;
    *body += "\r\n";
  }
  *body += "\r\n";
  *body += content;
  *body += "\r\n";
}

// A file name safe inside a quoted Content-Disposition parameter.
std::string QuotableFileName(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c == '"' || c == '\\' || c == '\r' || c == '\n') c = '_';
  }
  return out;
}

}  // namespace

Result<Protocol> ParseProtocol(std::string_view name) {
  if (name == "pyroscope") return Protocol::kPyroscope;
  if (name == "pyroscope-ingest") return Protocol::kPyroscopeIngest;
  if (name == "http") return Protocol::kHttp;
  return InvalidArgument("unknown upload protocol \"" + std::string(name) +
                         "\" (expected pyroscope, pyroscope-ingest or http)");
}

std::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kPyroscope:
      return "pyroscope";
    case Protocol::kPyroscopeIngest:
      return "pyroscope-ingest";
    case Protocol::kHttp:
      return "http";
  }
  return "?";
}

std::string PyroscopeProfileName(std::string_view kind) {
  if (kind == "cpu") return "process_cpu";
  if (kind == "heap" || kind == "memory") return "memory";
  return SanitizeLabelName(kind);
}

std::vector<std::pair<std::string, std::string>> PyroscopeLabels(const DumpMeta& meta) {
  std::map<std::string, std::string> labels = OwnLabels(meta);
  for (const auto& [name, value] : meta.labels) {
    // Reserved (__*) names and sleuth's own ones stay sleuth's.
    std::string clean = SanitizeLabelName(name);
    if (clean.rfind("__", 0) == 0) continue;
    labels.emplace(std::move(clean), value);  // no-op when the name is taken
  }
  // An empty value means "no such label" to Prometheus-style backends.
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [name, value] : labels) {
    if (!value.empty()) out.emplace_back(name, std::move(value));
  }
  return out;
}

std::string EventIdAsUuid(std::string_view id) {
  if (id.size() != 32) return std::string(id);
  std::string out;
  out.reserve(36);
  out.append(id.substr(0, 8)).append("-").append(id.substr(8, 4)).append("-");
  out.append(id.substr(12, 4)).append("-").append(id.substr(16, 4)).append("-");
  out.append(id.substr(20));
  return out;
}

HttpRequest BuildPyroscopePush(std::string_view base_url, const DumpMeta& meta,
                               std::string_view profile_gz) {
  ProtoWriter series;
  for (const auto& [name, value] : PyroscopeLabels(meta)) {
    ProtoWriter pair;
    pair.String(kLabelPairName, name);
    pair.String(kLabelPairValue, value);
    series.Message(kSeriesLabels, pair);
  }
  ProtoWriter sample;
  sample.Bytes(kRawSampleRawProfile, profile_gz);
  sample.String(kRawSampleId, EventIdAsUuid(meta.event_id));
  series.Message(kSeriesSamples, sample);
  ProtoWriter request;
  request.Message(kPushRequestSeries, series);

  HttpRequest out;
  out.url = std::string(base_url) + "/push.v1.PusherService/Push";
  out.headers = {"Content-Type: application/proto", "Connect-Protocol-Version: 1"};
  out.body = request.Take();
  return out;
}

std::string IngestName(const DumpMeta& meta) {
  std::map<std::string, std::string> labels;
  for (const auto& [name, value] : meta.labels) labels[SanitizeLabelName(name)] = value;
  labels.erase("service_name");  // the service is the name before the braces
  labels["hostname"] = meta.hostname;
  labels["pid"] = std::to_string(meta.pid);
  labels["sleuth_event_id"] = meta.event_id;
  labels["sleuth_kind"] = meta.kind;
  labels["sleuth_reason"] = meta.reason;
  std::string name = IngestSafe(meta.service) + "{";
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (key.rfind("__", 0) == 0 || value.empty()) continue;
    if (!first) name += ',';
    first = false;
    name += key;
    name += '=';
    name += IngestSafe(value);
  }
  name += '}';
  return name;
}

HttpRequest BuildPyroscopeIngest(std::string_view base_url, const DumpMeta& meta,
                                 std::string_view profile_gz) {
  constexpr int64_t kNanosPerSecond = 1'000'000'000;
  int64_t from = meta.start_time_unix_nanos / kNanosPerSecond;
  int64_t end_nanos = meta.start_time_unix_nanos + meta.duration_nanos;
  int64_t until = (end_nanos + kNanosPerSecond - 1) / kNanosPerSecond;
  if (until <= from) until = from + 1;  // a point-in-time dump still spans a second

  HttpRequest out;
  out.url = std::string(base_url) + "/ingest?name=" + PercentEncode(IngestName(meta)) +
            "&from=" + std::to_string(from) + "&until=" + std::to_string(until) +
            "&spyName=sleuth&format=pprof";
  out.headers = {"Content-Type: binary/octet-stream"};
  out.body = std::string(profile_gz);
  return out;
}

HttpRequest BuildHttpMultipart(std::string_view url, const DumpMeta& meta,
                               std::string_view profile_gz, std::string_view sidecar_json,
                               std::string_view profile_file_name, std::string_view token,
                               std::string_view boundary) {
  HttpRequest out;
  out.url = std::string(url);
  out.headers = {"Content-Type: multipart/form-data; boundary=" + std::string(boundary)};
  std::string& body = out.body;
  body.reserve(profile_gz.size() + sidecar_json.size() + 1024);
  AppendPart(&body, boundary, "profile", profile_gz, "application/octet-stream",
             QuotableFileName(profile_file_name));
  AppendPart(&body, boundary, "profile_type", meta.kind);
  AppendPart(&body, boundary, "event_id", meta.event_id);
  AppendPart(&body, boundary, "comment", meta.reason);
  AppendPart(&body, boundary, "token", token);
  AppendPart(&body, boundary, "metadata", sidecar_json, "application/json");
  body += "--";
  body += boundary;
  body += "--\r\n";
  return out;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (unsigned char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace sleuth::uploader
