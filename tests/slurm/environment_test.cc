#include "strun/environment.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace strun {
namespace {

TEST(Environment, MapBackedForTests) {
  Environment env({{"A", "1"}, {"EMPTY", ""}});
  EXPECT_EQ(env.Get("A"), "1");
  EXPECT_EQ(env.Get("EMPTY"), "");  // set but empty is not unset
  EXPECT_TRUE(env.Has("EMPTY"));
  EXPECT_FALSE(env.Get("B").has_value());
  env.Set("B", "2");
  EXPECT_EQ(env.Get("B"), "2");
  env.Unset("A");
  EXPECT_FALSE(env.Has("A"));
  EXPECT_EQ(env.vars().size(), 2u);
}

TEST(Environment, FromProcessSnapshotsEnviron) {
  ASSERT_EQ(setenv("STRUN_ENV_TEST", "x=y=z", 1), 0);
  ASSERT_EQ(setenv("STRUN_ENV_TEST_EMPTY", "", 1), 0);
  Environment env = Environment::FromProcess();
  EXPECT_EQ(env.Get("STRUN_ENV_TEST"), "x=y=z");  // only the first '=' separates
  EXPECT_EQ(env.Get("STRUN_ENV_TEST_EMPTY"), "");
  EXPECT_EQ(env.Get("PATH"), std::string(getenv("PATH")));
  ASSERT_EQ(unsetenv("STRUN_ENV_TEST"), 0);
  EXPECT_TRUE(env.Has("STRUN_ENV_TEST"));  // a snapshot, not a live view
  EXPECT_FALSE(Environment::FromProcess().Has("STRUN_ENV_TEST"));
}

}  // namespace
}  // namespace strun
