// What to do after an upload attempt, and when to try again. Pure functions;
// thread safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sleuth::uploader {

using Nanos = std::chrono::nanoseconds;

enum class Outcome {
  kDelivered,  // 2xx: mark it delivered
  kRetry,      // transient (network, timeout, 408, 429, 5xx): retry with backoff
  kRejected,   // the server refused this dump (4xx): set it aside in failed/
  // The server refused the sink itself (401, 403, 404, 405, 407, 3xx): set
  // the dump aside and pause the sink for retry_max, since every further
  // dump would be refused the same way (no storm of doomed requests).
  kSinkRejected,
};

// `http_status` 0 means no HTTP answer (connection refused, timeout, TLS).
Outcome Classify(long http_status);

// The wait before the next attempt after `failures` consecutive failures
// (1 for the first): retry_initial doubled per failure, capped at
// retry_max, with "equal jitter" (between half and all of it, so a fleet of
// agents does not retry in lockstep), and never below retry_initial or above
// retry_max. `unit_random` is uniform in [0, 1).
Nanos BackoffDelay(int failures, Nanos retry_initial, Nanos retry_max, double unit_random);

// The wait a Retry-After header asks for: delay-seconds ("120") or an
// HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", relative to `now_unix`).
// nullopt if the value is neither. A date in the past means no wait.
std::optional<Nanos> ParseRetryAfter(std::string_view value, std::chrono::seconds now_unix);

// Longest Retry-After honoured: a server asking for more is waited on for
// this long (or retry_max, if longer), so a bogus value cannot park a sink
// for days.
inline constexpr Nanos kMaxRetryAfter = std::chrono::hours(1);

// The part of an error response worth logging: the "message" of a JSON
// error body (Connect, Pyroscope), else the body's text, with control
// characters replaced and at most `max_chars` kept ("..." marks a cut).
std::string ServerMessage(std::string_view body, size_t max_chars = 300);

}  // namespace sleuth::uploader
