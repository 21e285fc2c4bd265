// A minimal protobuf wire-format writer: enough to emit profile.proto and
// Pyroscope's PushRequest without linking libprotobuf into the agent (which
// would clash with a host that links its own copy). Appends to a string.
// Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sleuth {

class ProtoWriter {
 public:
  // Field writers. Zero/empty scalars are still written (callers skip
  // defaults themselves where proto3 would).
  void Varint(uint32_t field, uint64_t value);
  void Int64(uint32_t field, int64_t value) { Varint(field, static_cast<uint64_t>(value)); }
  void Bool(uint32_t field, bool value) { Varint(field, value ? 1 : 0); }
  void Bytes(uint32_t field, std::string_view bytes);
  void String(uint32_t field, std::string_view s) { Bytes(field, s); }
  // A packed repeated varint field (proto3's default for repeated scalars).
  template <typename It>
  void PackedVarints(uint32_t field, It begin, It end) {
    if (begin == end) return;
    std::string packed;
    for (It it = begin; it != end; ++it) AppendVarint(&packed, static_cast<uint64_t>(*it));
    Bytes(field, packed);
  }
  // Writes a nested message built by another writer.
  void Message(uint32_t field, const ProtoWriter& nested) { Bytes(field, nested.data()); }

  const std::string& data() const { return out_; }
  std::string Take() { return std::move(out_); }
  void Clear() { out_.clear(); }

  static void AppendVarint(std::string* out, uint64_t value);

 private:
  void Tag(uint32_t field, uint32_t wire_type) { AppendVarint(&out_, (uint64_t{field} << 3) | wire_type); }
  std::string out_;
};

}  // namespace sleuth
