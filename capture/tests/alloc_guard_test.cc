// Proves the thread dump's signal handler never allocates: this binary
// replaces malloc and friends with counting wrappers around glibc's, and the
// dumper's test hook marks the thread that is inside the handler (a
// thread_local of the executable: static TLS, safe in a handler). Like
// tcmalloc's AllocationGuard, but counted so the failure says how many.
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstddef>

#include "parked_threads.h"
#include "sleuth/capture/thread_dumper.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {

thread_local bool t_in_handler = false;
std::atomic<int> g_allocations_in_handler{0};
std::atomic<int> g_handler_runs{0};

void Count() {
  if (t_in_handler) g_allocations_in_handler.fetch_add(1, std::memory_order_relaxed);
}

// async-signal-safe
void HandlerHook(bool entering) {
  t_in_handler = entering;
  if (entering) g_handler_runs.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

extern "C" {
void* malloc(size_t size) {
  Count();
  return __libc_malloc(size);
}
void* calloc(size_t count, size_t size) {
  Count();
  return __libc_calloc(count, size);
}
void* realloc(void* ptr, size_t size) {
  Count();
  return __libc_realloc(ptr, size);
}
void* memalign(size_t alignment, size_t size) {
  Count();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(size_t alignment, size_t size) {
  Count();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, size_t alignment, size_t size) {
  Count();
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return 12;  // ENOMEM
  *out = p;
  return 0;
}
void free(void* ptr) {
  Count();
  __libc_free(ptr);
}
}

namespace sleuth::capture {
namespace {

TEST(ThreadDumpAllocationGuardTest, HandlerNeverAllocates) {
  // The interposer really is in use.
  t_in_handler = true;
  void* probe = malloc(16);
  t_in_handler = false;
  free(probe);
  ASSERT_EQ(g_allocations_in_handler.exchange(0), 1);

  testing::ParkedThreads parked(200);
  SetThreadDumpHandlerHookForTesting(&HandlerHook);
  ThreadDumper dumper;
  for (int round = 0; round < 5; ++round) {
    Result<Capture> capture = dumper.Collect({});
    ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  }
  SetThreadDumpHandlerHookForTesting(nullptr);
  EXPECT_EQ(g_handler_runs.load(), 5 * 200);
  EXPECT_EQ(g_allocations_in_handler.load(), 0);
}

}  // namespace
}  // namespace sleuth::capture
