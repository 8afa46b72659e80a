#include "checkpoint/checkpoint_manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "checkpoint/file_sync.h"
#include "strun/crc32c.h"

namespace strun::train {
namespace fs = std::filesystem;

namespace {

std::string Hex(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

bool IsStepName(const std::string& s) {
  return !s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

Result<FileChecksum> ChecksumFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return MakeError("cannot open " + path + ": " + std::strerror(errno));
  std::vector<char> buffer(std::size_t{4} << 20);
  FileChecksum sum;
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = MakeError("cannot read " + path + ": " + std::strerror(errno));
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    sum.crc32c = Crc32cExtend(sum.crc32c, buffer.data(), static_cast<std::size_t>(n));
    sum.bytes += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return sum;
}

std::string ManifestFileName(int rank, int world) {
  return "rank-" + std::to_string(rank) + "-of-" + std::to_string(world) + ".json";
}

Status ChecksumManifest::Add(const std::string& step_dir, const std::string& relative) {
  auto sum = ChecksumFile((fs::path(step_dir) / relative).string());
  if (!sum) return sum.error();
  files_[relative] = *sum;
  return {};
}

Status ChecksumManifest::Write(const std::string& step_dir, const std::string& file_name) const {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& [path, sum] : files_) {
    files[path] = {{"bytes", sum.bytes}, {"crc32c", Hex(sum.crc32c)}};
  }
  const nlohmann::json doc = {{"algorithm", "crc32c"}, {"files", files}};
  const fs::path dir = fs::path(step_dir) / kChecksumsDir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return MakeError("cannot create directory " + dir.string() + ": " + ec.message());
  return WriteFileSynced((dir / file_name).string(), doc.dump(2) + "\n");
}

Result<std::optional<ChecksumManifest>> ChecksumManifest::Read(const std::string& step_dir) {
  const fs::path dir = fs::path(step_dir) / kChecksumsDir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::optional<ChecksumManifest>();
  ChecksumManifest manifest;
  std::map<std::string, std::string> source;  // path -> the manifest that listed it
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".json") continue;
    const std::string name = entry.path().string();
    auto text = ReadWholeFile(name);
    if (!text) return text.error();
    try {
      const auto doc = nlohmann::json::parse(*text);
      if (doc.at("algorithm").get<std::string>() != "crc32c") {
        return MakeError(name + ": unknown checksum algorithm " + doc.at("algorithm").dump());
      }
      for (const auto& [path, e] : doc.at("files").items()) {
        const std::string hex = e.at("crc32c").get<std::string>();
        if (hex.size() != 8 || hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
          return MakeError(name + ": " + path + ": malformed crc32c '" + hex + "'");
        }
        FileChecksum sum{e.at("bytes").get<uint64_t>(),
                         static_cast<uint32_t>(std::stoul(hex, nullptr, 16))};
        auto [it, inserted] = manifest.files_.emplace(path, sum);
        if (!inserted && !(it->second == sum)) {
          return MakeError(name + " and " + source[path] + " record different checksums for " +
                           path +
                           "; the checkpoint is damaged: " + EarlierCheckpointAdvice(step_dir));
        }
        source.emplace(path, name);
      }
    } catch (const std::exception& e) {
      return MakeError(name + ": malformed checksum manifest (" + e.what() +
                       "); the checkpoint is damaged: " + EarlierCheckpointAdvice(step_dir));
    }
  }
  if (ec) return MakeError("cannot list " + dir.string() + ": " + ec.message());
  return std::optional<ChecksumManifest>(std::move(manifest));
}

Status ChecksumManifest::Verify(const std::string& step_dir, const std::string& relative) const {
  const std::string path = (fs::path(step_dir) / relative).string();
  auto it = files_.find(relative);
  if (it == files_.end()) {
    return MakeError(
        "checkpoint file " + path + " is not listed in " + step_dir + "/" + kChecksumsDir +
        "/ (the checkpoint is incomplete or was modified): " + EarlierCheckpointAdvice(step_dir));
  }
  auto sum = ChecksumFile(path);
  if (!sum) return sum.error();
  if (*sum == it->second) return {};
  return MakeError("checkpoint file " + path + " is corrupt: " + std::to_string(sum->bytes) +
                   " bytes with crc32c " + Hex(sum->crc32c) + ", but it was written as " +
                   std::to_string(it->second.bytes) + " bytes with crc32c " +
                   Hex(it->second.crc32c) + " (" + kChecksumsDir + "/); " +
                   EarlierCheckpointAdvice(step_dir));
}

std::string EarlierCheckpointAdvice(const std::string& step_dir) {
  fs::path p = fs::path(step_dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  const fs::path root = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string step = p.filename().string();
  std::optional<int64_t> best;
  std::error_code ec;
  if (IsStepName(step)) {
    const int64_t current = std::stoll(step);
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      const std::string n = entry.path().filename().string();
      if (!IsStepName(n) || !fs::exists(entry.path() / "checkpoint_metadata.json", ec)) continue;
      const int64_t s = std::stoll(n);
      if (s < current && (!best || s > *best)) best = s;
    }
  }
  if (best) {
    const std::string earlier = (root / std::to_string(*best)).string();
    return "resume from an earlier checkpoint: set checkpoints.resume_checkpoint_path to " +
           earlier + " (or write " + std::to_string(*best) + " into " +
           (root / "latest.txt").string() + ")";
  }
  return "there is no earlier checkpoint in " + root.string() + "; move " + p.string() +
         " away and train from the start (or from another copy of the checkpoint)";
}

}  // namespace strun::train
