#include "sleuth/uploader/scheduler.h"

#include <algorithm>

namespace sleuth::uploader {
namespace {

// A failing sink logs its first failure, then at most one line per minute.
constexpr Nanos kFailureLogInterval = std::chrono::minutes(1);

}  // namespace

SinkScheduler::SinkScheduler(SchedulerPolicy policy, Nanos now)
    : policy_(policy), last_failure_log_(now - kFailureLogInterval), last_progress_(now) {
  policy_.concurrency = std::max(1, policy_.concurrency);
  if (policy_.retry_max < policy_.retry_initial) policy_.retry_max = policy_.retry_initial;
}

int SinkScheduler::Limit() const {
  return failures_ > 0 || !answered_ ? 1 : policy_.concurrency;
}

bool SinkScheduler::MayStart(Nanos now, int in_flight) const {
  if (state_ == State::kGivenUp || state_ == State::kRecordingFailed) return false;
  if (now < next_attempt_) return false;
  return in_flight < Limit();
}

std::optional<Nanos> SinkScheduler::NextDeadline(bool has_pending, int in_flight) const {
  std::optional<Nanos> next;
  auto until = [&](Nanos t) { next = next ? std::min(*next, t) : t; };
  if (state_ == State::kGivenUp) return std::nullopt;
  if (state_ == State::kRecordingFailed) {
    until(next_attempt_);
    return next;
  }
  if (has_pending && in_flight < Limit()) until(next_attempt_);
  if (policy_.one_shot) {
    if (failures_ > 0) until(failing_since_ + policy_.give_up_after);
    if (has_pending || in_flight > 0) {
      until(last_progress_ + policy_.give_up_after + policy_.stall_allowance);
    }
  }
  return next;
}

void SinkScheduler::OnDelivered(Nanos now) {
  failures_ = 0;
  answered_ = true;
  next_attempt_ = Nanos(0);
  last_progress_ = now;
  if (state_ == State::kPaused) state_ = State::kActive;
}

SinkScheduler::RetryPlan SinkScheduler::OnTransientFailure(Nanos now, long http_status,
                                                           std::optional<Nanos> retry_after,
                                                           double unit_random) {
  RetryPlan plan;
  if (++failures_ == 1) failing_since_ = now;
  plan.delay = BackoffDelay(failures_, policy_.retry_initial, policy_.retry_max, unit_random);
  if ((http_status == 429 || http_status == 503) && retry_after) {
    plan.delay = std::min(*retry_after, std::max(kMaxRetryAfter, policy_.retry_max));
    plan.server_asked = true;
  }
  next_attempt_ = std::max(next_attempt_, now + plan.delay);
  if (failures_ == 1 || now - last_failure_log_ >= kFailureLogInterval) {
    last_failure_log_ = now;
    plan.log = true;
  }
  return plan;
}

void SinkScheduler::OnRejected(Nanos now) {
  // The server answered: the sink works, this one dump is what it refuses.
  failures_ = 0;
  answered_ = true;
  last_progress_ = now;
}

void SinkScheduler::OnSinkRefused(Nanos now) {
  failures_ = 0;
  answered_ = false;  // probed again, one request at a time
  last_progress_ = now;
  next_attempt_ = now + policy_.retry_max;
  state_ = policy_.one_shot ? State::kGivenUp : State::kPaused;
}

void SinkScheduler::OnRecordingFailed(Nanos now) {
  if (state_ == State::kGivenUp) return;
  state_ = policy_.one_shot ? State::kGivenUp : State::kRecordingFailed;
  next_attempt_ = now + policy_.retry_max;
}

void SinkScheduler::OnRecordingProbe(Nanos now, bool recovered) {
  if (state_ != State::kRecordingFailed) return;
  if (recovered) {
    state_ = State::kActive;
    next_attempt_ = Nanos(0);
    last_progress_ = now;
  } else {
    next_attempt_ = now + policy_.retry_max;
  }
}

std::optional<std::string> SinkScheduler::CheckGiveUp(Nanos now, bool has_pending,
                                                      int in_flight) {
  if (!policy_.one_shot || state_ == State::kGivenUp) return std::nullopt;
  if (!has_pending && in_flight == 0) {
    last_progress_ = now;  // nothing to do is not a stall
    return std::nullopt;
  }
  if (failures_ > 0 && now - failing_since_ >= policy_.give_up_after) {
    state_ = State::kGivenUp;
    return "it kept failing";
  }
  if (now - last_progress_ >= policy_.give_up_after + policy_.stall_allowance) {
    state_ = State::kGivenUp;
    return "no dump was settled";
  }
  return std::nullopt;
}

}  // namespace sleuth::uploader
