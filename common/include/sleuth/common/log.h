// sleuth's log: one line per message, written with a single write(2) so
// lines from several threads (or a forked child) never interleave and no
// lock is ever held. Thread-safety: thread safe. Not async-signal-safe
// (formatting allocates): never log from a signal handler.
#pragma once

#include <string>
#include <string_view>

#include "sleuth/common/status.h"

namespace sleuth::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError, kOff };

// Parses "debug", "info", "warn", "error" or "off".
Result<Level> ParseLevel(std::string_view name);
std::string_view LevelName(Level level);

// Where lines go: stderr (the default) or a file opened for append.
// An empty path means stderr.
Status SetFile(const std::string& path);
void SetLevel(Level level);
Level GetLevel();
bool Enabled(Level level);

// Writes "sleuth[<pid>] <level>: <message>\n" if `level` is enabled.
void Write(Level level, std::string_view message);

inline void Debug(std::string_view m) { Write(Level::kDebug, m); }
inline void Info(std::string_view m) { Write(Level::kInfo, m); }
inline void Warn(std::string_view m) { Write(Level::kWarn, m); }
inline void Error(std::string_view m) { Write(Level::kError, m); }

}  // namespace sleuth::log
