// How a dump becomes an HTTP request for each upload protocol. Pure
// functions of the dump, its metadata and the sink: no network, no clock.
// Thread safe.
//
// pyroscope         POST {url}/push.v1.PusherService/Push, Connect unary call
//                   with a binary protobuf body (Content-Type:
//                   application/proto): PushRequest{ series: [RawProfileSeries{
//                   labels, samples: [RawSample{ raw_profile: the .pb.gz bytes,
//                   ID: the event id as a UUID }] }] }. Field numbers are those
//                   of Grafana Pyroscope's api/push/v1/push.proto and
//                   api/types/v1/types.proto (LabelPair{name=1, value=2}).
// pyroscope-ingest  POST {url}/ingest?name=<service>{labels}&from=&until=
//                   &spyName=sleuth&format=pprof with the .pb.gz as the body
//                   (Content-Type: binary/octet-stream, as Pyroscope's own
//                   client sends; its pprof decoder accepts gzipped or plain).
// http              POST {url}, multipart/form-data with parts profile (the
//                   .pb.gz file), profile_type, event_id, comment (the reason),
//                   token and metadata (the JSON sidecar): Holmes's style.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sleuth/common/status.h"
#include "sleuth/uploader/sidecar.h"

namespace sleuth::uploader {

enum class Protocol { kPyroscope, kPyroscopeIngest, kHttp };

[[nodiscard]] Result<Protocol> ParseProtocol(std::string_view name);
std::string_view ProtocolName(Protocol protocol);

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value", protocol-specific only
  std::string body;
};

// Pyroscope's profile name (the __name__ label) for a dump kind: process_cpu
// for cpu, memory for heap and memory (the names Pyroscope's UI knows), and
// the kind itself otherwise (threads: a valid metric name Pyroscope accepts;
// it has no built-in name for native thread stacks).
std::string PyroscopeProfileName(std::string_view kind);

// The labels of a dump's series, sorted by name and unique as Pyroscope
// requires: __name__, __delta__="false" (a dump is a snapshot: the server must
// not diff it against a previous one), service_name, hostname, pid,
// sleuth_event_id, sleuth_kind, sleuth_reason, then the agent's labels. An
// agent label whose name is not a valid label name is rewritten ([^A-Za-z0-9_]
// -> _); one that would clash with the labels above is dropped.
std::vector<std::pair<std::string, std::string>> PyroscopeLabels(const DumpMeta& meta);

// The canonical UUID form (8-4-4-4-12) of a 32-hex-digit event id.
std::string EventIdAsUuid(std::string_view event_id);

// `base_url` has no trailing slash.
HttpRequest BuildPyroscopePush(std::string_view base_url, const DumpMeta& meta,
                               std::string_view profile_gz);

// The legacy ingest name: service{k=v,...} with the labels sorted, and
// characters the legacy key syntax reserves ({ } , = and spaces) replaced.
std::string IngestName(const DumpMeta& meta);
HttpRequest BuildPyroscopeIngest(std::string_view base_url, const DumpMeta& meta,
                                 std::string_view profile_gz);

// `boundary` must not occur in any part (callers pass a random one).
HttpRequest BuildHttpMultipart(std::string_view url, const DumpMeta& meta,
                               std::string_view profile_gz, std::string_view sidecar_json,
                               std::string_view profile_file_name, std::string_view token,
                               std::string_view boundary);

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string PercentEncode(std::string_view text);

}  // namespace sleuth::uploader
