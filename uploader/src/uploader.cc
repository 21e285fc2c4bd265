#include "sleuth/uploader/uploader.h"

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
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
#include "sleuth/common/owned_fd.h"
#include "sleuth/common/units.h"
#include "sleuth/uploader/protocols.h"
#include "sleuth/uploader/retry.h"
#include "sleuth/uploader/scheduler.h"
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
// How many times the wake-up pipe, or the libcurl handles, are made anew
// after the host closed or reused their descriptors. Each time leaks a
// little (see RetireCurl); past this the uploader stops with one error.
constexpr int kMaxWakePipes = 16;
constexpr int kMaxCurlRebuilds = 8;
// Notify() triggers a full rescan (dumps may complete out of name order) and
// a spool measurement, each at most this often.
constexpr Nanos kNotifyScanGap = seconds(1);
constexpr char kUserAgent[] = "sleuth-uploader/0.1";

struct WindowEntry {
  DumpKey key;
  int attempts = 0;
};

// What is needed to record a delivery again once the disk has room.
struct Unrecorded {
  std::string base;
  std::string note;
};

struct SinkState {
  Sink sink;
  SinkScheduler sched{SchedulerPolicy{}, Nanos(0)};  // set up when the worker starts
  // Deliveries the backend acknowledged but the spool could not record;
  // recorded again when the sink's recording probe succeeds.
  std::vector<Unrecorded> unrecorded;
  std::deque<WindowEntry> window;          // oldest first
  std::unordered_set<std::string> queued;  // bases in the window or in flight
  // Every dump up to the cursor is settled, in the window or in flight for
  // this sink, so a refill only looks past it (a full rescan resets it).
  std::optional<DumpKey> cursor;
  bool more_waiting = true;  // the last refill left pending dumps behind
  int in_flight = 0;
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
    MakeWakePipe();
    uint64_t seed = static_cast<uint64_t>(clock.Wall().count()) ^ (uint64_t(::getpid()) << 32);
    try {
      std::random_device device;
      seed ^= (uint64_t{device()} << 32) | device();
    } catch (const std::exception&) {
      // No entropy source: the clock and pid still spread a fleet's retries.
    }
    rng.seed(seed);
  }

  ~Impl() {
    // No Notify() can run any more: close the write ends still ours.
    for (int i = 0; i < wake_pipes_made; ++i) {
      if (wake_slots[i].identity.Matches(wake_slots[i].fd)) ::close(wake_slots[i].fd);
    }
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

  // ------------------------------------------------------------ descriptors
  // The wake-up pipe, a socketpair: Notify() sends a byte into one end, the
  // worker polls the other. Sockets, not an eventfd, because a socket's
  // (st_dev, st_ino) is its own (every eventfd shares one anon inode), so
  // OwnedFd's fstat check tells ours from a host file that took the same
  // number; and because send() cannot write into a host's regular file even
  // if the host wins the race between the check and the send (ENOTSOCK),
  // nor raise SIGPIPE in the host (MSG_NOSIGNAL).
  bool MakeWakePipe();
  // Before each poll: re-creates the pipe if the host took either end.
  // False when there is none and none can be made (then it polls on a timer).
  bool EnsureWakePipe();
  void DrainWakePipe();
  // Before each poll: whether every socket libcurl opened is still ours.
  bool CurlSocketsStillOurs();
  // Gives up on a multi handle some of whose descriptors the host took:
  // it is never called again (a cleanup would read, write or close them).
  void RetireCurl(const std::string& why, Nanos now);
  static curl_socket_t OpenSocket(void* self, curlsocktype purpose, curl_sockaddr* address);
  static int CloseSocket(void* self, curl_socket_t fd);

  // ------------------------------------------------------------ scheduling
  SchedulerPolicy Policy() const;
  bool HasPending(const SinkState& s) const { return !s.window.empty() || s.more_waiting; }
  void StartFailed(size_t sink, WindowEntry entry, const std::string& what, Nanos now);
  // The spool could not record an outcome: stop the sink (see scheduler.h).
  void RecordingFailed(size_t sink, const std::string& what, Nanos now);
  void ProbeRecording(size_t sink, Nanos now);

  // ------------------------------------------------------------ outcomes
  void OnDelivered(Transfer& t, long status, Nanos now);
  void OnRetry(size_t sink, WindowEntry entry, long status, const std::string& what,
               const std::string& retry_after, Nanos now);
  void OnRejected(Transfer& t, long status, const std::string& message, bool sink_level, Nanos now);
  void OnVanished(size_t sink, const std::string& base);
  void SetAsideInvalid(size_t sink, const std::string& base, const std::string& reason);
  void Settled(const std::string& base, uint64_t bytes);

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

  // The wake-up pipe's write ends, one slot per pipe ever made, each written
  // once before `wake_slot` publishes it, so Notify() (any thread, signal
  // handlers included) reads a consistent (fd, identity) without a lock.
  // Old write ends are never closed while the Uploader lives: a Notify()
  // that loaded an old slot must not write to a number closed under it.
  struct WakeSlot {
    int fd = -1;
    FdIdentity identity;
  };
  WakeSlot wake_slots[kMaxWakePipes];
  std::atomic<int> wake_slot{-1};
  OwnedFd wake_read;  // the worker's (the constructor's before it starts)
  int wake_pipes_made = 0;

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
      unrecorded{0}, fds_taken{0}, queue_dumps{0}, queue_bytes{0};

  // The worker's own (and Start()'s, before the worker exists).
  std::thread worker;
  bool started = false;
  SpoolLock lock;
  std::vector<SinkState> sinks;
  CURLM* multi = nullptr;
  CURLSH* share = nullptr;
  // Every socket libcurl opened through OpenSocket, with its identity.
  std::unordered_map<int, FdIdentity> curl_sockets;
  // The multi handle's own socketpair (libcurl 7.88 makes it without
  // SOCK_CLOEXEC and closes it with close(2)), when it could be told apart.
  std::vector<OwnedFd> curl_wakeup_pair;
  int curl_rebuilds = 0;
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
  if (!wake_read.valid()) return ErrnoStatus("cannot create the uploader's wake-up pipe", errno);
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
  // Opens and checks the directory once: refuses one another user could write.
  SLEUTH_RETURN_IF_ERROR(spool->Open());
  std::vector<std::string> sink_names;
  for (const SinkState& s : sinks) sink_names.push_back(s.sink.name);
  SLEUTH_RETURN_IF_ERROR(metrics.Init(registry, sink_names));
  return Status::Ok();
}

namespace {

// The open descriptors of this process that are AF_UNIX stream sockets.
// Used only around curl_multi_init, to find the socketpair it creates.
std::unordered_set<int> UnixStreamSockets() {
  std::unordered_set<int> out;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return out;
  int own = ::dirfd(d);
  while (struct dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == own) continue;
    struct stat st;
    if (::fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    int domain = 0, type = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) continue;
    len = sizeof type;
    if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &len) != 0) continue;
    if (domain == AF_UNIX && type == SOCK_STREAM) out.insert(static_cast<int>(fd));
  }
  ::closedir(d);
  return out;
}

// Multi handles given up on because the host took some of their
// descriptors: never used again, kept reachable so leak checkers stay quiet.
std::mutex g_retired_mu;
std::vector<void*>& RetiredCurlHandles() {
  static auto* handles = new std::vector<void*>;
  return *handles;
}

}  // namespace

Status Uploader::Impl::SetUpCurl() {
  // libcurl 7.88 creates the multi handle's wake-up socketpair with neither
  // SOCK_CLOEXEC nor a callback, and closes it with close(2) on cleanup.
  // Find it by what appeared during curl_multi_init: two new non-blocking
  // AF_UNIX stream sockets. Only then is it made close-on-exec and checked
  // before the cleanup; a host thread creating such a pair at that very
  // moment makes the count differ, and then nothing is touched.
  std::unordered_set<int> before = UnixStreamSockets();
  multi = curl_multi_init();
  std::unordered_set<int> after = UnixStreamSockets();
  share = curl_share_init();
  if (multi == nullptr || share == nullptr) return Internal("cannot create libcurl handles");
  std::vector<int> appeared;
  for (int fd : after) {
    if (before.count(fd) == 0 && (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0) appeared.push_back(fd);
  }
  curl_wakeup_pair.clear();
  if (appeared.size() == 2) {
    for (int fd : appeared) {
      int flags = ::fcntl(fd, F_GETFD);
      if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
      curl_wakeup_pair.emplace_back(fd);
    }
  } else {
    Log(log::Level::kDebug, "cannot tell libcurl's wake-up socketpair apart (" +
                                std::to_string(appeared.size()) + " candidates)");
  }
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
  bool pair_ours = std::all_of(curl_wakeup_pair.begin(), curl_wakeup_pair.end(),
                               [](const OwnedFd& fd) { return fd.StillOurs(); });
  if (multi != nullptr && (!pair_ours || !CurlSocketsStillOurs())) {
    RetireCurl("", clock.Monotonic());
    return;
  }
  // curl_multi_cleanup closes the pair itself.
  for (OwnedFd& fd : curl_wakeup_pair) fd.release();
  curl_wakeup_pair.clear();
  if (multi != nullptr) curl_multi_cleanup(multi);
  if (share != nullptr) curl_share_cleanup(share);
  multi = nullptr;
  share = nullptr;
}

curl_socket_t Uploader::Impl::OpenSocket(void* self, curlsocktype, curl_sockaddr* address) {
  auto* m = static_cast<Impl*>(self);
  // Close-on-exec from birth: the host may exec at any moment.
  int fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd < 0) return CURL_SOCKET_BAD;
  FdIdentity identity;
  if (!FdIdentity::Of(fd, &identity)) {
    ::close(fd);
    return CURL_SOCKET_BAD;
  }
  m->curl_sockets[fd] = identity;
  return fd;
}

int Uploader::Impl::CloseSocket(void* self, curl_socket_t fd) {
  auto* m = static_cast<Impl*>(self);
  auto it = m->curl_sockets.find(fd);
  // Only what we opened and still own is closed; a number the host took
  // over is left to the host.
  if (it != m->curl_sockets.end()) {
    if (it->second.Matches(fd)) {
      ::close(fd);
    } else {
      m->fds_taken++;
    }
    m->curl_sockets.erase(it);
  }
  return 0;
}

bool Uploader::Impl::CurlSocketsStillOurs() {
  for (const auto& [fd, identity] : curl_sockets) {
    if (!identity.Matches(fd)) return false;
  }
  return true;
}

void Uploader::Impl::RetireCurl(const std::string& why, Nanos now) {
  // Transfers go back to their windows, as after a network error. Their
  // easy handles stay attached to the retired multi handle and are leaked
  // with it: cleaning one up would make libcurl close its connection.
  std::vector<std::unique_ptr<Transfer>> requeue;
  for (auto& [easy, t] : transfers) requeue.push_back(std::move(t));
  transfers.clear();
  std::lock_guard<std::mutex> guard(g_retired_mu);
  for (std::unique_ptr<Transfer>& t : requeue) {
    RetiredCurlHandles().push_back(t->easy);
    t->easy = nullptr;
    // libcurl may still hold pointers to the header list; it never reads them again.
    RetiredCurlHandles().push_back(t->headers);
    t->headers = nullptr;
    SinkState& s = sinks[t->sink];
    s.in_flight--;
    in_flight_bases.erase(t->entry.key.base);
    if (!why.empty()) OnRetry(t->sink, std::move(t->entry), 0, why, {}, now);
  }
  // The sockets still ours are closed here; libcurl never sees them again.
  for (const auto& [fd, identity] : curl_sockets) {
    if (identity.Matches(fd)) {
      ::close(fd);
    } else {
      fds_taken++;
    }
  }
  curl_sockets.clear();
  for (OwnedFd& fd : curl_wakeup_pair) {
    if (!fd.reset()) fds_taken++;
  }
  curl_wakeup_pair.clear();
  if (multi != nullptr) RetiredCurlHandles().push_back(multi);
  if (share != nullptr) RetiredCurlHandles().push_back(share);
  multi = nullptr;
  share = nullptr;
}

bool Uploader::Impl::MakeWakePipe() {
  int next = wake_slot.load() + 1;
  if (next >= kMaxWakePipes) return false;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return false;
  OwnedFd read_end(fds[0]);
  WakeSlot slot;
  slot.fd = fds[1];
  if (!read_end.valid() || !FdIdentity::Of(fds[1], &slot.identity)) {
    ::close(fds[0]);
    ::close(fds[1]);
    return false;
  }
  wake_slots[next] = slot;
  wake_slot.store(next, std::memory_order_release);
  wake_read = std::move(read_end);
  wake_pipes_made++;
  return true;
}

bool Uploader::Impl::EnsureWakePipe() {
  int current = wake_slot.load();
  bool write_ours = current >= 0 && wake_slots[current].identity.Matches(wake_slots[current].fd);
  if (wake_read.StillOurs() && write_ours) return true;
  if (current < 0 && !wake_read.valid()) return false;  // never had one; polls on a timer
  fds_taken++;
  if (wake_read.valid() && !wake_read.StillOurs()) wake_read.Forget();
  wake_read.reset();
  bool made = MakeWakePipe();
  Log(log::Level::kWarn,
      std::string("the host closed or reused the uploader's wake-up descriptors; ") +
          (made ? "made new ones" : "new dumps are now found by rescanning only"));
  if (!made) wake_slot.store(-1);
  return made;
}

void Uploader::Impl::DrainWakePipe() {
  if (!wake_read.StillOurs()) return;
  char buf[64];
  while (::recv(wake_read.get(), buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

void Uploader::Impl::WaitForWake(Nanos timeout) {
  int ms = static_cast<int>(std::max<int64_t>(0, duration_cast<milliseconds>(timeout).count()));
  if (!EnsureWakePipe()) {
    std::this_thread::sleep_for(milliseconds(std::min(ms, 100)));
    return;
  }
  struct pollfd p = {wake_read.get(), POLLIN, 0};
  if (::poll(&p, 1, ms) > 0) DrainWakePipe();
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

SchedulerPolicy Uploader::Impl::Policy() const {
  SchedulerPolicy p;
  p.retry_initial = config.retry_initial;
  p.retry_max = config.retry_max;
  p.concurrency = config.concurrency;
  p.one_shot = options.exit_when_drained;
  p.give_up_after = options.give_up_after;
  p.stall_allowance = config.timeout;
  return p;
}

void Uploader::Impl::Loop() {
  Nanos now = clock.Monotonic();
  next_rescan = next_full_rescan = next_accounting = now;
  // The schedulers start with the work, not at Start(): a stand-by uploader
  // may have waited for the lock for hours.
  for (SinkState& s : sinks) s.sched = SinkScheduler(Policy(), now);
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
      for (size_t i = 0; i < sinks.size(); ++i) {
        if (sinks[i].sched.RecordingProbeDue(now)) ProbeRecording(i, now);
      }
      CheckGiveUp(now);
      Dispatch(now);
      if (options.exit_when_drained && Drained()) break;
    }
    if (!CurlSocketsStillOurs()) {
      // The host closed or reused a connection's descriptor. libcurl would
      // poll, read or close that number next: give the handles up instead.
      Log(log::Level::kWarn,
          "the host closed or reused a descriptor of the uploader's connections; "
          "starting over with new connections");
      if (++curl_rebuilds > kMaxCurlRebuilds) {
        Log(log::Level::kError, "the host keeps closing the uploader's descriptors; uploads stop");
        RetireCurl("", now);
        return;
      }
      RetireCurl("the host took over the connection's descriptor", now);
      if (Status rebuilt = SetUpCurl(); !rebuilt.ok()) {
        Log(log::Level::kError, rebuilt.message() + "; uploads stop");
        return;
      }
      continue;
    }
    int timeout_ms = TimeoutMs(now);
    if (EnsureWakePipe()) {
      struct curl_waitfd wake = {wake_read.get(), CURL_WAIT_POLLIN, 0};
      // curl_multi_wait, not curl_multi_poll: the latter also polls and
      // reads libcurl's own wake-up socketpair, which the host may have
      // taken over; our socketpair does that job.
      if (curl_multi_wait(multi, &wake, 1, timeout_ms, nullptr) != CURLM_OK) {
        WaitForWake(milliseconds(std::min(timeout_ms, 100)));  // never spin on an error
      }
      DrainWakePipe();
    } else if (curl_multi_wait(multi, nullptr, 0, std::min(timeout_ms, 100), nullptr) !=
               CURLM_OK) {
      std::this_thread::sleep_for(milliseconds(std::min(timeout_ms, 100)));
    }
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
    if (s.sched.given_up() || s.window.size() >= kLowWater) continue;
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
    Nanos failing_for = now - s.sched.failing_since();
    bool failing = s.sched.failures() > 0;
    std::optional<std::string> why = s.sched.CheckGiveUp(now, HasPending(s), s.in_flight);
    if (!why) continue;
    std::string error;
    {
      std::lock_guard<std::mutex> guard(error_mu);
      error = last_errors[i];
    }
    std::string after = failing ? FormatWait(failing_for) + " of failures"
                                : *why + " for " + FormatWait(options.give_up_after);
    Log(log::Level::kWarn, "giving up on sink " + s.sink.name + " after " + after +
                               (error.empty() ? "" : " (" + error + ")") +
                               "; what is left stays queued");
  }
}

void Uploader::Impl::Dispatch(Nanos now) {
  for (size_t i = 0; i < sinks.size(); ++i) {
    SinkState& s = sinks[i];
    // Every way StartTransfer can end either starts a request, settles the
    // dump, or tells the scheduler (which then says no): this ends.
    while (!s.window.empty() && s.sched.MayStart(now, s.in_flight)) {
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
    if (s.sched.given_up()) continue;
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
      if (s.sched.given_up()) continue;
      if (std::optional<Nanos> t = s.sched.NextDeadline(HasPending(s), s.in_flight)) until(*t);
      if (s.full_scan_pending || (s.more_waiting && s.window.size() < kLowWater)) wait = Nanos(0);
    }
    if (scan_now) wait = Nanos(0);
  }
  if (wait <= Nanos(0)) return 0;
  // Rounded up, so a wait of 0.3 ms does not spin on 0.
  return static_cast<int>((wait.count() + 999'999) / 1'000'000);
}

void Uploader::Impl::StartFailed(size_t sink, WindowEntry entry, const std::string& what,
                                 Nanos now) {
  // Backs off like a network error: a request that cannot start now will
  // most likely not start a microsecond later either.
  OnRetry(sink, std::move(entry), 0, "cannot start a request: " + what, {}, now);
}

void Uploader::Impl::RecordingFailed(size_t sink, const std::string& what, Nanos now) {
  SinkState& s = sinks[sink];
  bool first = s.sched.state() != SinkScheduler::State::kRecordingFailed && !s.sched.given_up();
  s.sched.OnRecordingFailed(now);
  unrecorded++;
  UploadMetrics::Inc(metrics.sink(sink).unrecorded);
  SetLastError(sink, "the outcome of an upload could not be recorded: " + what);
  if (!first) return;
  std::string next = options.exit_when_drained
                         ? "stopping for this sink"
                         : "pausing this sink; recording is tried again every " +
                               FormatWait(config.retry_max);
  Log(log::Level::kError, "sink " + s.sink.name + ": " + what + "; " + next +
                              " rather than send dumps again that cannot be marked (free space "
                              "in " + dir + ")");
}

void Uploader::Impl::ProbeRecording(size_t sink, Nanos now) {
  SinkState& s = sinks[sink];
  // A tiny atomic write where the markers go: the disk has room again, or not.
  bool ok = spool->ProbeMarkerSpace(sink).ok();
  while (ok && !s.unrecorded.empty()) {
    const Unrecorded& u = s.unrecorded.back();
    Status marked = spool->MarkDelivered(sink, u.base, u.note);
    if (!marked.ok() && marked.code() != StatusCode::kNotFound) {
      ok = false;
      break;
    }
    s.queued.erase(u.base);
    s.unrecorded.pop_back();
  }
  s.sched.OnRecordingProbe(now, ok);
  if (ok) {
    SetLastError(sink, {});
    Log(log::Level::kInfo, "sink " + s.sink.name + ": deliveries can be recorded again; resuming");
  }
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

  // Read through the checked directory: a symlink or a file of another
  // user's is refused (and set aside below), never followed.
  Result<std::string> sidecar = spool->ReadSidecar(base);
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
  Result<std::string> profile = spool->ReadProfile(base, kMaxProfileBytes);
  if (!profile.ok()) {
    if (profile.status().code() == StatusCode::kNotFound) {
      if (!spool->IsComplete(base)) return OnVanished(sink_index, base);
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
    if (grown == nullptr) return StartFailed(sink_index, std::move(entry), "out of memory", now);
    t->headers = grown;
  }

  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    return StartFailed(sink_index, std::move(entry), "cannot create a libcurl handle", now);
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
  // Every socket is made close-on-exec and checked before it is closed.
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &Impl::OpenSocket);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &Impl::CloseSocket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
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
    return StartFailed(sink_index, std::move(entry), curl_multi_strerror(rc), now);
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
    return OnRetry(t->sink, std::move(t->entry), 0, what, {}, now);
  }
  switch (Classify(status)) {
    case Outcome::kDelivered:
      return OnDelivered(*t, status, now);
    case Outcome::kRetry:
      return OnRetry(t->sink, std::move(t->entry), status,
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

void Uploader::Impl::OnDelivered(Transfer& t, long status, Nanos now) {
  SinkState& s = sinks[t.sink];
  const std::string& base = t.entry.key.base;
  std::string note = t.event_id + " " + std::to_string(status) + " " +
                     std::to_string(duration_cast<seconds>(clock.Wall()).count()) + "\n";
  delivered++;
  const UploadMetrics::PerSink& m = metrics.sink(t.sink);
  UploadMetrics::Inc(m.success);
  if (m.last_success_seconds != nullptr) {
    m.last_success_seconds->Set(std::chrono::duration<double>(clock.Wall()).count());
  }
  if (Status marked = spool->MarkDelivered(t.sink, base, note);
      !marked.ok() && marked.code() != StatusCode::kNotFound) {
    // Sending it again would be acknowledged again and fail to record
    // again, without end (disk full): the sink stops instead. The dump
    // stays in `queued`, so no refill picks it until it is recorded.
    s.unrecorded.push_back(Unrecorded{base, note});
    return RecordingFailed(t.sink,
                           base + " reached the sink but its delivery could not be recorded (" +
                               marked.message() + ")",
                           now);
  }
  s.queued.erase(base);
  if (s.sched.failures() > 0) {
    Log(log::Level::kInfo, "sink " + s.sink.name + " accepts uploads again after " +
                               std::to_string(s.sched.failures()) + " failed attempts");
  }
  s.sched.OnDelivered(now);
  SetLastError(t.sink, {});
  Log(log::Level::kDebug, "delivered " + base + " to sink " + s.sink.name);
  Settled(base, t.dump_bytes);
}

void Uploader::Impl::OnRetry(size_t sink, WindowEntry entry, long status, const std::string& what,
                             const std::string& retry_after, Nanos now) {
  SinkState& s = sinks[sink];
  retries++;
  const UploadMetrics::PerSink& m = metrics.sink(sink);
  UploadMetrics::Inc(m.retry);
  UploadMetrics::Inc(m.retries);
  std::optional<Nanos> asked;
  if ((status == 429 || status == 503) && !retry_after.empty()) {
    asked = ParseRetryAfter(retry_after, duration_cast<seconds>(clock.Wall()));
  }
  SinkScheduler::RetryPlan plan = s.sched.OnTransientFailure(now, status, asked, Unit());
  entry.attempts++;
  std::string base = entry.key.base;
  // To the back of the line: a dump that keeps failing cannot block the rest.
  s.window.push_back(std::move(entry));
  SetLastError(sink, "the last attempt failed: " + what);
  if (plan.log) {
    int failures = s.sched.failures();
    Log(log::Level::kWarn,
        "sending " + base + " to sink " + s.sink.name + " (" + s.sink.url + ") failed: " + what +
            "; retrying in " + FormatWait(plan.delay) +
            (plan.server_asked ? " as the server asked" : "") +
            (failures > 1 ? " (" + std::to_string(failures) + " failures in a row)" : ""));
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
    if (set_aside.ok()) Settled(base, t.dump_bytes);
  }
  if (sink_level) {
    s.sched.OnSinkRefused(now);
    SetLastError(t.sink, "the sink refused uploads: " + answer);
    if (options.exit_when_drained) {
      Log(log::Level::kError, "sink " + s.sink.name + " refuses every upload (" + SinkHint(status) +
                                  "); stopping for this sink");
    } else {
      Log(log::Level::kError, "sink " + s.sink.name + " refuses every upload (" + SinkHint(status) +
                                  "); pausing it for " + FormatWait(config.retry_max));
    }
  } else {
    s.sched.OnRejected(now);
  }
  if (!set_aside.ok() && set_aside.code() != StatusCode::kNotFound) {
    // Left queued, it would be sent and refused again and again.
    RecordingFailed(t.sink, base + " was refused but cannot be set aside (" +
                                set_aside.message() + ")",
                    now);
  }
}

void Uploader::Impl::OnVanished(size_t sink, const std::string& base) {
  sinks[sink].queued.erase(base);
  sinks[sink].sched.OnSettled(clock.Monotonic());
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
    sinks[sink].sched.OnSettled(clock.Monotonic());
    Log(log::Level::kWarn, "cannot ship " + base + ": " + reason + "; moved to failed/" +
                               std::string(kInvalidDir) + "/");
  } else {
    Log(log::Level::kError, "cannot ship " + base + ": " + reason + "; and cannot move it aside (" +
                                moved.message() + ")");
    // Left in the queue it would be read and fail again at every scan.
    RecordingFailed(sink, "cannot move the unreadable " + base + " aside (" + moved.message() + ")",
                    clock.Monotonic());
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
  int slot = impl_->wake_slot.load(std::memory_order_acquire);
  if (slot < 0) return;  // no wake-up socket: the worker finds the dump by rescanning
  const Impl::WakeSlot& wake = impl_->wake_slots[slot];
  // A number the host took over is never written to (see EnsureWakePipe).
  if (!wake.identity.Matches(wake.fd)) return;
  char one = 1;
  [[maybe_unused]] ssize_t n = ::send(wake.fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
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
  s.unrecorded = m.unrecorded.load();
  s.fds_taken = m.fds_taken.load();
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
