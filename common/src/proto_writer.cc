#include "sleuth/common/proto_writer.h"

namespace sleuth {

void ProtoWriter::AppendVarint(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void ProtoWriter::Varint(uint32_t field, uint64_t value) {
  Tag(field, 0);
  AppendVarint(&out_, value);
}

void ProtoWriter::Bytes(uint32_t field, std::string_view bytes) {
  Tag(field, 2);
  AppendVarint(&out_, bytes.size());
  out_.append(bytes);
}

}  // namespace sleuth
