#include "sleuth/uploader/retry.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace sleuth::uploader {

Outcome Classify(long http_status) {
  if (http_status >= 200 && http_status < 300) return Outcome::kDelivered;
  if (http_status == 0 || http_status == 408 || http_status == 429 || http_status >= 500) {
    return Outcome::kRetry;
  }
  if (http_status == 401 || http_status == 403 || http_status == 404 || http_status == 405 ||
      http_status == 407 || (http_status >= 300 && http_status < 400)) {
    return Outcome::kSinkRejected;
  }
  if (http_status >= 400) return Outcome::kRejected;
  // 1xx as a final status is a broken server; treat it as transient.
  return Outcome::kRetry;
}

Nanos BackoffDelay(int failures, Nanos retry_initial, Nanos retry_max, double unit_random) {
  if (retry_max < retry_initial) retry_max = retry_initial;
  if (failures < 1) failures = 1;
  // Doubling in floating point cannot overflow; 2^62 ns is far past any cap.
  double base =
      static_cast<double>(retry_initial.count()) * std::ldexp(1.0, std::min(failures - 1, 62));
  base = std::min(base, static_cast<double>(retry_max.count()));
  unit_random = std::clamp(unit_random, 0.0, 1.0);
  double jittered = base / 2 + base / 2 * unit_random;
  auto delay = Nanos(static_cast<int64_t>(jittered));
  return std::clamp(delay, retry_initial, retry_max);
}

std::optional<Nanos> ParseRetryAfter(std::string_view value, std::chrono::seconds now_unix) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r' ||
                            value.back() == '\n')) {
    value.remove_suffix(1);
  }
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return kMaxRetryAfter;  // absurdly long: the caller caps it anyway
    return std::chrono::seconds(std::stoll(std::string(value)));
  }
  // curl_getdate parses every date form HTTP allows, independent of the
  // host's locale (strptime's %a and %b are not).
  std::string text(value);
  time_t when = curl_getdate(text.c_str(), nullptr);
  if (when == -1) return std::nullopt;
  auto wait = std::chrono::seconds(when) - now_unix;
  return wait.count() > 0 ? Nanos(wait) : Nanos(0);
}

std::string ServerMessage(std::string_view body, size_t max_chars) {
  std::string text(body);
  try {
    auto doc = nlohmann::json::parse(body.begin(), body.end());
    if (doc.is_object()) {
      auto it = doc.find("message");
      if (it == doc.end()) it = doc.find("error");
      if (it != doc.end() && it->is_string()) text = it->get<std::string>();
    }
  } catch (const nlohmann::json::exception&) {
    // Not JSON: the body itself is the message.
  }
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  if (text.size() > max_chars) {
    text.resize(max_chars);
    text += "...";
  }
  return text;
}

}  // namespace sleuth::uploader
