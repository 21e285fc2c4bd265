// The uploader: ships every dump in a dump directory to every configured
// sink, in the background, and loses none.
//
// The dump directory is the queue (see spool.h for its on-disk state): a
// dump is complete once its <base>.json exists, and it is marked delivered
// to a sink only after that sink answered 2xx, so a restart or a kill -9 at
// any moment loses nothing. Delivery is at-least-once: each request carries
// the dump's event_id (Idempotency-Key and X-Sleuth-Event-Id headers, and in
// the body) so a backend can de-duplicate the resend of a dump whose 2xx
// arrived just as the process died. A 2xx that cannot be recorded (disk
// full) stops the sink instead of resending (see scheduler.h).
//
// Descriptors: every socket libcurl opens is close-on-exec and checked
// (OwnedFd) before it is closed; the wake-up socketpair is checked before
// every use and re-created when the host closed or reused it; a multi handle
// whose sockets the host took is abandoned, never touched again.
//
// One worker thread ("sleuth-upload", started with every signal blocked)
// drives one libcurl multi handle: HTTP keep-alive, at most
// upload.concurrency requests in flight per sink (just one, as a probe,
// until the sink has accepted an upload and while it fails, so a backend
// that is down or refuses our credentials sees one request, not a burst),
// upload.timeout per request. Timers use the injected Clock. Transient failures
// (network, timeout, 408, 429, 5xx) are retried with exponential backoff and
// jitter between upload.retry_initial and upload.retry_max, per sink, and
// 429/503 Retry-After is honoured; a dump that keeps failing goes to the back
// of the line so it cannot block the others. A refusal (other 4xx) is logged
// once with the server's message and the dump set aside in failed/<sink>/;
// 401/403/404/405/407 and redirects also pause the sink for retry_max, since
// every dump would be refused alike. The spool is capped at
// upload.max_spool_bytes, evicting the oldest undelivered dumps.
//
// Memory stays flat however many dumps wait: the worker keeps a bounded
// window of the oldest pending dumps per sink and reads a dump's files only
// while its request is in flight.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sleuth/common/clock.h"
#include "sleuth/common/status.h"
#include "sleuth/config/config.h"
#include "sleuth/uploader/sink.h"
#include "sleuth/uploader/spool.h"

namespace prometheus {
class Registry;
}

namespace sleuth::uploader {

using Nanos = std::chrono::nanoseconds;

struct UploaderOptions {
  // One-shot mode, for `sleuth upload` without --follow: the worker ends by
  // itself once no dump is pending, or once every sink with dumps left has
  // given up: failed continuously for `give_up_after`, or refused the sink
  // itself (401, 403, ...). WaitDone() then returns true.
  bool exit_when_drained = false;
  Nanos give_up_after = std::chrono::seconds(30);
  // When another process ships the same directory: Start() fails with kBusy
  // (false), or the worker stands by and takes over once it is released
  // (true: what an agent wants, e.g. a forked child sharing dump_dir).
  bool wait_for_lock = true;
  // How often the directory is looked at for dumps nobody Notify()d.
  Nanos rescan_interval = std::chrono::seconds(2);
  // How often every dump is re-examined (dumps renamed in with old times,
  // stale state files collected).
  Nanos full_rescan_interval = std::chrono::minutes(1);
  // How often the spool is measured (queue gauges) and held to its cap.
  Nanos accounting_interval = std::chrono::seconds(5);
  // Where secrets in the environment are read; empty means ::getenv.
  EnvLookup getenv;
};

// Counters since Start(), for progress lines and tests. Queue figures are as
// of the last measurement of the spool.
struct UploadStats {
  uint64_t delivered = 0;  // (dump, sink) pairs acknowledged with 2xx
  uint64_t retries = 0;    // transient failures
  uint64_t rejected = 0;   // (dump, sink) pairs set aside in failed/
  uint64_t invalid = 0;    // dumps set aside as unreadable
  uint64_t evicted = 0;    // dumps removed to honour max_spool_bytes
  uint64_t vanished = 0;   // dumps removed by someone else before upload
  // Outcomes the spool could not record (disk full: ENOSPC, EDQUOT, EIO);
  // each stops its sink rather than resend (see scheduler.h).
  uint64_t unrecorded = 0;
  // Descriptors of ours the host closed or reused (found before use and
  // then left alone: never written to, polled or closed).
  uint64_t fds_taken = 0;
  uint64_t queue_dumps = 0;
  uint64_t queue_bytes = 0;
};

class Uploader {
 public:
  // `registry` may be null (no metrics). `clock` must outlive the Uploader.
  // Nothing happens until Start().
  Uploader(const config::UploadSection& config, std::string dump_dir,
           std::shared_ptr<prometheus::Registry> registry, const Clock& clock,
           UploaderOptions options = {});
  // Stops the worker if running, without grace.
  ~Uploader();
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  // Checks the configuration (sinks, secrets, TLS files), takes the
  // directory's lock (see UploaderOptions::wait_for_lock), registers the
  // metrics and starts the worker thread. Logs a warning for each sink with
  // insecure_skip_verify. Fails with kInvalidArgument naming what is wrong,
  // kBusy if already started (or, without wait_for_lock, if another process
  // ships the directory). Call from one thread, once.
  [[nodiscard]] Status Start();

  // A new dump is ready. Never blocks and never fails; async-signal-safe
  // (an atomic store, an fstat(2) to check the wake-up socket is still ours,
  // and a send(2) with MSG_NOSIGNAL). Optional: the directory
  // is also rescanned every rescan_interval.
  void Notify();

  // Stops the worker: no new request starts, requests in flight get until
  // `grace` to finish (a 2xx within it still counts), then are abandoned;
  // returns within `grace` plus a few milliseconds. What is undelivered
  // stays queued on disk. Idempotent; call from the thread that called
  // Start().
  void Stop(Nanos grace);

  // One-shot mode: waits up to `timeout` for the worker to end by itself.
  // Returns true once it has (then Stop() only joins it).
  bool WaitDone(Nanos timeout);

  // Thread safe.
  UploadStats Stats() const;

  // Moves everything under failed/ back into the queue (`sleuth upload
  // --retry-failed`). Call before Start() or after Stop().
  [[nodiscard]] Result<uint64_t> RequeueFailed();

  // Every (dump, sink) pair not delivered, with why: a set-aside dump's
  // server answer, or for a queued dump its sink's last error ("not
  // attempted yet" when there was none). Streams over the directory. Call after Stop().
  [[nodiscard]] Status ForEachUndelivered(const std::function<void(const Undelivered&)>& fn) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sleuth::uploader
