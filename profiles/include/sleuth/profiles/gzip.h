// gzip (RFC 1952) compression of dumps, with zlib. Pure functions;
// thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "sleuth/common/status.h"

namespace sleuth::profiles {

// One gzip member (gzip header and CRC trailer, not a bare zlib stream), at
// zlib's default level: what `go tool pprof` and Pyroscope expect of a
// .pb.gz file.
Result<std::string> GzipCompress(std::string_view data);

// Inflates gzip data (concatenated members are joined, as gunzip does).
// Fails if the output would exceed `max_bytes`, so a hostile or corrupt
// input cannot make the caller allocate without bound.
Result<std::string> GzipDecompress(std::string_view gz, size_t max_bytes);

}  // namespace sleuth::profiles
