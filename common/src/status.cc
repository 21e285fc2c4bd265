#include "sleuth/common/status.h"

#include <cerrno>
#include <cstring>

namespace sleuth {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kGone: return "process gone";
    case StatusCode::kPermission: return "permission denied";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kIo: return "i/o error";
    case StatusCode::kBusy: return "busy";
    case StatusCode::kInternal: return "internal error";
  }
  return "unknown";
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r returns a pointer that may or may not be buf.
  const char* text = strerror_r(err, buf, sizeof buf);
  return text;
}

Status ErrnoStatus(std::string_view what, int err) {
  StatusCode code = StatusCode::kIo;
  if (err == ENOENT || err == ESRCH) code = StatusCode::kNotFound;
  if (err == EACCES || err == EPERM) code = StatusCode::kPermission;
  std::string m(what);
  m += ": ";
  m += ErrnoText(err);
  return Status(code, std::move(m));
}

}  // namespace sleuth
