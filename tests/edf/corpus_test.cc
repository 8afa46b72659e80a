// Every published EDF (tests/edf/data/corpus, copied from the CSCS documentation) loads, renders
// and round-trips; the published invalid ones fail with their line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "strun/edf/edf.h"
#include "strun/edf/render.h"
#include "strun/edf/validate.h"
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

const std::string kCorpus = STRUN_EDF_TEST_DATA "/corpus";
const EnvMap kAlps = {{"SCRATCH", "/capstor/scratch/cscs/alice"},
                      {"USER", "alice"},
                      {"HOME", "/users/alice"},
                      {"PWD", "/users/alice/pyfr"}};

Result<Edf> Load(const std::string& name, const std::string& cwd = "/users/alice") {
  return LoadEnvironment(kCorpus + "/" + name, Options(cwd, kAlps));
}

std::vector<std::string> Mounts(const Edf& e) {
  std::vector<std::string> out;
  for (const auto& m : e.mounts) out.push_back(m.ToString());
  return out;
}

TEST(Corpus, EveryValidFileLoadsAndRoundTripsThroughRender) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with("E") || name == "E17.toml") continue;
    ++count;
    auto e = Load(name);
    ASSERT_TRUE(e.ok()) << name << ": " << e.error().message;
    EXPECT_TRUE(e->warnings.empty()) << name;
    TempDir d;
    WriteFile(d / "r.toml", RenderToml(*e));
    auto again = LoadEnvironment("./r.toml", Options(d.path()));
    ASSERT_TRUE(again.ok()) << name << ": " << again.error().message << "\n" << RenderToml(*e);
    EXPECT_EQ(again->image, e->image) << name;
    EXPECT_EQ(again->workdir, e->workdir) << name;
    EXPECT_EQ(again->entrypoint, e->entrypoint) << name;
    EXPECT_EQ(again->writable, e->writable) << name;
    EXPECT_EQ(again->mounts, e->mounts) << name;
    EXPECT_EQ(again->env, e->env) << name;
    EXPECT_EQ(again->annotations, e->annotations) << name;
  }
  EXPECT_EQ(count, 16);
}

TEST(Corpus, QuickStartUbuntu) {
  auto e = Load("E01.toml");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->image_ref.kind, ImageKind::kRegistry);
  EXPECT_EQ(e->image_ref.ImportFileName(), "ubuntu+24.04.sqsh");
  EXPECT_THAT(Mounts(*e), ElementsAre("/capstor/scratch/cscs/alice:/capstor/scratch/cscs/alice"));
  EXPECT_EQ(*e->workdir, "/capstor/scratch/cscs/alice");
}

TEST(Corpus, RegistryImagesNeedImportBeforeTheyRun) {
  auto e = Load("E02.toml");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->image_ref.registry, "quay.io");
  EXPECT_EQ(e->image_ref.name, "madeeks/osu-mb");
  EXPECT_THAT(e->annotations, UnorderedElementsAre(Pair("com.hooks.cxi.enabled", "false")));
  auto st = CheckLaunchable(*e, UserIdentity::OfProcess());
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("registry reference"));
  EXPECT_THAT(st.error().message, HasSubstr("madeeks+osu-mb+6.2-mpich4.1-ubuntu22.04-arm64.sqsh"));
}

TEST(Corpus, TableHeaderAnnotations) {
  auto e = Load("E07.toml");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->image, "");
  EXPECT_THAT(e->annotations,
              UnorderedElementsAre(Pair("com.hooks.ssh.authorize_ssh_key",
                                        "/capstor/scratch/cscs/alice/tests/edf/authorized_keys"),
                                   Pair("com.hooks.ssh.enabled", "true")));
  EXPECT_THAT(AnnotationEnvironment(e->annotations),
              UnorderedElementsAre(Pair("OCI_ANNOTATION_com__hooks__ssh__authorize_ssh_key",
                                        "/capstor/scratch/cscs/alice/tests/edf/authorized_keys"),
                                   Pair("OCI_ANNOTATION_com__hooks__ssh__enabled", "true")));
}

TEST(Corpus, TutorialStyleSquashfsEdf) {
  auto e = Load("E10.toml");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->image_ref.kind, ImageKind::kSquashfs);
  EXPECT_EQ(e->image, "/capstor/scratch/cscs/alice/ce-images/ngc-pytorch-my-app+25.06.sqsh");
  EXPECT_THAT(Mounts(*e), ElementsAre("/capstor:/capstor", "/iopsstor:/iopsstor",
                                      "/users/alice/my-app:/users/alice/my-app"));
  EXPECT_EQ(*e->workdir, "/users/alice/my-app");
  EXPECT_THAT(e->env,
              UnorderedElementsAre(Pair("NCCL_DEBUG", "INFO"), Pair("CUDA_CACHE_DISABLE", "1"),
                                   Pair("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"),
                                   Pair("MPICH_GPU_SUPPORT_ENABLED", "0")));
  EXPECT_EQ(e->annotations.at("com.hooks.aws_ofi_nccl.variant"), "cuda12");
  // Running it needs the image, which exists only on Alps.
  auto st = CheckLaunchable(*e, UserIdentity::OfProcess());
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("ngc-pytorch-my-app+25.06.sqsh"));
}

TEST(Corpus, WritableEntrypointAndTrailingSlashes) {
  auto e = Load("E13.toml");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_TRUE(e->entrypoint);
  EXPECT_TRUE(e->writable);
  EXPECT_THAT(Mounts(*e), ElementsAre("/capstor:/capstor", "/iopsstor:/iopsstor"));
}

TEST(Corpus, PwdMount) {
  auto e = Load("E15.toml");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_THAT(Mounts(*e), ElementsAre("/users/alice/pyfr:/pyfr",
                                      "/capstor/scratch/cscs/alice:/capstor/scratch/cscs/alice"));
  EXPECT_EQ(e->env.at("PMIX_MCA_psec"), "^munge");
}

TEST(Corpus, MissingVariablesAreNamed) {
  auto e = LoadEnvironment(kCorpus + "/E16.toml", Options("/", {{"SCRATCH", "/s"}}));
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.error().message, HasSubstr("variable 'HOME' is not defined"));
  EXPECT_THAT(e.error().message, HasSubstr("E16.toml:4:5"));
}

TEST(Corpus, ThreeBaseEnvironments) {
  // E17's bases are not published; these stand in for them, in the submit directory.
  TempDir d;
  WriteFile(d / "table-anno.toml", "[annotations]\nquick = \"brown\"\nfox = \"jumps\"\n");
  WriteFile(d / "top-simple-1.toml", "image = \"ubuntu:multi-1\"\nworkdir = \"/work\"\n");
  WriteFile(d / "table-env.toml", "[env]\nquick = \"lazy\"\ndog = \"sleeps\"\n");
  auto e = Load("E17.toml", d.path());
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->image, "ubuntu:multi-2");
  EXPECT_EQ(*e->workdir, "/work");
  EXPECT_THAT(e->annotations, UnorderedElementsAre(Pair("quick", "algebra"), Pair("fox", "jumps")));
  EXPECT_THAT(e->env, UnorderedElementsAre(Pair("quick", "counting"), Pair("dog", "sleeps")));
  EXPECT_EQ(e->files.size(), 4u);
  EXPECT_FALSE(Load("E17.toml", "/nonexistent").ok());
}

TEST(Corpus, PublishedInvalidFilesFailWithTheirLine) {
  struct Case {
    const char* file;
    const char* where;
  } cases[] = {
      {"N01.toml", "N01.toml:4:"}, {"N02.toml", "N02.toml:5:"}, {"N03.toml", "N03.toml:2:"}};
  for (const auto& c : cases) {
    auto e = Load(c.file);
    ASSERT_FALSE(e.ok()) << c.file;
    EXPECT_THAT(e.error().message, HasSubstr(c.where)) << e.error().message;
    EXPECT_THAT(e.error().message, HasSubstr("invalid TOML")) << e.error().message;
  }
}

TEST(Render, JsonHasKindsFilesAndMounts) {
  auto e = Load("E04.toml");
  ASSERT_TRUE(e.ok());
  auto j = RenderJson(*e);
  EXPECT_EQ(j["image_kind"], "registry");
  EXPECT_EQ(j["image_ref"]["import_file"], "nvidia+pytorch+25.11-py3.sqsh");
  EXPECT_EQ(j["mounts"][0]["source"], "/capstor/scratch/cscs/alice");
  EXPECT_EQ(j["mounts"][0]["type"], "bind");
  EXPECT_EQ(j["annotations"]["com.hooks.aws_ofi_nccl.variant"], "cuda-dl");
  EXPECT_EQ(j["workdir"], nullptr);
  EXPECT_EQ(j["files"][0], kCorpus + "/E04.toml");
}

}  // namespace
}  // namespace strun::edf
