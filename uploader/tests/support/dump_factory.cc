#include "dump_factory.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <optional>
#include <random>
#include <vector>

#include "sleuth/common/files.h"
#include "sleuth/common/proto_writer.h"
#include "sleuth/dumps/dump_dir.h"
#include "sleuth/dumps/layout.h"
#include "sleuth/dumps/writer.h"

namespace sleuth::uploader::testing {
namespace {

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   (static_cast<uint64_t>(::getpid()) << 20));
  return rng;
}

std::string RandomHex(size_t digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < digits; ++i) out += kHex[Rng()() & 15];
  return out;
}

}  // namespace

std::string NewEventId() {
  return RandomHex(32);
}

std::string MakeProfile(std::string_view kind, size_t extra_functions) {
  // profile.proto field numbers.
  enum : uint32_t {
    kSampleType = 1,
    kSample = 2,
    kLocation = 4,
    kFunction = 5,
    kStringTable = 6,
    kTimeNanos = 9,
    kDurationNanos = 10,
    kPeriodType = 11,
    kPeriod = 12,
  };
  std::vector<std::string> strings = {""};
  auto intern = [&](std::string_view s) {
    for (size_t i = 0; i < strings.size(); ++i) {
      if (strings[i] == s) return static_cast<int64_t>(i);
    }
    strings.emplace_back(s);
    return static_cast<int64_t>(strings.size() - 1);
  };
  std::vector<std::pair<std::string, std::string>> types;
  if (kind == "cpu") {
    types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  } else if (kind == "heap") {
    types = {{"alloc_objects", "count"},
             {"alloc_space", "bytes"},
             {"inuse_objects", "count"},
             {"inuse_space", "bytes"}};
  } else if (kind == "memory") {
    types = {{"space", "bytes"}};
  } else {
    types = {{"threads", "count"}};
  }
  ProtoWriter profile;
  for (const auto& [type, unit] : types) {
    ProtoWriter vt;
    vt.Int64(1, intern(type));
    vt.Int64(2, intern(unit));
    profile.Message(kSampleType, vt);
  }
  std::vector<std::string> functions = {"main", "work"};
  for (size_t i = 0; i < extra_functions; ++i) functions.push_back("fn_" + RandomHex(24));
  for (size_t i = 0; i < functions.size(); ++i) {
    uint64_t id = i + 1;
    ProtoWriter sample;
    std::vector<uint64_t> locations = {id};
    sample.PackedVarints(1, locations.begin(), locations.end());
    std::vector<int64_t> values(types.size(), static_cast<int64_t>(10 * id));
    sample.PackedVarints(2, values.begin(), values.end());
    profile.Message(kSample, sample);
  }
  for (size_t i = 0; i < functions.size(); ++i) {
    uint64_t id = i + 1;
    ProtoWriter line;
    line.Varint(1, id);  // function_id
    line.Int64(2, 10);   // line
    ProtoWriter location;
    location.Varint(1, id);
    location.Message(4, line);
    profile.Message(kLocation, location);
    ProtoWriter function;
    function.Varint(1, id);
    function.Int64(2, intern(functions[i]));
    function.Int64(3, intern(functions[i]));
    function.Int64(4, intern("test.cc"));
    profile.Message(kFunction, function);
  }
  ProtoWriter period_type;
  period_type.Int64(1, intern(types[0].first));
  period_type.Int64(2, intern(types[0].second));
  for (const std::string& s : strings) profile.String(kStringTable, s);
  profile.Int64(kTimeNanos, 1'764'497'702'123'000'000);
  profile.Int64(kDurationNanos, kind == "cpu" ? 5'000'000'000 : 0);
  profile.Message(kPeriodType, period_type);
  profile.Int64(kPeriod, 1);
  return profile.Take();
}

std::string Gzip(std::string_view data) {
  z_stream z = {};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Result<std::string> Gunzip(std::string_view data) {
  z_stream z = {};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return Internal("inflateInit2 failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[16384];
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&z);
      return InvalidArgument("not gzip data (zlib error " + std::to_string(rc) + ")");
    }
    out.append(buf, sizeof buf - z.avail_out);
  } while (rc != Z_STREAM_END);
  inflateEnd(&z);
  return out;
}

dumps::DumpMeta MetaOf(const DumpSpec& spec, const std::string& event_id) {
  dumps::DumpMeta m;
  m.event_id = event_id;
  m.kind = spec.kind;
  m.reason = spec.reason;
  m.metric = spec.kind == "heap" ? "memory" : spec.kind;
  m.value = 81.5;
  m.average = 20.25;
  m.thresholds = dumps::DumpMeta::Thresholds{10, 25, 70, 0, 60};
  m.cpu_limit_cores = 2;
  m.pid = spec.pid;
  m.hostname = spec.hostname;
  m.service = spec.service;
  m.labels = spec.labels;
  m.cmdline = {"/usr/bin/testsvc", "--serve"};
  m.executable = "/usr/bin/testsvc";
  m.build_id = "0123456789abcdef";
  m.start_time_unix_nanos = spec.time_unix_nanos;
  m.duration_nanos = spec.kind == "cpu" ? 5'000'000'000 : 0;
  return m;
}

std::string DumpBaseName(const DumpSpec& spec, const std::string& event_id) {
  return dumps::DumpBaseName(MetaOf(spec, event_id));
}

Result<WrittenDump> WriteDump(const std::string& dir, const DumpSpec& spec) {
  SLEUTH_ASSIGN_OR_RETURN(dumps::DumpDir opened, dumps::DumpDir::Open(dir, dumps::Create::kYes));
  WrittenDump out;
  out.event_id = spec.event_id.empty() ? NewEventId() : spec.event_id;
  std::string profile = Gzip(MakeProfile(spec.kind, spec.extra_functions));
  std::string text = "Thread 1 (main):\n#0 main at test.cc:10\n";
  std::optional<std::string_view> with_text;
  if (spec.with_text) with_text = text;
  SLEUTH_ASSIGN_OR_RETURN(dumps::WrittenDump written,
                          dumps::WriteDump(opened, MetaOf(spec, out.event_id), profile, with_text));
  out.base = written.base;
  out.bytes = written.bytes;
  return out;
}

}  // namespace sleuth::uploader::testing
