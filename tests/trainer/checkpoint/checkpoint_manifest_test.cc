// CRC-32C and the checkpoint checksum manifests (checkpoint_manifest.h), on real files.
#include "checkpoint/checkpoint_manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "checkpoint/file_sync.h"
#include "strun/crc32c.h"

namespace strun::train {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(Crc32c, KnownValues) {
  // RFC 3720 (iSCSI) B.4 and the common check value.
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
  std::vector<unsigned char> zeros(32, 0), ones(32, 0xff), inc(32), dec(32);
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<unsigned char>(i);
    dec[i] = static_cast<unsigned char>(31 - i);
  }
  EXPECT_EQ(Crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(inc.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(dec.data(), 32), 0x113FDB5Cu);
}

TEST(Crc32c, HardwareAndPortablePathsAgreeAtEveryLengthAndSplit) {
  std::mt19937 gen(3);
  std::vector<unsigned char> data(4099);
  for (auto& b : data) b = static_cast<unsigned char>(gen());
  for (std::size_t n : {0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099}) {
    const uint32_t whole = Crc32cExtendPortable(0, data.data(), n);
    EXPECT_EQ(Crc32c(data.data(), n), whole) << n;
    // Extending in pieces (as ChecksumFile does, buffer by buffer) gives the same value.
    const std::size_t cut = n / 3;
    EXPECT_EQ(Crc32cExtend(Crc32cExtend(0, data.data(), cut), data.data() + cut, n - cut), whole)
        << n;
  }
}

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strun-manifest-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    step_ = root_ / "4";
    fs::create_directories(step_ / "model");
  }
  void TearDown() override { fs::remove_all(root_); }
  void Put(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    ASSERT_TRUE(WriteFileSynced(p.string(), text).ok());
  }
  fs::path root_, step_;
};

TEST_F(ManifestTest, RoundTripVerifiesAndIsDeterministic) {
  Put(step_ / "checkpoint_metadata.json", "{}");
  Put(step_ / "model" / "w.safetensors", std::string(10000, 'x'));
  ChecksumManifest m;
  ASSERT_TRUE(m.Add(step_.string(), "model/w.safetensors").ok());
  ASSERT_TRUE(m.Add(step_.string(), "checkpoint_metadata.json").ok());
  ASSERT_TRUE(m.Write(step_.string(), ManifestFileName(0, 2)).ok());
  const std::string first = *ReadWholeFile((step_ / "checksums" / "rank-0-of-2.json").string());
  ASSERT_TRUE(m.Write(step_.string(), ManifestFileName(0, 2)).ok());
  EXPECT_EQ(*ReadWholeFile((step_ / "checksums" / "rank-0-of-2.json").string()), first);
  EXPECT_THAT(first, HasSubstr("\"crc32c\""));

  auto read = ChecksumManifest::Read(step_.string());
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->files(), m.files());
  EXPECT_TRUE((*read)->Verify(step_.string(), "model/w.safetensors").ok());
  EXPECT_TRUE((*read)->Verify(step_.string(), "checkpoint_metadata.json").ok());
}

TEST_F(ManifestTest, ManifestsOfSeveralRanksMerge) {
  Put(step_ / "a", "A");
  Put(step_ / "b", "B");
  ChecksumManifest r0, r1;
  ASSERT_TRUE(r0.Add(step_.string(), "a").ok());
  ASSERT_TRUE(r1.Add(step_.string(), "b").ok());
  ASSERT_TRUE(r0.Write(step_.string(), ManifestFileName(0, 2)).ok());
  ASSERT_TRUE(r1.Write(step_.string(), ManifestFileName(1, 2)).ok());
  auto read = ChecksumManifest::Read(step_.string());
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->files().size(), 2u);
  EXPECT_TRUE((*read)->Verify(step_.string(), "b").ok());
}

TEST_F(ManifestTest, ChangedFileIsRefusedNamingItAndTheEarlierCheckpoint) {
  Put(root_ / "2" / "checkpoint_metadata.json", "{}");  // an earlier checkpoint
  Put(step_ / "model" / "w.safetensors", std::string(4096, '\0'));
  ChecksumManifest m;
  ASSERT_TRUE(m.Add(step_.string(), "model/w.safetensors").ok());
  ASSERT_TRUE(m.Write(step_.string(), ManifestFileName(0, 1)).ok());
  // One float's bytes become NaN, as in the issue; the size stays the same.
  {
    std::fstream f(step_ / "model" / "w.safetensors",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    const unsigned char nan[4] = {0x00, 0x00, 0xc0, 0x7f};
    f.write(reinterpret_cast<const char*>(nan), 4);
  }
  auto read = ChecksumManifest::Read(step_.string());
  ASSERT_TRUE(read.ok() && read->has_value());
  Status s = (*read)->Verify(step_.string(), "model/w.safetensors");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              HasSubstr((step_ / "model/w.safetensors").string() + " is corrupt"));
  EXPECT_THAT(s.error().message,
              HasSubstr("set checkpoints.resume_checkpoint_path to " + (root_ / "2").string()));
}

TEST_F(ManifestTest, UnlistedFileIsRefused) {
  Put(step_ / "a", "A");
  Put(step_ / "b", "B");
  ChecksumManifest m;
  ASSERT_TRUE(m.Add(step_.string(), "a").ok());
  ASSERT_TRUE(m.Write(step_.string(), ManifestFileName(0, 1)).ok());
  auto read = ChecksumManifest::Read(step_.string());
  ASSERT_TRUE(read.ok() && read->has_value());
  Status s = (*read)->Verify(step_.string(), "b");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("is not listed in"));
  EXPECT_THAT(s.error().message, HasSubstr("there is no earlier checkpoint in " + root_.string()));
}

TEST_F(ManifestTest, CheckpointWithoutChecksumsIsReportedAsSuch) {
  auto read = ChecksumManifest::Read(step_.string());
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->has_value());
}

TEST_F(ManifestTest, MalformedOrContradictingManifestsAreErrors) {
  Put(step_ / "checksums" / "rank-0-of-1.json", "{not json");
  auto bad = ChecksumManifest::Read(step_.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("rank-0-of-1.json: malformed checksum manifest"));

  Put(step_ / "checksums" / "rank-0-of-1.json",
      R"({"algorithm": "crc32c", "files": {"a": {"bytes": 1, "crc32c": "00000001"}}})");
  Put(step_ / "checksums" / "rank-0-of-2.json",
      R"({"algorithm": "crc32c", "files": {"a": {"bytes": 1, "crc32c": "00000002"}}})");
  auto contra = ChecksumManifest::Read(step_.string());
  ASSERT_FALSE(contra.ok());
  EXPECT_THAT(contra.error().message, HasSubstr("record different checksums for a"));
}

}  // namespace
}  // namespace strun::train
