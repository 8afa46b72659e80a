#include "strun/edf/expand.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strun::edf {
namespace {

using ::testing::HasSubstr;

const EnvMap kEnv = {{"SCRATCH", "/capstor/scratch/cscs/u"}, {"USER", "u"}, {"EMPTY", ""}};

TEST(ExpandVariables, ReplacesBracedVariables) {
  auto r = ExpandVariables("${SCRATCH}/ce-images/${USER}.sqsh", kEnv, "f.toml: 'image'");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "/capstor/scratch/cscs/u/ce-images/u.sqsh");
}

TEST(ExpandVariables, DefaultSyntaxGivesEmptyOrFallback) {
  EXPECT_EQ(*ExpandVariables("a${NOPE:-}b", kEnv, "w"), "ab");
  EXPECT_EQ(*ExpandVariables("${NOPE:-/x}", kEnv, "w"), "/x");
  EXPECT_EQ(*ExpandVariables("${EMPTY:-/x}", kEnv, "w"), "/x");
  EXPECT_EQ(*ExpandVariables("${USER:-/x}", kEnv, "w"), "u");
}

TEST(ExpandVariables, DoubleDollarIsLiteral) {
  EXPECT_EQ(*ExpandVariables("$${VAR}", kEnv, "w"), "${VAR}");
  EXPECT_EQ(*ExpandVariables("cost $$5", kEnv, "w"), "cost $5");
}

TEST(ExpandVariables, BareDollarIsKept) {
  EXPECT_EQ(*ExpandVariables("$USER and $", kEnv, "w"), "$USER and $");
}

TEST(ExpandVariables, UndefinedVariableNamesItAndTheFile) {
  auto r = ExpandVariables("${SCRATCHX}/a", kEnv, "/home/u/.edf/a.toml:2:9: 'workdir'");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("'SCRATCHX'"));
  EXPECT_THAT(r.error().message, HasSubstr("/home/u/.edf/a.toml:2:9"));
}

TEST(ExpandVariables, DefinedButEmptyIsNotAnError) {
  EXPECT_EQ(*ExpandVariables("[${EMPTY}]", kEnv, "w"), "[]");
}

TEST(ExpandVariables, MalformedReferencesAreErrors) {
  EXPECT_THAT(ExpandVariables("${USER", kEnv, "w").error().message, HasSubstr("unterminated"));
  EXPECT_THAT(ExpandVariables("${}", kEnv, "w").error().message, HasSubstr("invalid variable"));
  EXPECT_THAT(ExpandVariables("${A B}", kEnv, "w").error().message, HasSubstr("invalid variable"));
  EXPECT_THAT(ExpandVariables("${1X}", kEnv, "w").error().message, HasSubstr("invalid variable"));
}

}  // namespace
}  // namespace strun::edf
