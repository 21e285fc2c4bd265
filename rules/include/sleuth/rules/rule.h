// The rule engine: decides from a metric's recent history whether the
// current reading is anomalous enough to dump a profile.
//
// Semantics (Holmes's, made exact):
//   * No check until `warmup` readings have been seen since start/reset.
//   * Nothing fires below `min`, nor at or above `max` when max > 0.
//   * It fires when value > abs (abs > 0), or when value is at least `diff`
//     percent above the average of the history *before* this reading
//     (diff > 0, history non-empty, value > 0). An average of 0 means any
//     positive value at or above min is infinitely above it and fires.
//   * After a dump the metric is quiet for `cooldown`.
//   * While the process's CPU is at or above agent.cpu_max (the "gate"),
//     every dump is suppressed.
//   * Readings enter the history even while cooling down or gated.
// Evaluate() is a pure function; MetricRule adds the per-metric state.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sleuth::rules {

using Nanos = std::chrono::nanoseconds;

struct RuleSpec {
  bool enable = true;
  double min = 0;
  double diff = 0;  // percent; 0 = the diff check is off
  double abs = 0;   // 0 = the abs check is off
  double max = 0;   // 0 = no maximum
  Nanos cooldown{0};
  int warmup = 0;  // readings needed before the first check
};

enum class Reason { kNone, kAbs, kDiff };

// Why a reading did not lead to a dump.
enum class Quiet {
  kNone,          // it fired
  kDisabled,      // the metric's rule is off
  kWarmup,        // fewer than `warmup` readings so far
  kBelowMin,      // value < min
  kNotAnomalous,  // neither abs nor diff matched
  kAtOrAboveMax,  // value >= max: suppressed on purpose
  kCooldown,      // it matched, but the metric dumped less than cooldown ago
  kCpuGate,       // it matched, but agent.cpu_max holds all dumps back
};

std::string_view ReasonName(Reason r);  // "abs", "diff", "none"
std::string_view QuietName(Quiet q);    // "disabled", "warmup", "below_min", ...
// True for the Quiet values that held back a reading that matched (or that
// max deliberately skips): these are what sleuth_rule_suppressed_total counts.
bool IsSuppression(Quiet q);

struct Decision {
  bool fire = false;
  Reason reason = Reason::kNone;
  Quiet quiet = Quiet::kNone;
  double value = 0;
  double average = 0;         // of the history before this reading; 0 if empty
  size_t history_size = 0;    // readings the average is over
  double diff_threshold = 0;  // the value the diff check needed to reach
  RuleSpec rule;
  std::optional<Nanos> cooldown_left;  // set when quiet == kCooldown

  // One line for logs and sidecars, e.g.
  // "fire: abs (value 82.0 > abs 70.0; average 20.5 over 10 readings)".
  std::string Describe() const;
};

struct Inputs {
  const std::vector<double>& history;  // readings before this one, any order
  size_t readings_seen = 0;            // before this one, since start/reset
  double value = 0;
  Nanos now{0};
  std::optional<Nanos> last_dump;  // monotonic time of this metric's last dump
  bool cpu_gate = false;           // process CPU >= agent.cpu_max (when set)
};

// Pure: the same inputs always give the same decision.
Decision Evaluate(const RuleSpec& rule, const Inputs& in);

// One metric's rule with its state: a ring of the last `capacity` readings,
// the count since start, and the time of the last dump.
// Thread-safety: thread-compatible (the agent's collection thread owns it).
class MetricRule {
 public:
  MetricRule(RuleSpec rule, size_t capacity);

  // Evaluates `value` against the history, then adds it to the history.
  Decision Observe(double value, Nanos now, bool cpu_gate);
  // Starts the cooldown; call when a dump this rule asked for is taken.
  void RecordDump(Nanos now) { last_dump_ = now; }
  // Forgets history and cooldown: warm-up starts again (stop/start).
  void Reset();

  const RuleSpec& rule() const { return rule_; }
  const std::vector<double>& history() const { return ring_; }

 private:
  RuleSpec rule_;
  size_t capacity_;
  std::vector<double> ring_;  // size <= capacity_, oldest overwritten
  size_t next_ = 0;           // slot to overwrite once the ring is full
  size_t seen_ = 0;
  std::optional<Nanos> last_dump_;
};

}  // namespace sleuth::rules
