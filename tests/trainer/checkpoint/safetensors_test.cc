// Round trips of the safetensors writer/reader and the format's byte layout.
#include "checkpoint/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "checkpoint/file_sync.h"

namespace strun::train {
namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("strun_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& n) { return (dir_ / n).string(); }
  std::filesystem::path dir_;
};

TEST_F(SafetensorsTest, RoundTripKeepsBytesShapesDtypesAndMetadata) {
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
  std::vector<int64_t> b = {1, -2, 1LL << 40};
  std::vector<uint16_t> c = {0x3f80, 0xc000};  // bf16 1.0, -2.0
  std::string path = Path("x.safetensors");
  ASSERT_TRUE(WriteSafetensors(path,
                               {{"a", "F32", {2, 3}, a.data(), a.size() * 4},
                                {"b", "I64", {3}, b.data(), b.size() * 8},
                                {"c.d", "BF16", {2}, c.data(), c.size() * 2}},
                               {{"version", "1.4"}, {"unsharded_shape", "(2, 3)"}}));
  auto f = SafetensorsFile::Read(path);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->metadata().at("version"), "1.4");
  EXPECT_EQ(f->metadata().at("unsharded_shape"), "(2, 3)");
  const auto* ea = f->Find("a");
  ASSERT_NE(ea, nullptr);
  EXPECT_EQ(ea->dtype, "F32");
  EXPECT_EQ(ea->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(f->data(*ea), a.data(), 24), 0);
  const auto* eb = f->Find("b");
  ASSERT_NE(eb, nullptr);
  EXPECT_EQ(std::memcmp(f->data(*eb), b.data(), 24), 0);
  const auto* ec = f->Find("c.d");
  ASSERT_NE(ec, nullptr);
  EXPECT_EQ(ec->dtype, "BF16");
  EXPECT_EQ(std::memcmp(f->data(*ec), c.data(), 4), 0);
  EXPECT_EQ(f->Find("missing"), nullptr);
}

TEST_F(SafetensorsTest, HeaderIsLittleEndianLengthThenPaddedJson) {
  float v = 2.0f;
  std::string path = Path("h.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"data", "F32", {1}, &v, 4}}, {}));
  auto bytes = ReadWholeFile(path);
  ASSERT_TRUE(bytes);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>((*bytes)[i])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(bytes->size(), 8 + n + 4);
  auto header = nlohmann::json::parse(bytes->substr(8, n));
  EXPECT_EQ(header["data"]["dtype"], "F32");
  EXPECT_EQ(header["data"]["data_offsets"], nlohmann::json::array({0, 4}));
  EXPECT_FALSE(header.contains("__metadata__"));
  float back;
  std::memcpy(&back, bytes->data() + 8 + n, 4);
  EXPECT_EQ(back, 2.0f);
}

TEST_F(SafetensorsTest, WrongByteCountIsRefused) {
  float v[2] = {1, 2};
  auto s = WriteSafetensors(Path("bad.safetensors"), {{"t", "F32", {3}, v, 8}});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("'t'"), std::string::npos);
}

TEST_F(SafetensorsTest, TruncatedFileIsAnErrorNamingIt) {
  std::vector<float> a(100, 1.0f);
  std::string path = Path("t.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"a", "F32", {100}, a.data(), 400}}));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);
  auto f = SafetensorsFile::Read(path);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find(path), std::string::npos);
  std::filesystem::resize_file(path, 5);
  EXPECT_FALSE(SafetensorsFile::Read(path));
}

TEST_F(SafetensorsTest, RenameDirectoryReplacingSwapsAnExistingDirectory) {
  std::filesystem::create_directories(Path("old"));
  ASSERT_TRUE(WriteFileSynced(Path("old/f"), "old"));
  std::filesystem::create_directories(Path("new.tmp"));
  ASSERT_TRUE(WriteFileSynced(Path("new.tmp/f"), "new"));
  ASSERT_TRUE(RenameDirectoryReplacing(Path("new.tmp"), Path("old")));
  EXPECT_EQ(*ReadWholeFile(Path("old/f")), "new");
  EXPECT_FALSE(std::filesystem::exists(Path("new.tmp")));
  ASSERT_TRUE(WriteFileAtomic(Path("latest.txt"), "12"));
  ASSERT_TRUE(WriteFileAtomic(Path("latest.txt"), "15"));
  EXPECT_EQ(*ReadWholeFile(Path("latest.txt")), "15");
}

}  // namespace
}  // namespace strun::train
