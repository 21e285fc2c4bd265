// The dump directory's layout and file names: the one definition the agent
// (which writes dumps), the uploader (which ships them) and the CLI share.
//
//   <dir>/<base>.pb.gz, <base>.txt   a dump's profile and (thread dumps) text
//   <dir>/<base>.json                its sidecar; renamed into place last, so
//                                    the dump is complete once it exists
//   <dir>/<name>.tmp.<pid>-<start>.<random>   scratch file of an atomic write
//   <dir>/sleuth-cpu.<pid>.<n>.prof           libprofiler's scratch file
//   <dir>/.sleuth-upload/, <dir>/failed/      the uploader's state (spool.h)
//
// with <base> = "<service>.<pid>.<kind>.<YYYYMMDDTHHMMSS.mmmZ>.<event_id>".
// Pure functions; thread safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sleuth/common/status.h"

namespace sleuth::dumps {

inline constexpr std::string_view kProfileExt = ".pb.gz";
inline constexpr std::string_view kSidecarExt = ".json";
inline constexpr std::string_view kTextExt = ".txt";
// What marks a scratch file: "<final name>.tmp.<writer>...".
inline constexpr std::string_view kScratchMark = ".tmp.";
inline constexpr std::string_view kCpuScratchPrefix = "sleuth-cpu.";
inline constexpr std::string_view kStateDirName = ".sleuth-upload";
inline constexpr std::string_view kFailedDirName = "failed";

struct DumpMeta;

// The fields of a dump's base name. The service may itself contain dots
// (names written by other tools); the other fields may not.
struct DumpName {
  std::string service;
  int64_t pid = 0;
  std::string kind;
  std::string time;  // "20261130T101502.123Z"
  std::string event_id;
};

// Fails with kInvalidArgument naming what does not fit.
[[nodiscard]] Result<DumpName> ParseDumpBase(std::string_view base);

// "YYYYMMDDTHHMMSS.mmmZ" of a Unix time in nanoseconds (negative: epoch).
std::string FormatDumpTime(int64_t unix_nanos);

// The service as it appears in names: characters other than
// [A-Za-z0-9_-] become '_', and the result is at most 64 characters (a name
// stays well under NAME_MAX whatever agent.service says); "" -> "unknown".
std::string SafeServiceName(std::string_view service);

// `<service>.<pid>.<kind>.<time>.<event_id>` of a dump.
std::string DumpBaseName(const DumpMeta& meta);

// A new random event id: 128 bits from getrandom(2) as 32 lowercase hex.
std::string NewEventId();

// If `file_name` is the sidecar of a complete dump ("<base>.json", not
// hidden, not a scratch file), its base.
std::optional<std::string> SidecarBase(std::string_view file_name);

// The base of a dump's profile or text file ("<base>.pb.gz" / "<base>.txt").
std::optional<std::string> PayloadBase(std::string_view file_name);

// Who wrote a scratch file, from its name: `*.tmp.<pid>[-<start>][.<rand>]`
// or `sleuth-cpu.<pid>.<n>.prof`. start_ticks is the writer's start time
// (field 22 of /proc/<pid>/stat) when the name records it, else 0.
struct ScratchWriter {
  pid_t pid = 0;
  uint64_t start_ticks = 0;
};
std::optional<ScratchWriter> ScratchWriterOf(std::string_view file_name);

// The default dump directory, private to the effective user:
// $XDG_RUNTIME_DIR/sleuth when XDG_RUNTIME_DIR is an absolute path to a
// directory owned by us (a tmpfs only we can write, emptied at logout), else
// /var/tmp/sleuth-<euid> (survives reboots; per uid so that users never
// share one). Never a directory another user could have to prepare.
std::string DefaultDumpDir();

// `configured`, or DefaultDumpDir() when it is empty.
std::string ResolveDumpDir(std::string_view configured);

}  // namespace sleuth::dumps
