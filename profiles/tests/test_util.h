// Helpers shared by the profiles tests: fixtures, child processes, commands.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace sleuth::profiles::testing {

// tests/fixtures/profiles/<name>
std::string FixturePath(const std::string& name);
// The bytes of a fixture; fails the test (and returns "") if unreadable.
std::string ReadFixture(const std::string& name);

// The address of a function defined in libc itself (not a sanitizer's
// interceptor of the same name, which dlsym(RTLD_DEFAULT, ...) would find).
void* LibcFunction(const char* name);

// Runs a shell command, returns its stdout; *exit_code gets its status.
std::string RunCommand(const std::string& command, int* exit_code);

// A fresh directory under the test temp dir; removed by RemoveTree.
std::string MakeTempDir();
void RemoveTree(const std::string& path);

// A child process with pipes to its stdin and stdout. The child keeps
// running (and its address space stays readable) until CloseStdin().
class Child {
 public:
  // argv[0] is the program path; `env` entries "KEY=value" are added to a
  // copy of this process's environment.
  Child(const std::vector<std::string>& argv, const std::vector<std::string>& env);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Reads stdout until a line "END" (excluded) or EOF.
  std::string ReadUntilEnd();
  // Closes the child's stdin and waits for it; returns its exit status.
  int CloseStdinAndWait();

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
};

}  // namespace sleuth::profiles::testing
