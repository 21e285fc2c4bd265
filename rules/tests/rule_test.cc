#include "sleuth/rules/rule.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace sleuth::rules {
namespace {

using std::chrono::seconds;

// cpu-like rule: min 10, diff 25%, abs 70, max 95, cooldown 60s, warmup 3.
RuleSpec Cpu() {
  return RuleSpec{.enable = true,
                  .min = 10,
                  .diff = 25,
                  .abs = 70,
                  .max = 95,
                  .cooldown = seconds(60),
                  .warmup = 3};
}

struct Case {
  std::string name;
  RuleSpec rule;
  std::vector<double> history;
  size_t seen;
  double value;
  std::optional<Nanos> last_dump;
  bool gate;
  bool fire;
  Reason reason;
  Quiet quiet;
};

class EvaluateTable : public ::testing::TestWithParam<Case> {};

TEST_P(EvaluateTable, Decides) {
  const Case& c = GetParam();
  Decision d = Evaluate(c.rule, Inputs{.history = c.history,
                                       .readings_seen = c.seen,
                                       .value = c.value,
                                       .now = seconds(1000),
                                       .last_dump = c.last_dump,
                                       .cpu_gate = c.gate});
  EXPECT_EQ(d.fire, c.fire) << d.Describe();
  EXPECT_EQ(d.reason, c.reason) << d.Describe();
  EXPECT_EQ(d.quiet, c.quiet) << d.Describe();
  EXPECT_EQ(d.value, c.value);
}

RuleSpec With(RuleSpec r, void (*edit)(RuleSpec&)) {
  edit(r);
  return r;
}

const std::vector<double> k20 = {20, 20, 20};  // average 20, diff threshold 25

INSTANTIATE_TEST_SUITE_P(
    Branches, EvaluateTable,
    ::testing::Values(Case{"disabled", With(Cpu(), [](RuleSpec& r) { r.enable = false; }), k20, 3,
                           90, std::nullopt, false, false, Reason::kNone, Quiet::kDisabled},
                      Case{"warmup_not_done",
                           Cpu(),
                           {20, 20},
                           2,
                           90,
                           std::nullopt,
                           false,
                           false,
                           Reason::kNone,
                           Quiet::kWarmup},
                      Case{"warmup_exactly_done", Cpu(), k20, 3, 90, std::nullopt, false, true,
                           Reason::kAbs, Quiet::kNone},
                      Case{"below_min",
                           Cpu(),
                           {1, 1, 1},
                           3,
                           9.99,
                           std::nullopt,
                           false,
                           false,
                           Reason::kNone,
                           Quiet::kBelowMin},
                      Case{"exactly_min_and_diff_matches",
                           Cpu(),
                           {8, 8, 8},
                           3,
                           10,
                           std::nullopt,
                           false,
                           true,
                           Reason::kDiff,
                           Quiet::kNone},
                      Case{"exactly_abs_does_not_fire_by_abs",
                           Cpu(),
                           {60, 60, 60},
                           3,
                           70,
                           std::nullopt,
                           false,
                           false,
                           Reason::kNone,
                           Quiet::kNotAnomalous},
                      Case{"just_above_abs",
                           Cpu(),
                           {69, 69, 69},
                           3,
                           70.01,
                           std::nullopt,
                           false,
                           true,
                           Reason::kAbs,
                           Quiet::kNone},
                      Case{"exactly_diff_threshold_fires", Cpu(), k20, 3, 25, std::nullopt, false,
                           true, Reason::kDiff, Quiet::kNone},
                      Case{"just_below_diff_threshold", Cpu(), k20, 3, 24.99, std::nullopt, false,
                           false, Reason::kNone, Quiet::kNotAnomalous},
                      Case{"average_zero_positive_value_fires",
                           Cpu(),
                           {0, 0, 0},
                           3,
                           10,
                           std::nullopt,
                           false,
                           true,
                           Reason::kDiff,
                           Quiet::kNone},
                      Case{"average_zero_zero_value_quiet",
                           With(Cpu(), [](RuleSpec& r) { r.min = 0; }),
                           {0, 0, 0},
                           3,
                           0,
                           std::nullopt,
                           false,
                           false,
                           Reason::kNone,
                           Quiet::kNotAnomalous},
                      Case{"diff_off_and_below_abs", With(Cpu(), [](RuleSpec& r) { r.diff = 0; }),
                           k20, 3, 60, std::nullopt, false, false, Reason::kNone,
                           Quiet::kNotAnomalous},
                      Case{"abs_off_high_value_fires_by_diff",
                           With(Cpu(), [](RuleSpec& r) { r.abs = 0; }), k20, 3, 90, std::nullopt,
                           false, true, Reason::kDiff, Quiet::kNone},
                      Case{"empty_history_no_diff",
                           With(Cpu(), [](RuleSpec& r) { r.warmup = 0; }),
                           {},
                           0,
                           50,
                           std::nullopt,
                           false,
                           false,
                           Reason::kNone,
                           Quiet::kNotAnomalous},
                      Case{"exactly_max_suppressed", Cpu(), k20, 3, 95, std::nullopt, false, false,
                           Reason::kAbs, Quiet::kAtOrAboveMax},
                      Case{"just_below_max_fires", Cpu(), k20, 3, 94.99, std::nullopt, false, true,
                           Reason::kAbs, Quiet::kNone},
                      Case{"max_zero_means_none", With(Cpu(), [](RuleSpec& r) { r.max = 0; }), k20,
                           3, 100, std::nullopt, false, true, Reason::kAbs, Quiet::kNone},
                      Case{"cooldown_active", Cpu(), k20, 3, 90, seconds(1000 - 59), false, false,
                           Reason::kAbs, Quiet::kCooldown},
                      Case{"cooldown_expires_exactly", Cpu(), k20, 3, 90, seconds(1000 - 60), false,
                           true, Reason::kAbs, Quiet::kNone},
                      Case{"gate_holds_back", Cpu(), k20, 3, 90, std::nullopt, true, false,
                           Reason::kAbs, Quiet::kCpuGate},
                      Case{"gate_irrelevant_when_not_matching", Cpu(), k20, 3, 21, std::nullopt,
                           true, false, Reason::kNone, Quiet::kNotAnomalous}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(Evaluate, ReportsAverageThresholdAndCooldownLeft) {
  std::vector<double> h = {10, 20, 30};
  Decision d = Evaluate(Cpu(), Inputs{.history = h,
                                      .readings_seen = 3,
                                      .value = 90,
                                      .now = seconds(100),
                                      .last_dump = seconds(70)});
  EXPECT_EQ(d.average, 20);
  EXPECT_EQ(d.diff_threshold, 25);
  EXPECT_EQ(d.history_size, 3u);
  ASSERT_TRUE(d.cooldown_left.has_value());
  EXPECT_EQ(*d.cooldown_left, seconds(30));
  EXPECT_NE(d.Describe().find("cooldown"), std::string::npos);
}

TEST(Evaluate, DescribeNamesTheReason) {
  Decision d = Evaluate(Cpu(), Inputs{.history = k20,
                                      .readings_seen = 3,
                                      .value = 80,
                                      .now = seconds(1),
                                      .last_dump = std::nullopt,
                                      .cpu_gate = false});
  EXPECT_EQ(d.Describe(), "fire: abs (value 80.00 > abs 70.00; average 20.00 over 3 readings)");
  d = Evaluate(Cpu(), Inputs{.history = k20,
                             .readings_seen = 3,
                             .value = 30,
                             .now = seconds(1),
                             .last_dump = std::nullopt,
                             .cpu_gate = false});
  EXPECT_NE(d.Describe().find("fire: diff"), std::string::npos);
  EXPECT_EQ(ReasonName(d.reason), "diff");
}

TEST(MetricRule, AverageIsOfTheHistoryBeforeTheReading) {
  MetricRule rule(Cpu(), 3);
  for (double v : {20.0, 20.0, 20.0}) EXPECT_FALSE(rule.Observe(v, seconds(0), false).fire);
  // 25 is exactly 25% above 20; if 25 were included, the average would be 21.25.
  Decision d = rule.Observe(25, seconds(1), false);
  EXPECT_TRUE(d.fire) << d.Describe();
  EXPECT_EQ(d.average, 20);
}

TEST(MetricRule, RingKeepsOnlyTheLastReadings) {
  MetricRule rule(With(Cpu(), [](RuleSpec& r) { r.abs = 0; }), 3);
  for (double v : {100.0, 100.0, 100.0, 20.0, 20.0, 20.0}) (void)rule.Observe(v, seconds(0), false);
  EXPECT_EQ(rule.history().size(), 3u);
  Decision d = rule.Observe(25, seconds(1), false);
  EXPECT_EQ(d.average, 20) << "the 100s must have left the ring";
  EXPECT_TRUE(d.fire);
}

TEST(MetricRule, ReadingsEnterHistoryDuringCooldownAndCooldownExpires) {
  MetricRule rule(Cpu(), 3);
  for (int i = 0; i < 3; i++) (void)rule.Observe(20, seconds(i), false);
  Decision first = rule.Observe(90, seconds(10), false);
  ASSERT_TRUE(first.fire);
  rule.RecordDump(seconds(10));
  Decision cooling = rule.Observe(90, seconds(20), false);
  EXPECT_EQ(cooling.quiet, Quiet::kCooldown);
  EXPECT_TRUE(IsSuppression(cooling.quiet));
  // History now holds 20, 90, 90: the cooldown did not keep readings out.
  Decision after = rule.Observe(90, seconds(70), false);
  EXPECT_NEAR(after.average, (20 + 90 + 90) / 3.0, 1e-9);
  EXPECT_TRUE(after.fire);
}

TEST(MetricRule, ResetRestartsWarmupAndForgetsCooldown) {
  MetricRule rule(Cpu(), 3);
  for (int i = 0; i < 3; i++) (void)rule.Observe(20, seconds(i), false);
  rule.RecordDump(seconds(3));
  rule.Reset();
  EXPECT_TRUE(rule.history().empty());
  EXPECT_EQ(rule.Observe(90, seconds(4), false).quiet, Quiet::kWarmup);
  for (int i = 0; i < 2; i++) (void)rule.Observe(20, seconds(5 + i), false);
  Decision d = rule.Observe(90, seconds(8), false);
  EXPECT_TRUE(d.fire) << "cooldown from before the reset must be forgotten: " << d.Describe();
}

TEST(Suppression, OnlyMatchedReadingsCount) {
  EXPECT_FALSE(IsSuppression(Quiet::kBelowMin));
  EXPECT_FALSE(IsSuppression(Quiet::kNotAnomalous));
  EXPECT_FALSE(IsSuppression(Quiet::kWarmup));
  EXPECT_TRUE(IsSuppression(Quiet::kCpuGate));
  EXPECT_TRUE(IsSuppression(Quiet::kAtOrAboveMax));
}

}  // namespace
}  // namespace sleuth::rules
