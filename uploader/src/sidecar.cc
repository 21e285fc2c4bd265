#include "sleuth/uploader/sidecar.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace sleuth::uploader {
namespace {

using nlohmann::json;

Status FieldError(std::string_view field, std::string_view expected) {
  return InvalidArgument("field \"" + std::string(field) + "\" must be " + std::string(expected));
}

Result<std::string> RequiredString(const json& doc, std::string_view field) {
  auto it = doc.find(field);
  if (it == doc.end()) return FieldError(field, "present (a string)");
  if (!it->is_string()) return FieldError(field, "a string");
  std::string value = it->get<std::string>();
  if (value.empty()) return FieldError(field, "a non-empty string");
  return value;
}

std::string OptionalString(const json& doc, std::string_view field) {
  auto it = doc.find(field);
  if (it == doc.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

Result<int64_t> RequiredInt(const json& doc, std::string_view field) {
  auto it = doc.find(field);
  if (it == doc.end()) return FieldError(field, "present (an integer)");
  if (!it->is_number_integer()) return FieldError(field, "an integer");
  return it->get<int64_t>();
}

}  // namespace

Result<DumpMeta> ParseSidecar(std::string_view json_text) {
  if (json_text.size() > kMaxSidecarBytes) {
    return InvalidArgument("larger than " + std::to_string(kMaxSidecarBytes) + " bytes");
  }
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) return InvalidArgument("not a JSON object");
  try {
    DumpMeta meta;
    SLEUTH_ASSIGN_OR_RETURN(meta.event_id, RequiredString(doc, "event_id"));
    bool hex = std::all_of(meta.event_id.begin(), meta.event_id.end(),
                           [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    if (meta.event_id.size() != 32 || !hex) {
      return FieldError("event_id", "32 lowercase hex digits");
    }
    SLEUTH_ASSIGN_OR_RETURN(meta.kind, RequiredString(doc, "kind"));
    bool kind_ok = std::all_of(meta.kind.begin(), meta.kind.end(),
                               [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
    if (!kind_ok) return FieldError("kind", "a lowercase word such as cpu, heap, memory, threads");
    SLEUTH_ASSIGN_OR_RETURN(meta.reason, RequiredString(doc, "reason"));
    SLEUTH_ASSIGN_OR_RETURN(meta.service, RequiredString(doc, "service"));
    SLEUTH_ASSIGN_OR_RETURN(meta.pid, RequiredInt(doc, "pid"));
    SLEUTH_ASSIGN_OR_RETURN(meta.start_time_unix_nanos, RequiredInt(doc, "start_time_unix_nanos"));
    meta.metric = OptionalString(doc, "metric");
    meta.hostname = OptionalString(doc, "hostname");
    meta.profile_file = OptionalString(doc, "profile_file");
    if (auto it = doc.find("duration_nanos"); it != doc.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 0) {
        return FieldError("duration_nanos", "a non-negative integer");
      }
      meta.duration_nanos = it->get<int64_t>();
    }
    if (auto it = doc.find("labels"); it != doc.end() && !it->is_null()) {
      if (!it->is_object()) return FieldError("labels", "an object of strings");
      for (const auto& [name, value] : it->items()) {
        if (!value.is_string()) return FieldError("labels." + name, "a string");
        meta.labels[name] = value.get<std::string>();
      }
    }
    return meta;
  } catch (const json::exception& e) {
    // get<int64_t>() of an out-of-range number, and the like.
    return InvalidArgument(std::string("unexpected content: ") + e.what());
  }
}

}  // namespace sleuth::uploader
