#include "sleuth/stacks/walk_output.h"

#include <gtest/gtest.h>

#include <string>

namespace sleuth::stacks {
namespace {

const profiles::Label* FindLabel(const profiles::RawSample& sample, const std::string& key) {
  for (const profiles::Label& label : sample.labels) {
    if (label.key == key) return &label;
  }
  return nullptr;
}

TEST(WalkOutputTest, RoundTripsThreadsWithAwkwardNames) {
  WalkedThread walked;
  walked.tid = 42;
  walked.name = "a b%c\nd";
  walked.state = 'S';
  walked.syscall = 230;
  walked.syscall_result = -516;
  walked.pcs = {0x7f0011223344, 0x55aa01, 0x1};
  walked.stopped_because = "no frame pointer in rbp";
  WalkedThread refused;
  refused.tid = 43;
  refused.name = "-";
  refused.state = 't';
  refused.problem = ThreadProblem::kTraced;
  refused.detail = "by pid 7";
  WalkedThread empty_name;
  empty_name.tid = 44;
  const std::string text = FormatHeader(9, "frame-pointer") + FormatThread(walked) +
                           FormatThread(refused) + FormatThread(empty_name) +
                           FormatEnd("complete", "");
  Result<WalkOutput> parsed = ParseWalkOutput(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString() << "\n" << text;
  EXPECT_EQ(parsed->pid, 9);
  EXPECT_EQ(parsed->unwinder, "frame-pointer");
  EXPECT_TRUE(parsed->ended);
  EXPECT_EQ(parsed->end_status, "complete");
  ASSERT_EQ(parsed->threads.size(), 3u);
  const WalkedThread& first = parsed->threads[0];
  EXPECT_EQ(first.tid, 42);
  EXPECT_EQ(first.name, walked.name);
  EXPECT_EQ(first.state, 'S');
  EXPECT_EQ(first.syscall, 230);
  EXPECT_EQ(first.syscall_result, -516);
  EXPECT_EQ(first.pcs, walked.pcs);
  EXPECT_EQ(first.stopped_because, walked.stopped_because);
  EXPECT_EQ(first.problem, ThreadProblem::kNone);
  EXPECT_EQ(parsed->threads[1].name, "-");
  EXPECT_EQ(parsed->threads[1].problem, ThreadProblem::kTraced);
  EXPECT_EQ(parsed->threads[1].detail, "by pid 7");
  EXPECT_EQ(parsed->threads[2].name, "");
  // One line per record, whatever the name held.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5);
}

TEST(WalkOutputTest, ACutLastLineIsIgnoredAndTheWalkIsMarkedUnfinished) {
  WalkedThread walked;
  walked.tid = 5;
  walked.pcs = {0x10};
  std::string text = FormatHeader(5, "dwarf") + FormatThread(walked) + "thread 6 na";
  Result<WalkOutput> parsed = ParseWalkOutput(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_FALSE(parsed->ended);
  ASSERT_EQ(parsed->threads.size(), 1u);
  ThreadsDump dump = ToThreadsDump(*parsed, 1);
  ASSERT_EQ(dump.notes.size(), 1u);
  EXPECT_NE(dump.notes[0].find("without finishing"), std::string::npos);
}

TEST(WalkOutputTest, RejectsMalformedInput) {
  EXPECT_FALSE(ParseWalkOutput("").ok());
  EXPECT_FALSE(ParseWalkOutput("hello 1 2 x\n").ok());
  EXPECT_FALSE(ParseWalkOutput("sleuth-stackwalk 2 1 x\n").ok());
  const std::string header = FormatHeader(1, "x");
  EXPECT_FALSE(ParseWalkOutput(header + "thread 1 n S -1 0 zz - - -\n").ok());
  EXPECT_FALSE(ParseWalkOutput(header + "thread 1 n S -1 0 - - bogus -\n").ok());
  EXPECT_FALSE(ParseWalkOutput(header + "thread 1 n%2 S -1 0 - - - -\n").ok());
  EXPECT_FALSE(ParseWalkOutput(header + "thread 1 n S\n").ok());
  EXPECT_FALSE(ParseWalkOutput(header + "what 1\n").ok());
  EXPECT_FALSE(ParseWalkOutput(header + FormatEnd("complete", "") + "thread 1 n S -1 0 - - - -\n")
                   .ok());
}

TEST(WalkOutputTest, ThreadsDumpHasTheThreadDumpShapeAndExplainsGaps) {
  WalkOutput walk;
  walk.pid = 10;
  walk.unwinder = "dwarf";
  walk.ended = true;
  walk.end_status = "complete";
  WalkedThread a;
  a.tid = 10;
  a.name = "main";
  a.pcs = {0x1000, 0x2000};
  WalkedThread b;
  b.tid = 11;
  b.name = "traced";
  b.problem = ThreadProblem::kTraced;
  b.detail = "by pid 99";
  WalkedThread c;
  c.tid = 12;
  c.name = "epoll";
  c.syscall = 232;
  c.syscall_result = -4;
  c.pcs = {0x3000};
  walk.threads = {a, b, c};
  ThreadsDump dump = ToThreadsDump(walk, 1234);
  const profiles::RawProfile& profile = dump.profile;
  ASSERT_EQ(profile.sample_types.size(), 1u);
  EXPECT_EQ(profile.sample_types[0].type, "threads");
  EXPECT_EQ(profile.sample_types[0].unit, "count");
  EXPECT_TRUE(profile.leaf_is_exact_pc);
  EXPECT_EQ(profile.time_nanos, 1234);
  ASSERT_EQ(profile.samples.size(), 3u);
  for (const profiles::RawSample& sample : profile.samples) {
    EXPECT_EQ(sample.values, std::vector<int64_t>{1});
    ASSERT_NE(FindLabel(sample, "thread_id"), nullptr);
    ASSERT_NE(FindLabel(sample, "thread_name"), nullptr);
  }
  EXPECT_EQ(FindLabel(profile.samples[0], "thread_id")->num, 10);
  EXPECT_EQ(profile.samples[0].pcs, a.pcs);
  EXPECT_EQ(FindLabel(profile.samples[0], "thread_state"), nullptr);
  EXPECT_TRUE(profile.samples[1].pcs.empty());
  ASSERT_EQ(profile.samples[1].names.size(), 1u);
  EXPECT_NE(profile.samples[1].names[0].find("no stack"), std::string::npos);
  EXPECT_EQ(FindLabel(profile.samples[1], "thread_state")->str, "already_traced");
  ASSERT_EQ(dump.notes.size(), 2u);
  EXPECT_NE(dump.notes[0].find("11 is traced by another process: by pid 99"), std::string::npos);
  EXPECT_NE(dump.notes[1].find("EINTR"), std::string::npos);
  EXPECT_NE(dump.notes[1].find("12 (syscall 232)"), std::string::npos);
}

}  // namespace
}  // namespace sleuth::stacks
