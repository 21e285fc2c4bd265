// `sleuth upload`, run in-process through RunUploadCommand against the
// loopback receiver: exit codes, what it prints, --retry-failed.
#include "upload_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <optional>

#include "../../dumps/tests/probe_user.h"
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

// ---------------------------------------------------------------- issue 7
// The attacks on the dump directory, through `sleuth upload --dir`.

TEST_F(UploadCommandTest, RefusesASymlinkedOrOpenDirectoryTouchingNothing) {
  std::string victim = root_ + "/victim";
  ASSERT_TRUE(WriteFileAtomic(victim, "root's data\n").ok());
  ASSERT_EQ(::symlink(dumps_.c_str(), (root_ + "/link").c_str()), 0);
  EXPECT_EQ(Run({"--dir", root_ + "/link", "--set", "upload.url=http://127.0.0.1:1"}),
            cli::kExitPermission);
  EXPECT_THAT(last_stderr_, HasSubstr("dump directory " + root_ + "/link is a symbolic link"));
  ASSERT_EQ(::mkdir((dumps_ + "/.sleuth-upload").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(victim.c_str(), (dumps_ + "/.sleuth-upload/lock").c_str()), 0);
  ASSERT_EQ(::chmod(dumps_.c_str(), 0777), 0);
  EXPECT_EQ(Run({"--dir", dumps_, "--set", "upload.url=http://127.0.0.1:1"}),
            cli::kExitPermission);
  EXPECT_THAT(last_stderr_, HasSubstr("is writable by others (mode 0777): another user could "
                                      "plant files there; use a directory only you can write"));
  ASSERT_EQ(::chmod(dumps_.c_str(), 0700), 0);
  // Private again, but the planted lock is still a symlink: refused too.
  EXPECT_EQ(Run({"--dir", dumps_, "--set", "upload.url=http://127.0.0.1:1"}),
            cli::kExitPermission);
  EXPECT_THAT(last_stderr_, HasSubstr("lock: it is a symbolic link"));
  EXPECT_EQ(*ReadFile(victim), "root's data\n");
}

TEST_F(UploadCommandTest, NeverShipsAPayloadThatIsASymlinkOrHardLink) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  std::string secret = root_ + "/shadow";
  ASSERT_TRUE(WriteFileAtomic(secret, "SECRET-CONTENT").ok());
  WrittenDump sym = Dump(), hard = Dump(), good = Dump();
  ASSERT_EQ(::unlink((dumps_ + "/" + sym.base + ".pb.gz").c_str()), 0);
  ASSERT_EQ(::symlink(secret.c_str(), (dumps_ + "/" + sym.base + ".pb.gz").c_str()), 0);
  ASSERT_EQ(::unlink((dumps_ + "/" + hard.base + ".pb.gz").c_str()), 0);
  ASSERT_EQ(::link(secret.c_str(), (dumps_ + "/" + hard.base + ".pb.gz").c_str()), 0);
  std::string out;
  // Set aside in failed/_invalid/ (and listed as left), never sent.
  EXPECT_EQ(Run(Flags(rx->url()), &out), cli::kExitFailure) << out << last_stderr_;
  EXPECT_THAT(out, HasSubstr("uploaded 1, refused 0, invalid 2"));
  EXPECT_THAT(last_stderr_, HasSubstr("it is a symbolic link"));
  EXPECT_THAT(last_stderr_, HasSubstr("2 hard links"));
  for (const auto& request : rx->Requests()) {
    EXPECT_EQ(request.body.find("SECRET-CONTENT"), std::string::npos);
  }
  EXPECT_EQ(rx->Requests().size(), 1u);
  EXPECT_EQ(*ReadFile(secret), "SECRET-CONTENT");
}

TEST_F(UploadCommandTest, ASymlinkedFailedDirectoryIsRefusedNotFollowed) {
  std::string somedir = root_ + "/somedir";
  ASSERT_EQ(::mkdir(somedir.c_str(), 0700), 0);
  ASSERT_TRUE(WriteFileAtomic(somedir + "/keep.json", "{}").ok());
  ASSERT_TRUE(WriteFileAtomic(somedir + "/keep.pb.gz", "x").ok());
  ASSERT_EQ(::symlink(somedir.c_str(), (dumps_ + "/failed").c_str()), 0);
  Dump();
  std::vector<std::string> flags = Flags("http://127.0.0.1:1");
  flags.push_back("--retry-failed");
  EXPECT_EQ(Run(flags), cli::kExitFailure);
  EXPECT_THAT(last_stderr_, HasSubstr("state directory " + dumps_ + "/failed is a symbolic link"));
  EXPECT_TRUE(PathExists(somedir + "/keep.json"));
  EXPECT_TRUE(PathExists(somedir + "/keep.pb.gz"));
}

TEST_F(UploadCommandTest, AMarkerThatIsNotOurOwnFileIsNotTrusted) {
  auto rx = StartReceiver();
  ASSERT_TRUE(rx);
  WrittenDump d = Dump();
  ASSERT_TRUE(MakeDirs(dumps_ + "/.sleuth-upload/default", 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/elsewhere", "").ok());
  ASSERT_EQ(::symlink((root_ + "/elsewhere").c_str(),
                      (dumps_ + "/.sleuth-upload/default/" + d.base + ".done").c_str()),
            0);
  std::string out;
  EXPECT_EQ(Run(Flags(rx->url()), &out), cli::kExitOk) << out << last_stderr_;
  EXPECT_THAT(out, HasSubstr("uploaded 1"));
  EXPECT_EQ(rx->Requests().size(), 1u);
}

TEST_F(UploadCommandTest, AnotherUsersDirectoryIsRefused) {
  std::string why;
  std::optional<dumps::testing::ProbeUser> user = dumps::testing::ProbeUser::Create(&why);
  if (!user) GTEST_SKIP() << why;
  std::string attack = "/tmp/sleuth_cli_attack_" + std::to_string(::getpid());
  std::string victim = root_ + "/victim";
  ASSERT_TRUE(WriteFileAtomic(victim, "root's data\n").ok());
  ASSERT_EQ(std::system(("rm -rf " + attack).c_str()), 0);
  ASSERT_EQ(user->Run("mkdir -m777 " + attack + " " + attack + "/.sleuth-upload && ln -s " +
                      victim + " " + attack + "/.sleuth-upload/lock && ln -s " + victim + " " +
                      attack + "/evil.1.cpu.20261201T000000.000Z.0123456789abcdef0123456789abcdef"
                      ".pb.gz && echo {} > " + attack +
                      "/evil.1.cpu.20261201T000000.000Z.0123456789abcdef0123456789abcdef.json"),
            0);
  EXPECT_EQ(Run({"--dir", attack, "--set", "upload.url=http://127.0.0.1:1"}), cli::kExitPermission);
  EXPECT_THAT(last_stderr_, HasSubstr("dump directory " + attack + " is owned by uid " +
                                      std::to_string(user->uid()) +
                                      ", not by this process's uid 0: another user could plant "
                                      "files there"));
  EXPECT_EQ(*ReadFile(victim), "root's data\n");
  ASSERT_EQ(std::system(("rm -rf " + attack).c_str()), 0);
}

}  // namespace
}  // namespace sleuth::uploader
