#include "sleuth/dumps/dump_meta.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace sleuth::dumps {
namespace {

using nlohmann::json;

std::string Rfc3339(int64_t unix_nanos) {
  if (unix_nanos < 0) unix_nanos = 0;
  time_t secs = static_cast<time_t>(unix_nanos / 1'000'000'000);
  int millis = static_cast<int>((unix_nanos / 1'000'000) % 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

Status FieldError(std::string_view field, std::string_view expected) {
  return InvalidArgument("field \"" + std::string(field) + "\" must be " + std::string(expected));
}

const json* Find(const json& doc, std::string_view field) {
  auto it = doc.find(field);
  if (it == doc.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::string> RequiredString(const json& doc, std::string_view field) {
  const json* v = Find(doc, field);
  if (v == nullptr) return FieldError(field, "present (a string)");
  if (!v->is_string()) return FieldError(field, "a string");
  std::string value = v->get<std::string>();
  if (value.empty()) return FieldError(field, "a non-empty string");
  return value;
}

Result<int64_t> RequiredInt(const json& doc, std::string_view field) {
  const json* v = Find(doc, field);
  if (v == nullptr) return FieldError(field, "present (an integer)");
  if (!v->is_number_integer()) return FieldError(field, "an integer");
  return v->get<int64_t>();
}

Status OptionalString(const json& doc, std::string_view field, std::string* out) {
  const json* v = Find(doc, field);
  if (v == nullptr) return Status::Ok();
  if (!v->is_string()) return FieldError(field, "a string");
  *out = v->get<std::string>();
  return Status::Ok();
}

Status OptionalNumber(const json& doc, std::string_view field, double* out) {
  const json* v = Find(doc, field);
  if (v == nullptr) return Status::Ok();
  if (!v->is_number()) return FieldError(field, "a number");
  *out = v->get<double>();
  return Status::Ok();
}

Status OptionalNumber(const json& doc, std::string_view field, std::optional<double>* out) {
  const json* v = Find(doc, field);
  if (v == nullptr) return Status::Ok();
  if (!v->is_number()) return FieldError(field, "a number or null");
  *out = v->get<double>();
  return Status::Ok();
}

template <typename Int>
Status OptionalUnsigned(const json& doc, std::string_view field, Int* out) {
  const json* v = Find(doc, field);
  if (v == nullptr) return Status::Ok();
  if (!v->is_number_unsigned()) return FieldError(field, "a non-negative integer");
  *out = v->get<Int>();
  return Status::Ok();
}

Status OptionalStrings(const json& doc, std::string_view field, std::vector<std::string>* out) {
  const json* v = Find(doc, field);
  if (v == nullptr) return Status::Ok();
  if (!v->is_array()) return FieldError(field, "an array of strings");
  for (const json& item : *v) {
    if (!item.is_string()) return FieldError(field, "an array of strings");
    out->push_back(item.get<std::string>());
  }
  return Status::Ok();
}

bool IsLowerHex32(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

std::string SidecarJson(const DumpMeta& meta) {
  json j;
  j["event_id"] = meta.event_id;
  j["kind"] = meta.kind;
  j["reason"] = meta.reason;
  j["metric"] = meta.metric;
  j["value"] = meta.value ? json(*meta.value) : json(nullptr);
  j["average"] = meta.average ? json(*meta.average) : json(nullptr);
  if (meta.thresholds) {
    j["thresholds"] = {{"min", meta.thresholds->min},
                       {"diff", meta.thresholds->diff},
                       {"abs", meta.thresholds->abs},
                       {"max", meta.thresholds->max},
                       {"cooldown_seconds", meta.thresholds->cooldown_seconds}};
  } else {
    j["thresholds"] = nullptr;
  }
  j["limits"] = {{"cpu_cores", meta.cpu_limit_cores},
                 {"cpu_source", meta.cpu_limit_source},
                 {"memory_bytes", meta.memory_limit_bytes},
                 {"memory_source", meta.memory_limit_source}};
  j["pid"] = meta.pid;
  j["hostname"] = meta.hostname;
  j["service"] = meta.service;
  j["labels"] = meta.labels;
  j["cmdline"] = meta.cmdline;
  j["executable"] = meta.executable;
  j["build_id"] = meta.build_id;
  j["start_time"] = Rfc3339(meta.start_time_unix_nanos);
  j["start_time_unix_nanos"] = meta.start_time_unix_nanos;
  j["duration_nanos"] = meta.duration_nanos;
  j["comment"] = meta.comment;
  j["profile_file"] = meta.profile_file;
  j["profile_bytes"] = meta.profile_bytes;
  j["notes"] = meta.notes;
  try {
    return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  } catch (const std::exception&) {
    // Only allocation can fail here; an empty sidecar is refused by the
    // writer, so the dump fails instead of the host.
    return {};
  }
}

Result<DumpMeta> ParseSidecar(std::string_view json_text) {
  if (json_text.size() > kMaxSidecarBytes) {
    return InvalidArgument("larger than " + std::to_string(kMaxSidecarBytes) + " bytes");
  }
  try {
    json doc = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return InvalidArgument("not valid JSON");
    if (!doc.is_object()) return InvalidArgument("not a JSON object");
    DumpMeta meta;
    SLEUTH_ASSIGN_OR_RETURN(meta.event_id, RequiredString(doc, "event_id"));
    if (!IsLowerHex32(meta.event_id)) return FieldError("event_id", "32 lowercase hex digits");
    SLEUTH_ASSIGN_OR_RETURN(meta.kind, RequiredString(doc, "kind"));
    bool kind_ok = std::all_of(meta.kind.begin(), meta.kind.end(),
                               [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
    if (!kind_ok) return FieldError("kind", "a lowercase word such as cpu, heap, memory, threads");
    SLEUTH_ASSIGN_OR_RETURN(meta.reason, RequiredString(doc, "reason"));
    SLEUTH_ASSIGN_OR_RETURN(meta.service, RequiredString(doc, "service"));
    SLEUTH_ASSIGN_OR_RETURN(meta.pid, RequiredInt(doc, "pid"));
    SLEUTH_ASSIGN_OR_RETURN(meta.start_time_unix_nanos, RequiredInt(doc, "start_time_unix_nanos"));
    SLEUTH_RETURN_IF_ERROR(OptionalString(doc, "metric", &meta.metric));
    SLEUTH_RETURN_IF_ERROR(OptionalNumber(doc, "value", &meta.value));
    SLEUTH_RETURN_IF_ERROR(OptionalNumber(doc, "average", &meta.average));
    if (const json* t = Find(doc, "thresholds")) {
      if (!t->is_object()) return FieldError("thresholds", "an object or null");
      DumpMeta::Thresholds th;
      SLEUTH_RETURN_IF_ERROR(OptionalNumber(*t, "min", &th.min).WithContext("thresholds"));
      SLEUTH_RETURN_IF_ERROR(OptionalNumber(*t, "diff", &th.diff).WithContext("thresholds"));
      SLEUTH_RETURN_IF_ERROR(OptionalNumber(*t, "abs", &th.abs).WithContext("thresholds"));
      SLEUTH_RETURN_IF_ERROR(OptionalNumber(*t, "max", &th.max).WithContext("thresholds"));
      SLEUTH_RETURN_IF_ERROR(
          OptionalNumber(*t, "cooldown_seconds", &th.cooldown_seconds).WithContext("thresholds"));
      meta.thresholds = th;
    }
    if (const json* l = Find(doc, "limits")) {
      if (!l->is_object()) return FieldError("limits", "an object");
      SLEUTH_RETURN_IF_ERROR(
          OptionalNumber(*l, "cpu_cores", &meta.cpu_limit_cores).WithContext("limits"));
      SLEUTH_RETURN_IF_ERROR(
          OptionalString(*l, "cpu_source", &meta.cpu_limit_source).WithContext("limits"));
      SLEUTH_RETURN_IF_ERROR(
          OptionalUnsigned(*l, "memory_bytes", &meta.memory_limit_bytes).WithContext("limits"));
      SLEUTH_RETURN_IF_ERROR(
          OptionalString(*l, "memory_source", &meta.memory_limit_source).WithContext("limits"));
    }
    SLEUTH_RETURN_IF_ERROR(OptionalString(doc, "hostname", &meta.hostname));
    if (const json* l = Find(doc, "labels")) {
      if (!l->is_object()) return FieldError("labels", "an object of strings");
      for (const auto& [name, value] : l->items()) {
        if (!value.is_string()) return FieldError("labels." + name, "a string");
        meta.labels[name] = value.get<std::string>();
      }
    }
    SLEUTH_RETURN_IF_ERROR(OptionalStrings(doc, "cmdline", &meta.cmdline));
    SLEUTH_RETURN_IF_ERROR(OptionalString(doc, "executable", &meta.executable));
    SLEUTH_RETURN_IF_ERROR(OptionalString(doc, "build_id", &meta.build_id));
    if (const json* d = Find(doc, "duration_nanos")) {
      if (!d->is_number_integer() || d->get<int64_t>() < 0) {
        return FieldError("duration_nanos", "a non-negative integer");
      }
      meta.duration_nanos = d->get<int64_t>();
    }
    SLEUTH_RETURN_IF_ERROR(OptionalString(doc, "comment", &meta.comment));
    SLEUTH_RETURN_IF_ERROR(OptionalStrings(doc, "notes", &meta.notes));
    SLEUTH_RETURN_IF_ERROR(OptionalString(doc, "profile_file", &meta.profile_file));
    SLEUTH_RETURN_IF_ERROR(OptionalUnsigned(doc, "profile_bytes", &meta.profile_bytes));
    return meta;
  } catch (const std::exception& e) {
    // get<int64_t>() of an out-of-range number, bad_alloc, and the like.
    return InvalidArgument(std::string("unexpected content: ") + e.what());
  }
}

}  // namespace sleuth::dumps
