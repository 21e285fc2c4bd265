#include "harness.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "sleuth/common/files.h"

extern char** environ;

namespace sleuth::testing {

RunResult RunProgram(const RunOptions& options) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; e++) {
    std::string kv = *e;
    std::string name = kv.substr(0, kv.find('='));
    if (name.rfind("SLEUTH_", 0) == 0 || name == "LD_PRELOAD" || name == "TCMALLOC_SAMPLE_PARAMETER" ||
        name == "CPUPROFILE" || options.env.count(name))
      continue;
    env_strings.push_back(kv);
  }
  for (const auto& [k, v] : options.env) {
#ifdef SLEUTH_SANITIZER_RUNTIME
    if (k == "LD_PRELOAD") {
      env_strings.push_back(k + "=" + SLEUTH_SANITIZER_RUNTIME + " " + v);
      continue;
    }
#endif
    env_strings.push_back(k + "=" + v);
  }
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = options.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  RunResult r;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                      std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    int n = poll(fds, 2, static_cast<int>(std::min<long>(left.count(), 1000)));
    if (n <= 0) continue;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(got));
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
  return r;
}

std::string LibSleuth() { return std::string(SLEUTH_BINARY_DIR) + "/agent/libsleuth.so"; }
std::string TestHost() { return std::string(SLEUTH_BINARY_DIR) + "/tests/programs/test_host"; }
std::string CApiHost() { return std::string(SLEUTH_BINARY_DIR) + "/tests/programs/c_api_host"; }
std::string SleuthCli() { return std::string(SLEUTH_BINARY_DIR) + "/cli/sleuth"; }
std::string Tcmalloc() { return "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4"; }

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
  char* dir = mkdtemp(tmpl.data());
  return dir ? dir : "";
}

std::vector<DumpFiles> FindDumps(const std::string& dir) {
  std::vector<DumpFiles> dumps;
  auto names = ListDir(dir);
  if (!names.ok()) return dumps;
  std::sort(names->begin(), names->end());
  for (const auto& name : *names) {
    if (name.size() < 5 || name.compare(name.size() - 5, 5, ".json") != 0) continue;
    if (name.find(".tmp.") != std::string::npos) continue;
    DumpFiles d;
    d.base = dir + "/" + name.substr(0, name.size() - 5);
    // <service>.<pid>.<kind>.<time>.<id>: kind is the third dot-field.
    std::vector<std::string> parts;
    std::stringstream ss(name);
    std::string part;
    while (std::getline(ss, part, '.')) parts.push_back(part);
    if (parts.size() >= 3) d.kind = parts[2];
    auto json = ReadFile(dir + "/" + name);
    if (json.ok()) d.sidecar_json = *json;
    dumps.push_back(d);
  }
  return dumps;
}

std::vector<std::string> LinesWith(const std::string& text, const std::string& needle) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line))
    if (line.find(needle) != std::string::npos) lines.push_back(line);
  return lines;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::map<std::string, std::string> AgentWithRulesOff(const std::string& dump_dir,
                                                     const std::string& interval, int history) {
  return {
      {"LD_PRELOAD", LibSleuth()},
      {"SLEUTH_AGENT_DUMP_DIR", dump_dir},
      {"SLEUTH_AGENT_INTERVAL", interval},
      {"SLEUTH_AGENT_HISTORY", std::to_string(history)},
      {"SLEUTH_CPU_ENABLE", "false"},
      {"SLEUTH_MEMORY_ENABLE", "false"},
      {"SLEUTH_THREADS_ENABLE", "false"},
      {"SLEUTH_HEAP_ENABLE", "false"},
  };
}

}  // namespace sleuth::testing
