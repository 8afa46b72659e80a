// Fixed vectors for host lists; each was checked against `scontrol show hostnames` /
// `scontrol show hostlist` of Slurm 22.05.8.
#include "strun/slurm/hostlist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strun::slurm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using V = std::vector<std::string>;

V Expand(const std::string& list) {
  auto r = ExpandHostlist(list);
  EXPECT_TRUE(r.ok()) << list << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : V{"<error>"};
}

TEST(ExpandHostlist, SingleNamesAndRanges) {
  EXPECT_THAT(Expand("login1"), ElementsAre("login1"));
  EXPECT_THAT(Expand("nid[001-003,007],login1"),
              ElementsAre("nid001", "nid002", "nid003", "nid007", "login1"));
  EXPECT_THAT(Expand("n[1-3]"), ElementsAre("n1", "n2", "n3"));
  EXPECT_THAT(Expand("a,b c\td"), ElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(Expand("123"), ElementsAre("123"));
}

TEST(ExpandHostlist, PaddingComesFromTheLowBound) {
  EXPECT_THAT(Expand("a[01-3]"), ElementsAre("a01", "a02", "a03"));
  EXPECT_THAT(Expand("a[8-12]"), ElementsAre("a8", "a9", "a10", "a11", "a12"));
  EXPECT_THAT(Expand("a[098-101]"), ElementsAre("a098", "a099", "a100", "a101"));
  EXPECT_THAT(Expand("a[007]"), ElementsAre("a007"));
  EXPECT_THAT(Expand("a[00-2]"), ElementsAre("a00", "a01", "a02"));
}

TEST(ExpandHostlist, KeepsOrderAndDuplicates) {
  EXPECT_THAT(Expand("b2,a1,b2"), ElementsAre("b2", "a1", "b2"));
  EXPECT_THAT(Expand("n[3,1,2,1]"), ElementsAre("n3", "n1", "n2", "n1"));
  EXPECT_THAT(Expand("n[2-3],n[1-2]"), ElementsAre("n2", "n3", "n1", "n2"));
}

TEST(ExpandHostlist, SeveralBracketGroups) {
  EXPECT_THAT(Expand("r[1-2]n[01-02]"), ElementsAre("r1n01", "r1n02", "r2n01", "r2n02"));
  EXPECT_THAT(Expand("a[1-2].b[1-2]"), ElementsAre("a1.b1", "a1.b2", "a2.b1", "a2.b2"));
  // Slurm's order for three groups: the middle group is outermost.
  EXPECT_THAT(Expand("a[1-2]b[1-2]c[1-2]"), ElementsAre("a1b1c1", "a1b1c2", "a2b1c1", "a2b1c2",
                                                        "a1b2c1", "a1b2c2", "a2b2c1", "a2b2c2"));
}

TEST(ExpandHostlist, SlurmQuirksAreKept) {
  EXPECT_THAT(Expand("a[+1]"), ElementsAre("a01"));  // the sign counts for the width
  EXPECT_THAT(Expand("a[1-]"), ElementsAre("a1"));   // an open range is one number
  EXPECT_THAT(Expand("n[1a-3]"), ElementsAre("n01", "n02", "n03"));
  EXPECT_THAT(Expand("a[1-2"), ElementsAre("a]"));  // unclosed '[' is part of a name
  EXPECT_THAT(Expand("[1-2"), ElementsAre("1-2"));
  EXPECT_THAT(Expand("a[1-2,b"), ElementsAre("a]", "b"));
  EXPECT_THAT(Expand("a]b[1]"), ElementsAre("a]b1"));
  EXPECT_THAT(Expand("a[3-1]b[1-2]c[1-2]"), ElementsAre());  // Slurm drops, does not reject
  EXPECT_THAT(Expand(""), ElementsAre());
  EXPECT_THAT(Expand(",,"), ElementsAre());
}

TEST(ExpandHostlist, MalformedListsAreErrorsQuotingTheList) {
  for (const char* bad : {"a[3-1]", "a[]", "a[1,,2]", "a[1]]", "a[1]b", "x[1-2]]y", "a[1-3a]",
                          "a[1a-]", "a[1x2]", "a[1--2]", "a[-1]", "a[1-70000]", "a[3-1]b[1-2]",
                          "a[x]", "n[1-2],m[5-4]", "a[1-2]b[1-2].x"}) {
    auto r = ExpandHostlist(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.error().message, HasSubstr(std::string("'") + bad + "'"));
  }
  EXPECT_THAT(ExpandHostlist("n[5-2]").error().message, HasSubstr("low bound is above"));
}

TEST(ExpandHostlist, NumbersSaturateLikeStrtoul) {
  EXPECT_THAT(Expand("a99999999999999999999"), ElementsAre("a18446744073709551615"));
  EXPECT_THAT(Expand("a[99999999999999999999]"), ElementsAre("a18446744073709551615"));
  EXPECT_THAT(Expand("a[4294967295-4294967296]"), ElementsAre("a4294967295", "a4294967296"));
  // scontrol 22.05 crashes on this one and loops forever on the next; we list the names.
  EXPECT_THAT(Expand("a18446744073709551614,a18446744073709551615"),
              ElementsAre("a18446744073709551614", "a18446744073709551615"));
  EXPECT_THAT(Expand("n[18446744073709551615]x[1]"), ElementsAre("n18446744073709551615x1"));
}

TEST(ExpandHostlist, LargeButLegalRange) {
  auto r = ExpandHostlist("n[0-65535]");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 65536u);
  EXPECT_EQ(r->back(), "n65535");
  EXPECT_FALSE(ExpandHostlist("n[0-65536]").ok());
}

TEST(ExpandHostlist, HugeCartesianProductIsAnErrorNotAnOutOfMemory) {
  auto r = ExpandHostlist("a[1-60000]b[1-60000]");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("more than"));
}

// Groups left of the last one multiply into one range per name; a long prefix multiplies the
// bytes. Both end in an error, bounded in names and in memory (found by tests/fuzz).
TEST(ExpandHostlist, MultipliedPrefixGroupsAreBoundedInNamesAndBytes) {
  auto many = ExpandHostlist("a[1-6000]a[1-6000]b[1]");
  ASSERT_FALSE(many.ok());
  EXPECT_THAT(many.error().message, HasSubstr("more than"));
  auto wide = ExpandHostlist(std::string(500, 'x') + "[1-6000]a[1-6000]b[1]");
  ASSERT_FALSE(wide.ok());
  EXPECT_THAT(wide.error().message, HasSubstr("MiB of names"));
  // Below both bounds such lists still expand.
  auto fine = ExpandHostlist("a[1-100]a[1-100]b[1-2]");
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(fine->size(), 20000u);
}

TEST(CompressHostlist, MergesRunsWithoutSorting) {
  EXPECT_EQ(CompressHostlist({"nid001", "nid002", "nid007"}), "nid[001-002,007]");
  EXPECT_EQ(CompressHostlist({"a1", "a2", "a3", "b", "a4"}), "a[1-3],b,a4");
  EXPECT_EQ(CompressHostlist({"a1", "a3", "a5", "b"}), "a[1,3,5],b");
  EXPECT_EQ(CompressHostlist({"a01", "a2", "a003", "a4"}), "a[01,2,003,4]");
  EXPECT_EQ(CompressHostlist({"a9", "a10", "a99", "a100", "a8", "b"}), "a[9-10,99-100,8],b");
  EXPECT_EQ(CompressHostlist({"a1b1", "a1b2", "a2b1"}), "a1b[1-2],a2b1");
  EXPECT_EQ(CompressHostlist({"n3", "n2", "n1"}), "n[3,2,1]");
  EXPECT_EQ(CompressHostlist({"n1", "n1"}), "n[1,1]");
  EXPECT_EQ(CompressHostlist({"login"}), "login");
  EXPECT_EQ(CompressHostlist({"n1"}), "n1");
  EXPECT_EQ(CompressHostlist({}), "");
}

TEST(NormalizeHostlist, ParsesThenCompresses) {
  EXPECT_EQ(*NormalizeHostlist("a[8-12],a13"), "a[8-13]");
  EXPECT_EQ(*NormalizeHostlist("nid[001-003],nid004"), "nid[001-004]");
  EXPECT_EQ(*NormalizeHostlist(","), "");
  EXPECT_FALSE(NormalizeHostlist("a[3-1]").ok());
}

}  // namespace
}  // namespace strun::slurm
