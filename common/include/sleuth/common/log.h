// sleuth's log: one line per message, written with a single write(2) so
// lines from several threads (or a forked child) never interleave and no
// lock is ever held. Write() formats on the stack and never allocates or
// throws, so it works when the host is out of memory (callers that build
// the message with std::string still allocate: in paths that must survive
// ENOMEM, pass string literals). Thread-safety: thread safe. Not
// async-signal-safe (it reads the log level and fd without being designed
// for it): never log from a signal handler.
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
bool Enabled(Level level) noexcept;

// Sends every line, and every Enabled() question, to another copy of this
// log: a plugin loaded privately (libsleuth-net.so) has its own copy of
// this module, and forwards to the agent's so that one level and one file
// apply to both. Null restores the local behaviour.
using WriteFn = void (*)(Level level, std::string_view message) noexcept;
using EnabledFn = bool (*)(Level level) noexcept;
void ForwardTo(WriteFn write, EnabledFn enabled);

// Writes "sleuth[<pid>] <level>: <message>\n" if `level` is enabled.
// Messages longer than about 4000 bytes are cut.
void Write(Level level, std::string_view message) noexcept;

inline void Debug(std::string_view m) noexcept { Write(Level::kDebug, m); }
inline void Info(std::string_view m) noexcept { Write(Level::kInfo, m); }
inline void Warn(std::string_view m) noexcept { Write(Level::kWarn, m); }
inline void Error(std::string_view m) noexcept { Write(Level::kError, m); }

}  // namespace sleuth::log
