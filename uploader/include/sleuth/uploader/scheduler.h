// The uploader's decisions for one sink, apart from any I/O: events in (an
// attempt's outcome, a request that could not start, a delivery that could
// not be recorded, the passing of time), answers out (may a request start
// now, how many may run, when to look again, stop or give up). Pure: time
// comes in as arguments (the Clock's Monotonic()), randomness as a number in
// [0, 1), so it is tested with a FakeClock and no network.
//
// Policy:
// - Transient failures (network, timeout, 408, 429, 5xx, and a request that
//   could not even be started) back off exponentially with jitter between
//   retry_initial and retry_max; a 429/503 Retry-After is honoured, capped at
//   max(kMaxRetryAfter, retry_max).
// - Until the sink has answered once, and while it fails, one request at a
//   time probes it; otherwise up to `concurrency` run.
// - A refusal of the sink itself (401, 403, ...) pauses it for retry_max; in
//   one-shot mode it gives up.
// - A delivery whose outcome cannot be recorded on disk (ENOSPC, EDQUOT,
//   EIO writing the .done marker or failed/ entry) stops the sink: resending
//   would deliver the same dump again and again without end. In one-shot mode
//   the sink gives up; otherwise it is held until RecordingRecovered(), which
//   the caller tries no more often than retry_max (see RecordingProbeDue()).
// - One-shot mode gives up on a sink that failed continuously for
//   give_up_after, and, whatever the reason, on one with work left that
//   settled nothing for give_up_after + stall_allowance: so `sleuth upload
//   --give-up-after` always ends.
//
// Thread-compatible: owned by the upload worker.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "sleuth/uploader/retry.h"

namespace sleuth::uploader {

struct SchedulerPolicy {
  Nanos retry_initial = std::chrono::seconds(1);
  Nanos retry_max = std::chrono::seconds(60);
  int concurrency = 2;
  bool one_shot = false;
  Nanos give_up_after = std::chrono::seconds(30);
  // Time a sink may go without settling a dump before the one-shot stall
  // rule gives up on it, beyond give_up_after: one request's timeout, so a
  // slow upload that succeeds is never cut off.
  Nanos stall_allowance = std::chrono::seconds(10);
};

class SinkScheduler {
 public:
  enum class State {
    kActive,
    kPaused,           // the sink refused us; resumes at next_attempt()
    kRecordingFailed,  // deliveries cannot be recorded; see RecordingProbeDue()
    kGivenUp,          // one-shot mode only: nothing more is sent
  };

  struct RetryPlan {
    Nanos delay{0};
    bool server_asked = false;  // the delay came from Retry-After
    bool log = false;  // the first failure in a row, or a minute since the last line
  };

  SinkScheduler(SchedulerPolicy policy, Nanos now);

  // ---------------------------------------------------------------- asks
  // Requests that may run at once now: 1 while probing, else concurrency.
  int Limit() const;
  // Whether one more request may start at `now` with `in_flight` running.
  bool MayStart(Nanos now, int in_flight) const;
  // The earliest time a decision may change, for the poll timeout; nullopt
  // when only an outside event (a new dump, a completion) can change one.
  std::optional<Nanos> NextDeadline(bool has_pending, int in_flight) const;
  bool RecordingProbeDue(Nanos now) const {
    return state_ == State::kRecordingFailed && now >= next_attempt_;
  }

  // ---------------------------------------------------------------- events
  // A 2xx, recorded. Ends probing and any failure streak.
  void OnDelivered(Nanos now);
  // A transient failure, or a request that could not be started (status 0).
  // `retry_after` is the server's parsed Retry-After, if any.
  RetryPlan OnTransientFailure(Nanos now, long http_status, std::optional<Nanos> retry_after,
                               double unit_random);
  // The server refused one dump (set aside): progress, not a failure.
  void OnRejected(Nanos now);
  // The server refused the sink itself (401, 403, 404, 405, 407, 3xx).
  void OnSinkRefused(Nanos now);
  // A dump left the queue some other way (vanished, set aside as invalid).
  void OnSettled(Nanos now) { last_progress_ = now; }
  // A delivery (or refusal) could not be recorded on disk.
  void OnRecordingFailed(Nanos now);
  // The caller recorded every pending outcome after a RecordingProbeDue():
  // the sink runs again. Or it still cannot: try again after retry_max.
  void OnRecordingProbe(Nanos now, bool recovered);

  // One-shot mode: gives up if a give-up rule applies at `now`. Returns the
  // reason the first time it does (for one log line), else nullopt.
  std::optional<std::string> CheckGiveUp(Nanos now, bool has_pending, int in_flight);

  // ---------------------------------------------------------------- state
  State state() const { return state_; }
  bool given_up() const { return state_ == State::kGivenUp; }
  int failures() const { return failures_; }
  bool answered() const { return answered_; }
  Nanos failing_since() const { return failing_since_; }
  Nanos next_attempt() const { return next_attempt_; }

 private:
  SchedulerPolicy policy_;
  State state_ = State::kActive;
  Nanos next_attempt_{0};
  int failures_ = 0;
  bool answered_ = false;
  Nanos failing_since_{0};
  Nanos last_failure_log_{0};
  Nanos last_progress_{0};
};

}  // namespace sleuth::uploader
