#include "strun/edf/image_ref.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strun::edf {
namespace {

using ::testing::HasSubstr;

TEST(ParseImageRef, EmptyIsNone) { EXPECT_EQ(ParseImageRef("", "/")->kind, ImageKind::kNone); }

TEST(ParseImageRef, PathsAreSquashfsFiles) {
  auto r = ParseImageRef("/capstor/x/ngc+24.04.sqsh", "/w");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, ImageKind::kSquashfs);
  EXPECT_EQ(r->path, "/capstor/x/ngc+24.04.sqsh");
  EXPECT_EQ(ParseImageRef("./img.sqsh", "/w/p")->path, "/w/p/img.sqsh");
  EXPECT_EQ(ParseImageRef("../img.sqsh", "/w/p")->path, "/w/img.sqsh");
}

TEST(ParseImageRef, EnrootStyleReference) {
  auto r = ParseImageRef("me@nvcr.io#nvidia/pytorch:24.01-py3", "/");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->kind, ImageKind::kRegistry);
  EXPECT_EQ(r->user, "me");
  EXPECT_EQ(r->registry, "nvcr.io");
  EXPECT_EQ(r->name, "nvidia/pytorch");
  EXPECT_EQ(r->tag, "24.01-py3");
  EXPECT_EQ(r->ImportFileName(), "nvidia+pytorch+24.01-py3.sqsh");
}

TEST(ParseImageRef, DockerStyleReferenceWithHost) {
  auto r = ParseImageRef("nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubuntu22.04", "/");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->registry, "nvcr.io");
  EXPECT_EQ(r->name, "nvidia/k8s/cuda-sample");
  EXPECT_EQ(r->ImportFileName(), "nvidia+k8s+cuda-sample+vectoradd-cuda12.5.0-ubuntu22.04.sqsh");
}

TEST(ParseImageRef, DockerHubDefaults) {
  auto r = ParseImageRef("ubuntu", "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "registry-1.docker.io");
  EXPECT_EQ(r->name, "library/ubuntu");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->ImportFileName(), "ubuntu+latest.sqsh");
  EXPECT_EQ(ParseImageRef("library/ubuntu:24.04", "/")->ImportFileName(), "ubuntu+24.04.sqsh");
  EXPECT_EQ(ParseImageRef("docker.io#library/ubuntu:24.04", "/")->ImportFileName(),
            "ubuntu+24.04.sqsh");
  EXPECT_EQ(ParseImageRef("madeeks/osu-mb:6.2", "/")->name, "madeeks/osu-mb");
}

TEST(ParseImageRef, RejectsGarbage) {
  auto r = ParseImageRef("Not An Image!", "/");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("\"Not An Image!\""));
  EXPECT_THAT(r.error().message, HasSubstr("start it with '/' or './'"));
}

TEST(ImportHint, SaysHowToImportAndWhatToWrite) {
  auto r = ParseImageRef("nvcr.io#nvidia/pytorch:24.01-py3", "/");
  std::string hint = ImportHint("nvcr.io#nvidia/pytorch:24.01-py3", *r);
  EXPECT_THAT(hint, HasSubstr("enroot import -o nvidia+pytorch+24.01-py3.sqsh "
                              "docker://nvcr.io#nvidia/pytorch:24.01-py3"));
  EXPECT_THAT(hint, HasSubstr("strun-edf import"));
  EXPECT_THAT(hint, HasSubstr("image = \"/path/to/nvidia+pytorch+24.01-py3.sqsh\""));
}

}  // namespace
}  // namespace strun::edf
