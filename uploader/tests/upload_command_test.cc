// `sleuth upload`, run in-process through RunUploadCommand against the
// loopback receiver: exit codes, what it prints, --retry-failed.
#include "upload_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "exit_codes.h"
#include "test_util.h"

namespace sleuth::uploader {
namespace {

using ::testing::HasSubstr;
using namespace testing;  // NOLINT: the test helpers

class UploadCommandTest : public DirTest {
 protected:
  // Runs `sleuth upload ARGS...`; returns the exit code, stdout in *out.
  int Run(std::vector<std::string> args, std::string* out = nullptr) {
    args.insert(args.begin(), "upload");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    int code = cli::RunUploadCommand(static_cast<int>(args.size()), argv.data());
    std::string printed = ::testing::internal::GetCapturedStdout();
    last_stderr_ = ::testing::internal::GetCapturedStderr();
    if (out != nullptr) *out = printed;
    return code;
  }

  std::vector<std::string> Flags(const std::string& url) {
    return {"--dir", dumps_,
            "--set", "upload.url=" + url,
            "--set", "upload.retry_initial=10ms",
            "--set", "upload.retry_max=50ms"};
  }

  std::string last_stderr_;
};

TEST_F(UploadCommandTest, ShipsEverythingAndExitsZero) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  for (int i = 0; i < 3; ++i) Dump();
  std::string out;
  EXPECT_EQ(Run(Flags(rx->url()), &out), cli::kExitOk) << out << last_stderr_;
  EXPECT_THAT(out, HasSubstr("uploaded 3, refused 0, invalid 0, evicted 0; 0 left undelivered"));
  EXPECT_EQ(rx->Requests().size(), 3u);
  // Nothing left: a second run sends nothing and still succeeds.
  EXPECT_EQ(Run(Flags(rx->url()), &out), cli::kExitOk);
  EXPECT_EQ(rx->Requests().size(), 3u);
}

TEST_F(UploadCommandTest, ListsWhatIsLeftAndWhyThenRetriesFailed) {
  auto rx = StartReceiver(R"({"default": {"status": 401, "body": "who are you"}})");
  ASSERT_TRUE(rx);
  WrittenDump first = Dump(), second = Dump();
  std::string out;
  EXPECT_EQ(Run(Flags(rx->url()), &out), cli::kExitFailure);
  EXPECT_THAT(out, HasSubstr("left undelivered"));
  EXPECT_THAT(out, HasSubstr(first.base + " -> default: refused, kept in " + dumps_ +
                             "/failed/default/ (sink default"));
  EXPECT_THAT(out, HasSubstr("HTTP 401: who are you"));
  EXPECT_THAT(out, HasSubstr(second.base +
                             " -> default: still queued (the sink refused uploads: HTTP 401"));
  EXPECT_THAT(out, HasSubstr("2 left undelivered"));

  ASSERT_TRUE(rx->Script(R"({"default": {"status": 200}})").ok());
  std::vector<std::string> flags = Flags(rx->url());
  flags.push_back("--retry-failed");
  EXPECT_EQ(Run(flags, &out), cli::kExitOk) << out << last_stderr_;
  EXPECT_THAT(out, HasSubstr("requeued 1 refused upload(s)"));
  EXPECT_THAT(out, HasSubstr("0 left undelivered"));
}

TEST_F(UploadCommandTest, GivesUpOnAnUnreachableSinkAndSaysSo) {
  Result<int> port = PickFreePort();
  ASSERT_TRUE(port.ok());
  WrittenDump d = Dump();
  std::vector<std::string> flags = Flags("http://127.0.0.1:" + std::to_string(*port));
  flags.push_back("--give-up-after=200ms");
  std::string out;
  EXPECT_EQ(Run(flags, &out), cli::kExitFailure);
  EXPECT_THAT(out, HasSubstr(d.base + " -> default: still queued (the last attempt failed: "));
  EXPECT_THAT(out, HasSubstr("1 left undelivered"));
  EXPECT_THAT(last_stderr_, HasSubstr("giving up on sink default"));
}

TEST_F(UploadCommandTest, RefusesBadInputWithTheRightExitCode) {
  EXPECT_EQ(Run({"--dir", root_ + "/missing", "--set", "upload.url=http://127.0.0.1:1"}),
            cli::kExitUsage);
  EXPECT_THAT(last_stderr_, HasSubstr("--dir names the dump directory"));
  EXPECT_EQ(Run({"--dir", dumps_}), cli::kExitConfig);
  EXPECT_THAT(last_stderr_, HasSubstr("nothing to upload to: set upload.url"));
  EXPECT_EQ(Run({"--dir", dumps_, "--set", "upload.url=ftp://x"}), cli::kExitConfig);
  EXPECT_EQ(Run({"--dir", dumps_, "--bogus"}), cli::kExitUsage);
  EXPECT_EQ(Run({"--dir", dumps_, "--give-up-after", "soon", "--set", "upload.url=http://h"}),
            cli::kExitUsage);
}

}  // namespace
}  // namespace sleuth::uploader
