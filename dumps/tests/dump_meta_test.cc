#include "sleuth/dumps/dump_meta.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sleuth/dumps/layout.h"

namespace sleuth::dumps {
namespace {

// Every field set to a value other than its default.
DumpMeta FullMeta() {
  DumpMeta m;
  m.event_id = NewEventId();
  m.kind = "cpu";
  m.reason = "abs";
  m.metric = "cpu";
  m.value = 82.5;
  m.average = 20.25;
  m.thresholds = DumpMeta::Thresholds{10, 25, 70, 95, 60};
  m.cpu_limit_cores = 1.5;
  m.cpu_limit_source = "cgroup v2 cpu.max";
  m.memory_limit_bytes = 512ull << 20;
  m.memory_limit_source = "cgroup v2 memory.max";
  m.pid = 4242;
  m.hostname = "host-a";
  m.service = "my app/v2";
  m.labels = {{"env", "test"}, {"team", "x"}};
  m.cmdline = {"./app", "--flag", "two words"};
  m.executable = "/usr/bin/app";
  m.build_id = "0123456789abcdef";
  m.start_time_unix_nanos = 1'764'497'702'123'456'789;
  m.duration_nanos = 5'000'000'000;
  m.comment = "requested by ops";
  m.notes = {"a note", "another"};
  m.profile_file = "x.pb.gz";
  m.profile_bytes = 1234;
  return m;
}

TEST(Sidecar, EveryFieldRoundTrips) {
  DumpMeta m = FullMeta();
  Result<DumpMeta> back = ParseSidecar(SidecarJson(m));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->event_id, m.event_id);
  EXPECT_EQ(back->thresholds, m.thresholds);
  EXPECT_EQ(back->labels, m.labels);
  EXPECT_EQ(back->cmdline, m.cmdline);
  EXPECT_EQ(back->notes, m.notes);
  EXPECT_EQ(*back, m);  // and everything else
}

TEST(Sidecar, DefaultsRoundTrip) {
  DumpMeta m;
  m.event_id = NewEventId();
  m.kind = "threads";
  m.reason = "manual";
  m.service = "s";
  m.pid = 1;
  Result<DumpMeta> back = ParseSidecar(SidecarJson(m));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_FALSE(back->value);
  EXPECT_FALSE(back->thresholds);
  EXPECT_EQ(*back, m);
}

TEST(Sidecar, InvalidUtf8IsReplacedNotThrown) {
  DumpMeta m = FullMeta();
  m.cmdline = {"\xff\xfe"};
  std::string text = SidecarJson(m);
  ASSERT_FALSE(text.empty());
  Result<DumpMeta> back = ParseSidecar(text);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->cmdline.size(), 1u);
}

TEST(Sidecar, TodaysFormatStaysReadable) {
  // A sidecar as the agent wrote it before sleuth::dumps existed.
  const char* old = R"({"event_id":"0123456789abcdef0123456789abcdef","kind":"cpu",
    "reason":"abs","metric":"cpu","value":81.5,"average":20.25,
    "thresholds":{"min":10,"diff":25,"abs":70,"max":0,"cooldown_seconds":60},
    "limits":{"cpu_cores":2,"cpu_source":"","memory_bytes":0,"memory_source":""},
    "pid":4242,"hostname":"h","service":"svc","labels":{"env":"test"},
    "cmdline":["/usr/bin/svc"],"executable":"/usr/bin/svc","build_id":"",
    "start_time":"2025-11-30T10:15:02.123Z","start_time_unix_nanos":1764497702123000000,
    "duration_nanos":5000000000,"comment":"","profile_file":"a.pb.gz","profile_bytes":10,
    "notes":[]})";
  Result<DumpMeta> m = ParseSidecar(old);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->cpu_limit_cores, 2);
  EXPECT_EQ(m->profile_bytes, 10u);
  EXPECT_EQ(m->labels.at("env"), "test");
}

TEST(Sidecar, ErrorsNameTheField) {
  nlohmann::json j = nlohmann::json::parse(SidecarJson(FullMeta()));
  auto with = [&](const char* field, nlohmann::json value) {
    nlohmann::json copy = j;
    copy[field] = value;
    return ParseSidecar(copy.dump());
  };
  EXPECT_NE(with("event_id", "XYZ").status().message().find("\"event_id\""), std::string::npos);
  EXPECT_NE(with("pid", "12").status().message().find("\"pid\""), std::string::npos);
  EXPECT_NE(with("kind", "CPU!").status().message().find("\"kind\""), std::string::npos);
  EXPECT_NE(with("labels", 3).status().message().find("\"labels\""), std::string::npos);
  EXPECT_NE(with("duration_nanos", -1).status().message().find("duration_nanos"),
            std::string::npos);
  EXPECT_NE(with("cmdline", "x").status().message().find("cmdline"), std::string::npos);
  EXPECT_FALSE(ParseSidecar("[1, 2]").ok());
  EXPECT_FALSE(ParseSidecar("").ok());
  EXPECT_FALSE(ParseSidecar("{").ok());
  EXPECT_FALSE(ParseSidecar(std::string(kMaxSidecarBytes + 1, ' ')).ok());
  EXPECT_FALSE(with("pid", 1e300).ok());
}

}  // namespace
}  // namespace sleuth::dumps
