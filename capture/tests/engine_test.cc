#include "sleuth/capture/engine.h"

#include <gtest/gtest.h>

#include <string>

namespace sleuth::capture {
namespace {

TEST(EngineTest, MakesOneEnginePerDumpKind) {
  for (const char* kind : {"threads", "cpu", "heap", "memory"}) {
    Result<std::unique_ptr<Engine>> engine = MakeEngine(kind);
    ASSERT_TRUE(engine.ok()) << kind;
    EXPECT_EQ((*engine)->name(), kind);
  }
}

TEST(EngineTest, UnknownKindNamesTheValidOnes) {
  Result<std::unique_ptr<Engine>> engine = MakeEngine("stacks");
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("'stacks'"), std::string::npos);
  EXPECT_NE(engine.status().message().find("threads, cpu, heap or memory"), std::string::npos);
}

}  // namespace
}  // namespace sleuth::capture
