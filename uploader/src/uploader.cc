#include "sleuth/uploader/uploader.h"

#include <curl/curl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "sleuth/common/files.h"
#include "sleuth/common/log.h"
#include "sleuth/common/units.h"
#include "sleuth/uploader/protocols.h"
#include "sleuth/uploader/retry.h"
#include "sleuth/uploader/sidecar.h"
#include "upload_metrics.h"

namespace sleuth::uploader {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Pending dumps a sink holds in memory; refilled from the directory when it
// runs below kLowWater. This, not the queue's length, bounds memory.
constexpr size_t kWindow = 256;
constexpr size_t kLowWater = kWindow / 4;
constexpr size_t kMaxProfileBytes = size_t{256} << 20;
constexpr size_t kMaxResponseBytes = size_t{64} << 10;
// A failing sink logs its first failure, then at most one line per minute.
constexpr Nanos kFailureLogInterval = std::chrono::minutes(1);
// Notify() triggers a full rescan (dumps may complete out of name order) and
// a spool measurement, each at most this often.
constexpr Nanos kNotifyScanGap = seconds(1);
constexpr char kUserAgent[] = "sleuth-uploader/0.1";

struct WindowEntry {
  DumpKey key;
  int attempts = 0;
};

struct SinkState {
  Sink sink;
  std::deque<WindowEntry> window;          // oldest first
  std::unordered_set<std::string> queued;  // bases in the window or in flight
  // Every dump up to the cursor is settled, in the window or in flight for
  // this sink, so a refill only looks past it (a full rescan resets it).
  std::optional<DumpKey> cursor;
  bool more_waiting = true;  // the last refill left pending dumps behind
  int in_flight = 0;
  Nanos next_attempt{0};  // monotonic; backoff or Retry-After
  int failures = 0;       // consecutive transient failures
  // Whether the sink has answered at all since start. Until it has, and
  // while it fails, one request at a time probes it: a backend that is down
  // or refuses our credentials sees one request, not `concurrency` of them.
  bool answered = false;
  Nanos failing_since{0};
  Nanos last_failure_log{0};
  bool given_up = false;           // one-shot mode only
  bool idle = false;               // one-shot mode: a full scan found nothing
  bool full_scan_pending = false;  // one-shot mode: confirm idleness
};

// One request in flight. Owns what libcurl reads from until it completes.
struct Transfer {
  size_t sink = 0;
  WindowEntry entry;
  std::string event_id;
  uint64_t dump_bytes = 0;
  std::string body;
  curl_slist* headers = nullptr;
  std::string response;
  Nanos started{0};
  CURL* easy = nullptr;
  char error[CURL_ERROR_SIZE] = {};

  Transfer() = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  ~Transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (headers != nullptr) curl_slist_free_all(headers);
  }
};

size_t KeepResponse(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  size_t room = kMaxResponseBytes - std::min(kMaxResponseBytes, t->response.size());
  t->response.append(data, std::min(n, room));
  return n;  // the rest is read and dropped, so the connection stays usable
}

std::string FormatWait(Nanos d) {
  if (d >= seconds(1)) return FormatDuration(duration_cast<seconds>(d + milliseconds(500)));
  return FormatDuration(duration_cast<milliseconds>(d));
}

void InitCurlOnce() {
  static std::once_flag once;
  // Thread safe in this libcurl (CURL_VERSION_THREADSAFE); never cleaned
  // up, since the host may use libcurl itself.
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string SinkHint(long status) {
  if (status == 401 || status == 407) {
    return "check upload.username with its password, or the token";
  }
  if (status == 403) return "check the credentials' permissions and upload.tenant_id";
  if (status == 404 || status == 405) return "check upload.url and upload.protocol";
  return "the server redirects; set upload.url to the final address";
}

}  // namespace

struct Uploader::Impl {
  Impl(const config::UploadSection& cfg, std::string dump_dir,
       std::shared_ptr<prometheus::Registry> reg, const Clock& clk, UploaderOptions opts)
      : config(cfg),
        dir(std::move(dump_dir)),
        registry(std::move(reg)),
        clock(clk),
        options(std::move(opts)) {
    std::vector<std::string> names;
    for (const config::SinkConfig& s : config.sinks) names.push_back(s.name);
    spool = std::make_unique<Spool>(dir, names);
    last_errors.assign(names.size(), {});
    wake_fd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    uint64_t seed = static_cast<uint64_t>(clock.Wall().count()) ^ (uint64_t(::getpid()) << 32);
    try {
      std::random_device device;
      seed ^= (uint64_t{device()} << 32) | device();
    } catch (const std::exception&) {
      // No entropy source: the clock and pid still spread a fleet's retries.
    }
    rng.seed(seed);
  }

  // ------------------------------------------------------------ setup
  Status Prepare();
  void Run();
  bool AcquireLockOrStandBy();
  Status SetUpCurl();
  void TearDownCurl();
  void Loop();

  // ------------------------------------------------------------ steps
  void FullRescan(Nanos now);
  void Account(Nanos now);
  void Refill(bool look_anyway);
  void CheckGiveUp(Nanos now);
  void Dispatch(Nanos now);
  void StartTransfer(size_t sink, WindowEntry entry, Nanos now);
  void Complete(CURL* easy, CURLcode code);
  bool Drained();
  int TimeoutMs(Nanos now) const;
  void AbandonAll();
  void WaitForWake(Nanos timeout);

  // ------------------------------------------------------------ outcomes
  void OnDelivered(Transfer& t, long status);
  void OnRetry(Transfer& t, long status, const std::string& what, const std::string& retry_after,
               Nanos now);
  void OnRejected(Transfer& t, long status, const std::string& message, bool sink_level, Nanos now);
  void OnVanished(size_t sink, const std::string& base);
  void SetAsideInvalid(size_t sink, const std::string& base, const std::string& reason);
  void Settled(const std::string& base, uint64_t bytes);

  int Limit(const SinkState& s) const {
    return s.failures > 0 || !s.answered ? 1 : std::max(1, config.concurrency);
  }
  void Log(log::Level level, const std::string& message) const {
    if (log::Enabled(level)) log::Write(level, redactor.Redact("upload: " + message));
  }
  void SetLastError(size_t sink, std::string error) {
    std::lock_guard<std::mutex> lock(error_mu);
    last_errors[sink] = redactor.Redact(error);
  }
  double Unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
  std::string RandomHex(size_t digits) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < digits; ++i) out += kHex[rng() & 15];
    return out;
  }

  // Immutable after Start().
  config::UploadSection config;
  std::string dir;
  std::shared_ptr<prometheus::Registry> registry;
  const Clock& clock;
  UploaderOptions options;
  std::unique_ptr<Spool> spool;
  Redactor redactor;
  UploadMetrics metrics;
  ScopedFd wake_fd;

  // Shared with other threads.
  std::atomic<bool> notified{false};
  std::atomic<bool> stop_requested{false};
  std::atomic<int64_t> stop_deadline_ns{0};
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  mutable std::mutex error_mu;
  std::vector<std::string> last_errors;  // per sink, redacted
  std::atomic<uint64_t> delivered{0}, retries{0}, rejected{0}, invalid{0}, evicted{0}, vanished{0},
      queue_dumps{0}, queue_bytes{0};

  // The worker's own (and Start()'s, before the worker exists).
  std::thread worker;
  bool started = false;
  SpoolLock lock;
  std::vector<SinkState> sinks;
  CURLM* multi = nullptr;
  CURLSH* share = nullptr;
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> transfers;
  std::unordered_set<std::string> in_flight_bases;
  std::mt19937_64 rng;
  Nanos next_rescan{0}, next_full_rescan{0}, next_accounting{0};
  Nanos last_notify_scan{std::chrono::hours(-1)}, last_accounting{std::chrono::hours(-1)};
  bool scan_now = false;
  Nanos last_listing_error_log{std::chrono::hours(-1)};
};

// ================================================================ setup

Status Uploader::Impl::Prepare() {
  if (config.sinks.empty()) {
    return InvalidArgument(
        "no upload sink is configured: set upload.url (or "
        "SLEUTH_UPLOAD_URL, or --set upload.url=...)");
  }
  if (config.concurrency < 1) {
    return InvalidArgument("upload.concurrency must be at least 1, got " +
                           std::to_string(config.concurrency));
  }
  if (config.retry_initial <= Nanos(0) || config.retry_max < config.retry_initial) {
    return InvalidArgument("upload.retry_initial must be positive and at most upload.retry_max");
  }
  if (config.timeout <= Nanos(0)) return InvalidArgument("upload.timeout must be positive");
  if (!wake_fd.valid()) return ErrnoStatus("cannot create the uploader's eventfd", errno);
  EnvLookup getenv = options.getenv ? options.getenv : EnvLookup([](const char* name) {
    return static_cast<const char*>(::getenv(name));
  });
  sinks.clear();
  std::unordered_set<std::string> names;
  for (const config::SinkConfig& cfg : config.sinks) {
    SLEUTH_ASSIGN_OR_RETURN(Sink sink, ResolveSink(cfg, getenv));
    if (!names.insert(sink.name).second) {
      return InvalidArgument("two upload sinks are named \"" + sink.name + "\"");
    }
    redactor.AddSink(sink);
    SinkState state;
    state.sink = std::move(sink);
    sinks.push_back(std::move(state));
  }
  SLEUTH_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  std::vector<std::string> sink_names;
  for (const SinkState& s : sinks) sink_names.push_back(s.sink.name);
  SLEUTH_RETURN_IF_ERROR(metrics.Init(registry, sink_names));
  return Status::Ok();
}

Status Uploader::Impl::SetUpCurl() {
  multi = curl_multi_init();
  share = curl_share_init();
  if (multi == nullptr || share == nullptr) return Internal("cannot create libcurl handles");
  // One multi handle already pools connections and DNS for its transfers;
  // the share handle adds TLS session reuse across them. All of it is used
  // from the worker thread only, so no lock callbacks are needed.
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  long connections = static_cast<long>(sinks.size()) * std::max(1, config.concurrency) + 2;
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, connections);
  return Status::Ok();
}

void Uploader::Impl::TearDownCurl() {
  AbandonAll();
  if (multi != nullptr) curl_multi_cleanup(multi);
  if (share != nullptr) curl_share_cleanup(share);
  multi = nullptr;
  share = nullptr;
}

void Uploader::Impl::WaitForWake(Nanos timeout) {
  struct pollfd p = {wake_fd.get(), POLLIN, 0};
  int ms = static_cast<int>(std::max<int64_t>(0, duration_cast<milliseconds>(timeout).count()));
  if (::poll(&p, 1, ms) > 0) {
    uint64_t drained;
    [[maybe_unused]] ssize_t n = ::read(wake_fd.get(), &drained, sizeof drained);
  }
}

bool Uploader::Impl::AcquireLockOrStandBy() {
  bool logged = false;
  while (!lock.held()) {
    if (stop_requested.load()) return false;
    Result<SpoolLock> acquired = SpoolLock::TryAcquire(dir);
    if (acquired.ok()) {
      lock = std::move(*acquired);
      Log(log::Level::kInfo, "took over shipping " + dir);
      break;
    }
    if (!logged) {
      Log(log::Level::kInfo, acquired.status().message() +
                                 "; this uploader stands by and takes over when it is released");
      logged = true;
    }
    WaitForWake(options.rescan_interval);
  }
  return true;
}

void Uploader::Impl::Run() {
  pthread_setname_np(pthread_self(), "sleuth-upload");
  if (AcquireLockOrStandBy()) {
    Status curl = SetUpCurl();
    if (curl.ok()) {
      Loop();
    } else {
      Log(log::Level::kError, curl.message() + "; nothing will be uploaded");
    }
    TearDownCurl();
  }
  lock = SpoolLock();
  {
    std::lock_guard<std::mutex> guard(done_mu);
    done = true;
  }
  done_cv.notify_all();
}

// ================================================================ the loop

void Uploader::Impl::Loop() {
  Nanos now = clock.Monotonic();
  next_rescan = next_full_rescan = next_accounting = now;
  for (;;) {
    now = clock.Monotonic();
    if (stop_requested.load()) {
      if (transfers.empty() || now >= Nanos(stop_deadline_ns.load())) break;
    } else {
      bool notify = notified.exchange(false);
      bool look = false;
      if (now >= next_full_rescan ||
          (notify && !options.exit_when_drained && now - last_notify_scan >= kNotifyScanGap)) {
        if (notify) last_notify_scan = now;
        FullRescan(now);
        look = true;
      }
      if (now >= next_accounting || (notify && now - last_accounting >= kNotifyScanGap)) {
        Account(now);
      }
      if (now >= next_rescan) {
        next_rescan = now + options.rescan_interval;
        look = true;
      }
      Refill(look || notify);
      scan_now = false;
      CheckGiveUp(now);
      Dispatch(now);
      if (options.exit_when_drained && Drained()) break;
    }
    int timeout_ms = TimeoutMs(now);
    struct curl_waitfd wake = {wake_fd.get(), CURL_WAIT_POLLIN, 0};
    curl_multi_poll(multi, &wake, 1, timeout_ms, nullptr);
    uint64_t drained;
    [[maybe_unused]] ssize_t n = ::read(wake_fd.get(), &drained, sizeof drained);
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg == CURLMSG_DONE) Complete(msg->easy_handle, msg->data.result);
    }
  }
}

void Uploader::Impl::FullRescan(Nanos now) {
  next_full_rescan = now + options.full_rescan_interval;
  if (Status s = spool->CollectGarbage(); !s.ok()) {
    Log(log::Level::kWarn, "cannot tidy the upload state: " + s.message());
  }
  for (SinkState& s : sinks) {
    s.cursor.reset();
    s.more_waiting = true;
  }
}

void Uploader::Impl::Account(Nanos now) {
  last_accounting = now;
  next_accounting = now + options.accounting_interval;
  Result<SpoolUsage> usage = spool->EnforceCap(
      config.max_spool_bytes,
      [&](std::string_view base) { return in_flight_bases.count(std::string(base)) != 0; },
      [&](const Eviction& e) {
        evicted++;
        metrics.AddEvicted();
        Log(log::Level::kWarn, "evicted " + e.key.base + " (" + FormatSize(e.bytes) + ") from " +
                                   e.where + ": undelivered dumps exceed upload.max_spool_bytes (" +
                                   FormatSize(config.max_spool_bytes) +
                                   "); the oldest go first. Check the backend, or raise the cap");
      });
  if (!usage.ok()) {
    Log(log::Level::kWarn, "cannot measure the upload spool: " + usage.status().message());
    return;
  }
  queue_dumps = usage->pending_dumps;
  queue_bytes = usage->pending_bytes;
  metrics.SetQueue(usage->pending_dumps, usage->pending_bytes);
}

void Uploader::Impl::Refill(bool look_anyway) {
  struct Selection {
    size_t sink;
    size_t room;
    std::priority_queue<DumpKey> newest_on_top;
    std::optional<DumpKey> max_seen;
    bool saturated = false;
  };
  std::vector<Selection> selections;
  for (size_t i = 0; i < sinks.size(); ++i) {
    SinkState& s = sinks[i];
    if (s.given_up || s.window.size() >= kLowWater) continue;
    if (!look_anyway && !s.more_waiting && !s.full_scan_pending) continue;
    selections.push_back(Selection{i, kWindow - s.window.size(), {}, {}, false});
  }
  if (selections.empty()) return;

  Status listed = spool->ForEachDump([&](const std::string& base) {
    std::optional<DumpKey> key;
    for (Selection& sel : selections) {
      SinkState& s = sinks[sel.sink];
      if (!key) {
        Result<DumpKey> k = spool->KeyOf(base);
        if (!k.ok()) return;  // vanished
        key = std::move(*k);
      }
      if (s.cursor && *key <= *s.cursor) continue;
      if (!sel.max_seen || *sel.max_seen < *key) sel.max_seen = *key;
      if (s.queued.count(base) != 0) continue;
      bool full = sel.newest_on_top.size() >= sel.room;
      if (full && !(*key < sel.newest_on_top.top())) {
        sel.saturated = true;
        continue;
      }
      if (!spool->IsPending(sel.sink, base)) continue;
      if (full) {
        sel.newest_on_top.pop();
        sel.saturated = true;
      }
      sel.newest_on_top.push(*key);
    }
  });
  if (!listed.ok()) {
    // Wait for the next rescan instead of retrying in a loop; a one-shot
    // run that cannot see its directory has nothing it can do.
    Nanos now = clock.Monotonic();
    if (now - last_listing_error_log >= kFailureLogInterval) {
      last_listing_error_log = now;
      Log(log::Level::kWarn, "cannot list the dump directory: " + listed.message());
    }
    for (Selection& sel : selections) {
      SinkState& s = sinks[sel.sink];
      s.more_waiting = false;
      if (s.full_scan_pending) {
        s.full_scan_pending = false;
        s.idle = s.window.empty() && s.in_flight == 0;
      }
    }
    return;
  }
  for (Selection& sel : selections) {
    SinkState& s = sinks[sel.sink];
    std::vector<DumpKey> picked;
    picked.reserve(sel.newest_on_top.size());
    while (!sel.newest_on_top.empty()) {
      picked.push_back(sel.newest_on_top.top());
      sel.newest_on_top.pop();
    }
    std::reverse(picked.begin(), picked.end());
    if (sel.saturated) {
      s.cursor = picked.back();
      s.more_waiting = true;
    } else {
      if (sel.max_seen) s.cursor = sel.max_seen;
      s.more_waiting = false;
    }
    for (DumpKey& key : picked) {
      s.queued.insert(key.base);
      s.window.push_back(WindowEntry{std::move(key), 0});
    }
    if (s.full_scan_pending) {
      s.full_scan_pending = false;
      s.idle = s.window.empty() && s.in_flight == 0;
    } else if (!s.window.empty()) {
      s.idle = false;
    }
  }
}

void Uploader::Impl::CheckGiveUp(Nanos now) {
  if (!options.exit_when_drained) return;
  for (size_t i = 0; i < sinks.size(); ++i) {
    SinkState& s = sinks[i];
    if (s.given_up || s.failures == 0) continue;
    if (now - s.failing_since < options.give_up_after) continue;
    s.given_up = true;
    std::string error;
    {
      std::lock_guard<std::mutex> guard(error_mu);
      error = last_errors[i];
    }
    Log(log::Level::kWarn, "giving up on sink " + s.sink.name + " after " +
                               FormatWait(now - s.failing_since) + " of failures (" + error +
                               "); what is left stays queued");
  }
}

void Uploader::Impl::Dispatch(Nanos now) {
  for (size_t i = 0; i < sinks.size(); ++i) {
    SinkState& s = sinks[i];
    if (s.given_up || now < s.next_attempt) continue;
    while (s.in_flight < Limit(s) && !s.window.empty()) {
      WindowEntry entry = std::move(s.window.front());
      s.window.pop_front();
      StartTransfer(i, std::move(entry), now);
    }
  }
}

bool Uploader::Impl::Drained() {
  bool drained = true;
  for (SinkState& s : sinks) {
    if (s.in_flight > 0) return false;
    if (s.given_up) continue;
    if (!s.window.empty() || s.more_waiting) return false;
    if (!s.idle) {
      // Confirm with a full look at the directory before ending.
      s.cursor.reset();
      s.full_scan_pending = true;
      scan_now = true;
      drained = false;
    }
  }
  return drained;
}

int Uploader::Impl::TimeoutMs(Nanos now) const {
  Nanos wait = seconds(1);
  auto until = [&](Nanos t) { wait = std::min(wait, t - now); };
  if (stop_requested.load()) {
    until(Nanos(stop_deadline_ns.load()));
  } else {
    until(next_rescan);
    until(next_full_rescan);
    until(next_accounting);
    for (const SinkState& s : sinks) {
      if (s.given_up) continue;
      if (!s.window.empty() && s.in_flight < Limit(s)) until(s.next_attempt);
      if (options.exit_when_drained && s.failures > 0) {
        until(s.failing_since + options.give_up_after);
      }
      if (s.full_scan_pending || (s.more_waiting && s.window.size() < kLowWater)) wait = Nanos(0);
    }
    if (scan_now) wait = Nanos(0);
  }
  if (wait <= Nanos(0)) return 0;
  // Rounded up, so a wait of 0.3 ms does not spin on 0.
  return static_cast<int>((wait.count() + 999'999) / 1'000'000);
}

void Uploader::Impl::AbandonAll() {
  for (auto& [easy, t] : transfers) {
    curl_multi_remove_handle(multi, easy);
    sinks[t->sink].in_flight--;
    in_flight_bases.erase(t->entry.key.base);
    Log(log::Level::kDebug, "left " + t->entry.key.base + " queued for sink " +
                                sinks[t->sink].sink.name + ": stopping");
  }
  transfers.clear();
}

// ================================================================ requests

void Uploader::Impl::StartTransfer(size_t sink_index, WindowEntry entry, Nanos now) {
  SinkState& s = sinks[sink_index];
  const Sink& sink = s.sink;
  const std::string& base = entry.key.base;

  Result<std::string> sidecar = ReadFile(spool->SidecarPath(base), kMaxSidecarBytes + 1);
  if (!sidecar.ok()) {
    if (sidecar.status().code() == StatusCode::kNotFound) return OnVanished(sink_index, base);
    return SetAsideInvalid(sink_index, base,
                           "cannot read its sidecar: " + sidecar.status().message());
  }
  Result<DumpMeta> meta = ParseSidecar(*sidecar);
  if (!meta.ok()) {
    return SetAsideInvalid(sink_index, base,
                           "its sidecar " + base + ".json is unusable: " + meta.status().message());
  }
  Result<std::string> profile = ReadFile(spool->ProfilePath(base), kMaxProfileBytes);
  if (!profile.ok()) {
    if (profile.status().code() == StatusCode::kNotFound) {
      struct stat st;
      if (::stat(spool->SidecarPath(base).c_str(), &st) != 0) return OnVanished(sink_index, base);
      return SetAsideInvalid(sink_index, base, "its profile " + base + ".pb.gz is missing");
    }
    return SetAsideInvalid(sink_index, base,
                           "cannot read its profile: " + profile.status().message());
  }

  auto t = std::make_unique<Transfer>();
  t->sink = sink_index;
  t->event_id = meta->event_id;
  t->started = now;
  t->dump_bytes = spool->DumpBytes(base);
  HttpRequest request;
  switch (sink.protocol) {
    case Protocol::kPyroscope:
      request = BuildPyroscopePush(sink.url, *meta, *profile);
      break;
    case Protocol::kPyroscopeIngest:
      request = BuildPyroscopeIngest(sink.url, *meta, *profile);
      break;
    case Protocol::kHttp: {
      std::string boundary;
      do {
        boundary = "sleuth-" + RandomHex(32);
      } while (profile->find(boundary) != std::string::npos ||
               sidecar->find(boundary) != std::string::npos);
      request = BuildHttpMultipart(sink.url, *meta, *profile, *sidecar, base + ".pb.gz", sink.token,
                                   boundary);
      break;
    }
  }
  profile = Result<std::string>(std::string());  // the body holds its own copy
  t->body = std::move(request.body);

  std::vector<std::string> headers = std::move(request.headers);
  headers.push_back("Idempotency-Key: " + meta->event_id);
  headers.push_back("X-Sleuth-Event-Id: " + meta->event_id);
  headers.push_back("Expect:");  // no 100-continue round trip
  if (!sink.tenant_id.empty()) headers.push_back("X-Scope-OrgID: " + sink.tenant_id);
  if (!sink.token.empty() && sink.username.empty()) {
    headers.push_back("Authorization: Bearer " + sink.token);
  }
  for (const auto& [name, value] : sink.headers) headers.push_back(name + ": " + value);
  for (const std::string& h : headers) {
    curl_slist* grown = curl_slist_append(t->headers, h.c_str());
    if (grown == nullptr) {
      s.window.push_front(std::move(entry));
      Log(log::Level::kError, "out of memory building a request");
      return;
    }
    t->headers = grown;
  }

  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    s.window.push_front(std::move(entry));
    Log(log::Level::kError, "cannot create a libcurl handle");
    return;
  }
  t->easy = easy;
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_POST, 1L);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->body.data());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->body.size()));
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: we are a guest thread
  // Tearing down a transfer still resolving a name must not wait for the
  // resolver thread: that would hold up the host's exit (upload.exit_grace).
  curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
  long timeout_ms =
      static_cast<long>(std::max<int64_t>(1, duration_cast<milliseconds>(config.timeout).count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &KeepResponse);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(easy, CURLOPT_SHARE, share);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!sink.username.empty()) {
    curl_easy_setopt(easy, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(easy, CURLOPT_USERNAME, sink.username.c_str());
    curl_easy_setopt(easy, CURLOPT_PASSWORD, sink.password.c_str());
  }
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, sink.insecure_skip_verify ? 0L : 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, sink.insecure_skip_verify ? 0L : 2L);
  if (!sink.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, sink.ca_file.c_str());
  if (!sink.cert_file.empty()) curl_easy_setopt(easy, CURLOPT_SSLCERT, sink.cert_file.c_str());
  if (!sink.key_file.empty()) curl_easy_setopt(easy, CURLOPT_SSLKEY, sink.key_file.c_str());

  if (CURLMcode rc = curl_multi_add_handle(multi, easy); rc != CURLM_OK) {
    s.window.push_front(std::move(entry));
    Log(log::Level::kError, std::string("cannot start a request: ") + curl_multi_strerror(rc));
    return;
  }
  t->entry = std::move(entry);
  in_flight_bases.insert(t->entry.key.base);
  s.in_flight++;
  transfers.emplace(easy, std::move(t));
}

void Uploader::Impl::Complete(CURL* easy, CURLcode code) {
  auto it = transfers.find(easy);
  if (it == transfers.end()) return;
  std::unique_ptr<Transfer> t = std::move(it->second);
  transfers.erase(it);
  Nanos now = clock.Monotonic();

  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  std::string retry_after;
  struct curl_header* header = nullptr;
  if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &header) == CURLHE_OK &&
      header != nullptr && header->value != nullptr) {
    retry_after = header->value;
  }
  curl_multi_remove_handle(multi, easy);
  SinkState& s = sinks[t->sink];
  s.in_flight--;
  in_flight_bases.erase(t->entry.key.base);
  if (prometheus::Histogram* h = metrics.sink(t->sink).duration_seconds) {
    h->Observe(std::chrono::duration<double>(now - t->started).count());
  }

  if (code != CURLE_OK) {
    std::string what = t->error[0] != '\0' ? std::string(t->error) : curl_easy_strerror(code);
    return OnRetry(*t, 0, what, {}, now);
  }
  switch (Classify(status)) {
    case Outcome::kDelivered:
      return OnDelivered(*t, status);
    case Outcome::kRetry:
      return OnRetry(*t, status,
                     "HTTP " + std::to_string(status) + ": " + ServerMessage(t->response),
                     retry_after, now);
    case Outcome::kRejected:
      return OnRejected(*t, status, ServerMessage(t->response), false, now);
    case Outcome::kSinkRejected:
      return OnRejected(*t, status, ServerMessage(t->response), true, now);
  }
}

// ================================================================ outcomes

void Uploader::Impl::Settled(const std::string& base, uint64_t bytes) {
  if (spool->IsPendingForAny(base)) return;
  // The gauges move between measurements as dumps settle.
  uint64_t dumps = queue_dumps.load();
  queue_dumps = dumps > 0 ? dumps - 1 : 0;
  uint64_t held = queue_bytes.load();
  queue_bytes = held > bytes ? held - bytes : 0;
  metrics.SetQueue(queue_dumps.load(), queue_bytes.load());
}

void Uploader::Impl::OnDelivered(Transfer& t, long status) {
  SinkState& s = sinks[t.sink];
  const std::string& base = t.entry.key.base;
  std::string note = t.event_id + " " + std::to_string(status) + " " +
                     std::to_string(duration_cast<seconds>(clock.Wall()).count()) + "\n";
  if (Status marked = spool->MarkDelivered(t.sink, base, note); !marked.ok()) {
    Log(log::Level::kError, base + " reached sink " + s.sink.name +
                                " but its delivery could not be recorded (" + marked.message() +
                                "); it will be sent again");
  }
  s.queued.erase(base);
  delivered++;
  const UploadMetrics::PerSink& m = metrics.sink(t.sink);
  UploadMetrics::Inc(m.success);
  if (m.last_success_seconds != nullptr) {
    m.last_success_seconds->Set(std::chrono::duration<double>(clock.Wall()).count());
  }
  if (s.failures > 0) {
    Log(log::Level::kInfo, "sink " + s.sink.name + " accepts uploads again after " +
                               std::to_string(s.failures) + " failed attempts");
  }
  s.failures = 0;
  s.answered = true;
  s.next_attempt = Nanos(0);
  SetLastError(t.sink, {});
  Log(log::Level::kDebug, "delivered " + base + " to sink " + s.sink.name);
  Settled(base, t.dump_bytes);
}

void Uploader::Impl::OnRetry(Transfer& t, long status, const std::string& what,
                             const std::string& retry_after, Nanos now) {
  SinkState& s = sinks[t.sink];
  if (++s.failures == 1) s.failing_since = now;
  retries++;
  const UploadMetrics::PerSink& m = metrics.sink(t.sink);
  UploadMetrics::Inc(m.retry);
  UploadMetrics::Inc(m.retries);
  Nanos delay = BackoffDelay(s.failures, config.retry_initial, config.retry_max, Unit());
  bool asked = false;
  if ((status == 429 || status == 503) && !retry_after.empty()) {
    std::optional<Nanos> wait = ParseRetryAfter(retry_after, duration_cast<seconds>(clock.Wall()));
    if (wait) {
      delay = std::min(*wait, std::max(kMaxRetryAfter, config.retry_max));
      asked = true;
    }
  }
  s.next_attempt = std::max(s.next_attempt, now + delay);
  t.entry.attempts++;
  // To the back of the line: a dump that keeps failing cannot block the rest.
  s.window.push_back(std::move(t.entry));
  SetLastError(t.sink, "the last attempt failed: " + what);
  if (s.failures == 1 || now - s.last_failure_log >= kFailureLogInterval) {
    s.last_failure_log = now;
    Log(log::Level::kWarn,
        "sending " + s.window.back().key.base + " to sink " + s.sink.name + " (" + s.sink.url +
            ") failed: " + what + "; retrying in " + FormatWait(delay) +
            (asked ? " as the server asked" : "") +
            (s.failures > 1 ? " (" + std::to_string(s.failures) + " failures in a row)" : ""));
  }
}

void Uploader::Impl::OnRejected(Transfer& t, long status, const std::string& message,
                                bool sink_level, Nanos now) {
  SinkState& s = sinks[t.sink];
  const std::string& base = t.entry.key.base;
  std::string answer = "HTTP " + std::to_string(status) + (message.empty() ? "" : ": " + message);
  std::string reason =
      redactor.Redact("sink " + s.sink.name + " (" + s.sink.url + ") answered " + answer + "\n");
  s.queued.erase(base);
  s.failures = 0;
  s.answered = !sink_level;  // a refused sink is probed again, one request at a time
  Status set_aside = spool->MarkRejected(t.sink, base, reason);
  if (set_aside.code() == StatusCode::kNotFound) {
    OnVanished(t.sink, base);
  } else {
    rejected++;
    UploadMetrics::Inc(metrics.sink(t.sink).rejected);
    std::string where = set_aside.ok() ? "; set aside in failed/" + s.sink.name +
                                             "/ (requeue with `sleuth upload --retry-failed`)"
                                       : "; it could not be set aside (" + set_aside.message() +
                                             ") and stays queued";
    Log(log::Level::kError, "sink " + s.sink.name + " refused " + base + ": " + answer + where);
    Settled(base, t.dump_bytes);
  }
  if (sink_level) {
    SetLastError(t.sink, "the sink refused uploads: " + answer);
    s.next_attempt = now + config.retry_max;
    if (options.exit_when_drained) {
      s.given_up = true;
      Log(log::Level::kError, "sink " + s.sink.name + " refuses every upload (" + SinkHint(status) +
                                  "); stopping for this sink");
    } else {
      Log(log::Level::kError, "sink " + s.sink.name + " refuses every upload (" + SinkHint(status) +
                                  "); pausing it for " + FormatWait(config.retry_max));
    }
  }
}

void Uploader::Impl::OnVanished(size_t sink, const std::string& base) {
  sinks[sink].queued.erase(base);
  vanished++;
  Log(log::Level::kDebug,
      base + " was removed (agent retention?) before it reached sink " + sinks[sink].sink.name);
}

void Uploader::Impl::SetAsideInvalid(size_t sink, const std::string& base,
                                     const std::string& reason) {
  sinks[sink].queued.erase(base);
  Status moved = spool->SetAsideInvalid(base, reason + "\n");
  if (moved.code() == StatusCode::kNotFound) return OnVanished(sink, base);
  invalid++;
  UploadMetrics::Inc(metrics.sink(sink).invalid);
  if (moved.ok()) {
    Log(log::Level::kWarn, "cannot ship " + base + ": " + reason + "; moved to failed/" +
                               std::string(kInvalidDir) + "/");
  } else {
    Log(log::Level::kError, "cannot ship " + base + ": " + reason + "; and cannot move it aside (" +
                                moved.message() + ")");
  }
}

// ================================================================ Uploader

Uploader::Uploader(const config::UploadSection& config, std::string dump_dir,
                   std::shared_ptr<prometheus::Registry> registry, const Clock& clock,
                   UploaderOptions options)
    : impl_(std::make_unique<Impl>(config, std::move(dump_dir), std::move(registry), clock,
                                   std::move(options))) {}

Uploader::~Uploader() {
  Stop(Nanos(0));
}

Status Uploader::Start() {
  Impl& m = *impl_;
  if (m.started) return Status(StatusCode::kBusy, "the uploader is already started");
  SLEUTH_RETURN_IF_ERROR(m.Prepare());
  InitCurlOnce();
  Result<SpoolLock> lock = SpoolLock::TryAcquire(m.dir);
  if (lock.ok()) {
    m.lock = std::move(*lock);
  } else if (lock.status().code() != StatusCode::kBusy || !m.options.wait_for_lock) {
    return lock.status();
  }
  for (const SinkState& s : m.sinks) {
    m.Log(log::Level::kInfo, "shipping " + m.dir + " to sink " + s.sink.name + " (" +
                                 std::string(ProtocolName(s.sink.protocol)) + " " + s.sink.url +
                                 ")");
    if (s.sink.insecure_skip_verify) {
      m.Log(log::Level::kWarn, "sink " + s.sink.name +
                                   " does not verify TLS certificates (upload.insecure_skip_verify)"
                                   ": anyone on the path can read or forge its uploads");
    }
  }
  // The worker must never take a signal meant for the host: block them all
  // in the creating thread so the new thread inherits the full mask.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  Status started = Status::Ok();
  try {
    m.worker = std::thread([&m] { m.Run(); });
  } catch (const std::system_error& e) {
    started = Internal(std::string("cannot start the upload thread: ") + e.what());
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!started.ok()) {
    m.lock = SpoolLock();
    return started;
  }
  m.started = true;
  return Status::Ok();
}

void Uploader::Notify() {
  impl_->notified.store(true, std::memory_order_relaxed);
  uint64_t one = 1;
  int fd = impl_->wake_fd.get();
  if (fd >= 0) {
    [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
  }
}

void Uploader::Stop(Nanos grace) {
  Impl& m = *impl_;
  if (!m.worker.joinable()) return;
  m.stop_deadline_ns = (m.clock.Monotonic() + std::max(grace, Nanos(0))).count();
  m.stop_requested = true;
  Notify();
  m.worker.join();
}

bool Uploader::WaitDone(Nanos timeout) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lock(m.done_mu);
  return m.done_cv.wait_for(lock, timeout, [&] { return m.done; });
}

UploadStats Uploader::Stats() const {
  const Impl& m = *impl_;
  UploadStats s;
  s.delivered = m.delivered.load();
  s.retries = m.retries.load();
  s.rejected = m.rejected.load();
  s.invalid = m.invalid.load();
  s.evicted = m.evicted.load();
  s.vanished = m.vanished.load();
  s.queue_dumps = m.queue_dumps.load();
  s.queue_bytes = m.queue_bytes.load();
  return s;
}

Result<uint64_t> Uploader::RequeueFailed() {
  return impl_->spool->RequeueFailed();
}

Status Uploader::ForEachUndelivered(const std::function<void(const Undelivered&)>& fn) const {
  const Impl& m = *impl_;
  std::vector<std::string> errors;
  {
    std::lock_guard<std::mutex> guard(m.error_mu);
    errors = m.last_errors;
  }
  const std::vector<std::string>& names = m.spool->sinks();
  return m.spool->ForEachUndelivered([&](const Undelivered& u) {
    if (u.set_aside) return fn(u);
    Undelivered with_reason = u;
    auto it = std::find(names.begin(), names.end(), u.sink);
    size_t i = static_cast<size_t>(it - names.begin());
    with_reason.reason = i < errors.size() && !errors[i].empty() ? errors[i] : "not attempted yet";
    fn(with_reason);
  });
}

}  // namespace sleuth::uploader
