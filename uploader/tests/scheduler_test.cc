// The uploader's per-sink decisions, driven by a FakeClock: no thread, no
// network, no real time.
#include "sleuth/uploader/scheduler.h"

#include <gtest/gtest.h>

#include "sleuth/common/clock.h"

namespace sleuth::uploader {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using State = SinkScheduler::State;

SchedulerPolicy Policy(bool one_shot = false) {
  SchedulerPolicy p;
  p.retry_initial = seconds(1);
  p.retry_max = seconds(60);
  p.concurrency = 4;
  p.one_shot = one_shot;
  p.give_up_after = seconds(30);
  p.stall_allowance = seconds(10);
  return p;
}

TEST(SchedulerTest, ProbesWithOneRequestUntilTheSinkAnswers) {
  FakeClock clock;
  SinkScheduler s(Policy(), clock.Monotonic());
  EXPECT_EQ(s.Limit(), 1);
  EXPECT_TRUE(s.MayStart(clock.Monotonic(), 0));
  EXPECT_FALSE(s.MayStart(clock.Monotonic(), 1));
  s.OnDelivered(clock.Monotonic());
  EXPECT_EQ(s.Limit(), 4);
  EXPECT_TRUE(s.MayStart(clock.Monotonic(), 3));
  EXPECT_FALSE(s.MayStart(clock.Monotonic(), 4));
}

TEST(SchedulerTest, BacksOffExponentiallyAndProbesWhileFailing) {
  FakeClock clock;
  SinkScheduler s(Policy(), clock.Monotonic());
  s.OnDelivered(clock.Monotonic());
  Nanos previous{0};
  for (int i = 1; i <= 10; ++i) {
    SinkScheduler::RetryPlan plan = s.OnTransientFailure(clock.Monotonic(), 500, {}, 0.999);
    EXPECT_EQ(s.failures(), i);
    EXPECT_EQ(s.Limit(), 1) << "a failing sink is probed one request at a time";
    EXPECT_GE(plan.delay, previous) << "the wait never shrinks while failing";
    EXPECT_LE(plan.delay, seconds(60));
    if (i <= 2) EXPECT_EQ(plan.log, i == 1) << "one line for the first failure, not one per attempt";
    EXPECT_FALSE(s.MayStart(clock.Monotonic() + plan.delay - milliseconds(1), 0));
    clock.Advance(plan.delay);
    EXPECT_TRUE(s.MayStart(clock.Monotonic(), 0));
    previous = plan.delay;
  }
  EXPECT_GE(previous, seconds(30)) << "ten doublings of 1 s reach the cap";
  s.OnDelivered(clock.Monotonic());
  EXPECT_EQ(s.failures(), 0);
  EXPECT_EQ(s.Limit(), 4);
}

// A request that could not even be started (curl_easy_init or
// curl_multi_add_handle failed) is a failure like any other: it waits.
TEST(SchedulerTest, ARequestThatCannotStartBacksOff) {
  FakeClock clock;
  SinkScheduler s(Policy(), clock.Monotonic());
  SinkScheduler::RetryPlan plan = s.OnTransientFailure(clock.Monotonic(), 0, {}, 0.0);
  EXPECT_GE(plan.delay, seconds(1));
  EXPECT_FALSE(s.MayStart(clock.Monotonic(), 0));
  ASSERT_TRUE(s.NextDeadline(true, 0).has_value());
  EXPECT_EQ(*s.NextDeadline(true, 0), clock.Monotonic() + plan.delay);
}

TEST(SchedulerTest, HonoursRetryAfterOnlyFor429And503AndCapsIt) {
  FakeClock clock;
  SinkScheduler s(Policy(), clock.Monotonic());
  auto plan = s.OnTransientFailure(clock.Monotonic(), 429, Nanos(seconds(7)), 0.5);
  EXPECT_TRUE(plan.server_asked);
  EXPECT_EQ(plan.delay, seconds(7));
  plan = s.OnTransientFailure(clock.Monotonic(), 500, Nanos(seconds(7)), 0.0);
  EXPECT_FALSE(plan.server_asked) << "Retry-After on a 500 is not a request to wait";
  plan = s.OnTransientFailure(clock.Monotonic(), 503, Nanos(std::chrono::hours(48)), 0.0);
  EXPECT_TRUE(plan.server_asked);
  EXPECT_EQ(plan.delay, kMaxRetryAfter) << "a bogus Retry-After cannot park the sink for days";
}

TEST(SchedulerTest, ASinkRefusalPausesOrGivesUpInOneShotMode) {
  FakeClock clock;
  SinkScheduler follow(Policy(false), clock.Monotonic());
  follow.OnSinkRefused(clock.Monotonic());
  EXPECT_EQ(follow.state(), State::kPaused);
  EXPECT_FALSE(follow.MayStart(clock.Monotonic(), 0));
  clock.Advance(seconds(60));
  EXPECT_TRUE(follow.MayStart(clock.Monotonic(), 0));
  EXPECT_EQ(follow.Limit(), 1) << "probed again one request at a time";

  SinkScheduler once(Policy(true), clock.Monotonic());
  once.OnSinkRefused(clock.Monotonic());
  EXPECT_TRUE(once.given_up());
  EXPECT_FALSE(once.NextDeadline(true, 0).has_value());
}

// The disk-full loop: every delivery reached the backend but no .done marker
// could be written, so the same dumps were sent 27,455 times. Now the sink
// stops until recording works again.
TEST(SchedulerTest, ADeliveryThatCannotBeRecordedStopsTheSink) {
  FakeClock clock;
  SinkScheduler s(Policy(false), clock.Monotonic());
  s.OnDelivered(clock.Monotonic());
  s.OnRecordingFailed(clock.Monotonic());
  EXPECT_EQ(s.state(), State::kRecordingFailed);
  EXPECT_FALSE(s.MayStart(clock.Monotonic(), 0));
  EXPECT_FALSE(s.RecordingProbeDue(clock.Monotonic()));
  clock.Advance(seconds(59));
  EXPECT_FALSE(s.RecordingProbeDue(clock.Monotonic()));
  clock.Advance(seconds(1));
  ASSERT_TRUE(s.RecordingProbeDue(clock.Monotonic()));
  EXPECT_FALSE(s.MayStart(clock.Monotonic(), 0)) << "nothing is sent before recording works";
  s.OnRecordingProbe(clock.Monotonic(), false);
  EXPECT_FALSE(s.RecordingProbeDue(clock.Monotonic()));
  clock.Advance(seconds(60));
  ASSERT_TRUE(s.RecordingProbeDue(clock.Monotonic()));
  s.OnRecordingProbe(clock.Monotonic(), true);
  EXPECT_EQ(s.state(), State::kActive);
  EXPECT_TRUE(s.MayStart(clock.Monotonic(), 0));

  SinkScheduler once(Policy(true), clock.Monotonic());
  once.OnRecordingFailed(clock.Monotonic());
  EXPECT_TRUE(once.given_up()) << "`sleuth upload` stops instead of resending";
}

TEST(SchedulerTest, OneShotGivesUpAfterContinuousFailure) {
  FakeClock clock;
  SinkScheduler s(Policy(true), clock.Monotonic());
  s.OnTransientFailure(clock.Monotonic(), 0, {}, 0.5);
  EXPECT_EQ(*s.NextDeadline(true, 0), clock.Monotonic() + seconds(1)) << "never below retry_initial";
  clock.Advance(seconds(29));
  s.OnTransientFailure(clock.Monotonic(), 0, {}, 0.5);
  EXPECT_FALSE(s.CheckGiveUp(clock.Monotonic(), true, 0).has_value());
  clock.Advance(seconds(1));
  EXPECT_TRUE(s.CheckGiveUp(clock.Monotonic(), true, 0).has_value());
  EXPECT_TRUE(s.given_up());
  EXPECT_FALSE(s.CheckGiveUp(clock.Monotonic(), true, 0).has_value()) << "reported once";
}

// Whatever keeps a sink from settling dumps, --give-up-after ends the run:
// here it has work and never completes anything, and never fails either.
TEST(SchedulerTest, OneShotGivesUpOnASinkThatSettlesNothing) {
  FakeClock clock;
  SinkScheduler s(Policy(true), clock.Monotonic());
  clock.Advance(seconds(39));
  EXPECT_FALSE(s.CheckGiveUp(clock.Monotonic(), true, 1).has_value());
  EXPECT_EQ(*s.NextDeadline(true, 1), seconds(40));
  clock.Advance(seconds(1));
  EXPECT_TRUE(s.CheckGiveUp(clock.Monotonic(), true, 1).has_value());

  SinkScheduler idle(Policy(true), clock.Monotonic());
  clock.Advance(std::chrono::hours(1));
  EXPECT_FALSE(idle.CheckGiveUp(clock.Monotonic(), false, 0).has_value())
      << "a sink with nothing to do is not stalled";
  EXPECT_FALSE(idle.CheckGiveUp(clock.Monotonic(), true, 0).has_value())
      << "the stall clock starts when work appears";

  SinkScheduler follow(Policy(false), clock.Monotonic());
  clock.Advance(std::chrono::hours(1));
  EXPECT_FALSE(follow.CheckGiveUp(clock.Monotonic(), true, 0).has_value())
      << "--follow never gives up";
}

TEST(SchedulerTest, ProgressKeepsASlowButWorkingSinkGoing) {
  FakeClock clock;
  SinkScheduler s(Policy(true), clock.Monotonic());
  for (int i = 0; i < 100; ++i) {
    clock.Advance(seconds(20));
    if (i % 2 == 0) {
      s.OnDelivered(clock.Monotonic());
    } else {
      s.OnRejected(clock.Monotonic());
    }
    EXPECT_FALSE(s.CheckGiveUp(clock.Monotonic(), true, 1).has_value());
  }
}

}  // namespace
}  // namespace sleuth::uploader
