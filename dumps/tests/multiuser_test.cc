// The attacks of issue 7, played by a real second local user: each is
// refused with the clear message and nothing outside the dump directory is
// read, written or removed. Skipped (saying why) when not root.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "probe_user.h"
#include "sleuth/common/files.h"
#include "sleuth/dumps/dump_dir.h"
#include "sleuth/dumps/layout.h"
#include "sleuth/dumps/leftovers.h"
#include "sleuth/dumps/retention.h"
#include "sleuth/dumps/writer.h"

namespace sleuth::dumps {
namespace {

using ::testing::HasSubstr;

class MultiUserTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    user_ = new std::optional<testing::ProbeUser>(testing::ProbeUser::Create(&why));
    if (!user_->has_value()) why_ = new std::string(why);
  }
  static void TearDownTestSuite() {
    delete user_;
    user_ = nullptr;
    delete why_;
    why_ = nullptr;
  }

  void SetUp() override {
    if (!user_->has_value()) GTEST_SKIP() << *why_;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string tag = std::string(info->name()) + "_" + std::to_string(::getpid());
    // The attacker's playground: /tmp, where any user may create entries.
    attack_ = "/tmp/sleuth_mu_" + tag;
    // Root's own files the attacker aims at.
    victim_dir_ = "/tmp/sleuth_mu_victim_" + tag;
    ASSERT_EQ(std::system(("rm -rf '" + attack_ + "' '" + victim_dir_ + "'").c_str()), 0);
    ASSERT_EQ(::mkdir(victim_dir_.c_str(), 0700), 0);
    victim_ = victim_dir_ + "/victim";
    std::ofstream(victim_) << "root's data\n";
    ASSERT_EQ(::mkdir((victim_dir_ + "/somedir").c_str(), 0700), 0);
    std::ofstream(victim_dir_ + "/somedir/keep") << "keep\n";
  }
  void TearDown() override {
    if (!user_->has_value()) return;
    // Nothing of root's was touched, whatever the test did.
    EXPECT_EQ(*ReadFile(victim_), "root's data\n");
    EXPECT_EQ(*ReadFile(victim_dir_ + "/somedir/keep"), "keep\n");
    if (!HasFailure()) {
      int rc = std::system(("rm -rf '" + attack_ + "' '" + victim_dir_ + "'").c_str());
      (void)rc;
    }
  }
  int Attacker(const std::string& script) { return (*user_)->Run(script); }
  std::string Uid() const { return std::to_string((*user_)->uid()); }

  static std::optional<testing::ProbeUser>* user_;
  static std::string* why_;
  std::string attack_, victim_dir_, victim_;
};
std::optional<testing::ProbeUser>* MultiUserTest::user_ = nullptr;
std::string* MultiUserTest::why_ = nullptr;

void ExpectRefusedAsOwnedByAttacker(const Result<DumpDir>& d, const std::string& dir,
                                    const std::string& uid) {
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kPermission);
  EXPECT_THAT(d.status().message(),
              HasSubstr("dump directory " + dir + " is owned by uid " + uid +
                        ", not by this process's uid 0: another user could plant files there"));
  EXPECT_THAT(d.status().message(), HasSubstr("agent.dump_dir"));
}

TEST_F(MultiUserTest, SymlinkedLockInAnotherUsersDirectory) {
  ASSERT_EQ(Attacker("mkdir -m777 " + attack_ + " " + attack_ + "/.sleuth-upload && ln -s " +
                     victim_ + " " + attack_ + "/.sleuth-upload/lock"),
            0);
  for (Create c : {Create::kYes, Create::kNo}) {
    ExpectRefusedAsOwnedByAttacker(DumpDir::Open(attack_, c), attack_, Uid());
  }
}

TEST_F(MultiUserTest, SidecarBesideASymlinkToASecret) {
  std::string base = "evil.1.cpu.20261201T000000.000Z.0123456789abcdef0123456789abcdef";
  ASSERT_EQ(Attacker("mkdir -m700 " + attack_ + " && ln -s " + victim_ + " " + attack_ + "/" +
                     base + ".pb.gz && echo '{}' > " + attack_ + "/" + base + ".json"),
            0);
  ExpectRefusedAsOwnedByAttacker(DumpDir::Open(attack_, Create::kYes), attack_, Uid());
}

TEST_F(MultiUserTest, FailedSymlinkedToRootsDirectory) {
  ASSERT_EQ(Attacker("mkdir -m755 " + attack_ + " && ln -s " + victim_dir_ + "/somedir " +
                     attack_ + "/failed && mkdir " + attack_ + "/.sleuth-upload && ln -s " +
                     victim_dir_ + " " + attack_ + "/.sleuth-upload/default"),
            0);
  ExpectRefusedAsOwnedByAttacker(DumpDir::Open(attack_, Create::kYes), attack_, Uid());
}

TEST_F(MultiUserTest, WorldWritableDirectoryOfRoots) {
  // The old default: root made /tmp/sleuth, someone chmod-ed it open, and
  // another user filled it.
  ASSERT_EQ(::mkdir(attack_.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(attack_.c_str(), 01777), 0);
  ASSERT_EQ(Attacker("ln -s " + victim_ + " " + attack_ + "/x.json.tmp.1 && touch " + attack_ +
                     "/planted.json"),
            0);
  Result<DumpDir> d = DumpDir::Open(attack_, Create::kYes);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kPermission);
  EXPECT_THAT(d.status().message(),
              HasSubstr("dump directory " + attack_ + " is writable by others (mode 1777)"));
}

TEST_F(MultiUserTest, SymlinkedDumpDirectory) {
  // Even pointing at a directory of root's own: the link is the attacker's.
  ASSERT_EQ(Attacker("ln -s " + victim_dir_ + " " + attack_), 0);
  Result<DumpDir> d = DumpDir::Open(attack_, Create::kYes);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(d.status().message(),
              HasSubstr("dump directory " + attack_ + " is a symbolic link: another user could "
                        "point it anywhere"));
  // And a symlink of theirs on the way to it.
  d = DumpDir::Open(attack_ + "/dumps", Create::kYes);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(d.status().message(), HasSubstr("is a symbolic link owned by uid " + Uid()));
  struct stat st;
  EXPECT_NE(::stat((victim_dir_ + "/dumps").c_str(), &st), 0);
}

TEST_F(MultiUserTest, APrivateDirectoryCannotBePlantedIn) {
  // What the checks buy: in a directory that passes them, the attacker can
  // plant nothing (no .done marker, no scratch-name symlink, no payload).
  Result<DumpDir> d = DumpDir::Open(attack_, Create::kYes);
  ASSERT_TRUE(d.ok()) << d.status().message();
  Result<DumpDir> state = d->Subdir(".sleuth-upload", Create::kYes);
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE(state->Subdir("default", Create::kYes).ok());
  EXPECT_NE(Attacker("touch " + attack_ + "/.sleuth-upload/default/x.done 2>/dev/null"), 0);
  EXPECT_NE(Attacker("ln -s " + victim_ + " " + attack_ + "/x.pb.gz 2>/dev/null"), 0);
  EXPECT_NE(Attacker("ln -s / " + attack_ + "/failed 2>/dev/null"), 0);
  EXPECT_NE(Attacker("mv " + attack_ + " " + attack_ + ".moved 2>/dev/null"), 0);
  DumpMeta m;
  m.event_id = NewEventId();
  m.kind = "cpu";
  m.reason = "manual";
  m.service = "svc";
  m.pid = ::getpid();
  ASSERT_TRUE(WriteDump(*d, m, "p", std::nullopt).ok());
  EXPECT_EQ(RemoveLeftovers(*d), 0);
  (void)EnforceRetention(*d, {.max_dumps = 1}, nullptr);
  struct stat st;
  ASSERT_EQ(::stat(attack_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, 0u);
}

TEST_F(MultiUserTest, ADotDoneMarkerOfAnotherUserIsNotTrusted) {
  // Had a marker got in (a directory checked before its owner changed, say),
  // only our own regular single-link files count as markers.
  Result<DumpDir> d = DumpDir::Open(attack_, Create::kYes);
  ASSERT_TRUE(d.ok());
  std::string marker = attack_ + "/x.done";
  std::ofstream(marker) << "";
  ASSERT_EQ(::chown(marker.c_str(), (*user_)->uid(), 0), 0);
  EXPECT_TRUE(d->Exists("x.done"));
  EXPECT_FALSE(d->IsOwnFile("x.done"));
}

}  // namespace
}  // namespace sleuth::dumps
