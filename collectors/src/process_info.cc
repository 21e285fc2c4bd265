#include "sleuth/collectors/process_info.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "parse_util.h"
#include "sleuth/collectors/cgroup_parsers.h"
#include "sleuth/collectors/proc_parsers.h"
#include "sleuth/common/files.h"

namespace sleuth::collectors {

using internal::JoinRoot;
using internal::ParseInt64;

namespace {

std::string ProcPath(pid_t pid, std::string_view file) {
  std::string path = "/proc/" + std::to_string(pid);
  path += file;
  return path;
}

// comm files end in '\n'.
Result<std::string> ReadName(const std::string& path) {
  SLEUTH_ASSIGN_OR_RETURN(std::string name, ReadFile(path));
  if (!name.empty() && name.back() == '\n') name.pop_back();
  return name;
}

}  // namespace

Result<int> ReadHostCpuCores(const std::string& root) {
  const std::string path = JoinRoot(root, "/sys/devices/system/cpu/online");
  SLEUTH_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  SLEUTH_ASSIGN_OR_RETURN(int cpus, ParseCpuListCount(text, path));
  if (cpus <= 0) return InvalidArgument(path + ": lists no CPUs");
  return cpus;
}

Result<uint64_t> ReadHostMemoryBytes(const std::string& root) {
  const std::string path = JoinRoot(root, "/proc/meminfo");
  SLEUTH_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  SLEUTH_ASSIGN_OR_RETURN(MemInfo info, ParseMemInfo(text, path));
  return info.mem_total_bytes;
}

int HostCpuCores() {
  if (Result<int> cpus = ReadHostCpuCores("/"); cpus.ok()) return *cpus;
  long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(online) : 1;
}

uint64_t HostMemoryBytes() {
  if (Result<uint64_t> bytes = ReadHostMemoryBytes("/"); bytes.ok()) return *bytes;
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
}

Result<std::string> ProcessName(pid_t pid) {
  return ReadName(ProcPath(pid, "/comm"));
}

Result<std::vector<std::string>> ReadCmdline(pid_t pid) {
  SLEUTH_ASSIGN_OR_RETURN(std::string text, ReadFile(ProcPath(pid, "/cmdline")));
  std::vector<std::string> argv;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();  // a process may overwrite its argv
    argv.emplace_back(text, start, end - start);
    start = end + 1;
  }
  return argv;
}

Result<std::string> ExecutablePath(pid_t pid) {
  const std::string link = ProcPath(pid, "/exe");
  std::string target(256, '\0');
  while (true) {
    ssize_t n = ::readlink(link.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoStatus("cannot read link " + link, errno);
    // readlink truncates silently; a full buffer may mean a longer target.
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      return target;
    }
    target.resize(target.size() * 2);
  }
}

Result<std::vector<pid_t>> ListThreads(pid_t pid) {
  SLEUTH_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(ProcPath(pid, "/task")));
  std::vector<pid_t> tids;
  tids.reserve(names.size());
  for (const std::string& name : names) {
    int64_t tid = 0;
    if (ParseInt64(name, &tid) && tid > 0) tids.push_back(static_cast<pid_t>(tid));
  }
  std::sort(tids.begin(), tids.end());
  return tids;
}

Result<std::string> ThreadName(pid_t pid, pid_t tid) {
  return ReadName(ProcPath(pid, "/task/" + std::to_string(tid) + "/comm"));
}

}  // namespace sleuth::collectors
