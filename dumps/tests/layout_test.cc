#include "sleuth/dumps/layout.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <regex>
#include <set>

#include "sleuth/dumps/dump_meta.h"

namespace sleuth::dumps {
namespace {

TEST(DumpNames, ParsesTheAgentsNamesServiceDotsIncluded) {
  Result<DumpName> n = ParseDumpBase(
      "checkout.api.v2.31337.cpu.20261130T101502.123Z.0123456789abcdef0123456789abcdef");
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(n->service, "checkout.api.v2");
  EXPECT_EQ(n->pid, 31337);
  EXPECT_EQ(n->kind, "cpu");
  EXPECT_EQ(n->time, "20261130T101502.123Z");
  EXPECT_EQ(n->event_id, "0123456789abcdef0123456789abcdef");
  for (const char* bad : {"", "a.b.c", "svc.12.cpu.20261130T101502.123Z.XYZ",
                          "svc.x.cpu.20261130T101502.123Z.0123456789abcdef0123456789abcdef",
                          "svc.1.cpu.2026-11-30.123Z.0123456789abcdef0123456789abcdef"}) {
    EXPECT_FALSE(ParseDumpBase(bad).ok()) << bad;
  }
}

TEST(DumpNames, WriterNamesParseBack) {
  DumpMeta m;
  m.service = "my app/v2";
  m.pid = 4242;
  m.kind = "threads";
  m.start_time_unix_nanos = 1'764'497'702'123'456'789;  // 2025-11-30T10:15:02.123Z
  m.event_id = NewEventId();
  std::string base = DumpBaseName(m);
  EXPECT_EQ(base, "my_app_v2.4242.threads.20251130T101502.123Z." + m.event_id);
  Result<DumpName> n = ParseDumpBase(base);
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(n->service, "my_app_v2");
  EXPECT_EQ(n->pid, 4242);
  EXPECT_EQ(n->kind, "threads");
  EXPECT_EQ(n->event_id, m.event_id);
}

TEST(DumpNames, LongServiceNamesAreCut) {
  DumpMeta m;
  m.service = std::string(300, 'a');
  m.pid = 1;
  m.kind = "cpu";
  m.event_id = NewEventId();
  EXPECT_EQ(SafeServiceName(m.service).size(), 64u);
  EXPECT_LT(DumpBaseName(m).size() + 40, 255u);  // + ".json.tmp.<pid>-<start>.<random>"
  EXPECT_EQ(SafeServiceName(""), "unknown");
}

TEST(DumpNames, EventIdsAreUniqueHex) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; i++) ids.insert(NewEventId());
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_TRUE(std::regex_match(*ids.begin(), std::regex("[0-9a-f]{32}")));
}

TEST(DumpNames, SidecarAndPayloadBases) {
  EXPECT_EQ(SidecarBase("a.b.json"), "a.b");
  EXPECT_FALSE(SidecarBase("a.b.pb.gz"));
  EXPECT_FALSE(SidecarBase("a.b.json.tmp.123"));
  EXPECT_FALSE(SidecarBase("a.b.tmp.json"));
  EXPECT_FALSE(SidecarBase(".hidden.json"));
  EXPECT_FALSE(SidecarBase(".json"));
  EXPECT_EQ(PayloadBase("a.b.pb.gz"), "a.b");
  EXPECT_EQ(PayloadBase("a.b.txt"), "a.b");
  EXPECT_FALSE(PayloadBase("a.b.pb.gz.tmp.1-2.abc"));
  EXPECT_FALSE(PayloadBase("a.b.json"));
}

TEST(DumpNames, ScratchWriters) {
  auto w = ScratchWriterOf("x.json.tmp.123-456.0011223344556677");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->pid, 123);
  EXPECT_EQ(w->start_ticks, 456u);
  w = ScratchWriterOf("x.json.tmp.77");  // the format before start times
  ASSERT_TRUE(w);
  EXPECT_EQ(w->pid, 77);
  EXPECT_EQ(w->start_ticks, 0u);
  w = ScratchWriterOf("sleuth-cpu.991.3.prof");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->pid, 991);
  w = ScratchWriterOf("x.json.tmp.garbage");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->pid, 0);  // a scratch file nobody can claim
  EXPECT_FALSE(ScratchWriterOf("a.b.json"));
  EXPECT_EQ(FormatDumpTime(1'796'033'702'123'456'789), "20261130T101502.123Z");
}

TEST(DefaultDumpDir, PrivateToTheUser) {
  const char* saved = std::getenv("XDG_RUNTIME_DIR");
  std::string saved_value = saved ? saved : "";
  ::unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(DefaultDumpDir(), "/var/tmp/sleuth-" + std::to_string(::geteuid()));
  ::setenv("XDG_RUNTIME_DIR", "/tmp", 1);  // world-writable: not ours alone
  EXPECT_EQ(DefaultDumpDir(), "/var/tmp/sleuth-" + std::to_string(::geteuid()));
  ::setenv("XDG_RUNTIME_DIR", "relative", 1);
  EXPECT_EQ(DefaultDumpDir(), "/var/tmp/sleuth-" + std::to_string(::geteuid()));
  char tmpl[] = "/tmp/sleuth_xdg_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);  // 0700, ours
  ::setenv("XDG_RUNTIME_DIR", tmpl, 1);
  EXPECT_EQ(DefaultDumpDir(), std::string(tmpl) + "/sleuth");
  EXPECT_EQ(ResolveDumpDir(""), std::string(tmpl) + "/sleuth");
  EXPECT_EQ(ResolveDumpDir("/x"), "/x");
  ::rmdir(tmpl);
  if (saved) {
    ::setenv("XDG_RUNTIME_DIR", saved_value.c_str(), 1);
  } else {
    ::unsetenv("XDG_RUNTIME_DIR");
  }
}

}  // namespace
}  // namespace sleuth::dumps
