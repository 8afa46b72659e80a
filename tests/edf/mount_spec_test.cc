#include "strun/edf/mount_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strun::edf {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseMountSpec, SourceOnlyMountsAtTheSamePath) {
  auto m = ParseMountSpec("/capstor/", "/work");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->source, "/capstor");
  EXPECT_EQ(m->target, "/capstor");
  EXPECT_TRUE(m->flags.empty());
  EXPECT_FALSE(m->squashfs);
  EXPECT_FALSE(m->read_only());
}

TEST(ParseMountSpec, SourceDestinationAndFlags) {
  auto m = ParseMountSpec("/a/b:/c:ro+private+nosuid", "/work");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->source, "/a/b");
  EXPECT_EQ(m->target, "/c");
  EXPECT_THAT(m->flags, ElementsAre("ro", "private", "nosuid"));
  EXPECT_TRUE(m->read_only());
  EXPECT_EQ(m->ToString(), "/a/b:/c:ro+private+nosuid");
}

TEST(ParseMountSpec, DotRelativePathsUseTheSubmitDirectory) {
  auto m = ParseMountSpec("./data:./in/../mnt", "/home/u/proj");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->source, "/home/u/proj/data");
  EXPECT_EQ(m->target, "/home/u/proj/mnt");
  EXPECT_EQ(ParseMountSpec("../x:/x", "/home/u/proj")->source, "/home/u/x");
}

TEST(ParseMountSpec, SoleSqshFlagIsASquashfsMount) {
  auto m = ParseMountSpec("/s/data.sqsh:/data:sqsh", "/");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_TRUE(m->squashfs);
  EXPECT_TRUE(m->read_only());
  EXPECT_EQ(m->ToString(), "/s/data.sqsh:/data:sqsh");
}

TEST(ParseMountSpec, SqshMustBeAlone) {
  auto m = ParseMountSpec("/s/data.sqsh:/data:sqsh+ro", "/");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.error().message, HasSubstr("'sqsh' must be the only flag"));
}

TEST(ParseMountSpec, RejectsBadSyntax) {
  EXPECT_THAT(ParseMountSpec("/paths/on/scratch:path/on/the/container", "/").error().message,
              HasSubstr("destination 'path/on/the/container' must be an absolute path"));
  EXPECT_THAT(ParseMountSpec("relative:/x", "/").error().message, HasSubstr("source 'relative'"));
  EXPECT_THAT(ParseMountSpec("/a:/b:ro:x", "/").error().message, HasSubstr("too many ':'"));
  EXPECT_THAT(ParseMountSpec(":/b", "/").error().message, HasSubstr("source is empty"));
  EXPECT_THAT(ParseMountSpec("/a::ro", "/").error().message, HasSubstr("destination is empty"));
  EXPECT_THAT(ParseMountSpec("/a:/b:", "/").error().message, HasSubstr("empty FLAGS"));
  EXPECT_THAT(ParseMountSpec("/a:/b:ro+bogus", "/").error().message,
              HasSubstr("unknown flag 'bogus'"));
  EXPECT_THAT(ParseMountSpec("/a:/b:ro+rw", "/").error().message, HasSubstr("contradict"));
  EXPECT_THAT(ParseMountSpec("/a:/", "/").error().message, HasSubstr("root"));
}

TEST(NormalizePath, CollapsesDotsAndSlashes) {
  EXPECT_EQ(NormalizePath("//a/./b/../c/"), "/a/c");
  EXPECT_EQ(NormalizePath("/../../etc"), "/etc");
  EXPECT_EQ(NormalizePath("/"), "/");
}

}  // namespace
}  // namespace strun::edf
