#include "task_status.h"

#include <charconv>
#include <string>

namespace sleuth::capture::internal {
namespace {

// The value of "<key>:\t<value>\n", without surrounding blanks, or empty.
std::string_view FieldValue(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      std::string_view value = line.substr(key.size() + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      return value;
    }
    pos = end + 1;
  }
  return {};
}

Result<uint64_t> HexMask(std::string_view text, std::string_view key) {
  std::string_view value = FieldValue(text, key);
  uint64_t mask = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), mask, 16);
  if (value.empty() || ec != std::errc() || ptr != value.data() + value.size()) {
    return InvalidArgument("task status: field " + std::string(key) +
                           " is missing or not a hex signal mask: '" + std::string(value) + "'");
  }
  return mask;
}

}  // namespace

Result<TaskStatus> ParseTaskStatus(std::string_view text) {
  TaskStatus status;
  std::string_view state = FieldValue(text, "State");
  if (state.empty()) return InvalidArgument("task status: field State is missing");
  status.state = state.front();
  SLEUTH_ASSIGN_OR_RETURN(status.blocked_signals, HexMask(text, "SigBlk"));
  SLEUTH_ASSIGN_OR_RETURN(status.pending_signals, HexMask(text, "SigPnd"));
  return status;
}

}  // namespace sleuth::capture::internal
