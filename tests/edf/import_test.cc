// strun-edf import: directories and docker/OCI archives to squashfs, whiteouts, enroot metadata,
// enroot-style names; and the strun-edf command line.
#include "strun/edf/import.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "runtime_fixture.h"

namespace strun::edf::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

bool HaveTools() {
  return !Sh("command -v mksquashfs").empty() && !Sh("command -v unsquashfs").empty();
}

std::string Unpack(const std::string& image, const std::string& dir) {
  Sh("unsquashfs -no-progress -d " + dir + " " + image + " >/dev/null 2>&1");
  return dir;
}

// A docker-archive (as `podman save` writes it) with two layers: the second deletes dir/x with a
// whiteout, empties opq/ with an opaque whiteout, and tries to delete through a symlink.
std::string MakeDockerArchive(const TempDir& d, const std::string& victim) {
  std::string l1 = d / "l1", l2 = d / "l2", ar = d / "ar";
  WriteFile(l1 + "/dir/x", "x\n");
  WriteFile(l1 + "/dir/y", "y\n");
  WriteFile(l1 + "/opq/old", "old\n");
  WriteFile(l1 + "/etc/os-release", "NAME=test\n");
  std::filesystem::create_symlink(std::filesystem::path(victim).parent_path(), l1 + "/evil");
  WriteFile(l2 + "/dir/.wh.x", "");
  WriteFile(l2 + "/opq/.wh..wh..opq", "");
  WriteFile(l2 + "/opq/new", "new\n");
  WriteFile(l2 + "/evil/.wh." + std::filesystem::path(victim).filename().string(), "");
  std::filesystem::create_directories(ar);
  Sh("tar -C " + l1 + " -cf " + ar + "/layer1.tar . && tar -C " + l2 + " -czf " + ar +
     "/layer2.tar.gz .");
  WriteFile(ar + "/config.json",
            R"({"architecture":"amd64","config":{"Env":["PATH=/usr/bin:/bin","LANG=C.UTF-8"],)"
            R"("WorkingDir":"/work dir","Entrypoint":["/bin/entry"],"Cmd":["--flag","it's"]}})");
  WriteFile(
      ar + "/manifest.json",
      R"([{"Config":"config.json","RepoTags":["localhost/test-image:1.0"],"Layers":["layer1.tar","layer2.tar.gz"]}])");
  Sh("tar -C " + ar + " -cf " + d / "image.tar" + " .");
  return d / "image.tar";
}

TEST(Import, DirectoryToSquashfs) {
  if (!HaveTools()) GTEST_SKIP() << "needs squashfs-tools";
  TempDir d;
  WriteFile(d / "myroot/etc/hello", "hi\n");
  ::chdir(d.path().c_str());
  auto out = ImportImage({d / "myroot/", ""});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, d / "myroot.sqsh");
  EXPECT_EQ(ReadFile(Unpack(*out, d / "check") + "/etc/hello"), "hi\n");
  auto again = ImportImage({d / "myroot", ""});
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(again.error().message, HasSubstr("already exists"));
  ::chdir("/");
}

TEST(Import, DockerArchiveAppliesLayersAndWhiteouts) {
  if (!HaveTools()) GTEST_SKIP() << "needs squashfs-tools";
  TempDir d;
  std::string victim = d / "victim/keep-me";
  WriteFile(victim, "must survive\n");
  std::string archive = MakeDockerArchive(d, victim);
  ::chdir(d.path().c_str());
  auto out = ImportImage({archive, ""});
  ::chdir("/");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(std::filesystem::path(*out).filename(), "test-image+1.0.sqsh");
  std::string root = Unpack(*out, d / "check");
  EXPECT_FALSE(std::filesystem::exists(root + "/dir/x"));
  EXPECT_EQ(ReadFile(root + "/dir/y"), "y\n");
  EXPECT_FALSE(std::filesystem::exists(root + "/opq/old"));
  EXPECT_EQ(ReadFile(root + "/opq/new"), "new\n");
  EXPECT_FALSE(std::filesystem::exists(root + "/dir/.wh.x"));
  EXPECT_FALSE(std::filesystem::exists(root + "/opq/.wh..wh..opq"));
  EXPECT_EQ(ReadFile(victim), "must survive\n");  // the whiteout did not follow the symlink
  EXPECT_EQ(ReadFile(root + "/etc/environment"), "PATH=/usr/bin:/bin\nLANG=C.UTF-8\n");
  std::string rc = ReadFile(root + "/etc/rc");
  EXPECT_THAT(rc, HasSubstr("cd \"/work dir\""));
  EXPECT_THAT(rc, HasSubstr("exec '/bin/entry' '--flag' 'it'\\''s'"));
}

TEST(Import, OciLayoutArchive) {
  if (!HaveTools()) GTEST_SKIP() << "needs squashfs-tools";
  TempDir d;
  std::string blobs = d / "oci/blobs/sha256";
  WriteFile(d / "layer/hello.txt", "oci\n");
  std::filesystem::create_directories(blobs);
  Sh("tar -C " + d / "layer" + " -czf " + blobs + "/aaaa .");
  WriteFile(blobs + "/cccc", R"({"config":{"Env":["X=1"],"WorkingDir":"/w"}})");
  WriteFile(blobs + "/mmmm",
            R"({"config":{"digest":"sha256:cccc"},"layers":[{"digest":"sha256:aaaa"}]})");
  WriteFile(d / "oci/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  WriteFile(
      d / "oci/index.json",
      R"({"manifests":[{"digest":"sha256:mmmm","annotations":{"org.opencontainers.image.ref.name":"1.0"}}]})");
  Sh("tar -C " + d / "oci" + " -cf " + d / "oci.tar" + " .");
  auto unnamed = ImportImage({d / "oci.tar", ""});
  ASSERT_FALSE(unnamed.ok());
  EXPECT_THAT(unnamed.error().message, HasSubstr("give the output file with -o"));
  auto out = ImportImage({d / "oci.tar", d / "oci.sqsh"});
  ASSERT_TRUE(out.ok()) << out.error().message;
  std::string root = Unpack(*out, d / "check");
  EXPECT_EQ(ReadFile(root + "/hello.txt"), "oci\n");
  EXPECT_EQ(ReadFile(root + "/etc/environment"), "X=1\n");
  EXPECT_THAT(ReadFile(root + "/etc/rc"), HasSubstr("cd \"/w\""));
}

TEST(Import, RejectsNonArchives) {
  TempDir d;
  WriteFile(d / "notatar", "hello");
  auto out = ImportImage({d / "notatar", d / "x.sqsh"});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.error().message, HasSubstr("not a readable tar archive"));
  EXPECT_THAT(ImportImage({d / "missing", ""}).error().message, HasSubstr("no such file"));
}

// The strun-edf program itself.
TEST(StrunEdfCli, RenderValidateAndErrors) {
  TempDir d;
  std::string exe = STRUN_EDF_EXE;
  WriteFile(d / "edfs/base.toml", "[env]\nA = \"base\"\n");
  WriteFile(d / "tree/f", "f");
  Sh("mksquashfs " + d / "tree" + " " + d / "img.sqsh" + " -no-progress -quiet >/dev/null 2>&1");
  WriteFile(d / "fake.sqsh", "not really an image");
  WriteFile(d / "fake.toml", "image = \"./fake.sqsh\"\n");
  WriteFile(
      d / "ok.toml",
      "base_environment = \"base\"\nimage = \"./img.sqsh\"\nbogus = 1\n[env]\nB = \"${HOME}\"\n");
  std::string env = "cd " + d.path() + " && HOME=/h EDF_PATH=" + d / "edfs" + " ";
  std::string toml = Sh(env + exe + " render ./ok.toml 2>&1");
  EXPECT_THAT(toml, HasSubstr("unknown key 'bogus'"));
  EXPECT_THAT(toml, HasSubstr("image = '" + d / "img.sqsh" + "'"));
  EXPECT_THAT(toml, HasSubstr("A = 'base'"));
  EXPECT_THAT(toml, HasSubstr("B = '/h'"));
  std::string json = Sh(env + exe + " render --json ./ok.toml 2>/dev/null");
  EXPECT_THAT(json, HasSubstr("\"image_kind\": \"squashfs\""));
  EXPECT_THAT(Sh(env + exe + " validate ./ok.toml 2>&1; echo rc=$?"), HasSubstr(": OK\nrc=0"));
  EXPECT_THAT(Sh(env + exe + " validate ./fake.toml 2>&1"),
              HasSubstr("fake.sqsh: not a squashfs image"));
  WriteFile(d / "bad.toml", "image = \"x\"\nmounts = [\"/nonexistent-strun-src:/x\"]\n");
  std::string bad = Sh(env + exe + " validate ./bad.toml 2>&1; echo rc=$?");
  EXPECT_THAT(bad, HasSubstr("registry reference"));
  EXPECT_THAT(bad, HasSubstr("/nonexistent-strun-src: No such file or directory"));
  EXPECT_THAT(bad, HasSubstr("rc=1"));
  std::string missing = Sh(env + exe + " render nope 2>&1; echo rc=$?");
  EXPECT_THAT(missing, HasSubstr("EDF 'nope' not found"));
  EXPECT_THAT(missing, HasSubstr("rc=1"));
}

}  // namespace
}  // namespace strun::edf::testing
