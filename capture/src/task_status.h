// Parser for the few fields of /proc/<pid>/task/<tid>/status the thread
// dumper needs to explain why a thread did not answer. Pure; thread safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "sleuth/common/status.h"

namespace sleuth::capture::internal {

struct TaskStatus {
  char state = '?';              // R, S, D, T, t, Z, X, ...
  uint64_t blocked_signals = 0;  // SigBlk: bit (n-1) set when signal n is blocked
  uint64_t pending_signals = 0;  // SigPnd: signals queued for this thread only
};

// Fails with kInvalidArgument naming the field when State, SigBlk or SigPnd
// is missing or malformed.
[[nodiscard]] Result<TaskStatus> ParseTaskStatus(std::string_view text);

inline bool HasSignal(uint64_t mask, int signal) {
  return signal >= 1 && signal <= 64 && ((mask >> (signal - 1)) & 1) != 0;
}

}  // namespace sleuth::capture::internal
