#include "sleuth/capture/engine.h"

#include "sleuth/capture/heap_profiler.h"
#include "sleuth/capture/memory_maps_dumper.h"
#include "sleuth/capture/perf_cpu_profiler.h"
#include "sleuth/capture/ptrace_thread_dumper.h"
#include "sleuth/capture/thread_dumper.h"

namespace sleuth::capture {

Engine::~Engine() = default;

std::unique_ptr<Engine> MakeSignalThreadDumper() {
  return std::make_unique<ThreadDumper>();
}

Result<std::unique_ptr<Engine>> MakeEngine(std::string_view kind) {
  if (kind == "threads") return std::unique_ptr<Engine>(std::make_unique<PtraceThreadDumper>());
  if (kind == "cpu") return std::unique_ptr<Engine>(std::make_unique<PerfCpuProfiler>());
  if (kind == "heap") return std::unique_ptr<Engine>(std::make_unique<HeapProfiler>());
  if (kind == "memory") return std::unique_ptr<Engine>(std::make_unique<MemoryMapsDumper>());
  return InvalidArgument("unknown dump kind '" + std::string(kind) +
                         "': expected threads, cpu, heap or memory");
}

}  // namespace sleuth::capture
