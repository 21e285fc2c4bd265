// The on-disk queue: dump names, per-sink state, failed/, the spool cap,
// garbage collection and the directory lock. No network.
#include "sleuth/uploader/spool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "dump_factory.h"
#include "sleuth/common/files.h"

namespace sleuth::uploader {
namespace {

using testing::DumpSpec;
using ::testing::HasSubstr;
using testing::WriteDump;
using testing::WrittenDump;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "/spool_" + info->name() + "_" + std::to_string(::getpid());
    ASSERT_EQ(std::system(("rm -rf '" + dir_ + "'").c_str()), 0);
    ASSERT_TRUE(MakeDirs(dir_).ok());
  }

  void TearDown() override {
    if (!HasFailure()) {
      int rc = std::system(("rm -rf '" + dir_ + "'").c_str());
      (void)rc;  // best effort: a leftover temp dir only costs disk
    }
  }

  WrittenDump Dump(int64_t time_offset_ms, DumpSpec spec = {}) {
    spec.time_unix_nanos += time_offset_ms * 1'000'000;
    Result<WrittenDump> d = WriteDump(dir_, spec);
    EXPECT_TRUE(d.ok()) << d.status().message();
    return d.ok() ? *d : WrittenDump{};
  }

  std::string dir_;
};

TEST(DumpNameTest, ParsesTheAgentsNamesServiceDotsIncluded) {
  Result<DumpName> n = ParseDumpBase(
      "checkout.api.v2.31337.cpu.20261130T101502.123Z.0123456789abcdef0123456789abcdef");
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(n->service, "checkout.api.v2");
  EXPECT_EQ(n->pid, 31337);
  EXPECT_EQ(n->kind, "cpu");
  EXPECT_EQ(n->time, "20261130T101502.123Z");
  EXPECT_EQ(n->event_id, "0123456789abcdef0123456789abcdef");
  for (const char* bad : {"svc.1.cpu.20261130T101502.123Z", "svc.x.cpu.20261130T101502.123Z.00",
                          "svc.1.cpu.2026-11-30.123Z.0123456789abcdef0123456789abcdef",
                          ".1.cpu.20261130T101502.123Z.0123456789abcdef0123456789abcdef"}) {
    EXPECT_FALSE(ParseDumpBase(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatDumpTime(1'796'033'702'123'456'789), "20261130T101502.123Z");
}

TEST(DumpNameTest, OnlyCompleteSidecarsCount) {
  EXPECT_EQ(SidecarBase("a.b.json"), "a.b");
  EXPECT_FALSE(SidecarBase("a.b.pb.gz"));
  EXPECT_FALSE(SidecarBase("a.b.json.tmp.123"));
  EXPECT_FALSE(SidecarBase("a.b.tmp.json"));
  EXPECT_FALSE(SidecarBase(".hidden.json"));
  EXPECT_FALSE(SidecarBase(".json"));
}

TEST(DumpNameTest, ChecksSinkNames) {
  EXPECT_TRUE(CheckSinkName("default").ok());
  EXPECT_TRUE(CheckSinkName("eu-west_2").ok());
  for (const char* bad : {"", "_invalid", "a/b", "..", "a b", "-x"}) {
    EXPECT_FALSE(CheckSinkName(bad).ok()) << bad;
  }
}

TEST_F(SpoolTest, TracksDeliveryPerSink) {
  Spool spool(dir_, {"a", "b"});
  WrittenDump d = Dump(0);
  EXPECT_TRUE(spool.IsPending(0, d.base));
  EXPECT_TRUE(spool.IsPending(1, d.base));
  ASSERT_TRUE(spool.MarkDelivered(0, d.base, "ok\n").ok());
  EXPECT_FALSE(spool.IsPending(0, d.base));
  EXPECT_TRUE(spool.IsPending(1, d.base));
  EXPECT_TRUE(spool.IsPendingForAny(d.base));
  EXPECT_TRUE(Exists(dir_ + "/.sleuth-upload/a/" + d.base + ".done"));
  // A fresh Spool (a restart) sees the same state.
  Spool again(dir_, {"a", "b"});
  EXPECT_FALSE(again.IsPending(0, d.base));
  ASSERT_TRUE(again.MarkDelivered(1, d.base, "ok\n").ok());
  EXPECT_FALSE(again.IsPendingForAny(d.base));
  // The delivered dump stays for local inspection.
  EXPECT_TRUE(Exists(spool.SidecarPath(d.base)));
}

TEST_F(SpoolTest, KeyOrdersByTheTimeInTheNameNotTheService) {
  Spool spool(dir_, {"a"});
  DumpSpec zed;
  zed.service = "zzz";
  WrittenDump older = Dump(0, zed);
  DumpSpec aaa;
  aaa.service = "aaa";
  WrittenDump newer = Dump(1000, aaa);
  Result<DumpKey> k1 = spool.KeyOf(older.base), k2 = spool.KeyOf(newer.base);
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_LT(*k1, *k2);
  // A dump named some other way is ordered by its sidecar's mtime.
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/custom.json", "{}").ok());
  Result<DumpKey> k3 = spool.KeyOf("custom");
  ASSERT_TRUE(k3.ok());
  EXPECT_GT(*k3, *k2);
  EXPECT_EQ(spool.KeyOf("gone").status().code(), StatusCode::kNotFound);
}

TEST_F(SpoolTest, RejectedDumpsGoToFailedPerSinkAndCanBeRequeued) {
  Spool spool(dir_, {"a", "b"});
  DumpSpec spec;
  spec.with_text = true;
  WrittenDump d = Dump(0, spec);
  ASSERT_TRUE(spool.MarkRejected(0, d.base, "HTTP 400: bad profile\n").ok());
  std::string failed = dir_ + "/failed/a/" + d.base;
  EXPECT_TRUE(Exists(failed + ".json"));
  EXPECT_TRUE(Exists(failed + ".pb.gz"));
  EXPECT_TRUE(Exists(failed + ".txt"));
  EXPECT_FALSE(spool.IsPending(0, d.base));
  EXPECT_TRUE(spool.IsPending(1, d.base));

  std::vector<Undelivered> left;
  ASSERT_TRUE(spool.ForEachUndelivered([&](const Undelivered& u) { left.push_back(u); }).ok());
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].sink, "b");
  EXPECT_FALSE(left[0].set_aside);
  EXPECT_EQ(left[1].sink, "a");
  EXPECT_TRUE(left[1].set_aside);
  EXPECT_EQ(left[1].reason, "HTTP 400: bad profile");

  // Requeued while still in the queue directory: the failed/ copy goes.
  Result<uint64_t> n = spool.RequeueFailed();
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(*n, 1u);
  EXPECT_FALSE(Exists(failed + ".json"));
  EXPECT_TRUE(spool.IsPending(0, d.base));

  // Requeued after the agent's retention removed the original: moved back,
  // and the sink that had it already does not get it again.
  ASSERT_TRUE(spool.MarkDelivered(1, d.base, "ok\n").ok());
  ASSERT_TRUE(spool.MarkRejected(0, d.base, "HTTP 400\n").ok());
  for (const char* ext : {".json", ".pb.gz", ".txt"}) ::unlink((dir_ + "/" + d.base + ext).c_str());
  ASSERT_TRUE(spool.CollectGarbage().ok());  // must keep b's marker: the dump lives in failed/
  n = spool.RequeueFailed();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_TRUE(Exists(spool.SidecarPath(d.base)));
  EXPECT_TRUE(Exists(spool.ProfilePath(d.base)));
  EXPECT_TRUE(spool.IsPending(0, d.base));
  EXPECT_FALSE(spool.IsPending(1, d.base));
}

TEST_F(SpoolTest, InvalidDumpsLeaveTheQueue) {
  Spool spool(dir_, {"a"});
  WrittenDump d = Dump(0);
  ASSERT_TRUE(spool.SetAsideInvalid(d.base, "sidecar is not JSON\n").ok());
  EXPECT_FALSE(Exists(spool.SidecarPath(d.base)));
  EXPECT_TRUE(Exists(dir_ + "/failed/_invalid/" + d.base + ".json"));
  EXPECT_TRUE(Exists(dir_ + "/failed/_invalid/" + d.base + ".reason"));
  int seen = 0;
  ASSERT_TRUE(spool.ForEachDump([&](const std::string&) { ++seen; }).ok());
  EXPECT_EQ(seen, 0);
  EXPECT_EQ(spool.SetAsideInvalid("gone", "x").code(), StatusCode::kNotFound);
}

TEST_F(SpoolTest, CapEvictsTheOldestUndeliveredFirst) {
  Spool spool(dir_, {"a"});
  std::vector<WrittenDump> dumps;
  for (int i = 0; i < 10; ++i) dumps.push_back(Dump(i * 1000));
  uint64_t each = dumps[0].bytes;
  // Delivered dumps do not count toward the cap and are never evicted.
  ASSERT_TRUE(spool.MarkDelivered(0, dumps[0].base, "ok").ok());
  std::vector<std::string> evicted;
  uint64_t cap = each * 9 / 2;  // room for 4 of the 9 undelivered
  Result<SpoolUsage> usage = spool.EnforceCap(
      cap, [&](std::string_view base) { return base == dumps[1].base; },  // in flight
      [&](const Eviction& e) {
        evicted.push_back(e.key.base);
        EXPECT_EQ(e.where, "queue");
      });
  ASSERT_TRUE(usage.ok()) << usage.status().message();
  EXPECT_LE(usage->spool_bytes(), cap);
  EXPECT_EQ(usage->pending_dumps, 4u);
  // 2..6 go, oldest first; 1 is busy and stays, 0 is delivered and stays.
  std::vector<std::string> expected;
  for (int i = 2; i <= 6; ++i) expected.push_back(dumps[i].base);
  EXPECT_EQ(evicted, expected);
  EXPECT_TRUE(Exists(spool.SidecarPath(dumps[0].base)));
  EXPECT_TRUE(Exists(spool.SidecarPath(dumps[1].base)));
  EXPECT_FALSE(Exists(spool.SidecarPath(dumps[2].base)));
  EXPECT_FALSE(Exists(spool.ProfilePath(dumps[2].base)));
  EXPECT_TRUE(Exists(spool.SidecarPath(dumps[9].base)));
}

TEST_F(SpoolTest, CapCountsAndEvictsFailedEntries) {
  Spool spool(dir_, {"a"});
  WrittenDump old_failed = Dump(0);
  WrittenDump queued = Dump(1000);
  ASSERT_TRUE(spool.MarkRejected(0, old_failed.base, "HTTP 400\n").ok());
  std::vector<std::string> where;
  Result<SpoolUsage> usage = spool.EnforceCap(queued.bytes + 10, nullptr,
                                              [&](const Eviction& e) { where.push_back(e.where); });
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(where, std::vector<std::string>{"failed/a"});
  EXPECT_FALSE(Exists(dir_ + "/failed/a/" + old_failed.base + ".json"));
  EXPECT_TRUE(Exists(spool.SidecarPath(queued.base)));
}

TEST_F(SpoolTest, CapHandlesMoreDumpsThanItsWindow) {
  Spool spool(dir_, {"a"});
  std::vector<WrittenDump> dumps;
  for (int i = 0; i < 600; ++i) dumps.push_back(Dump(i));
  size_t evicted = 0;
  Result<SpoolUsage> usage =
      spool.EnforceCap(dumps[0].bytes * 10, nullptr, [&](const Eviction&) { ++evicted; });
  ASSERT_TRUE(usage.ok());
  EXPECT_GE(evicted, 589u);
  EXPECT_TRUE(Exists(spool.SidecarPath(dumps.back().base)));
  EXPECT_FALSE(Exists(spool.SidecarPath(dumps[500].base)));
}

TEST_F(SpoolTest, GarbageCollectionDropsStateOfVanishedDumpsOnly) {
  Spool spool(dir_, {"a"});
  WrittenDump kept = Dump(0), gone = Dump(1);
  ASSERT_TRUE(spool.MarkDelivered(0, kept.base, "ok").ok());
  ASSERT_TRUE(spool.MarkDelivered(0, gone.base, "ok").ok());
  ::unlink(spool.SidecarPath(gone.base).c_str());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/.sleuth-upload/a/x.done.tmp.999", "").ok());
  ASSERT_TRUE(MakeDirs(dir_ + "/failed/a").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/failed/a/partial.pb.gz", "x").ok());
  ASSERT_TRUE(spool.CollectGarbage().ok());
  EXPECT_TRUE(Exists(spool.DoneMarkerPath(0, kept.base)));
  EXPECT_FALSE(Exists(spool.DoneMarkerPath(0, gone.base)));
  EXPECT_FALSE(Exists(dir_ + "/.sleuth-upload/a/x.done.tmp.999"));
  EXPECT_FALSE(Exists(dir_ + "/failed/a/partial.pb.gz"));
}

TEST_F(SpoolTest, OneShipperPerDirectory) {
  Result<SpoolLock> first = SpoolLock::TryAcquire(dir_);
  ASSERT_TRUE(first.ok()) << first.status().message();
  Result<SpoolLock> second = SpoolLock::TryAcquire(dir_ + "/");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kBusy);
  // Another process is refused too, and told who holds it.
  pid_t child = ::fork();
  if (child == 0) {
    Result<SpoolLock> other = SpoolLock::TryAcquire(dir_);
    bool names_holder =
        !other.ok() &&
        other.status().message().find("pid " + std::to_string(::getppid())) != std::string::npos;
    ::_exit(names_holder ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // Released with its owner.
  *first = SpoolLock();
  EXPECT_TRUE(SpoolLock::TryAcquire(dir_).ok());
}

}  // namespace
}  // namespace sleuth::uploader
