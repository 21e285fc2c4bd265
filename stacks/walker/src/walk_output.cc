#include "sleuth/stacks/walk_output.h"

#include <charconv>
#include <cinttypes>
#include <cstdio>

#include "sleuth/profiles/stacks_text.h"

namespace sleuth::stacks {
namespace {

constexpr std::string_view kMagic = "sleuth-stackwalk";
constexpr int kVersion = 1;

struct ProblemName {
  ThreadProblem problem;
  std::string_view token;
};
constexpr ProblemName kProblems[] = {
    {ThreadProblem::kNone, "-"},
    {ThreadProblem::kUnwindFailed, "unwind_failed"},
    {ThreadProblem::kRefused, "ptrace_refused"},
    {ThreadProblem::kTraced, "already_traced"},
    {ThreadProblem::kNotStopped, "not_stopped"},
    {ThreadProblem::kZombie, "zombie"},
    {ThreadProblem::kNotWalked, "not_walked"},
    {ThreadProblem::kFailed, "failed"},
};

std::string Escape(std::string_view text) {
  if (text.empty()) return "-";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f || c == '%' || (text.size() == 1 && c == '-')) {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", byte);
      out += hex;
    } else {
      out += c;
    }
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

Result<std::string> Unescape(std::string_view field) {
  if (field == "-") return std::string();
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '%') {
      out += field[i];
      continue;
    }
    if (i + 2 >= field.size()) {
      return InvalidArgument("truncated escape in '" + std::string(field) + "'");
    }
    const int high = HexValue(field[i + 1]);
    const int low = HexValue(field[i + 2]);
    if (high < 0 || low < 0) return InvalidArgument("bad escape in '" + std::string(field) + "'");
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  while (start <= line.size()) {
    const size_t space = line.find(' ', start);
    const size_t end = space == std::string_view::npos ? line.size() : space;
    fields.push_back(line.substr(start, end - start));
    if (space == std::string_view::npos) break;
    start = space + 1;
  }
  return fields;
}

template <typename Int>
bool ParseInt(std::string_view text, Int* out, int base = 10) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out, base);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}

Result<ThreadProblem> ParseProblem(std::string_view token) {
  for (const ProblemName& entry : kProblems) {
    if (entry.token == token) return entry.problem;
  }
  return InvalidArgument("unknown thread problem '" + std::string(token) + "'");
}

Result<WalkedThread> ParseThread(const std::vector<std::string_view>& fields) {
  if (fields.size() != 10) {
    return InvalidArgument("thread line has " + std::to_string(fields.size()) +
                           " fields, expected 10");
  }
  WalkedThread thread;
  if (!ParseInt(fields[1], &thread.tid) || thread.tid <= 0) {
    return InvalidArgument("bad tid '" + std::string(fields[1]) + "'");
  }
  SLEUTH_ASSIGN_OR_RETURN(thread.name, Unescape(fields[2]));
  if (fields[3].size() != 1) return InvalidArgument("bad state '" + std::string(fields[3]) + "'");
  thread.state = fields[3][0];
  if (!ParseInt(fields[4], &thread.syscall) || !ParseInt(fields[5], &thread.syscall_result)) {
    return InvalidArgument("bad syscall fields '" + std::string(fields[4]) + " " +
                           std::string(fields[5]) + "'");
  }
  if (fields[6] != "-") {
    for (std::string_view pc_text : [&] {
           std::vector<std::string_view> parts;
           size_t start = 0;
           while (true) {
             const size_t comma = fields[6].find(',', start);
             parts.push_back(fields[6].substr(start, comma == std::string_view::npos
                                                         ? std::string_view::npos
                                                         : comma - start));
             if (comma == std::string_view::npos) break;
             start = comma + 1;
           }
           return parts;
         }()) {
      uint64_t pc = 0;
      if (!ParseInt(pc_text, &pc, 16)) {
        return InvalidArgument("bad pc '" + std::string(pc_text) + "'");
      }
      thread.pcs.push_back(pc);
    }
  }
  SLEUTH_ASSIGN_OR_RETURN(thread.stopped_because, Unescape(fields[7]));
  SLEUTH_ASSIGN_OR_RETURN(thread.problem, ParseProblem(fields[8]));
  SLEUTH_ASSIGN_OR_RETURN(thread.detail, Unescape(fields[9]));
  return thread;
}

}  // namespace

std::string_view ThreadProblemToken(ThreadProblem problem) {
  for (const ProblemName& entry : kProblems) {
    if (entry.problem == problem) return entry.token;
  }
  return "failed";
}

std::string FormatHeader(pid_t pid, std::string_view unwinder) {
  return std::string(kMagic) + " " + std::to_string(kVersion) + " " + std::to_string(pid) + " " +
         Escape(unwinder) + "\n";
}

std::string FormatThread(const WalkedThread& thread) {
  std::string pcs;
  for (uint64_t pc : thread.pcs) {
    char hex[24];
    std::snprintf(hex, sizeof hex, "%s%" PRIx64, pcs.empty() ? "" : ",", pc);
    pcs += hex;
  }
  if (pcs.empty()) pcs = "-";
  return "thread " + std::to_string(thread.tid) + " " + Escape(thread.name) + " " +
         Escape(std::string_view(&thread.state, 1)) + " " + std::to_string(thread.syscall) + " " +
         std::to_string(thread.syscall_result) + " " + pcs + " " + Escape(thread.stopped_because) +
         " " + std::string(ThreadProblemToken(thread.problem)) + " " + Escape(thread.detail) + "\n";
}

std::string FormatEnd(std::string_view status, std::string_view detail) {
  return "end " + Escape(status) + " " + Escape(detail) + "\n";
}

Result<WalkOutput> ParseWalkOutput(std::string_view text) {
  WalkOutput walk;
  bool header_seen = false;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    if (newline == std::string_view::npos) break;  // cut short by a kill: ignored
    const std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline + 1);
    ++line_number;
    auto context = [&](const Status& status) {
      return status.WithContext("walker output line " + std::to_string(line_number));
    };
    const std::vector<std::string_view> fields = SplitFields(line);
    if (!header_seen) {
      int version = 0;
      if (fields.size() != 4 || fields[0] != kMagic || !ParseInt(fields[1], &version) ||
          !ParseInt(fields[2], &walk.pid)) {
        return context(InvalidArgument("not a sleuth-stackwalk header: '" + std::string(line) + "'"));
      }
      if (version != kVersion) {
        return context(InvalidArgument("walker output version " + std::to_string(version) +
                                       ", this reader knows " + std::to_string(kVersion)));
      }
      Result<std::string> unwinder = Unescape(fields[3]);
      if (!unwinder.ok()) return context(unwinder.status());
      walk.unwinder = std::move(*unwinder);
      header_seen = true;
      continue;
    }
    if (walk.ended) return context(InvalidArgument("line after the end line"));
    if (fields[0] == "thread") {
      Result<WalkedThread> thread = ParseThread(fields);
      if (!thread.ok()) return context(thread.status());
      walk.threads.push_back(std::move(*thread));
    } else if (fields[0] == "end" && fields.size() == 3) {
      Result<std::string> status = Unescape(fields[1]);
      Result<std::string> detail = Unescape(fields[2]);
      if (!status.ok()) return context(status.status());
      if (!detail.ok()) return context(detail.status());
      walk.ended = true;
      walk.end_status = std::move(*status);
      walk.end_detail = std::move(*detail);
    } else {
      return context(InvalidArgument("unknown record '" + std::string(fields[0]) + "'"));
    }
  }
  if (!header_seen) return InvalidArgument("walker output has no header line");
  return walk;
}

namespace {

std::string Why(const WalkedThread& thread) {
  std::string why;
  switch (thread.problem) {
    case ThreadProblem::kUnwindFailed:
      why = "could not be unwound";
      break;
    case ThreadProblem::kRefused:
      why = "could not be traced (ptrace refused)";
      break;
    case ThreadProblem::kTraced:
      why = "is traced by another process";
      break;
    case ThreadProblem::kNotStopped:
      why = "did not stop in time";
      break;
    case ThreadProblem::kZombie:
      why = "has exited (zombie)";
      break;
    case ThreadProblem::kNotWalked:
      why = "was not reached before the walk ended";
      break;
    default:
      why = "failed";
      break;
  }
  if (!thread.detail.empty()) why += ": " + thread.detail;
  return why;
}

}  // namespace

ThreadsDump ToThreadsDump(const WalkOutput& walk, int64_t time_nanos) {
  ThreadsDump dump;
  dump.profile = profiles::NewThreadsProfile(time_nanos);
  profiles::RawProfile& profile = dump.profile;
  profile.comments.push_back("thread dump by ptrace (sleuth-stackwalk, " +
                             (walk.unwinder.empty() ? std::string("?") : walk.unwinder) +
                             " unwinding)");
  size_t without_stack = 0;
  std::string reasons;
  std::string interrupted;
  size_t interrupted_count = 0;
  for (const WalkedThread& thread : walk.threads) {
    profiles::RawSample sample;
    sample.values = {1};
    sample.labels.push_back({"thread_id", "", thread.tid, ""});
    sample.labels.push_back({"thread_name", thread.name, 0, ""});
    if (thread.problem == ThreadProblem::kNone && !thread.pcs.empty()) {
      sample.pcs = thread.pcs;
    } else {
      const ThreadProblem problem =
          thread.problem == ThreadProblem::kNone ? ThreadProblem::kUnwindFailed : thread.problem;
      WalkedThread shown = thread;
      shown.problem = problem;
      const std::string why = Why(shown);
      sample.names.push_back("[no stack: thread " + why + "]");
      sample.labels.push_back({"thread_state", std::string(ThreadProblemToken(problem)), 0, ""});
      ++without_stack;
      if (reasons.size() < 400) {
        reasons += (reasons.empty() ? "" : "; ") + std::to_string(thread.tid) + " " + why;
      }
    }
    if (thread.StopInterruptedSyscall()) {
      ++interrupted_count;
      if (interrupted.size() < 300) {
        interrupted += (interrupted.empty() ? "" : ", ") + std::to_string(thread.tid) +
                       " (syscall " + std::to_string(thread.syscall) + ")";
      }
    }
    profile.samples.push_back(std::move(sample));
  }
  if (without_stack > 0) {
    dump.notes.push_back(std::to_string(without_stack) + " threads gave no stack: " + reasons);
  }
  if (interrupted_count > 0) {
    dump.notes.push_back(std::to_string(interrupted_count) +
                         " threads were in a system call that returns EINTR after any stop "
                         "(epoll_wait, sigtimedwait, a socket timeout, ...), so they saw EINTR: " +
                         interrupted);
  }
  if (!walk.ended) {
    dump.notes.push_back("the walker ended without finishing its output (killed?); the dump has "
                         "the threads it reported");
  } else if (walk.end_status != "complete") {
    dump.notes.push_back("the walk ended early (" + walk.end_status +
                         (walk.end_detail.empty() ? "" : ": " + walk.end_detail) + ")");
  }
  return dump;
}

}  // namespace sleuth::stacks
