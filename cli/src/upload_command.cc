// sleuth upload --dir DIR: ships every dump waiting in DIR once and exits 0
// only when nothing is left undelivered (it prints what is left and why);
// --follow keeps shipping new dumps until SIGINT/SIGTERM; --retry-failed
// requeues what backends refused before. Progress goes to a terminal only.
#include "upload_command.h"

#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>

#include "cli_config.h"
#include "exit_codes.h"
#include "sleuth/common/clock.h"
#include "sleuth/common/log.h"
#include "sleuth/common/units.h"
#include "sleuth/dumps/dump_dir.h"
#include "sleuth/dumps/layout.h"
#include "sleuth/uploader/uploader.h"

namespace sleuth::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void OnSignal(int) {
  g_interrupted = true;
}  // async-signal-safe

void PrintProgress(const uploader::UploadStats& s) {
  std::printf(
      "\r\033[Kuploaded %llu, retries %llu, refused %llu, invalid %llu, queued %llu (%s)",
      static_cast<unsigned long long>(s.delivered), static_cast<unsigned long long>(s.retries),
      static_cast<unsigned long long>(s.rejected), static_cast<unsigned long long>(s.invalid),
      static_cast<unsigned long long>(s.queue_dumps), FormatSize(s.queue_bytes).c_str());
  std::fflush(stdout);
}

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "sleuth upload: %s\n", message.c_str());
  return code;
}

}  // namespace

int RunUploadCommand(int argc, char** argv) {
  cxxopts::Options options(
      "sleuth upload",
      "Ships the dumps waiting in a directory to every configured sink (upload.url and "
      "[upload.sinks.NAME]). Exits 0 only when nothing is left undelivered, and lists what is "
      "left otherwise.");
  AddConfigFlags(options);
  options.add_options()("d,dir", "the dump directory (default: agent.dump_dir)",
                        cxxopts::value<std::string>())(
      "f,follow", "keep shipping new dumps until SIGINT or SIGTERM")(
      "retry-failed", "first requeue the dumps backends refused (failed/)")(
      "give-up-after",
      "without --follow: stop retrying a sink that keeps failing after this long (e.g. 30s, 5m)",
      cxxopts::value<std::string>()->default_value("30s"));
  auto flags = ParseFlags(options, argc, argv);
  if (!flags.ok()) {
    if (flags.status().code() == StatusCode::kNotFound) return kExitOk;
    return Fail(kExitUsage, flags.status().message());
  }
  Result<Nanos> give_up_after = ParseDuration((*flags)["give-up-after"].as<std::string>());
  if (!give_up_after.ok())
    return Fail(kExitUsage, "--give-up-after: " + give_up_after.status().message());
  bool follow = flags->count("follow") > 0;

  auto cfg = LoadFromFlags(*flags);
  if (!cfg.ok()) {
    return Fail(kExitConfig, "invalid configuration:\n" + cfg.status().message());
  }
  if (Result<log::Level> level = log::ParseLevel(cfg->agent.log_level); level.ok()) {
    log::SetLevel(*level);
  }
  if (!cfg->agent.log_file.empty()) {
    if (Status s = log::SetFile(cfg->agent.log_file); !s.ok())
      return Fail(kExitConfig, s.message());
  }
  std::string dir = dumps::ResolveDumpDir(
      flags->count("dir") ? (*flags)["dir"].as<std::string>() : cfg->agent.dump_dir);
  // The same checks as the agent's: a directory another user could write
  // (or a symlink) is refused with the fix, before anything in it is read.
  if (Result<dumps::DumpDir> checked = dumps::DumpDir::Open(dir, dumps::Create::kNo);
      !checked.ok()) {
    StatusCode code = checked.status().code();
    return Fail(code == StatusCode::kPermission ? kExitPermission : kExitUsage,
                checked.status().message() +
                    (code == StatusCode::kNotFound ? " (--dir names the dump directory)" : ""));
  }
  if (cfg->upload.sinks.empty()) {
    return Fail(kExitConfig,
                "nothing to upload to: set upload.url (in the config file, as "
                "SLEUTH_UPLOAD_URL, or with --set upload.url=http://HOST:4040)");
  }

  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!cfg->metrics.listen.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(cfg->metrics.listen, /*num_threads=*/1);
      exposer->RegisterCollectable(registry);
    } catch (const std::exception& e) {
      return Fail(kExitConfig, "cannot serve metrics on " + cfg->metrics.listen +
                                   " (metrics.listen): " + e.what());
    }
  }

  uploader::UploaderOptions upload_options;
  upload_options.exit_when_drained = !follow;
  upload_options.give_up_after = *give_up_after;
  upload_options.wait_for_lock = false;
  uploader::Uploader shipper(cfg->upload, dir, registry, SystemClock::Instance(), upload_options);

  if (flags->count("retry-failed")) {
    Result<uint64_t> requeued = shipper.RequeueFailed();
    if (!requeued.ok()) return Fail(kExitFailure, "--retry-failed: " + requeued.status().message());
    std::printf("requeued %llu refused upload(s) from %s/failed\n",
                static_cast<unsigned long long>(*requeued), dir.c_str());
  }

  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  if (Status started = shipper.Start(); !started.ok()) {
    int code = started.code() == StatusCode::kInvalidArgument ? kExitConfig
               : started.code() == StatusCode::kPermission    ? kExitPermission
                                                              : kExitFailure;
    return Fail(code, started.message());
  }
  bool progress = ::isatty(STDOUT_FILENO) == 1;
  bool interrupted = false;
  for (;;) {
    if (shipper.WaitDone(std::chrono::milliseconds(200))) break;
    if (g_interrupted.load()) {
      interrupted = true;
      break;
    }
    if (progress) PrintProgress(shipper.Stats());
  }
  shipper.Stop(interrupted ? cfg->upload.exit_grace : Nanos(0));
  uploader::UploadStats stats = shipper.Stats();
  if (progress) {
    PrintProgress(stats);
    std::printf("\n");
  }

  uint64_t left = 0;
  Status listed = shipper.ForEachUndelivered([&](const uploader::Undelivered& u) {
    if (left++ == 0) std::printf("left undelivered (dump -> sink: why):\n");
    std::string why = u.set_aside
                          ? "refused, kept in " + dir + "/failed/" + u.sink + "/ (" + u.reason + ")"
                          : "still queued (" + u.reason + ")";
    std::printf("  %s -> %s: %s\n", u.base.c_str(), u.sink.c_str(), why.c_str());
  });
  if (!listed.ok()) return Fail(kExitFailure, "cannot list what is left: " + listed.message());
  std::printf("uploaded %llu, refused %llu, invalid %llu, evicted %llu; %llu left undelivered\n",
              static_cast<unsigned long long>(stats.delivered),
              static_cast<unsigned long long>(stats.rejected),
              static_cast<unsigned long long>(stats.invalid),
              static_cast<unsigned long long>(stats.evicted),
              static_cast<unsigned long long>(left));
  return left == 0 ? kExitOk : kExitFailure;
}

}  // namespace sleuth::cli
