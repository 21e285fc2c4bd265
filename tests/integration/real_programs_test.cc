// The preloaded agent in real programs from Debian (bash, perl, xz, coreutils),
// each run with and without the agent: the host must behave the same, and
// what the agent reports must agree with what the program did. Every case
// reproduces a symptom seen on real programs (see ARCHITECTURE.md, "Rules
// that keep the host safe").
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "harness.h"
#include "sleuth/common/files.h"
#include "sleuth/testing/pprof_oracle.h"

namespace sleuth::testing {
namespace {

using nlohmann::json;

bool Installed(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

#define REQUIRE_PROGRAM(path)                                                             \
  if (!Installed(path))                                                                   \
  GTEST_SKIP() << path << " is not installed; packaging/install-deps.sh installs it"

std::map<std::string, std::string> QuietAgentEnv(const std::string& dump_dir) {
  auto env = AgentWithRulesOff(dump_dir, "200ms", 2);
  env["SLEUTH_AGENT_WARMUP"] = "2";
  return env;
}

std::string Diagnostics(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + ", signal " + std::to_string(r.term_signal) +
         "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

std::vector<const DumpFiles*> OfKind(const std::vector<DumpFiles>& dumps, const std::string& kind) {
  std::vector<const DumpFiles*> found;
  for (const auto& d : dumps)
    if (d.kind == kind) found.push_back(&d);
  return found;
}

// Symptom 1: libprofiler's ITIMER_PROF survived execve and killed the new
// program ("Profiling timer expired"). bash burns until the agent has
// started a CPU profile (it reads the agent's log for it), then execs perl
// while the profile runs.
TEST(RealPrograms, CpuProfileInProgressDoesNotKillTheProgramTheHostExecs) {
  REQUIRE_PROGRAM("/usr/bin/perl");
  std::string dir = MakeTempDir("sleuth_exec");
  std::string log = dir + "/agent.log";
  const std::string script =
      "until grep -q 'taking a cpu dump' " + log +
      " 2>/dev/null; do for((i=0;i<20000;i++)); do :; done; done;"
      " exec /usr/bin/perl -e '$x++ for 1..3000000; print qq(ok\\n)'";
  RunResult bare = RunProgram({.argv = {"/bin/bash", "-c",
                                        "exec /usr/bin/perl -e '$x++ for 1..3000000; print "
                                        "qq(ok\\n)'"},
                               .env = {}});
  ASSERT_EQ(bare.out, "ok\n") << Diagnostics(bare);
  auto env = QuietAgentEnv(dir + "/dumps");
  env["SLEUTH_AGENT_LOG_LEVEL"] = "info";
  env["SLEUTH_AGENT_LOG_FILE"] = log;
  env["SLEUTH_CPU_ENABLE"] = "true";
  env["SLEUTH_CPU_MIN"] = "1";
  env["SLEUTH_CPU_ABS"] = "5";
  env["SLEUTH_CPU_PROFILE_DURATION"] = "5s";
  RunResult with = RunProgram({.argv = {"/bin/bash", "-c", script}, .env = env});
  EXPECT_EQ(with.term_signal, 0) << Diagnostics(with);
  EXPECT_EQ(with.exit_code, bare.exit_code) << Diagnostics(with);
  EXPECT_EQ(with.out, bare.out) << Diagnostics(with);
  EXPECT_EQ(with.err, "") << Diagnostics(with);
}

// Symptom 2: the thread dump's signal cut perl's sleep short (printed 2 of
// 6). perl sleeps 3 s while the threads rule dumps it; sleep() returns the
// seconds it slept.
TEST(RealPrograms, ThreadDumpDoesNotCutTheHostsSleepShort) {
  REQUIRE_PROGRAM("/usr/bin/perl");
  std::string dir = MakeTempDir("sleuth_sleep");
  auto env = QuietAgentEnv(dir);
  env["SLEUTH_THREADS_ENABLE"] = "true";
  env["SLEUTH_THREADS_MIN"] = "0";
  env["SLEUTH_THREADS_ABS"] = "0.5";  // perl's one thread is above it
  // The host sleeps until the dump exists, however loaded the machine is,
  // and reports each sleep's return value: all must be complete.
  const std::string program =
      "my $n = 0; my $short = 0;"
      " while ($n < 100) { $n++; my $s = sleep 1; $short++ if $s != 1;"
      "   last if glob('" + dir + "/*.threads.*.json'); }"
      " print qq(short sleeps: $short\\n)";
  RunResult with = RunProgram(
      {.argv = {"/usr/bin/perl", "-e", program}, .env = env, .timeout = std::chrono::minutes(3)});
  ASSERT_EQ(with.exit_code, 0) << Diagnostics(with);
  EXPECT_EQ(with.out, "short sleeps: 0\n") << Diagnostics(with);
  auto all_dumps = FindDumps(dir);
  auto dumps = OfKind(all_dumps, "threads");
  ASSERT_FALSE(dumps.empty()) << Diagnostics(with);
  auto profile = DecodePprofFile(dumps.front()->base + ".pb.gz");
  ASSERT_TRUE(profile.ok()) << profile.ErrorText();
  bool in_sleep = false;
  for (const auto& s : profile.samples)
    for (const auto& fn : s.stack)
      if (fn.find("nanosleep") != std::string::npos) in_sleep = true;
  EXPECT_TRUE(in_sleep) << "perl's main thread was dumped while in nanosleep";
}

// Symptoms 3 and 4: xz -T2's workers block every signal; a signal-driven
// profile saw none of their work. Its compression must lead the profile,
// and the threads must be named.
TEST(RealPrograms, XzWorkersThatBlockSignalsLeadItsCpuProfile) {
  REQUIRE_PROGRAM("/usr/bin/xz");
  std::string dir = MakeTempDir("sleuth_xz");
  // 12 MiB of compressible but not trivial text: several seconds of -9 work.
  std::string input = dir + "/input.txt";
  {
    std::ofstream f(input);
    std::mt19937 rng(7);
    const char* words[] = {"alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta ", "eta\n"};
    std::string chunk;
    while (chunk.size() < (1 << 20)) chunk += words[rng() % 7] + std::to_string(rng() % 1000);
    for (int i = 0; i < 12; i++) f << chunk << i;
  }
  auto env = QuietAgentEnv(dir + "/dumps");
  env["SLEUTH_CPU_ENABLE"] = "true";
  env["SLEUTH_CPU_MIN"] = "1";
  env["SLEUTH_CPU_ABS"] = "20";
  env["SLEUTH_CPU_PROFILE_DURATION"] = "2s";
  env["SLEUTH_UPLOAD_EXIT_GRACE"] = "10s";  // an early exit still writes the profile
  RunResult with = RunProgram(
      {.argv = {"/usr/bin/xz", "-T2", "-9", "-k", "-f", input}, .env = env, .timeout = std::chrono::minutes(5)});
  ASSERT_EQ(with.exit_code, 0) << Diagnostics(with);
  auto all_dumps = FindDumps(dir + "/dumps");
  auto dumps = OfKind(all_dumps, "cpu");
  ASSERT_FALSE(dumps.empty()) << Diagnostics(with);
  auto profile = DecodePprofFile(dumps.front()->base + ".pb.gz");
  ASSERT_TRUE(profile.ok()) << profile.ErrorText();
  int64_t total = 0, in_lzma = 0;
  std::set<std::string> thread_names;
  for (const auto& s : profile.samples) {
    int64_t n = s.values.empty() ? 0 : s.values[0];
    total += n;
    thread_names.insert(s.Label("thread_name"));
    bool lzma = false;
    for (const auto& loc : s.mapping_files)
      if (loc.find("liblzma") != std::string::npos) lzma = true;
    if (lzma) in_lzma += n;
  }
  ASSERT_GT(total, 20) << "too few samples for a busy xz";
  // perf record shows ~98% in liblzma for this run; leave room for the
  // main thread's reading and writing.
  EXPECT_GT(in_lzma * 10, total * 7) << in_lzma << " of " << total << " samples in liblzma";
  EXPECT_FALSE(thread_names.count("")) << "every sample names its thread";
  for (const auto& name : thread_names)
    EXPECT_EQ(name.rfind("sleuth", 0), std::string::npos) << "the agent sampled itself: " << name;
}

// Symptom 5: exit() in the middle of a profile dropped it. The profile so
// far is written, says it was cut short, and no scratch file stays behind.
TEST(RealPrograms, ExitMidProfileWritesWhatWasCollected) {
  std::string dir = MakeTempDir("sleuth_exit_mid");
  auto env = QuietAgentEnv(dir);
  env["SLEUTH_CPU_PROFILE_DURATION"] = "60s";
  env["SLEUTH_UPLOAD_EXIT_GRACE"] = "10s";
  RunResult r = RunProgram({.argv = {TestHost(), "exit", "exit"}, .env = env});
  EXPECT_EQ(r.exit_code, 4) << Diagnostics(r);
  auto all_dumps = FindDumps(dir);
  auto dumps = OfKind(all_dumps, "cpu");
  ASSERT_EQ(dumps.size(), 1u) << Diagnostics(r);
  json meta = json::parse(dumps.front()->sidecar_json);
  bool noted = false;
  for (const auto& n : meta["notes"])
    if (n.get<std::string>().find("stopping") != std::string::npos) noted = true;
  EXPECT_TRUE(noted) << meta.dump(2);
  auto profile = DecodePprofFile(dumps.front()->base + ".pb.gz");
  ASSERT_TRUE(profile.ok()) << profile.ErrorText();
  EXPECT_GT(profile.duration_nanos, 0);
  EXPECT_LT(profile.duration_nanos, 60'000'000'000) << "the true duration, not the one asked for";
  auto names = ListDir(dir);
  ASSERT_TRUE(names.ok());
  for (const auto& n : *names) {
    EXPECT_EQ(n.find(".tmp"), std::string::npos) << n;
    EXPECT_EQ(n.find(".prof"), std::string::npos) << n;
  }
}

// Symptom 6: every host got sleuth's lines on its stderr. At the default
// level, a host whose configuration works hears nothing from the agent.
TEST(RealPrograms, DefaultLevelLeavesTheHostsStderrAlone) {
  std::string dir = MakeTempDir("sleuth_quiet");
  for (const char* program : {"/bin/true", "/bin/ls"}) {
    RunResult r = RunProgram(
        {.argv = {program, "/"}, .env = {{"LD_PRELOAD", LibSleuth()}, {"SLEUTH_AGENT_DUMP_DIR", dir}}});
    EXPECT_EQ(r.err, "") << program;
    EXPECT_EQ(r.term_signal, 0) << program;
  }
}

// Symptom 8: libcurl, TLS and prometheus-cpp were mapped into every host.
TEST(RealPrograms, NetworkLibrariesAreLoadedOnlyWhenUsed) {
  std::string dir = MakeTempDir("sleuth_maps");
  RunResult plain = RunProgram({.argv = {"/bin/cat", "/proc/self/maps"},
                                .env = {{"LD_PRELOAD", LibSleuth()}, {"SLEUTH_AGENT_DUMP_DIR", dir}}});
  ASSERT_EQ(plain.exit_code, 0) << Diagnostics(plain);
  EXPECT_NE(plain.out.find("libsleuth.so"), std::string::npos) << "the agent was not loaded";
  for (const char* lib : {"libcurl", "libssl", "libgnutls", "libprometheus", "libsleuth-net"})
    EXPECT_EQ(plain.out.find(lib), std::string::npos) << lib << " mapped without uploads or metrics";
  RunResult serving = RunProgram({.argv = {"/bin/cat", "/proc/self/maps"},
                                  .env = {{"LD_PRELOAD", LibSleuth()},
                                          {"SLEUTH_AGENT_DUMP_DIR", dir},
                                          {"SLEUTH_METRICS_LISTEN",
                                           "127.0.0.1:" + std::to_string(FreePort())}}});
  ASSERT_EQ(serving.exit_code, 0) << Diagnostics(serving);
  EXPECT_NE(serving.out.find("libsleuth-net.so"), std::string::npos)
      << "metrics.listen must load the network plugin\n" << Diagnostics(serving);
}

}  // namespace
}  // namespace sleuth::testing
