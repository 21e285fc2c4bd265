#include "sleuth/rules/rule.h"

#include <cstdio>

namespace sleuth::rules {

std::string_view ReasonName(Reason r) {
  switch (r) {
    case Reason::kAbs:
      return "abs";
    case Reason::kDiff:
      return "diff";
    case Reason::kNone:
      return "none";
  }
  return "none";
}

std::string_view QuietName(Quiet q) {
  switch (q) {
    case Quiet::kNone:
      return "none";
    case Quiet::kDisabled:
      return "disabled";
    case Quiet::kWarmup:
      return "warmup";
    case Quiet::kBelowMin:
      return "below_min";
    case Quiet::kNotAnomalous:
      return "not_anomalous";
    case Quiet::kAtOrAboveMax:
      return "max";
    case Quiet::kCooldown:
      return "cooldown";
    case Quiet::kCpuGate:
      return "cpu_max";
  }
  return "none";
}

bool IsSuppression(Quiet q) {
  return q == Quiet::kAtOrAboveMax || q == Quiet::kCooldown || q == Quiet::kCpuGate;
}

Decision Evaluate(const RuleSpec& rule, const Inputs& in) {
  Decision d;
  d.rule = rule;
  d.value = in.value;
  d.history_size = in.history.size();
  if (!in.history.empty()) {
    double sum = 0;
    for (double v : in.history) sum += v;
    d.average = sum / static_cast<double>(in.history.size());
  }
  d.diff_threshold = d.average * (100.0 + rule.diff) / 100.0;

  auto quiet = [&](Quiet why) {
    d.quiet = why;
    return d;
  };
  if (!rule.enable) return quiet(Quiet::kDisabled);
  if (in.readings_seen < static_cast<size_t>(rule.warmup < 0 ? 0 : rule.warmup))
    return quiet(Quiet::kWarmup);
  if (in.value < rule.min) return quiet(Quiet::kBelowMin);

  Reason reason = Reason::kNone;
  if (rule.abs > 0 && in.value > rule.abs) {
    reason = Reason::kAbs;
  } else if (rule.diff > 0 && !in.history.empty() && in.value > 0 && in.value >= d.diff_threshold) {
    reason = Reason::kDiff;
  }
  if (reason == Reason::kNone) return quiet(Quiet::kNotAnomalous);
  d.reason = reason;
  // From here on the reading matched; what follows can only hold it back.
  if (rule.max > 0 && in.value >= rule.max) return quiet(Quiet::kAtOrAboveMax);
  if (in.last_dump && in.now < *in.last_dump + rule.cooldown) {
    d.cooldown_left = *in.last_dump + rule.cooldown - in.now;
    return quiet(Quiet::kCooldown);
  }
  if (in.cpu_gate) return quiet(Quiet::kCpuGate);
  d.fire = true;
  return d;
}

std::string Decision::Describe() const {
  char buf[320];
  if (fire) {
    if (reason == Reason::kAbs) {
      std::snprintf(buf, sizeof buf,
                    "fire: abs (value %.2f > abs %.2f; average %.2f over %zu readings)", value,
                    rule.abs, average, history_size);
    } else {
      std::snprintf(buf, sizeof buf,
                    "fire: diff (value %.2f >= %.2f, i.e. %.0f%% above the average %.2f over %zu "
                    "readings)",
                    value, diff_threshold, rule.diff, average, history_size);
    }
    return buf;
  }
  std::snprintf(buf, sizeof buf, "quiet: %s (value %.2f; average %.2f over %zu readings)",
                std::string(QuietName(quiet)).c_str(), value, average, history_size);
  return buf;
}

MetricRule::MetricRule(RuleSpec rule, size_t capacity)
    : rule_(rule), capacity_(capacity == 0 ? 1 : capacity) {
  ring_.reserve(capacity_);
}

Decision MetricRule::Observe(double value, Nanos now, bool cpu_gate) {
  Decision d = Evaluate(rule_, Inputs{.history = ring_,
                                      .readings_seen = seen_,
                                      .value = value,
                                      .now = now,
                                      .last_dump = last_dump_,
                                      .cpu_gate = cpu_gate});
  if (ring_.size() < capacity_) {
    ring_.push_back(value);
  } else {
    ring_[next_] = value;
    next_ = (next_ + 1) % capacity_;
  }
  seen_++;
  return d;
}

void MetricRule::Reset() {
  ring_.clear();
  next_ = 0;
  seen_ = 0;
  last_dump_.reset();
}

}  // namespace sleuth::rules
