#include "sleuth/common/proto_writer.h"

#include <gtest/gtest.h>

#include <vector>

namespace sleuth {
namespace {

std::string Hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// Expected bytes worked out by hand from the protobuf encoding rules.
TEST(ProtoWriter, EncodesVarintsStringsPackedAndNested) {
  ProtoWriter w;
  w.Varint(1, 150);  // 08 96 01
  EXPECT_EQ(Hex(w.data()), "089601");
  w.Clear();
  w.String(2, "testing");  // 12 07 74 65 73 74 69 6e 67
  EXPECT_EQ(Hex(w.data()), "120774657374696e67");
  w.Clear();
  std::vector<uint64_t> v = {3, 270, 86942};
  w.PackedVarints(4, v.begin(), v.end());  // 22 06 03 8e 02 9e a7 05
  EXPECT_EQ(Hex(w.data()), "2206038e029ea705");
  ProtoWriter outer;
  outer.Message(3, w);
  EXPECT_EQ(Hex(outer.data()), "1a082206038e029ea705");
  w.Clear();
  w.Int64(1, -1);  // ten bytes of two's complement
  EXPECT_EQ(Hex(w.data()), "08ffffffffffffffffff01");
}

}  // namespace
}  // namespace sleuth
