// The rows of the option table. Docs say the unit; `why` gives the reason
// for the default. Holmes (mosn/holmes) is the starting point for the rule
// thresholds.
#include "sleuth/config/option_table.h"

#include <cctype>

namespace sleuth::config {
namespace {

// Accessors built from member pointers, so a row names its field once and
// the compiler checks that the field exists. A base-class member pointer
// (&MetricRule::abs) works on a derived section (CpuSection).
template <auto kSection, auto kField>
FieldRef In(Config& config) {
  return &((config.*kSection).*kField);
}

template <auto kField>
FieldRef InSink(SinkConfig& sink) {
  return &(sink.*kField);
}

constexpr std::string_view kLogLevels[] = {"debug", "info", "warn", "error", "off"};
constexpr std::string_view kProtocols[] = {"pyroscope", "pyroscope-ingest", "http"};

constexpr std::string_view kPercentWhy = "a share of a limit the process cannot exceed";
constexpr std::string_view kDiffWhy =
    "A rise of 10000% is 100 times the average; a larger threshold is a typo, not a rule.";
constexpr std::string_view kCooldownWhy =
    "0 allows a dump every interval (retention still bounds the disk); past a week the rule is "
    "as good as off, which enable = false says plainly.";
constexpr std::string_view kThreadsWhy =
    "Linux's PID_MAX_LIMIT (4194304) bounds the threads of the whole machine.";
constexpr std::string_view kHostPathWhy =
    "Read by the agent inside the host, so a relative path would depend on the host's working "
    "directory; 1024 bytes is any real path.";
constexpr std::string_view kListenWhy =
    "The agent opens this port inside the host, so an address that cannot be bound must fail "
    "here, not at start; port 0 would pick a port nobody can find; 259 bytes hold the longest "
    "DNS name and a port.";

using T = OptionType;
using A = AgentSection;
using M = MetricRule;
using C = Config;
using S = SinkConfig;
using U = UploadSection;

// Built on first use, not at load time: libsleuth.so's constructor reads
// the table, and may run before this file's static initializers.
std::span<const Option> OptionTable() {
  static const Option kOptions[] = {
      // [agent]
      {.key = "agent.interval",
       .type = T::kDuration,
       .default_text = "5s",
       .doc = "How often the readings are taken and the rules checked.",
       .why = "Holmes's period: a spike that lasts a few seconds is seen, and a few /proc reads "
              "every 5s cost nothing measurable.",
       .at_least = "100ms",
       .at_most = "1h",
       .bounds_why = "Below 100ms a CPU reading spans a few 10ms clock ticks and is mostly noise, "
                     "and the wake-ups cost the host; above 1h no spike is ever seen.",
       .config_field = In<&C::agent, &A::interval>},
      {.key = "agent.history",
       .type = T::kInt,
       .default_text = "10",
       .doc = "Readings kept per metric; `diff` compares a reading with their average.",
       .why = "Holmes's size: the average of the last 50s is steady against one noisy reading yet "
              "follows slow drift.",
       .at_least = "1",
       .at_most = "1000",
       .bounds_why = "The average needs one reading; 1000 readings is over an hour at 5s, and more "
                     "only slows how fast the average follows.",
       .config_field = In<&C::agent, &A::history>},
      {.key = "agent.warmup",
       .type = T::kInt,
       .default_text = "history",
       .doc = "Readings taken before any rule may fire; `history` means the value of "
              "agent.history.",
       .why = "No rule judges a half-filled history, so a process's start-up burst cannot fire "
              "`diff`.",
       .at_least = "0",
       .at_most = "1000",
       .bounds_why = "Past 1000 readings (over an hour at 5s) no rule could fire for most of a "
                     "process's life.",
       .named_value = "history",
       .named_value_int = -1,
       .config_field = In<&C::agent, &A::warmup>},
      {.key = "agent.dump_dir",
       .type = T::kString,
       .default_text = "",
       .doc = "Directory for dumps and their JSON sidecars; created with mode 0700. Empty: "
              "$XDG_RUNTIME_DIR/sleuth if that directory is ours, else /var/tmp/sleuth-<uid>. "
              "A directory that is a symlink, someone else's, or writable by group or others is "
              "refused.",
       .why = "Private to the user: in a shared directory such as /tmp/sleuth another local user "
              "could plant symlinks, sidecars or markers and turn a root agent against the host.",
       .example = "/var/lib/sleuth",
       .max_length = 1024,
       .form = TextForm::kAbsolutePath,
       .bounds_why =
           "The host process creates it, so a relative path would land wherever the host's working "
           "directory is; 1024 bytes leave room under PATH_MAX (4096) for the dump names.",
       .config_field = In<&C::agent, &A::dump_dir>},
      {.key = "agent.service",
       .type = T::kString,
       .default_text = "",
       .doc = "Service name in dump file names and uploads; empty means the process name.",
       .why = "The process name is what an operator recognises without configuring anything.",
       .example = "checkout-api",
       .max_length = 64,
       .form = TextForm::kName,
       .bounds_why =
           "It is part of every dump's file name and the service_name label: 64 bytes keep dump "
           "names far under NAME_MAX (255), and these characters are safe in both.",
       .config_field = In<&C::agent, &A::service>},
      {.key = "agent.labels",
       .type = T::kStringMap,
       .default_text = "",
       .doc = "Extra labels added to every dump and upload (names: letters, digits, _).",
       .why = "None unless you add them.",
       .example = "team=payments,env=prod",
       .max_entries = 20,
       .max_key_length = 64,
       .max_value_length = 256,
       .bounds_why = "sleuth sets 8 labels itself and Pyroscope refuses a series with more than 30 "
                     "(its default max_label_names_per_series); every label is repeated in every "
                     "sidecar and upload.",
       .map_keys = MapKeys::kLabelName,
       .config_field = In<&C::agent, &A::labels>},
      {.key = "agent.cpu_max",
       .type = T::kPercent,
       .default_text = "0",
       .doc = "Skip every dump while the process's CPU (percent of its limit) is at or above "
              "this; 0 = off.",
       .why = "Off: whether a saturated process should still be profiled is your call "
              "(e.g. 95).",
       .at_least = "0",
       .at_most = "100",
       .bounds_why = kPercentWhy,
       .config_field = In<&C::agent, &A::cpu_max>},
      {.key = "agent.max_dumps",
       .type = T::kInt,
       .default_text = "100",
       .doc = "Most dumps kept in dump_dir; the oldest are removed first.",
       .why = "Bounded so a flapping rule never fills the host's disk; 100 is days of dumps at "
              "one per cooldown.",
       .at_least = "1",
       .at_most = "100000",
       .bounds_why = "At least the dump just written is kept; beyond 100000 every retention pass "
                     "scans a huge directory.",
       .config_field = In<&C::agent, &A::max_dumps>},
      {.key = "agent.max_dump_bytes",
       .type = T::kSize,
       .default_text = "1GiB",
       .doc = "Most bytes of dumps kept in dump_dir; the oldest are removed first.",
       .why = "Bounded so a flapping rule never fills the host's disk.",
       .at_least = "1MiB",
       .at_most = "1TiB",
       .bounds_why = "Under 1MiB one CPU profile with its text exceeds it and is removed as soon "
                     "as it is written; 1TiB is more than any dump disk.",
       .config_field = In<&C::agent, &A::max_dump_bytes>},
      {.key = "agent.log_level",
       .type = T::kEnum,
       .default_text = "warn",
       .doc = "Least severe log line written.",
       .why = "The agent shares stderr with its host, so by default it speaks only of problems; "
              "`info` adds start-up, each dump and each removal (nothing per interval).",
       .allowed = kLogLevels,
       .config_field = In<&C::agent, &A::log_level>},
      {.key = "agent.log_file",
       .type = T::kString,
       .default_text = "",
       .doc = "File the log is appended to; empty means stderr.",
       .why = "The host's stderr is where its operators already look.",
       .example = "/var/log/sleuth.log",
       .max_length = 1024,
       .form = TextForm::kAbsolutePath,
       .bounds_why = "The host process opens it, so a relative path would depend on the host's "
                     "working directory.",
       .config_field = In<&C::agent, &A::log_file>},
      {.key = "agent.follow_fork",
       .type = T::kBool,
       .default_text = "false",
       .doc = "Start a fresh agent in a forked child of the host.",
       .why = "A forked child is usually about to exec; turn it on for pre-fork servers whose "
              "workers should be watched.",
       .config_field = In<&C::agent, &A::follow_fork>},
      {.key = "agent.use_smaps_rollup",
       .type = T::kBool,
       .default_text = "false",
       .doc = "Read RSS from /proc/<pid>/smaps_rollup instead of statm.",
       .why = "statm is one cheap read; smaps_rollup walks every mapping in the kernel and needs "
              "Linux 4.14.",
       .config_field = In<&C::agent, &A::use_smaps_rollup>},

      // [cpu]
      {.key = "cpu.enable",
       .type = T::kBool,
       .default_text = "true",
       .doc = "Whether the cpu rule may fire; readings are taken either way.",
       .why = "A CPU spike is the commonest anomaly, and a 5s profile at 100 Hz is cheap.",
       .config_field = In<&C::cpu, &M::enable>},
      {.key = "cpu.min",
       .type = T::kPercent,
       .default_text = "10",
       .doc = "Percent of the CPU limit below which nothing fires.",
       .why = "Holmes: below 10% a process is near idle and a relative jump is noise.",
       .at_least = "0",
       .at_most = "100",
       .bounds_why = kPercentWhy,
       .config_field = In<&C::cpu, &M::min>},
      {.key = "cpu.diff",
       .type = T::kNumber,
       .default_text = "25",
       .doc = "Fire when a reading is at least this many percent above the history's average.",
       .why = "Holmes: a 25% rise over the recent average is a change, not jitter.",
       .at_least = "0",
       .at_most = "10000",
       .bounds_why = kDiffWhy,
       .config_field = In<&C::cpu, &M::diff>},
      {.key = "cpu.abs",
       .type = T::kPercent,
       .default_text = "70",
       .doc = "Fire when a reading is above this percent of the CPU limit.",
       .why = "Holmes: 70% is close to throttling; the profile is taken before the limit bites.",
       .at_least = "0",
       .at_most = "100",
       .bounds_why = kPercentWhy,
       .config_field = In<&C::cpu, &M::abs>},
      {.key = "cpu.max",
       .type = T::kPercent,
       .default_text = "0",
       .doc = "Percent of the CPU limit at or above which nothing fires; 0 = no maximum.",
       .why = "No ceiling: a process pinned at its limit is worth a profile.",
       .at_least = "0",
       .at_most = "100",
       .bounds_why = kPercentWhy,
       .config_field = In<&C::cpu, &M::max>},
      {.key = "cpu.cooldown",
       .type = T::kDuration,
       .default_text = "1m",
       .doc = "Quiet period of the cpu rule after a cpu dump.",
       .why = "Holmes: at most one CPU profile a minute bounds the cost of a long spike.",
       .at_least = "0s",
       .at_most = "168h",
       .bounds_why = kCooldownWhy,
       .config_field = In<&C::cpu, &M::cooldown>},
      {.key = "cpu.profile_duration",
       .type = T::kDuration,
       .default_text = "5s",
       .doc = "How long a CPU profile samples.",
       .why = "About 500 samples at 100 Hz per busy thread, while the spike is still on.",
       .at_least = "1s",
       .at_most = "10m",
       .bounds_why = "Under 1s a 100 Hz profile holds too few samples to show where the time goes; "
                     "past 10m the spike is long over and the next cpu dump waits.",
       .config_field = In<&C::cpu, &CpuSection::profile_duration>},
      {.key = "cpu.profile_hz",
       .type = T::kInt,
       .default_text = "100",
       .doc = "CPU profile sampling rate in samples per second of CPU time (1 to 1000).",
       .why = "gperftools' default: cheap, and enough samples in 5s; above 1000 the kernel's "
              "timer granularity adds nothing.",
       .at_least = "1",
       .at_most = "1000",
       .bounds_why = "At least one sample a second; above 1000 the kernel's timer granularity adds "
                     "cost and no detail.",
       .config_field = In<&C::cpu, &CpuSection::profile_hz>},

      // [memory]
      {.key = "memory.enable",
       .type = T::kBool,
       .default_text = "true",
       .doc = "Whether the memory rule may fire; readings are taken either way.",
       .why = "Memory growth ends in the OOM killer; the evidence must be taken before that.",
       .config_field = In<&C::memory, &M::enable>},
      {.key = "memory.min",
       .type = T::kPercent,
       .default_text = "10",
       .doc = "RSS, in percent of the memory limit, below which nothing fires.",
       .why = "Holmes: a process using under 10% of its limit is not in trouble.",
       .at_least = "0",
       .at_most = "100",
       .bounds_why = kPercentWhy,
       .config_field = In<&C::memory, &M::min>},
      {.key = "memory.diff",
       .type = T::kNumber,
       .default_text = "25",
       .doc = "Fire when RSS is at least this many percent above the history's average.",
       .why = "Holmes: a 25% jump over the recent average is a change, not jitter.",
       .at_least = "0",
       .at_most = "10000",
       .bounds_why = kDiffWhy,
       .config_field = In<&C::memory, &M::diff>},
      {.key = "memory.abs",
       .type = T::kPercent,
       .default_text = "80",
       .doc = "Fire when RSS is above this percent of the memory limit.",
       .why = "Holmes: 80% leaves room to take the dump before the OOM killer acts at 100%.",
       .at_least = "0",
       .at_most = "100",
       .bounds_why = kPercentWhy,
       .config_field = In<&C::memory, &M::abs>},
      {.key = "memory.max",
       .type = T::kPercent,
       .default_text = "0",
       .doc = "Percent of the memory limit at or above which nothing fires; 0 = no maximum.",
       .why = "No ceiling: the closer to the limit, the more a dump is worth.",
       .at_least = "0",
       .at_most = "100",
       .bounds_why = kPercentWhy,
       .config_field = In<&C::memory, &M::max>},
      {.key = "memory.cooldown",
       .type = T::kDuration,
       .default_text = "1m",
       .doc = "Quiet period of the memory rule after a memory dump.",
       .why = "Holmes: one heap dump a minute follows a leak without flooding dump_dir.",
       .at_least = "0s",
       .at_most = "168h",
       .bounds_why = kCooldownWhy,
       .config_field = In<&C::memory, &M::cooldown>},

      // [threads]
      {.key = "threads.enable",
       .type = T::kBool,
       .default_text = "true",
       .doc = "Whether the threads rule may fire; readings are taken either way.",
       .why = "A thread dump takes milliseconds and shows where a leak or a stuck pool is.",
       .config_field = In<&C::threads, &M::enable>},
      {.key = "threads.min",
       .type = T::kNumber,
       .default_text = "100",
       .doc = "Thread count below which nothing fires.",
       .why = "Native services idle with tens of threads; below 100 a relative jump is a pool "
              "warming up.",
       .at_least = "0",
       .at_most = "4194304",
       .bounds_why = kThreadsWhy,
       .config_field = In<&C::threads, &M::min>},
      {.key = "threads.diff",
       .type = T::kNumber,
       .default_text = "25",
       .doc = "Fire when the thread count is at least this many percent above the history's "
              "average.",
       .why = "As Holmes's other rules: a 25% rise is a change, not jitter.",
       .at_least = "0",
       .at_most = "10000",
       .bounds_why = kDiffWhy,
       .config_field = In<&C::threads, &M::diff>},
      {.key = "threads.abs",
       .type = T::kNumber,
       .default_text = "2000",
       .doc = "Fire when the thread count is above this.",
       .why = "Few native services need 2000 threads (each reserves a stack, 8MiB by default); "
              "more is a leak or a runaway pool.",
       .at_least = "0",
       .at_most = "4194304",
       .bounds_why = kThreadsWhy,
       .config_field = In<&C::threads, &M::abs>},
      {.key = "threads.max",
       .type = T::kNumber,
       .default_text = "0",
       .doc = "Thread count at or above which nothing fires; 0 = no maximum.",
       .why = "No ceiling: the more threads, the more a dump is worth.",
       .at_least = "0",
       .at_most = "4194304",
       .bounds_why = kThreadsWhy,
       .config_field = In<&C::threads, &M::max>},
      {.key = "threads.cooldown",
       .type = T::kDuration,
       .default_text = "1h",
       .doc = "Quiet period of the threads rule after a thread dump.",
       .why = "Thread counts change slowly and one dump already shows who creates them; more "
              "would repeat it.",
       .at_least = "0s",
       .at_most = "168h",
       .bounds_why = kCooldownWhy,
       .config_field = In<&C::threads, &M::cooldown>},

      // [heap]
      {.key = "heap.enable",
       .type = T::kBool,
       .default_text = "true",
       .doc = "Whether the heap rule may fire; readings are taken either way.",
       .why = "Heap growth is what a memory alarm is usually about.",
       .config_field = In<&C::heap, &M::enable>},
      {.key = "heap.min",
       .type = T::kPercent,
       .default_text = "10",
       .doc = "In-use heap, in percent of the memory limit, below which nothing fires.",
       .why = "As memory.min (Holmes): under 10% of the limit is not a problem.",
       .at_least = "0",
       .at_most = "100",
       .bounds_why = kPercentWhy,
       .config_field = In<&C::heap, &M::min>},
      {.key = "heap.diff",
       .type = T::kNumber,
       .default_text = "25",
       .doc = "Fire when the in-use heap is at least this many percent above the history's "
              "average.",
       .why = "As memory.diff (Holmes): a 25% jump is a change, not jitter.",
       .at_least = "0",
       .at_most = "10000",
       .bounds_why = kDiffWhy,
       .config_field = In<&C::heap, &M::diff>},
      {.key = "heap.abs",
       .type = T::kPercent,
       .default_text = "80",
       .doc = "Fire when the in-use heap is above this percent of the memory limit.",
       .why = "As memory.abs (Holmes): room to dump before the OOM killer acts.",
       .at_least = "0",
       .at_most = "100",
       .bounds_why = kPercentWhy,
       .config_field = In<&C::heap, &M::abs>},
      {.key = "heap.max",
       .type = T::kPercent,
       .default_text = "0",
       .doc = "In-use heap, in percent of the memory limit, at or above which nothing fires; "
              "0 = no maximum.",
       .why = "No ceiling: the closer to the limit, the more a dump is worth.",
       .at_least = "0",
       .at_most = "100",
       .bounds_why = kPercentWhy,
       .config_field = In<&C::heap, &M::max>},
      {.key = "heap.cooldown",
       .type = T::kDuration,
       .default_text = "1m",
       .doc = "Quiet period of the heap rule after a heap dump.",
       .why = "As memory.cooldown (Holmes): one heap dump a minute at most.",
       .at_least = "0s",
       .at_most = "168h",
       .bounds_why = kCooldownWhy,
       .config_field = In<&C::heap, &M::cooldown>},
      {.key = "heap.sample_bytes",
       .type = T::kSize,
       .default_text = "512KiB",
       .doc = "Average bytes allocated between two heap samples (tcmalloc's sampling rate).",
       .why = "Go's MemProfileRate: finds any real leak at a cost too small to measure.",
       .at_least = "4KiB",
       .at_most = "1GiB",
       .bounds_why =
           "tcmalloc samples about once per this many bytes: below 4KiB almost every allocation is "
           "sampled and the host slows down; above 1GiB a profile holds almost nothing.",
       .config_field = In<&C::heap, &HeapSection::sample_bytes>},

      // [upload]: per-sink keys first; they also form [upload.sinks.<name>].
      {.key = "upload.url",
       .type = T::kUrl,
       .default_text = "",
       .doc = "Where dumps are shipped (http:// or https://); empty: no upload, dumps stay in "
              "dump_dir.",
       .why = "Nothing leaves the host until you name a backend.",
       .example = "http://127.0.0.1:4040",
       .max_length = 2048,
       .bounds_why = "2048 bytes is the URL length every server and proxy accepts; the host must "
                     "be a valid name or address so a typo fails here, not on every upload.",
       .sink_field = InSink<&S::url>},
      {.key = "upload.protocol",
       .type = T::kEnum,
       .default_text = "pyroscope",
       .doc = "pyroscope: Pyroscope's push API; pyroscope-ingest: its older /ingest; http: a "
              "multipart POST of the files.",
       .why = "Grafana Pyroscope's current API, also accepted by Grafana Alloy.",
       .allowed = kProtocols,
       .sink_field = InSink<&S::protocol>},
      {.key = "upload.username",
       .type = T::kString,
       .default_text = "",
       .doc = "Basic-auth user; the password comes from password_file or SLEUTH_UPLOAD_PASSWORD.",
       .why = "No authentication unless the backend asks for it.",
       .example = "sleuth",
       .max_length = 256,
       .form = TextForm::kUserName,
       .bounds_why = "It goes into the basic-auth header, where a ':' would end it early; 256 "
                     "bytes hold any real user name.",
       .sink_field = InSink<&S::username>},
      {.key = "upload.password_file",
       .type = T::kString,
       .default_text = "",
       .doc = "File holding the basic-auth password (else SLEUTH_UPLOAD_PASSWORD).",
       .why = "Secrets live in files or the environment, never in the config text.",
       .example = "/run/secrets/pyroscope-password",
       .max_length = 1024,
       .form = TextForm::kAbsolutePath,
       .bounds_why = kHostPathWhy,
       .sink_field = InSink<&S::password_file>},
      {.key = "upload.token_file",
       .type = T::kString,
       .default_text = "",
       .doc = "File holding a bearer token (else SLEUTH_UPLOAD_TOKEN).",
       .why = "Secrets live in files or the environment, never in the config text.",
       .example = "/run/secrets/pyroscope-token",
       .max_length = 1024,
       .form = TextForm::kAbsolutePath,
       .bounds_why = kHostPathWhy,
       .sink_field = InSink<&S::token_file>},
      {.key = "upload.tenant_id",
       .type = T::kString,
       .default_text = "",
       .doc = "Sent as the X-Scope-OrgID header for multi-tenant backends.",
       .why = "Single-tenant backends need none.",
       .example = "team-a",
       .max_length = 150,
       .form = TextForm::kTenantId,
       .bounds_why = "Grafana's backends (Mimir, Loki, Pyroscope) refuse any other tenant ID on "
                     "every request: at most 150 of these characters.",
       .sink_field = InSink<&S::tenant_id>},
      {.key = "upload.headers",
       .type = T::kStringMap,
       .default_text = "",
       .doc = "Extra HTTP headers on every upload; values are never printed.",
       .why = "None unless the backend needs them.",
       .example = "X-Api-Key=secret",
       .max_entries = 16,
       .max_key_length = 128,
       .max_value_length = 1024,
       .bounds_why = "Servers refuse large header blocks (nginx: 8KiB per line by default); 16 "
                     "headers of 1KiB stay well inside.",
       .map_keys = MapKeys::kHeaderName,
       .secret_values = true,
       .sink_field = InSink<&S::headers>},
      {.key = "upload.ca_file",
       .type = T::kString,
       .default_text = "",
       .doc = "PEM file of CAs to verify the server with; empty: the system's trust store.",
       .why = "The system's trust store is what every other client on the host uses.",
       .example = "/etc/ssl/private-ca.pem",
       .max_length = 1024,
       .form = TextForm::kAbsolutePath,
       .bounds_why = kHostPathWhy,
       .sink_field = InSink<&S::ca_file>},
      {.key = "upload.cert_file",
       .type = T::kString,
       .default_text = "",
       .doc = "PEM client certificate for mutual TLS (with key_file).",
       .why = "No client certificate unless the backend asks for one.",
       .example = "/etc/sleuth/client.pem",
       .max_length = 1024,
       .form = TextForm::kAbsolutePath,
       .bounds_why = kHostPathWhy,
       .sink_field = InSink<&S::cert_file>},
      {.key = "upload.key_file",
       .type = T::kString,
       .default_text = "",
       .doc = "PEM private key of cert_file.",
       .why = "No client certificate unless the backend asks for one.",
       .example = "/etc/sleuth/client.key",
       .max_length = 1024,
       .form = TextForm::kAbsolutePath,
       .bounds_why = kHostPathWhy,
       .sink_field = InSink<&S::key_file>},
      {.key = "upload.insecure_skip_verify",
       .type = T::kBool,
       .default_text = "false",
       .doc = "Skip TLS certificate verification (a warning is logged at each start).",
       .why = "TLS is verified unless you decide otherwise.",
       .sink_field = InSink<&S::insecure_skip_verify>},
      {.key = "upload.retry_initial",
       .type = T::kDuration,
       .default_text = "1s",
       .doc = "First wait before retrying a failed upload; doubles (with jitter) up to retry_max.",
       .why = "A blip is retried at once, without hammering a backend that is restarting.",
       .at_least = "10ms",
       .at_most = "1h",
       .bounds_why = "Below 10ms a failing backend is retried in a busy loop; above 1h a short "
                     "outage delays every dump by hours.",
       .config_field = In<&C::upload, &U::retry_initial>},
      {.key = "upload.retry_max",
       .type = T::kDuration,
       .default_text = "5m",
       .doc = "Longest wait between retries of a failed upload.",
       .why = "A backend down for hours gets about 12 tries an hour, and recovery is noticed "
              "within 5 minutes.",
       .at_least = "10ms",
       .at_most = "24h",
       .bounds_why = "At least retry_initial's floor; past 24h a backend that has recovered goes "
                     "unnoticed for more than a day.",
       .config_field = In<&C::upload, &U::retry_max>},
      {.key = "upload.timeout",
       .type = T::kDuration,
       .default_text = "10s",
       .doc = "Limit on one upload request, connection included.",
       .why = "A dump is small: 10s covers a slow link yet frees the slot from a hung server.",
       .at_least = "100ms",
       .at_most = "10m",
       .bounds_why =
           "Under 100ms no request can connect (a TLS handshake alone is several round trips), so "
           "every upload would fail; past 10m a hung server holds a slot for long.",
       .config_field = In<&C::upload, &U::timeout>},
      {.key = "upload.concurrency",
       .type = T::kInt,
       .default_text = "2",
       .doc = "Most uploads in flight at once per sink.",
       .why = "Keeps a backlog moving without weighing on the host's network or CPU.",
       .at_least = "1",
       .at_most = "32",
       .bounds_why = "At least one request must be in flight; past 32 per sink it looks like a "
                     "flood to the backend and costs the host sockets.",
       .config_field = In<&C::upload, &U::concurrency>},
      {.key = "upload.exit_grace",
       .type = T::kDuration,
       .default_text = "1s",
       .doc = "Longest the host's exit waits for uploads in flight; the rest stays queued.",
       .why = "An exit is never delayed noticeably, and nothing queued is lost.",
       .at_least = "0s",
       .at_most = "30s",
       .bounds_why = "0 never delays the host's exit; past 30s init systems kill the host first "
                     "(Kubernetes' default grace period is 30s).",
       .config_field = In<&C::upload, &U::exit_grace>},
      {.key = "upload.max_spool_bytes",
       .type = T::kSize,
       .default_text = "1GiB",
       .doc = "Most bytes of undelivered dumps kept; past it the oldest are removed.",
       .why = "Bounds disk use while a backend is away for long.",
       .at_least = "1MiB",
       .at_most = "1TiB",
       .bounds_why =
           "Under 1MiB a single dump cannot wait for its upload; 1TiB is more than any dump disk.",
       .config_field = In<&C::upload, &U::max_spool_bytes>},

      // [metrics], [watch]
      {.key = "metrics.listen",
       .type = T::kAddress,
       .default_text = "",
       .doc = "host:port serving Prometheus metrics at /metrics; empty: off.",
       .why = "No port is opened in someone else's process unless you ask.",
       .example = "127.0.0.1:9464",
       .max_length = 259,
       .bounds_why = kListenWhy,
       .config_field = In<&C::metrics, &MetricsSection::listen>},
      {.key = "watch.listen",
       .type = T::kAddress,
       .default_text = "",
       .doc = "host:port where `sleuth watch` takes alert webhooks; empty: off.",
       .why = "No port is opened unless you ask.",
       .example = "127.0.0.1:9465",
       .max_length = 259,
       .bounds_why = kListenWhy,
       .config_field = In<&C::watch, &WatchSection::listen>},
  };
  return kOptions;
}

std::span<const Section> SectionTable() {
  static const Section kSections[] = {
      {"agent", "How the agent runs: its period, history, dump directory and log."},
      {"cpu",
       "CPU usage in percent of the process's CPU limit: the cgroup quota, else the cores of its "
       "cpuset or affinity mask, else the host's cores. One busy thread on an unlimited 2-core "
       "machine reads 50. A cpu dump is a CPU profile."},
      {"memory",
       "RSS in percent of the memory limit: cgroup v2 memory.max, cgroup v1 "
       "memory.limit_in_bytes capped at the host's RAM, else the host's RAM. A memory dump is a "
       "heap profile (or, without tcmalloc, the process's mappings)."},
      {"threads", "The count of live threads. A threads dump is the stack of every thread."},
      {"heap",
       "In-use heap bytes (tcmalloc) in percent of the memory limit. A heap dump is a heap "
       "profile."},
      {"upload",
       "Where dumps are shipped. Keys marked per sink describe the sink named default; each "
       "[upload.sinks.NAME] table with the same keys adds another, and every dump goes to every "
       "sink."},
      {"metrics", "Prometheus metrics of the agent."},
      {"watch", "The `sleuth watch` command."},
  };
  return kSections;
}

constexpr std::string_view kMinBelowAbs =
    "readings below min never fire, so an abs below min would never be what fires";
constexpr std::string_view kMaxAboveMin = "nothing fires at or above max, so it must be above min";
constexpr std::string_view kMaxAboveAbs =
    "nothing fires at or above max, so an abs at or above it could never fire";

std::span<const Constraint> ConstraintTable() {
  static const Constraint kConstraints[] = {
      {"cpu.min", "cpu.abs", ConstraintKind::kAtMostWhenBothSet, kMinBelowAbs},
      {"cpu.min", "cpu.max", ConstraintKind::kBelowUnlessZero, kMaxAboveMin},
      {"cpu.abs", "cpu.max", ConstraintKind::kBelowUnlessZero, kMaxAboveAbs},
      {"memory.min", "memory.abs", ConstraintKind::kAtMostWhenBothSet, kMinBelowAbs},
      {"memory.min", "memory.max", ConstraintKind::kBelowUnlessZero, kMaxAboveMin},
      {"memory.abs", "memory.max", ConstraintKind::kBelowUnlessZero, kMaxAboveAbs},
      {"threads.min", "threads.abs", ConstraintKind::kAtMostWhenBothSet, kMinBelowAbs},
      {"threads.min", "threads.max", ConstraintKind::kBelowUnlessZero, kMaxAboveMin},
      {"threads.abs", "threads.max", ConstraintKind::kBelowUnlessZero, kMaxAboveAbs},
      {"heap.min", "heap.abs", ConstraintKind::kAtMostWhenBothSet, kMinBelowAbs},
      {"heap.min", "heap.max", ConstraintKind::kBelowUnlessZero, kMaxAboveMin},
      {"heap.abs", "heap.max", ConstraintKind::kBelowUnlessZero, kMaxAboveAbs},
      {"upload.retry_initial", "upload.retry_max", ConstraintKind::kAtMost,
       "the backoff starts at retry_initial and grows up to retry_max"},
      {"upload.cert_file", "upload.key_file", ConstraintKind::kBothOrNeither,
       "a client certificate is useless without its private key"},
      {"upload.password_file", "upload.username", ConstraintKind::kRequires,
       "a basic-auth password is sent with a user name; the uploader refuses one without it"},
  };
  return kConstraints;
}

std::span<const EnvVar> NonOptionEnvTable() {
  static const EnvVar kNonOptionEnv[] = {
      {"SLEUTH_CONFIG", "the TOML file to load when --config is not given"},
      {"SLEUTH_DISABLE", "`1` keeps the preloaded agent off"},
      {"SLEUTH_UPLOAD_PASSWORD", "the basic-auth password when upload.password_file is empty"},
      {"SLEUTH_UPLOAD_TOKEN", "the bearer token when upload.token_file is empty"},
      {"SLEUTH_STACKWALK",
       "the thread walker program, when not the sleuth-stackwalk installed beside libsleuth.so"},
      {"SLEUTH_NET_LIBRARY",
       "the network plugin, when not the libsleuth-net.so installed beside libsleuth.so"},
  };
  return kNonOptionEnv;
}

}  // namespace

std::span<const Option> Options() {
  return OptionTable();
}
std::span<const Section> Sections() {
  return SectionTable();
}
std::span<const Constraint> Constraints() {
  return ConstraintTable();
}
std::span<const EnvVar> NonOptionEnvVars() {
  return NonOptionEnvTable();
}

const Option* FindOption(std::string_view key) {
  for (const Option& option : OptionTable())
    if (option.key == key) return &option;
  return nullptr;
}

std::string EnvVarName(const Option& option) {
  std::string name = "SLEUTH_";
  for (char c : option.key)
    name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

FieldRef FieldOf(const Option& option, Config& config, SinkConfig& sink) {
  return option.per_sink() ? option.sink_field(sink) : option.config_field(config);
}

}  // namespace sleuth::config
