// Small facts about the host and about a process, read from /proc and /sys.
// Errors: kNotFound when the process (or thread) does not exist,
// kPermission when /proc hides it from us, kIo otherwise; messages name the
// file. Thread-safety: all functions are thread safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sleuth/common/status.h"

namespace sleuth::collectors {

// Online CPUs (>= 1), from /sys/devices/system/cpu/online, falling back to
// sysconf(_SC_NPROCESSORS_ONLN).
int HostCpuCores();
// Physical RAM in bytes (MemTotal), falling back to sysconf's page count.
uint64_t HostMemoryBytes();

// The same, read under a root prefix ("/" on a real host) with no fallback,
// so tests can use fake trees. Errors name the file.
Result<int> ReadHostCpuCores(const std::string& root);
Result<uint64_t> ReadHostMemoryBytes(const std::string& root);

// The process's command name (/proc/<pid>/comm, at most 15 bytes, no '\n').
Result<std::string> ProcessName(pid_t pid);
// argv from /proc/<pid>/cmdline; empty for kernel threads and zombies.
Result<std::vector<std::string>> ReadCmdline(pid_t pid);
// The executable's path (readlink /proc/<pid>/exe); may end in " (deleted)".
Result<std::string> ExecutablePath(pid_t pid);
// Thread ids from /proc/<pid>/task, ascending.
Result<std::vector<pid_t>> ListThreads(pid_t pid);
// A thread's name (/proc/<pid>/task/<tid>/comm, no '\n').
Result<std::string> ThreadName(pid_t pid, pid_t tid);

}  // namespace sleuth::collectors
