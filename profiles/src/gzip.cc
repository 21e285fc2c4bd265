#include "sleuth/profiles/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <climits>

namespace sleuth::profiles {

namespace {

// gzip wrapper instead of zlib's: windowBits 15 + 16.
constexpr int kGzipWindowBits = 15 + 16;

std::string ZlibMessage(const z_stream& z, int code) {
  if (z.msg != nullptr) return z.msg;
  return "zlib error " + std::to_string(code);
}

}  // namespace

Result<std::string> GzipCompress(std::string_view data) {
  z_stream z{};
  int rc =
      deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY);
  if (rc != Z_OK) return Internal("gzip: cannot initialize zlib: " + ZlibMessage(z, rc));
  std::string out;
  out.resize(deflateBound(&z, data.size()));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  // deflateBound covers the whole output, but avail_* are 32-bit: feed in
  // chunks so inputs over 4 GiB still work.
  size_t in_left = data.size();
  size_t out_left = out.size();
  do {
    z.avail_in = static_cast<uInt>(std::min<size_t>(in_left, UINT_MAX));
    z.avail_out = static_cast<uInt>(std::min<size_t>(out_left, UINT_MAX));
    uInt in_before = z.avail_in, out_before = z.avail_out;
    rc = deflate(&z, z.avail_in == in_left ? Z_FINISH : Z_NO_FLUSH);
    in_left -= in_before - z.avail_in;
    out_left -= out_before - z.avail_out;
  } while (rc == Z_OK);
  if (rc != Z_STREAM_END) {
    std::string message = ZlibMessage(z, rc);
    deflateEnd(&z);
    return Internal("gzip: compression failed: " + message);
  }
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Result<std::string> GzipDecompress(std::string_view gz, size_t max_bytes) {
  if (gz.size() < 2 || static_cast<unsigned char>(gz[0]) != 0x1f ||
      static_cast<unsigned char>(gz[1]) != 0x8b) {
    return InvalidArgument("not gzip data (missing the 1f 8b magic bytes)");
  }
  z_stream z{};
  int rc = inflateInit2(&z, kGzipWindowBits);
  if (rc != Z_OK) return Internal("gunzip: cannot initialize zlib: " + ZlibMessage(z, rc));
  std::string out;
  char buf[64 * 1024];
  const unsigned char* next = reinterpret_cast<const unsigned char*>(gz.data());
  size_t in_left = gz.size();
  for (;;) {
    z.next_in = const_cast<Bytef*>(next);
    z.avail_in = static_cast<uInt>(std::min<size_t>(in_left, UINT_MAX));
    uInt in_before = z.avail_in;
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    size_t consumed = in_before - z.avail_in;
    next += consumed;
    in_left -= consumed;
    size_t produced = sizeof buf - z.avail_out;
    if (out.size() + produced > max_bytes) {
      inflateEnd(&z);
      return InvalidArgument("gunzip: output exceeds the limit of " + std::to_string(max_bytes) +
                             " bytes");
    }
    out.append(buf, produced);
    if (rc == Z_STREAM_END) {
      if (in_left == 0) break;
      // Another gzip member follows.
      inflateReset(&z);
      continue;
    }
    if (rc == Z_BUF_ERROR && in_left == 0 && produced == 0) {
      inflateEnd(&z);
      return InvalidArgument("gunzip: truncated input (the gzip stream ends early)");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      std::string message = ZlibMessage(z, rc);
      inflateEnd(&z);
      return InvalidArgument("gunzip: corrupt input: " + message);
    }
  }
  inflateEnd(&z);
  return out;
}

}  // namespace sleuth::profiles
