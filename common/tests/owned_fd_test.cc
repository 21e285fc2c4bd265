#include "sleuth/common/owned_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace sleuth {
namespace {

TEST(OwnedFd, ClosesWhatIsStillItsOwn) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::close(fds[1]);
  {
    OwnedFd owned(fds[0]);
    ASSERT_TRUE(owned.valid());
    EXPECT_TRUE(owned.StillOurs());
  }
  EXPECT_EQ(::fcntl(fds[0], F_GETFD), -1) << "an fd still ours is closed on destruction";
}

// A host closes our descriptor behind our back and its next open() takes the
// same number: the OwnedFd must see that and leave the host's file open.
TEST(OwnedFd, ForgetsANumberSomeoneElseNowHolds) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::close(fds[1]);
  OwnedFd owned(fds[0]);
  ::close(fds[0]);
  EXPECT_FALSE(owned.StillOurs()) << "a closed number is not ours";

  char path[] = "/tmp/sleuth_owned_fd_test.XXXXXX";
  int host = ::mkostemp(path, O_CLOEXEC);
  ASSERT_GE(host, 0);
  ::unlink(path);
  if (host != fds[0]) {
    ASSERT_EQ(::dup3(host, fds[0], O_CLOEXEC), fds[0]);
    ::close(host);
    host = fds[0];
  }
  EXPECT_FALSE(owned.StillOurs()) << "the host's file took our number";
  EXPECT_FALSE(owned.reset()) << "reset() reports the fd was taken";
  EXPECT_GE(::fcntl(host, F_GETFD), 0) << "the host's file must stay open";
  ::close(host);
}

TEST(OwnedFd, MovesAndReleases) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  OwnedFd a(fds[0]);
  OwnedFd b(std::move(a));
  EXPECT_FALSE(a.valid());
  EXPECT_TRUE(b.StillOurs());
  int raw = b.release();
  EXPECT_EQ(raw, fds[0]);
  EXPECT_FALSE(b.valid());
  ::close(fds[0]);
  ::close(fds[1]);
  OwnedFd empty(-1);
  EXPECT_FALSE(empty.valid());
  EXPECT_FALSE(empty.StillOurs());
}

}  // namespace
}  // namespace sleuth
