#include "strun/slurm/node_address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>

namespace strun::slurm {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

// libslurm must not find a controller here, so that the fallbacks are what is tested.
class NodeAddressTest : public ::testing::Test {
 protected:
  void SetUp() override { setenv("SLURM_CONF", "/nonexistent/strun-test/slurm.conf", 1); }
  void TearDown() override { unsetenv("SLURM_CONF"); }
};

TEST(ResolveHost, NumericAddressesStayAsTheyAre) {
  EXPECT_EQ(*ResolveHost("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(*ResolveHost("10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(*ResolveHost("::1"), "::1");
}

TEST(ResolveHost, NamesBecomeAddresses) {
  auto r = ResolveHost("localhost");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_THAT(*r, AnyOf("127.0.0.1", "::1"));
}

TEST(ResolveHost, UnresolvableNamesAreErrors) {
  auto r = ResolveHost("nid001.strun-test.invalid");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("nid001.strun-test.invalid"));
  EXPECT_FALSE(ResolveHost("").ok());
}

TEST_F(NodeAddressTest, FallsBackToNameResolutionWithoutSlurm) {
  auto start = std::chrono::steady_clock::now();
  auto r = NodeAddress("localhost");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_THAT(*r, AnyOf("127.0.0.1", "::1"));
  // libslurm's fatal() without a configuration must cost neither the process nor seconds.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(NodeAddressTest, NeverReturnsAnUnresolvableName) {
  auto r = NodeAddress("nid001.strun-test.invalid");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("nid001.strun-test.invalid"));
  EXPECT_THAT(r.error().message, HasSubstr("NodeAddr"));
  EXPECT_FALSE(NodeAddress("").ok());
}

}  // namespace
}  // namespace strun::slurm
