// `go tool pprof` reads what sleuth writes: a real libprofiler CPU profile,
// converted and gzipped, must show the hot function's demangled name both
// with pprof's own symbolization and with -symbolize=none (what a machine
// without the binary sees). Labelled slow: go's start-up takes seconds.
#include <gmock/gmock.h>
#include <gperftools/profiler.h>
#include <gtest/gtest.h>

#include <ctime>

#include "sleuth/common/files.h"
#include "sleuth/profiles/gperftools_cpu.h"
#include "sleuth/profiles/pprof.h"
#include "test_util.h"

namespace sleuth_pprof_tool_test {

int64_t ProcessCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

template <typename T>
struct Spinner {
  // A template member: the demangled name carries template arguments.
  __attribute__((noinline)) static T Spin(int64_t cpu_nanos) {
    volatile T x = 0;
    int64_t until = ProcessCpuNanos() + cpu_nanos;
    while (ProcessCpuNanos() < until) {
      for (int i = 0; i < 100000; ++i) x = x + static_cast<T>(i % 7);
    }
    return x;
  }
};

}  // namespace sleuth_pprof_tool_test

namespace sleuth::profiles {
namespace {

using ::testing::HasSubstr;

TEST(PprofToolTest, GoToolPprofShowsTheDemangledHotFunction) {
  int exit_code = 0;
  testing::RunCommand("command -v go >/dev/null 2>&1", &exit_code);
  if (exit_code != 0) GTEST_SKIP() << "`go` is not on PATH: install golang-go to run this check";

  std::string dir = testing::MakeTempDir();
  std::string raw_path = dir + "/cpu.prof";
  ASSERT_TRUE(ProfilerStart(raw_path.c_str()));
  sleuth_pprof_tool_test::Spinner<double>::Spin(400'000'000);
  ProfilerStop();

  Result<std::string> bytes = ReadFile(raw_path);
  ASSERT_TRUE(bytes.ok());
  Result<GperftoolsCpuProfile> cpu = ParseGperftoolsCpuProfile(*bytes);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  cpu->profile.duration_nanos = 400'000'000;
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  Result<std::string> encoded = EncodePprof(cpu->profile, *sym);
  ASSERT_TRUE(encoded.ok()) << encoded.status().message();
  Result<std::string> gz = GzipCompress(*encoded);
  ASSERT_TRUE(gz.ok());
  std::string profile_path = dir + "/cpu.pb.gz";
  ASSERT_TRUE(WriteFileAtomic(profile_path, *gz).ok());

  // go writes nowhere outside the temp dir and needs no network.
  std::string env = "HOME='" + dir + "' GOCACHE='" + dir + "/gocache' PPROF_TMPDIR='" + dir +
                    "' GOFLAGS=-mod=mod GOPROXY=off ";
  const std::string hot = "sleuth_pprof_tool_test::Spinner<double>::Spin(long)";
  for (const std::string flags : {"-top", "-symbolize=none -top"}) {
    std::string out = testing::RunCommand(
        env + "go tool pprof " + flags + " '" + profile_path + "' 2>&1", &exit_code);
    EXPECT_EQ(exit_code, 0) << flags << ":\n" << out;
    EXPECT_THAT(out, HasSubstr(hot)) << flags << ":\n" << out;
    EXPECT_THAT(out, HasSubstr("Type: cpu")) << out;
  }
  testing::RemoveTree(dir);
}

}  // namespace
}  // namespace sleuth::profiles
