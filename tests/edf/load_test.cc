#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "strun/edf/edf.h"
#include "test_util.h"

namespace strun::edf {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Options;
using ::testing::Pair;
using testing::TempDir;
using ::testing::UnorderedElementsAre;
using testing::WriteFile;

TEST(FindEnvironment, PathsStartWithSlashOrDot) {
  TempDir d;
  WriteFile(d / "a.toml", "");
  WriteFile(d / ".edf/b.toml", "");
  EXPECT_EQ(*FindEnvironment(d / "a.toml", Options("/")), d / "a.toml");
  EXPECT_EQ(*FindEnvironment("./a.toml", Options(d.path())), d / "a.toml");
  EXPECT_EQ(*FindEnvironment(".edf/b.toml", Options(d.path())), d / ".edf/b.toml");
  auto missing = FindEnvironment("./nope.toml", Options(d.path()));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr(d / "nope.toml"));
}

TEST(FindEnvironment, NamesSearchEdfPathInOrder) {
  TempDir d;
  WriteFile(d / "one/x.toml", "");
  WriteFile(d / "two/x.toml", "");
  WriteFile(d / "two/y.toml", "");
  auto opts = Options("/", {{"EDF_PATH", d / "one" + ":" + d / "two"}, {"HOME", d / "home"}});
  EXPECT_EQ(*FindEnvironment("x", opts), d / "one/x.toml");
  EXPECT_EQ(*FindEnvironment("y", opts), d / "two/y.toml");
  auto missing = FindEnvironment("z", opts);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr(d / "one/z.toml"));
  EXPECT_THAT(missing.error().message, HasSubstr(d / "two/z.toml"));
  EXPECT_THAT(missing.error().message, HasSubstr("EDF_PATH"));
}

TEST(FindEnvironment, DefaultsToHomeDotEdf) {
  TempDir d;
  WriteFile(d / ".edf/ubuntu.toml", "");
  EXPECT_EQ(*FindEnvironment("ubuntu", Options("/", {{"HOME", d.path()}})), d / ".edf/ubuntu.toml");
}

TEST(FindEnvironment, HintsAtDotSlashForAFileInTheSubmitDirectory) {
  TempDir d;
  WriteFile(d / "test.toml", "");
  auto r = FindEnvironment("test.toml", Options(d.path(), {{"HOME", d / "h"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("--environment=./test.toml"));
}

TEST(LoadEnvironment, Defaults) {
  TempDir d;
  WriteFile(d / "e.toml", "");
  auto e = LoadEnvironment("./e.toml", Options(d.path()));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->image, "");
  EXPECT_EQ(e->image_ref.kind, ImageKind::kNone);
  EXPECT_FALSE(e->workdir.has_value());
  EXPECT_FALSE(e->entrypoint);
  EXPECT_TRUE(e->writable);
  EXPECT_TRUE(e->mounts.empty());
  EXPECT_TRUE(e->env.empty());
  EXPECT_TRUE(e->annotations.empty());
  EXPECT_THAT(e->files, ElementsAre(d / "e.toml"));
}

TEST(LoadEnvironment, AllFields) {
  TempDir d;
  WriteFile(d / "e.toml", R"(
image = "./img.sqsh"
workdir = "${W}/"
entrypoint = true
writable = false
mounts = ["./data:/data:ro", "${W}/x.sqsh:/x:sqsh"]
[env]
A = "${W}"
B = ""
[annotations]
com.hooks.ssh.enabled = "true"
[annotations.org.example]
level = 3
flag = false
)");
  auto e = LoadEnvironment("./e.toml", Options(d.path(), {{"W", "/w"}}));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->image, d / "img.sqsh");
  EXPECT_EQ(e->image_ref.kind, ImageKind::kSquashfs);
  EXPECT_EQ(*e->workdir, "/w");
  EXPECT_TRUE(e->entrypoint);
  EXPECT_FALSE(e->writable);
  ASSERT_EQ(e->mounts.size(), 2u);
  EXPECT_EQ(e->mounts[0].ToString(), d / "data" + ":/data:ro");
  EXPECT_TRUE(e->mounts[1].squashfs);
  EXPECT_THAT(e->env, UnorderedElementsAre(Pair("A", "/w"), Pair("B", "")));
  EXPECT_THAT(e->annotations, UnorderedElementsAre(Pair("com.hooks.ssh.enabled", "true"),
                                                   Pair("org.example.level", "3"),
                                                   Pair("org.example.flag", "false")));
  EXPECT_TRUE(e->warnings.empty());
}

TEST(LoadEnvironment, UnknownKeysWarnNamingTheKey) {
  TempDir d;
  WriteFile(d / "e.toml", "imagee = \"x\"\n[extra]\nk = 1\n");
  auto e = LoadEnvironment("./e.toml", Options(d.path()));
  ASSERT_TRUE(e.ok()) << e.error().message;
  ASSERT_EQ(e->warnings.size(), 2u);
  EXPECT_THAT(e->warnings[0], HasSubstr("unknown key 'extra'"));
  EXPECT_THAT(e->warnings[1], HasSubstr("e.toml:1:1: unknown key 'imagee'"));
}

TEST(LoadEnvironment, WrongTypesAreErrorsWithLine) {
  TempDir d;
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"writable = \"yes\"\n", "e.toml:1:12: 'writable' must be true or false"},
      {"\nentrypoint = 1\n", "e.toml:2:14: 'entrypoint' must be true or false"},
      {"image = 3\n", "'image' must be a string"},
      {"mounts = \"/a\"\n", "'mounts' must be an array of strings"},
      {"mounts = [1]\n", "'mounts' must be a string"},
      {"env = 1\n", "'env' must be a table"},
      {"[env]\nA = 1\n", "e.toml:2:5: 'env.A' must be a string"},
      {"[annotations]\na = [1]\n", "annotation 'a' must be a string"},
      {"base_environment = 7\n", "'base_environment' must be a string"},
      {"workdir = \"rel/dir\"\n", "'workdir' \"rel/dir\" must be an absolute path"},
      {"mounts = [\"/a:b\"]\n", "e.toml:1:11: mount \"/a:b\": destination 'b'"},
      {"image = \"Bad Name\"\n", "image \"Bad Name\""},
  };
  for (const auto& c : cases) {
    WriteFile(d / "e.toml", c.text);
    auto e = LoadEnvironment("./e.toml", Options(d.path()));
    ASSERT_FALSE(e.ok()) << c.text;
    EXPECT_THAT(e.error().message, HasSubstr(c.message)) << c.text;
  }
}

TEST(LoadEnvironment, InvalidTomlNamesLineAndColumn) {
  TempDir d;
  WriteFile(d / "e.toml", "image = \"a\"\nworkdir = /x\n");
  auto e = LoadEnvironment("./e.toml", Options(d.path()));
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.error().message, HasSubstr(d / "e.toml:2:11: invalid TOML"));
}

TEST(LoadEnvironment, EnvSeesOnlyTheHostEnvironment) {
  TempDir d;
  WriteFile(d / "e.toml", "[env]\nA = \"a\"\nB = \"${A}\"\n");
  auto e = LoadEnvironment("./e.toml", Options(d.path(), {{"A", "host"}}));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->env["B"], "host");
  auto undefined = LoadEnvironment("./e.toml", Options(d.path()));
  ASSERT_FALSE(undefined.ok());
  EXPECT_THAT(undefined.error().message, HasSubstr("variable 'A' is not defined"));
  EXPECT_THAT(undefined.error().message, HasSubstr(d / "e.toml:3:5"));
}

TEST(LoadEnvironment, BaseEnvironmentsMergeInOrderThenTheFile) {
  TempDir d;
  WriteFile(d / "edfs/base1.toml", R"(
image = "/one.sqsh"
workdir = "/one"
writable = false
mounts = ["/a", "/b:/b:ro"]
[env]
X = "1"
Y = "1"
[annotations]
k.a = "1"
)");
  WriteFile(d / "edfs/base2.toml", R"(
image = "/two.sqsh"
mounts = ["/b:/b:ro", "/c"]
[env]
Y = "2"
Z = "2"
[annotations]
k.b = "2"
)");
  WriteFile(d / "top.toml", R"(
base_environment = ["base1", "./edfs/base2.toml"]
workdir = "/top"
mounts = ["/a", "/d"]
[env]
Z = "top"
[annotations]
k.a = "top"
)");
  auto e = LoadEnvironment("./top.toml", Options(d.path(), {{"EDF_PATH", d / "edfs"}}));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->image, "/two.sqsh");
  EXPECT_EQ(*e->workdir, "/top");
  EXPECT_FALSE(e->writable);
  std::vector<std::string> mounts;
  for (const auto& m : e->mounts) mounts.push_back(m.ToString());
  EXPECT_THAT(mounts, ElementsAre("/a:/a", "/b:/b:ro", "/c:/c", "/d:/d"));
  EXPECT_THAT(e->env, UnorderedElementsAre(Pair("X", "1"), Pair("Y", "2"), Pair("Z", "top")));
  EXPECT_THAT(e->annotations, UnorderedElementsAre(Pair("k.a", "top"), Pair("k.b", "2")));
  EXPECT_THAT(e->files, ElementsAre(d / "edfs/base1.toml", d / "edfs/base2.toml", d / "top.toml"));
}

TEST(LoadEnvironment, BaseEnvironmentAsStringAndNested) {
  TempDir d;
  WriteFile(d / "a.toml", "[env]\nA = \"a\"\n");
  WriteFile(d / "b.toml", "base_environment = \"./a.toml\"\n[env]\nB = \"b\"\n");
  WriteFile(d / "c.toml", "base_environment = \"./b.toml\"\n[env]\nC = \"c\"\n");
  auto e = LoadEnvironment("./c.toml", Options(d.path()));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_THAT(e->env, UnorderedElementsAre(Pair("A", "a"), Pair("B", "b"), Pair("C", "c")));
}

TEST(LoadEnvironment, BaseRelativePathsAreRelativeToTheSubmitDirectory) {
  TempDir d;
  WriteFile(d / "sub/base.toml", "[env]\nWHERE = \"cwd\"\n");
  WriteFile(d / "edf/base.toml", "[env]\nWHERE = \"edf dir\"\n");
  WriteFile(d / "edf/top.toml", "base_environment = \"./base.toml\"\n");
  auto e = LoadEnvironment(d / "edf/top.toml", Options(d / "sub"));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->env["WHERE"], "cwd");
}

TEST(LoadEnvironment, CycleIsAnErrorNamingTheChain) {
  TempDir d;
  WriteFile(d / "a.toml", "base_environment = \"./b.toml\"\n");
  WriteFile(d / "b.toml", "base_environment = [\"./c.toml\"]\n");
  WriteFile(d / "c.toml", "base_environment = \"./a.toml\"\n");
  auto e = LoadEnvironment("./a.toml", Options(d.path()));
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.error().message, HasSubstr("cycle: " + d / "a.toml -> " + d / "b.toml -> " +
                                           d / "c.toml -> " + d / "a.toml"));
  WriteFile(d / "self.toml", "base_environment = \"./self.toml\"\n");
  EXPECT_THAT(LoadEnvironment("./self.toml", Options(d.path())).error().message,
              HasSubstr("cycle"));
}

TEST(LoadEnvironment, TenLevelsOfBasesAreAllowedNotEleven) {
  TempDir d;
  // l0 <- l1 <- ... <- l11: loading lN needs N levels of bases.
  WriteFile(d / "l0.toml", "[env]\nBOTTOM = \"yes\"\n");
  for (int i = 1; i <= 11; ++i) {
    WriteFile(d / ("l" + std::to_string(i) + ".toml"),
              "base_environment = \"./l" + std::to_string(i - 1) + ".toml\"\n");
  }
  auto ten = LoadEnvironment("./l10.toml", Options(d.path()));
  ASSERT_TRUE(ten.ok()) << ten.error().message;
  EXPECT_EQ(ten->env["BOTTOM"], "yes");
  auto eleven = LoadEnvironment("./l11.toml", Options(d.path()));
  ASSERT_FALSE(eleven.ok());
  EXPECT_THAT(eleven.error().message, HasSubstr("more than 10 levels"));
  EXPECT_THAT(eleven.error().message, HasSubstr("l11.toml -> "));
}

TEST(LoadEnvironment, MissingBaseNamesTheReferringFile) {
  TempDir d;
  WriteFile(d / "a.toml", "base_environment = \"nonexistent\"\n");
  auto e = LoadEnvironment("./a.toml", Options(d.path(), {{"EDF_PATH", d / "none"}}));
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.error().message,
              HasSubstr(d / "a.toml: base_environment: EDF 'nonexistent' not found"));
}

TEST(AnnotationEnvironment, DotsBecomeDoubleUnderscores) {
  EXPECT_THAT(AnnotationEnvironment({{"com.hooks.cxi.enabled", "false"}, {"quick", "x"}}),
              UnorderedElementsAre(Pair("OCI_ANNOTATION_com__hooks__cxi__enabled", "false"),
                                   Pair("OCI_ANNOTATION_quick", "x")));
}

}  // namespace
}  // namespace strun::edf
