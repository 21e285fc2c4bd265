#include "task_status.h"

#include <gtest/gtest.h>

#include <string>

#include "sleuth/common/files.h"

namespace sleuth::capture::internal {
namespace {

std::string Fixture(const std::string& name) {
  Result<std::string> text = ReadFile(std::string(SLEUTH_FIXTURE_DIR) + "/capture/" + name);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : "";
}

TEST(TaskStatusTest, ParsesASleepingThread) {
  Result<TaskStatus> status = ParseTaskStatus(Fixture("task_status_sleeping.txt"));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->state, 'S');
  EXPECT_EQ(status->blocked_signals, 0u);
  EXPECT_EQ(status->pending_signals, 0u);
}

TEST(TaskStatusTest, ReadsBlockedAndPendingMasks) {
  Result<TaskStatus> status = ParseTaskStatus(Fixture("task_status_blocked_pending.txt"));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_TRUE(HasSignal(status->blocked_signals, 64));
  EXPECT_TRUE(HasSignal(status->pending_signals, 64));
  EXPECT_FALSE(HasSignal(status->blocked_signals, 63));
  EXPECT_FALSE(HasSignal(status->blocked_signals, 0));
  EXPECT_FALSE(HasSignal(status->blocked_signals, 65));
}

TEST(TaskStatusTest, ReadsTracingStop) {
  Result<TaskStatus> status = ParseTaskStatus(Fixture("task_status_traced.txt"));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state, 't');
}

TEST(TaskStatusTest, TruncatedTextNamesTheMissingField) {
  Result<TaskStatus> status = ParseTaskStatus(Fixture("task_status_truncated.txt"));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.status().message().find("SigBlk"), std::string::npos);
}

TEST(TaskStatusTest, MalformedMaskNamesTheField) {
  Result<TaskStatus> status = ParseTaskStatus(Fixture("task_status_bad_mask.txt"));
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.status().message().find("SigPnd"), std::string::npos);
  EXPECT_NE(status.status().message().find("zz00000000000000"), std::string::npos);
}

TEST(TaskStatusTest, EmptyTextIsAnError) {
  EXPECT_FALSE(ParseTaskStatus("").ok());
  EXPECT_FALSE(ParseTaskStatus("State:\n").ok());
}

}  // namespace
}  // namespace sleuth::capture::internal
