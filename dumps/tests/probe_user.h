// A throwaway local user playing the attacker in multi-user tests: created
// with useradd (no home, system account) and removed afterwards; commands
// run as it through setpriv. Needs root; Create() says why when it cannot.
#pragma once

#include <pwd.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace sleuth::dumps::testing {

class ProbeUser {
 public:
  // Returns nullopt and sets *why when the user cannot be made.
  static std::optional<ProbeUser> Create(std::string* why) {
    if (::geteuid() != 0) {
      *why = "needs root: creates a throwaway user to play another local user";
      return std::nullopt;
    }
    std::string name = "sleuthprobe-" + std::to_string(::getpid() % 100000);
    std::string cmd = "useradd -M -r -s /usr/sbin/nologin " + name + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      *why = "cannot create user " + name + " with useradd";
      return std::nullopt;
    }
    struct passwd* pw = ::getpwnam(name.c_str());
    if (pw == nullptr) {
      *why = "useradd made no user " + name;
      return std::nullopt;
    }
    return ProbeUser(name, pw->pw_uid, pw->pw_gid);
  }
  ProbeUser(ProbeUser&& other) noexcept
      : name_(std::move(other.name_)), uid_(other.uid_), gid_(other.gid_) {
    other.name_.clear();
  }
  ProbeUser& operator=(ProbeUser&&) = delete;
  ~ProbeUser() {
    if (!name_.empty()) {
      int rc = std::system(("userdel " + name_ + " >/dev/null 2>&1").c_str());
      (void)rc;
    }
  }

  // Runs `script` with sh as this user (no supplementary groups). Returns
  // the exit status.
  int Run(const std::string& script) const {
    std::string quoted;
    for (char c : script) {
      if (c == '\'') {
        quoted += "'\\''";
      } else {
        quoted += c;
      }
    }
    std::string cmd = "setpriv --reuid=" + std::to_string(uid_) + " --regid=" +
                      std::to_string(gid_) + " --clear-groups sh -c '" + quoted + "'";
    int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  uid_t uid() const { return uid_; }
  const std::string& name() const { return name_; }

 private:
  ProbeUser(std::string name, uid_t uid, gid_t gid) : name_(std::move(name)), uid_(uid), gid_(gid) {}
  std::string name_;
  uid_t uid_;
  gid_t gid_;
};

}  // namespace sleuth::dumps::testing
