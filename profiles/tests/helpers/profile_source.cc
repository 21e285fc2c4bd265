// A small program that produces the real inputs sleuth's parsers read, from
// gperftools itself. Used to (re)generate the fixtures under
// tests/fixtures/profiles/ and, live, by profiles_test to symbolize another
// process.
//
//   profile_source heap          allocate from LeakFromHere(), print
//                                MallocExtension::GetHeapSample's text, then
//                                "END\n", and wait for stdin to close.
//                                Run with TCMALLOC_SAMPLE_PARAMETER=524288.
//   profile_source cpu <file>    ProfilerStart(file), burn CPU in BurnCpu(),
//                                ProfilerStop(), print "END\n", wait for
//                                stdin to close.
//   profile_source smaps         print /proc/self/smaps, then "END\n", wait.
#include <gperftools/malloc_extension.h>
#include <gperftools/profiler.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::vector<void*> g_kept;  // never freed: that is the point

// 256 KiB blocks: large next to the 512 KiB sampling period, so the
// sampled totals are close to the true ones.
__attribute__((noinline)) void LeakFromHere(int blocks) {
  for (int i = 0; i < blocks; ++i) {
    char* p = new char[256 * 1024];
    std::memset(p, 1, 64);
    g_kept.push_back(p);
  }
}

// Small objects, for a second call site with a different size.
__attribute__((noinline)) void SmallAllocations(int count) {
  for (int i = 0; i < count; ++i) g_kept.push_back(std::malloc(100));
}

__attribute__((noinline)) double BurnCpu(long iterations) {
  volatile double x = 0;
  for (long i = 0; i < iterations; ++i) x = x + static_cast<double>(i % 7) * 0.5;
  return x;
}

void WaitForStdinToClose() {
  std::fputs("END\n", stdout);
  std::fflush(stdout);
  char buf[64];
  while (::read(0, buf, sizeof buf) > 0) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "heap") {
    LeakFromHere(400);  // 100 MiB
    SmallAllocations(100000);
    std::string sample;
    MallocExtension::instance()->GetHeapSample(&sample);
    std::fwrite(sample.data(), 1, sample.size(), stdout);
    WaitForStdinToClose();
    return 0;
  }
  if (mode == "cpu" && argc > 2) {
    if (!ProfilerStart(argv[2])) return 2;
    double r = BurnCpu(400'000'000);
    ProfilerStop();
    std::fprintf(stderr, "burned %f\n", r);
    WaitForStdinToClose();
    return 0;
  }
  if (mode == "smaps") {
    std::ifstream in("/proc/self/smaps");
    std::stringstream text;
    text << in.rdbuf();
    std::fputs(text.str().c_str(), stdout);
    WaitForStdinToClose();
    return 0;
  }
  std::fprintf(stderr, "usage: %s heap | cpu <file> | smaps\n", argv[0]);
  return 1;
}
