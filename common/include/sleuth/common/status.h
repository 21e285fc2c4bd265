// Status and Result<T>: how every sleuth function reports failure.
//
// A Status carries a code (for callers that branch on it) and a message with
// enough context for a person to act on it: the file, key, pid or errno text.
// Not for use inside signal handlers (messages allocate); handlers report
// plain codes and counters instead.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sleuth {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input from a user: config, flag, API argument
  kNotFound,         // a file, key or resource that is not there
  kGone,             // the watched process exited between reads
  kPermission,       // EPERM / EACCES
  kUnavailable,      // a facility this host or process lacks (no tcmalloc, SIGPROF taken)
  kIo,               // a read or write failed
  kBusy,             // already running / already started
  kInternal,         // a bug or an invariant broken
};

// Short lowercase name of a code, e.g. "invalid argument".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const;
  // "<message>" or "ok".
  std::string ToString() const { return ok() ? "ok" : message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status Gone(std::string m) { return {StatusCode::kGone, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIo, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Builds a Status from an errno value: "<what>: <strerror text>", with the
// code chosen from the errno (ENOENT/ESRCH -> kNotFound, EACCES/EPERM ->
// kPermission, else kIo).
Status ErrnoStatus(std::string_view what, int err);

// strerror_r text for err, thread-safe.
std::string ErrnoText(int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sleuth

#define SLEUTH_CONCAT_INNER(a, b) a##b
#define SLEUTH_CONCAT(a, b) SLEUTH_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not ok.
#define SLEUTH_RETURN_IF_ERROR(expr)               \
  do {                                             \
    ::sleuth::Status sleuth_status_ = (expr);      \
    if (!sleuth_status_.ok()) return sleuth_status_; \
  } while (0)

// `lhs = value of expr` or returns its Status from the enclosing function.
#define SLEUTH_ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto SLEUTH_CONCAT(sleuth_result_, __LINE__) = (expr);                     \
  if (!SLEUTH_CONCAT(sleuth_result_, __LINE__).ok())                         \
    return SLEUTH_CONCAT(sleuth_result_, __LINE__).status();                 \
  lhs = std::move(SLEUTH_CONCAT(sleuth_result_, __LINE__)).value()
