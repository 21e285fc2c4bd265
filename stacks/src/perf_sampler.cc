#include "sleuth/stacks/perf_sampler.h"

#include <asm/perf_regs.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "sleuth/common/files.h"

namespace sleuth::stacks {
namespace {

// The registers of `Registers`, in perf's bit numbering; the kernel writes
// them in increasing bit order, which is the order of kSampledRegisters.
constexpr int kSampledRegisters[] = {
    PERF_REG_X86_AX, PERF_REG_X86_BX, PERF_REG_X86_CX,  PERF_REG_X86_DX,  PERF_REG_X86_SI,
    PERF_REG_X86_DI, PERF_REG_X86_BP, PERF_REG_X86_SP,  PERF_REG_X86_IP,  PERF_REG_X86_R8,
    PERF_REG_X86_R9, PERF_REG_X86_R10, PERF_REG_X86_R11, PERF_REG_X86_R12, PERF_REG_X86_R13,
    PERF_REG_X86_R14, PERF_REG_X86_R15,
};
constexpr size_t kRegisterCount = sizeof kSampledRegisters / sizeof kSampledRegisters[0];

constexpr uint64_t SampledRegisterMask() {
  uint64_t mask = 0;
  for (int reg : kSampledRegisters) mask |= uint64_t{1} << reg;
  return mask;
}

constexpr uint64_t kSampleType =
    PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;

// How long Run() waits between drains at most; also the cancel latency.
constexpr int kDrainIntervalMs = 10;
constexpr int kMaxHz = 10000;
constexpr size_t kMaxStackBytes = 60 * 1024;  // a record's size is a u16

size_t PageBytes() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

int PerfEventOpen(perf_event_attr* attr, pid_t tid) {
  return static_cast<int>(syscall(SYS_perf_event_open, attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC));
}

perf_event_attr CpuClockAttr() {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.disabled = 1;
  // User mode only: allowed at kernel.perf_event_paranoid=2 for one's own
  // processes, and user stacks are all the unwinder can walk.
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  return attr;
}

std::string ReadTrimmed(const std::string& path) {
  Result<std::string> text = ReadFile(path, 4096);
  if (!text.ok()) return "";
  std::string value = std::move(text).value();
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
  return value;
}

// The error for a perf_event_open the kernel refused outright.
Status RefusedStatus(int err) {
  const std::string paranoid = ReadTrimmed("/proc/sys/kernel/perf_event_paranoid");
  const std::string paranoid_text =
      paranoid.empty() ? "" : " (kernel.perf_event_paranoid is " + paranoid + ")";
  if (err == ENOSYS || err == ENOENT || err == EOPNOTSUPP) {
    return Unavailable("CPU profiles need perf events, which this kernel does not offer "
                       "(perf_event_open: " + ErrnoText(err) + ")");
  }
  return Unavailable("the kernel refused perf_event_open (" + ErrnoText(err) + ")" +
                     paranoid_text +
                     ": CPU profiles need kernel.perf_event_paranoid at 2 or lower "
                     "(sysctl -w kernel.perf_event_paranoid=2), or CAP_PERFMON; in a container, "
                     "a seccomp profile that allows perf_event_open");
}

bool IsRefusal(int err) {
  return err == EACCES || err == EPERM || err == ENOSYS || err == ENOENT || err == EOPNOTSUPP;
}

std::string MlockBudgetText() {
  std::string text = "the per-user perf ring buffer budget ran out (kernel.perf_event_mlock_kb=" +
                     ReadTrimmed("/proc/sys/kernel/perf_event_mlock_kb");
  rlimit limit{};
  if (getrlimit(RLIMIT_MEMLOCK, &limit) == 0) {
    text += limit.rlim_cur == RLIM_INFINITY
                ? ", RLIMIT_MEMLOCK unlimited"
                : ", RLIMIT_MEMLOCK " + std::to_string(limit.rlim_cur / 1024) + " KiB";
  }
  return text + "); raise either, or run as root";
}

// One thread's event: its fd and its mmapped ring (one metadata page, then
// a power-of-two data area). Move-only owner of both.
class ThreadEvent {
 public:
  ThreadEvent(pid_t tid, ScopedFd fd, void* ring, size_t data_bytes)
      : tid_(tid), fd_(std::move(fd)), ring_(ring), data_bytes_(data_bytes) {}
  ThreadEvent(const ThreadEvent&) = delete;
  ThreadEvent& operator=(const ThreadEvent&) = delete;
  ~ThreadEvent() {
    if (ring_ != nullptr) munmap(ring_, PageBytes() + data_bytes_);
  }

  pid_t tid() const { return tid_; }
  int fd() const { return fd_.get(); }
  perf_event_mmap_page* meta() const { return static_cast<perf_event_mmap_page*>(ring_); }
  uint8_t* data() const { return static_cast<uint8_t*>(ring_) + PageBytes(); }
  size_t data_bytes() const { return data_bytes_; }

 private:
  pid_t tid_;
  ScopedFd fd_;
  void* ring_;
  size_t data_bytes_;
};

struct OpenAttempt {
  size_t data_pages;
  size_t stack_bytes;
};

}  // namespace

struct PerfSampler::State {
  pid_t pid = 0;
  PerfSamplerOptions options;
  uint64_t period_nanos = 0;
  size_t wanted_data_pages = 0;
  bool remove_on_exec = true;  // cleared when the kernel predates it (5.13)
  bool ran = false;
  std::unordered_map<pid_t, std::unique_ptr<ThreadEvent>> events;
  std::set<pid_t> excluded;
  std::set<pid_t> given_up;  // threads skipped once are not retried
  std::set<std::string> skip_reasons;
  size_t threads_sampled = 0;
  size_t threads_with_smaller_buffer = 0;
  size_t threads_skipped = 0;
  std::vector<uint8_t> scratch;  // a record that wraps around the ring's end

  // Opens tid's event (enabled or not). Ok(false) when the thread was
  // skipped (counted) or is gone; an error only for a refusal of perf
  // events as a whole.
  Result<bool> OpenThread(pid_t tid, bool enabled);
  Status Scan(bool enabled);
  void Skip(pid_t tid, std::string reason) {
    given_up.insert(tid);
    ++threads_skipped;
    skip_reasons.insert(std::move(reason));
  }
  // Reads every complete record of one ring.
  void Drain(ThreadEvent& event, const SampleCallback& on_sample, PerfSamplerResult& result);
  void Handle(const uint8_t* record, size_t size, const SampleCallback& on_sample,
              PerfSamplerResult& result);
};

Result<bool> PerfSampler::State::OpenThread(pid_t tid, bool enabled) {
  if (events.size() >= options.max_threads) {
    Skip(tid, "more than " + std::to_string(options.max_threads) +
                  " threads: the others were not sampled");
    return false;
  }
  // Smaller rings, then smaller stack copies, when the mlock budget is short.
  const size_t stack = options.stack_bytes;
  const OpenAttempt attempts[] = {
      {wanted_data_pages, stack},
      {std::max<size_t>(wanted_data_pages / 2, 4), stack},
      {4, std::min<size_t>(stack, 8192)},
      {2, std::min<size_t>(stack, 4096)},
  };
  bool ring_refused = false;
  for (const OpenAttempt& attempt : attempts) {
    perf_event_attr attr = CpuClockAttr();
    attr.disabled = enabled ? 0 : 1;
    attr.sample_type = kSampleType;
    // A fixed period rather than freq=1: for cpu-clock the kernel turns a
    // frequency into this same fixed period anyway, and every sample then
    // stands for exactly period_nanos of CPU time.
    attr.sample_period = period_nanos;
    attr.sample_regs_user = SampledRegisterMask();
    attr.sample_stack_user = static_cast<uint32_t>(attempt.stack_bytes);
    attr.use_clockid = 1;
    attr.clockid = CLOCK_MONOTONIC;
    attr.watermark = 1;
    attr.wakeup_watermark = static_cast<uint32_t>(attempt.data_pages * PageBytes() / 2);
    // Another process that execs keeps its events otherwise, sampling a new
    // address space into our rings. (This process's own exec closes the
    // fds, CLOEXEC, and with them the events.)
    attr.remove_on_exec = remove_on_exec ? 1 : 0;
    int fd = PerfEventOpen(&attr, tid);
    if (fd < 0 && errno == EINVAL && remove_on_exec) {
      remove_on_exec = false;
      attr.remove_on_exec = 0;
      fd = PerfEventOpen(&attr, tid);
    }
    if (fd < 0) {
      const int err = errno;
      if (err == ESRCH) return false;  // exited meanwhile
      if (IsRefusal(err)) {
        if (threads_sampled == 0) return RefusedStatus(err);
        Skip(tid, "perf_event_open refused for some threads (" + ErrnoText(err) + ")");
        return false;
      }
      if (err == EMFILE || err == ENFILE) {
        Skip(tid, "out of file descriptors for perf events (" + ErrnoText(err) + ")");
        return false;
      }
      Skip(tid, "perf_event_open failed (" + ErrnoText(err) + ")");
      return false;
    }
    ScopedFd owned(fd);
    const size_t data_bytes = attempt.data_pages * PageBytes();
    void* ring = mmap(nullptr, PageBytes() + data_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                      owned.get(), 0);
    if (ring == MAP_FAILED) {
      const int err = errno;
      if (err == EPERM || err == ENOMEM || err == EAGAIN) {
        ring_refused = true;
        continue;  // try a smaller ring
      }
      Skip(tid, "mmap of a perf ring buffer failed (" + ErrnoText(err) + ")");
      return false;
    }
    if (&attempt != &attempts[0]) ++threads_with_smaller_buffer;
    events[tid] = std::make_unique<ThreadEvent>(tid, std::move(owned), ring, data_bytes);
    ++threads_sampled;
    return true;
  }
  Skip(tid, ring_refused ? MlockBudgetText() : "no perf ring buffer could be mapped");
  return false;
}

Status PerfSampler::State::Scan(bool enabled) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  Result<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) {
    if (names.status().code() == StatusCode::kNotFound) {
      return Gone("process " + std::to_string(pid) + " exited");
    }
    return names.status();
  }
  std::set<pid_t> alive;
  for (const std::string& name : *names) {
    char* end = nullptr;
    const long tid = std::strtol(name.c_str(), &end, 10);
    if (end == name.c_str() || *end != '\0' || tid <= 0) continue;
    alive.insert(static_cast<pid_t>(tid));
  }
  for (pid_t tid : alive) {
    if (events.count(tid) != 0 || excluded.count(tid) != 0 || given_up.count(tid) != 0) continue;
    Result<bool> opened = OpenThread(tid, enabled);
    if (!opened.ok()) return opened.status();
  }
  return Status::Ok();
}

void PerfSampler::State::Handle(const uint8_t* record, size_t size,
                                const SampleCallback& on_sample, PerfSamplerResult& result) {
  perf_event_header header{};
  std::memcpy(&header, record, sizeof header);
  if (header.type == PERF_RECORD_LOST) {
    uint64_t lost = 0;
    if (size >= sizeof header + 16) std::memcpy(&lost, record + sizeof header + 8, sizeof lost);
    result.lost_samples += lost;
    return;
  }
  if (header.type != PERF_RECORD_SAMPLE) return;  // throttling and the like

  size_t at = sizeof header;
  auto take = [&](void* out, size_t bytes) {
    if (at + bytes > size) return false;
    std::memcpy(out, record + at, bytes);
    at += bytes;
    return true;
  };
  uint32_t ids[2] = {0, 0};  // pid, tid
  uint64_t time = 0;
  uint64_t abi = 0;
  if (!take(ids, sizeof ids) || !take(&time, sizeof time) || !take(&abi, sizeof abi)) {
    ++result.unusable_samples;
    return;
  }
  if (abi != PERF_SAMPLE_REGS_ABI_64) {
    // No user registers (or a 32-bit task): nothing to unwind. The stack
    // part still follows; the sample is counted only.
    ++result.unusable_samples;
    return;
  }
  uint64_t values[kRegisterCount] = {};
  uint64_t stack_size = 0;
  if (!take(values, sizeof values) || !take(&stack_size, sizeof stack_size) ||
      at + stack_size > size) {
    ++result.unusable_samples;
    return;
  }
  const uint8_t* stack_bytes = record + at;
  at += stack_size;
  uint64_t dyn_size = 0;
  if (stack_size != 0 && (!take(&dyn_size, sizeof dyn_size) || dyn_size > stack_size)) {
    ++result.unusable_samples;
    return;
  }
  PerfSample sample;
  sample.tid = static_cast<pid_t>(ids[1]);
  sample.time_nanos = time;
  Registers& r = sample.regs;
  uint64_t* const slots[kRegisterCount] = {&r.rax, &r.rbx, &r.rcx, &r.rdx, &r.rsi, &r.rdi,
                                           &r.rbp, &r.rsp, &r.rip, &r.r8,  &r.r9,  &r.r10,
                                           &r.r11, &r.r12, &r.r13, &r.r14, &r.r15};
  for (size_t i = 0; i < kRegisterCount; ++i) *slots[i] = values[i];
  sample.stack.start = r.rsp;
  sample.stack.bytes = std::span<const uint8_t>(stack_bytes, dyn_size);
  ++result.samples;
  on_sample(sample);
}

void PerfSampler::State::Drain(ThreadEvent& event, const SampleCallback& on_sample,
                               PerfSamplerResult& result) {
  perf_event_mmap_page* meta = event.meta();
  const uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = meta->data_tail;
  const uint8_t* data = event.data();
  const uint64_t mask = event.data_bytes() - 1;
  while (tail + sizeof(perf_event_header) <= head) {
    perf_event_header header{};
    for (size_t i = 0; i < sizeof header; ++i) {
      reinterpret_cast<uint8_t*>(&header)[i] = data[(tail + i) & mask];
    }
    if (header.size < sizeof header || tail + header.size > head) {
      tail = head;  // corrupt or torn: skip what is there
      ++result.unusable_samples;
      break;
    }
    const uint64_t offset = tail & mask;
    if (offset + header.size <= event.data_bytes()) {
      Handle(data + offset, header.size, on_sample, result);
    } else {
      const size_t first = event.data_bytes() - offset;
      scratch.resize(header.size);
      std::memcpy(scratch.data(), data + offset, first);
      std::memcpy(scratch.data() + first, data, header.size - first);
      Handle(scratch.data(), header.size, on_sample, result);
    }
    tail += header.size;
  }
  // The kernel may reuse the space only once we are done with it.
  __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
}

PerfSampler::PerfSampler(std::unique_ptr<State> state) : state_(std::move(state)) {}
PerfSampler::~PerfSampler() = default;

Result<std::unique_ptr<PerfSampler>> PerfSampler::ForProcess(pid_t pid,
                                                             PerfSamplerOptions options) {
  if (pid <= 0) return InvalidArgument("perf sampler target pid must be positive");
  if (options.hz < 1 || options.hz > kMaxHz) {
    return InvalidArgument("sampling rate " + std::to_string(options.hz) +
                           " Hz is out of range: use 1 to " + std::to_string(kMaxHz) + " Hz");
  }
  if (options.stack_bytes == 0 || options.stack_bytes % 8 != 0 ||
      options.stack_bytes > kMaxStackBytes) {
    return InvalidArgument("stack copy size must be a positive multiple of 8 up to " +
                           std::to_string(kMaxStackBytes) + " bytes");
  }
  auto state = std::make_unique<State>();
  state->pid = pid;
  state->period_nanos = 1'000'000'000ull / static_cast<uint64_t>(options.hz);
  // Room for ~30 ms of samples (three drains) of one busy thread, as a
  // power of two of pages, from 8 to 64 pages.
  const size_t sample_bytes = options.stack_bytes + 256;
  const size_t samples_wanted = std::max<size_t>(2, static_cast<size_t>(options.hz) * 3 / 100 + 1);
  size_t pages = 8;
  while (pages < 64 && pages * PageBytes() < samples_wanted * sample_bytes) pages *= 2;
  state->wanted_data_pages = pages;
  state->excluded.insert(options.exclude_tids.begin(), options.exclude_tids.end());
  state->options = std::move(options);
  SLEUTH_RETURN_IF_ERROR(state->Scan(/*enabled=*/false));
  return std::unique_ptr<PerfSampler>(new PerfSampler(std::move(state)));
}

Result<PerfSamplerResult> PerfSampler::Run(std::chrono::nanoseconds duration,
                                           const std::atomic<bool>* cancel,
                                           const SampleCallback& on_sample) {
  State& s = *state_;
  if (s.ran) return Status(StatusCode::kBusy, "a PerfSampler runs once");
  s.ran = true;
  if (s.pid == getpid()) {
    // The reader itself: its own draining is not the profile's subject.
    const auto self = static_cast<pid_t>(syscall(SYS_gettid));
    s.excluded.insert(self);
    if (auto it = s.events.find(self); it != s.events.end()) {
      s.events.erase(it);
      --s.threads_sampled;
    }
  }
  PerfSamplerResult result;
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (auto& [tid, event] : s.events) ioctl(event->fd(), PERF_EVENT_IOC_ENABLE, 0);
  const auto deadline = start + duration;
  auto next_scan = start + s.options.rescan_interval;
  Status failure;
  std::vector<pollfd> fds;
  std::vector<ThreadEvent*> polled;  // parallel to fds
  for (;;) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
      result.cancelled = true;
      break;
    }
    const auto now = Clock::now();
    if (now >= deadline) break;
    if (now >= next_scan) {
      failure = s.Scan(/*enabled=*/true);
      if (!failure.ok()) break;  // the process is gone: keep what we have
      next_scan = now + s.options.rescan_interval;
    }
    // Sleep until a ring is half full, the next drain, or the deadline.
    fds.clear();
    polled.clear();
    for (auto& [tid, event] : s.events) {
      fds.push_back({event->fd(), POLLIN, 0});
      polled.push_back(event.get());
    }
    const auto left_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    const int timeout_ms = static_cast<int>(std::min<int64_t>(kDrainIntervalMs, left_ms));
    if (fds.empty()) {
      timespec pause{0, timeout_ms * 1'000'000L};
      nanosleep(&pause, nullptr);
    } else {
      poll(fds.data(), fds.size(), timeout_ms);
    }
    for (size_t i = 0; i < polled.size(); ++i) {
      s.Drain(*polled[i], on_sample, result);
      // A thread that exited (POLLHUP) has nothing more to say: free its
      // fd and ring now, so a host with thread churn keeps few open.
      if ((fds[i].revents & POLLHUP) != 0) s.events.erase(polled[i]->tid());
    }
  }
  for (auto& [tid, event] : s.events) ioctl(event->fd(), PERF_EVENT_IOC_DISABLE, 0);
  result.profiled = Clock::now() - start;
  for (auto& [tid, event] : s.events) s.Drain(*event, on_sample, result);
  s.events.clear();  // closes every fd and ring now
  result.threads_sampled = s.threads_sampled;
  result.threads_with_smaller_buffer = s.threads_with_smaller_buffer;
  result.threads_skipped = s.threads_skipped;
  result.skipped_because.assign(s.skip_reasons.begin(), s.skip_reasons.end());
  if (!failure.ok() && failure.code() != StatusCode::kGone) return failure;
  return result;
}

Status CheckPerfEventsAvailable() {
  perf_event_attr attr = CpuClockAttr();
  const int fd = PerfEventOpen(&attr, 0);
  if (fd < 0) {
    const int err = errno;
    if (IsRefusal(err)) return RefusedStatus(err);
    return ErrnoStatus("perf_event_open of a cpu-clock counter", err);
  }
  close(fd);
  return Status::Ok();
}

}  // namespace sleuth::stacks
