// DumpDir: every refusal, and the descriptor-relative file operations.
// Tests that need a second uid (chown) run only as root and say so.
#include "sleuth/dumps/dump_dir.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "sleuth/common/files.h"
#include "sleuth/dumps/layout.h"
#include "test_dir.h"

namespace sleuth::dumps {
namespace {

using ::testing::HasSubstr;
constexpr uid_t kOtherUid = 65534;  // nobody

class DumpDirTest : public ::testing::Test {
 protected:
  void SetUp() override { root_ = testing::FreshDir("dumpdir"); }
  void TearDown() override {
    if (!HasFailure()) testing::RemoveTree(root_);
  }
  static void Put(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
  std::string root_;
};

TEST_F(DumpDirTest, CreatesMissingDirectoriesPrivateWhateverTheUmask) {
  mode_t old = ::umask(0);
  Result<DumpDir> d = DumpDir::Open(root_ + "/a/b/c", Create::kYes);
  ::umask(0277);  // would leave an unwritable 0500 without the fchmod
  Result<DumpDir> e = DumpDir::Open(root_ + "/x/y", Create::kYes);
  ::umask(old);
  ASSERT_TRUE(d.ok()) << d.status().message();
  ASSERT_TRUE(e.ok()) << e.status().message();
  for (const char* sub : {"/a", "/a/b", "/a/b/c", "/x", "/x/y"}) {
    struct stat st;
    ASSERT_EQ(::stat((root_ + sub).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u) << sub;
  }
  EXPECT_EQ(d->path(), root_ + "/a/b/c");
  EXPECT_TRUE(DumpDir::Open(root_ + "/a/b/c/", Create::kNo).ok());
}

TEST_F(DumpDirTest, MissingWithoutCreateIsNotFound) {
  Result<DumpDir> d = DumpDir::Open(root_ + "/nope", Create::kNo);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(d.status().message(), HasSubstr("does not exist"));
}

TEST_F(DumpDirTest, RefusesASymlinkedDirectory) {
  ASSERT_EQ(::mkdir((root_ + "/real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink((root_ + "/real").c_str(), (root_ + "/link").c_str()), 0);
  Result<DumpDir> d = DumpDir::Open(root_ + "/link", Create::kYes);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kPermission);
  EXPECT_THAT(d.status().message(), HasSubstr("dump directory " + root_ + "/link is a symbolic link"));
  EXPECT_THAT(d.status().message(), HasSubstr("agent.dump_dir"));
  EXPECT_THAT(d.status().message(), HasSubstr("mkdir -m 0700"));
}

TEST_F(DumpDirTest, RefusesADirectoryOthersOrTheGroupCanWrite) {
  for (mode_t mode : {0777, 01777, 0770, 0702}) {
    ASSERT_EQ(::chmod(root_.c_str(), mode), 0);
    Result<DumpDir> d = DumpDir::Open(root_, Create::kYes);
    ASSERT_FALSE(d.ok()) << std::oct << mode;
    EXPECT_EQ(d.status().code(), StatusCode::kPermission);
    EXPECT_THAT(d.status().message(), HasSubstr("is writable by"));
    EXPECT_THAT(d.status().message(), HasSubstr("another user could plant files there"));
  }
  ASSERT_EQ(::chmod(root_.c_str(), 0755), 0);  // readable by others is fine
  EXPECT_TRUE(DumpDir::Open(root_, Create::kYes).ok());
}

TEST_F(DumpDirTest, RefusesADirectoryOwnedBySomeoneElse) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another uid";
  std::string dir = root_ + "/theirs";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), kOtherUid, kOtherUid), 0);
  Result<DumpDir> d = DumpDir::Open(dir, Create::kYes);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kPermission);
  EXPECT_THAT(d.status().message(),
              HasSubstr("dump directory " + dir + " is owned by uid 65534, not by this process's "
                        "uid 0: another user could plant files there; use a directory only you "
                        "can write, e.g. `mkdir -m 0700 /var/tmp/sleuth-0`"));
}

TEST_F(DumpDirTest, FollowsOnlyRootsOrOurSymlinksOnTheWay) {
  ASSERT_EQ(::mkdir((root_ + "/real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink("real", (root_ + "/ours").c_str()), 0);
  EXPECT_TRUE(DumpDir::Open(root_ + "/ours/dumps", Create::kYes).ok());
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make a symlink of another uid";
  ASSERT_EQ(::symlink("real", (root_ + "/theirs").c_str()), 0);
  ASSERT_EQ(::lchown((root_ + "/theirs").c_str(), kOtherUid, kOtherUid), 0);
  Result<DumpDir> d = DumpDir::Open(root_ + "/theirs/dumps", Create::kYes);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(d.status().message(), HasSubstr("is a symbolic link owned by uid 65534"));
}

TEST_F(DumpDirTest, NotADirectory) {
  Put(root_ + "/file", "x");
  Result<DumpDir> d = DumpDir::Open(root_ + "/file", Create::kYes);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(DumpDirTest, StateSubdirectoriesAreCheckedTheSameWay) {
  Result<DumpDir> d = DumpDir::Open(root_, Create::kYes);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->Subdir(".sleuth-upload", Create::kNo).status().code(), StatusCode::kNotFound);
  Result<DumpDir> state = d->Subdir(".sleuth-upload", Create::kYes);
  ASSERT_TRUE(state.ok()) << state.status().message();
  EXPECT_EQ(state->path(), root_ + "/.sleuth-upload");
  ASSERT_TRUE(state->Subdir("default", Create::kYes).ok());

  ASSERT_EQ(::symlink("/", (root_ + "/failed").c_str()), 0);
  Result<DumpDir> failed = d->Subdir("failed", Create::kYes);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kPermission);
  EXPECT_THAT(failed.status().message(),
              HasSubstr("state directory " + root_ + "/failed is a symbolic link"));
  EXPECT_THAT(failed.status().message(), HasSubstr("remove it"));

  ASSERT_EQ(::chmod((root_ + "/.sleuth-upload").c_str(), 0777), 0);
  Result<DumpDir> open = d->Subdir(".sleuth-upload", Create::kYes);
  ASSERT_FALSE(open.ok());
  EXPECT_THAT(open.status().message(), HasSubstr("is writable by others (mode 0777)"));
  EXPECT_FALSE(d->Subdir("../x", Create::kYes).ok());
  EXPECT_FALSE(d->Subdir("..", Create::kYes).ok());
}

TEST_F(DumpDirTest, ReadsOnlyOwnRegularSingleLinkFiles) {
  Result<DumpDir> d = DumpDir::Open(root_, Create::kYes);
  ASSERT_TRUE(d.ok());
  Put(root_ + "/own", "mine");
  Put(root_ + "/secret", "not yours");
  Result<std::string> own = d->ReadOwnFile("own", 100);
  ASSERT_TRUE(own.ok()) << own.status().message();
  EXPECT_EQ(*own, "mine");
  EXPECT_EQ(d->ReadOwnFile("own", 2).status().code(), StatusCode::kIo);
  EXPECT_EQ(d->ReadOwnFile("none", 100).status().code(), StatusCode::kNotFound);

  ASSERT_EQ(::symlink((root_ + "/secret").c_str(), (root_ + "/sym").c_str()), 0);
  Result<std::string> sym = d->ReadOwnFile("sym", 100);
  EXPECT_EQ(sym.status().code(), StatusCode::kPermission);
  EXPECT_THAT(sym.status().message(), HasSubstr("symbolic link"));

  ASSERT_EQ(::link((root_ + "/secret").c_str(), (root_ + "/hard").c_str()), 0);
  Result<std::string> hard = d->ReadOwnFile("hard", 100);
  EXPECT_EQ(hard.status().code(), StatusCode::kPermission);
  EXPECT_THAT(hard.status().message(), HasSubstr("2 hard links"));
  EXPECT_FALSE(d->IsOwnFile("hard"));
  EXPECT_FALSE(d->IsOwnFile("sym"));
  EXPECT_TRUE(d->IsOwnFile("own"));

  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0600), 0);
  Result<std::string> fifo = d->ReadOwnFile("fifo", 100);  // must not block
  EXPECT_THAT(fifo.status().message(), HasSubstr("not a regular file"));

  if (::geteuid() == 0) {
    ASSERT_EQ(::chown((root_ + "/own").c_str(), kOtherUid, kOtherUid), 0);
    Result<std::string> theirs = d->ReadOwnFile("own", 100);
    EXPECT_THAT(theirs.status().message(), HasSubstr("owned by uid 65534"));
  }
}

TEST_F(DumpDirTest, OpenOwnFileNeverFollowsASymlink) {
  Result<DumpDir> d = DumpDir::Open(root_, Create::kYes);
  ASSERT_TRUE(d.ok());
  Put(root_ + "/victim", "untouched");
  ASSERT_EQ(::symlink((root_ + "/victim").c_str(), (root_ + "/lock").c_str()), 0);
  Result<ScopedFd> fd = d->OpenOwnFile("lock");
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), StatusCode::kPermission);
  EXPECT_EQ(*ReadFile(root_ + "/victim"), "untouched");
  Result<ScopedFd> fresh = d->OpenOwnFile("lock2");
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  struct stat st;
  ASSERT_EQ(::stat((root_ + "/lock2").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(DumpDirTest, AtomicWritesUseUnpredictableScratchNamesAndLeaveNothing) {
  Result<DumpDir> d = DumpDir::Open(root_, Create::kYes);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->WriteAtomic("a.json", "one", Sync::kYes).ok());
  ASSERT_TRUE(d->WriteAtomic("a.json", "two", Sync::kNo).ok());
  EXPECT_EQ(*d->ReadOwnFile("a.json", 10), "two");
  struct stat st;
  ASSERT_EQ(::stat((root_ + "/a.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A planted file at the old predictable name changes nothing.
  std::string predictable = root_ + "/b.json.tmp." + std::to_string(::getpid());
  ASSERT_EQ(::symlink((root_ + "/a.json").c_str(), predictable.c_str()), 0);
  ASSERT_TRUE(d->WriteAtomic("b.json", "bee", Sync::kNo).ok());
  EXPECT_EQ(*d->ReadOwnFile("a.json", 10), "two");
  ::unlink(predictable.c_str());
  int entries = 0;
  ASSERT_TRUE(d->ForEachEntry([&](std::string_view name, bool) {
                 entries++;
                 EXPECT_EQ(name.find(".tmp."), std::string_view::npos) << name;
               }).ok());
  EXPECT_EQ(entries, 2);
  EXPECT_FALSE(d->WriteAtomic("../escape", "x", Sync::kNo).ok());
}

TEST_F(DumpDirTest, RemoveAndMoveNeverFollowSymlinks) {
  Result<DumpDir> d = DumpDir::Open(root_ + "/d", Create::kYes);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(::mkdir((root_ + "/outside").c_str(), 0700), 0);
  Put(root_ + "/outside/keep", "k");
  ASSERT_EQ(::symlink((root_ + "/outside/keep").c_str(), (root_ + "/d/x.pb.gz").c_str()), 0);
  ASSERT_TRUE(d->Remove("x.pb.gz").ok());
  EXPECT_TRUE(ReadFile(root_ + "/outside/keep").ok());
  EXPECT_TRUE(d->Remove("x.pb.gz").ok());  // already gone is fine
  Result<DumpDir> sub = d->Subdir("failed", Create::kYes);
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(d->WriteAtomic("m", "moved", Sync::kNo).ok());
  ASSERT_TRUE(d->MoveTo("m", *sub, "m2").ok());
  EXPECT_EQ(*sub->ReadOwnFile("m2", 10), "moved");
  ASSERT_TRUE(sub->CopyTo("m2", *d, "m3", 100).ok());
  EXPECT_EQ(*d->ReadOwnFile("m3", 10), "moved");
  EXPECT_EQ(d->TotalBytes(), 10u);  // m3 here + m2 in failed/
}

TEST_F(DumpDirTest, DiskFullFailsCleanly) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a 64 KiB tmpfs";
  std::string mnt = root_ + "/small";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0700), 0);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << ErrnoText(errno);
  }
  {
    Result<DumpDir> d = DumpDir::Open(mnt, Create::kYes);
    ASSERT_TRUE(d.ok()) << d.status().message();
    Status s = d->WriteAtomic("big.pb.gz", std::string(1 << 20, 'x'), Sync::kYes);
    EXPECT_FALSE(s.ok());
    EXPECT_THAT(s.message(), HasSubstr("No space left"));
    int entries = 0;
    ASSERT_TRUE(d->ForEachEntry([&](std::string_view, bool) { entries++; }).ok());
    EXPECT_EQ(entries, 0);  // the scratch file went too
  }
  ASSERT_EQ(::umount(mnt.c_str()), 0);
}

TEST_F(DumpDirTest, NoticesWhenTheHostTakesItsDescriptor) {
  ASSERT_EQ(::mkdir((root_ + "/hosts").c_str(), 0700), 0);
  Result<DumpDir> d = DumpDir::Open(root_ + "/d", Create::kYes);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->StillOurs());
  // The host closes our descriptor and its next open() gets the number.
  int host = ::open((root_ + "/hosts").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(host, 0);
  ASSERT_EQ(::dup2(host, d->fd()), d->fd());
  EXPECT_FALSE(d->StillOurs());
  int taken = d->fd();
  d->Forget();  // must not close what is now the host's
  struct stat st;
  EXPECT_EQ(::fstat(taken, &st), 0);
  ::close(taken);
  ::close(host);
}

TEST(ProcessStart, ReadsOwnAndRejectsGone) {
  EXPECT_GT(SelfStartTicks(), 0u);
  EXPECT_EQ(SelfStartTicks(), ProcessStartTicks(::getpid()));
  EXPECT_EQ(ProcessStartTicks(0x7ffffff0), 0u);
}

}  // namespace
}  // namespace sleuth::dumps
