#include "checkpoint/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "checkpoint/file_sync.h"

namespace strun::train {

std::size_t SafetensorsDtypeSize(const std::string& dtype) {
  static const std::map<std::string, std::size_t> kSizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"U16", 2},  {"U32", 4}, {"U64", 8}};
  auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

namespace {

Result<std::size_t> ExpectedBytes(const std::string& where, const std::string& dtype,
                                  const std::vector<int64_t>& shape) {
  std::size_t esize = SafetensorsDtypeSize(dtype);
  if (esize == 0) return MakeError(where + ": unknown dtype '" + dtype + "'");
  // Checked products: a wrapped-around count would let a huge shape claim a few bytes
  // (tests/fuzz/regressions/fuzz_safetensors).
  std::size_t n = esize;
  for (int64_t d : shape) {
    if (d < 0) return MakeError(where + ": negative dimension in shape");
    if (__builtin_mul_overflow(n, static_cast<std::size_t>(d), &n))
      return MakeError(where + ": shape has more bytes than memory can address");
  }
  return n;
}

// A JSON array of integers in [0, 2^63) (shape, data_offsets). nlohmann's get<> would convert a
// float such as 6.6e83 by an undefined cast (found by fuzz_safetensors): each element is checked.
Result<std::vector<uint64_t>> NonNegativeIntegers(const nlohmann::json& j,
                                                  const std::string& what) {
  if (!j.is_array()) return MakeError(what + " is not an array");
  std::vector<uint64_t> out;
  out.reserve(j.size());
  for (const auto& v : j) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > uint64_t{INT64_MAX}) {
      return MakeError(what + " holds " + v.dump() + ": expected integers from 0 to 2^63-1");
    }
    out.push_back(v.get<uint64_t>());
  }
  return out;
}

}  // namespace

Status WriteSafetensors(const std::string& path, const std::vector<TensorBytes>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  std::size_t offset = 0;
  for (const auto& t : tensors) {
    auto expected = ExpectedBytes(path + ": tensor '" + t.name + "'", t.dtype, t.shape);
    if (!expected) return expected.error();
    if (*expected != t.nbytes) {
      return MakeError(path + ": tensor '" + t.name + "' has " + std::to_string(t.nbytes) +
                       " bytes but its shape and dtype need " + std::to_string(*expected));
    }
    if (t.name == "__metadata__" || header.contains(t.name)) {
      return MakeError(path + ": duplicate or reserved tensor name '" + t.name + "'");
    }
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string json = header.dump();
  while (json.size() % 8 != 0) json.push_back(' ');
  std::string out;
  out.reserve(8 + json.size() + offset);
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += json;
  for (const auto& t : tensors) out.append(static_cast<const char*>(t.data), t.nbytes);
  return WriteFileSynced(path, out);
}

Result<SafetensorsFile> SafetensorsFile::Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(path + ": cannot open: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  if (all.size() < 8) return MakeError(path + ": not a safetensors file (shorter than 8 bytes)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(all[i])) << (8 * i);
  if (n > all.size() - 8) {
    return MakeError(path + ": header length " + std::to_string(n) +
                     " runs past the end of the file (truncated or not safetensors)");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(all.substr(8, n));
  } catch (const std::exception& e) {
    return MakeError(path + ": header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) return MakeError(path + ": header is not a JSON object");
  SafetensorsFile file;
  file.bytes_ = all.substr(8 + n);
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        for (auto m = it->begin(); m != it->end(); ++m)
          file.metadata_[m.key()] = m->get<std::string>();
        continue;
      }
      Entry e;
      e.dtype = it->at("dtype").get<std::string>();
      std::string where = path + ": tensor '" + it.key() + "'";
      auto shape = NonNegativeIntegers(it->at("shape"), where + ": shape");
      if (!shape) return shape.error();
      for (uint64_t dim : *shape) e.shape.push_back(static_cast<int64_t>(dim));
      auto offsets = NonNegativeIntegers(it->at("data_offsets"), where + ": data_offsets");
      if (!offsets) return offsets.error();
      const std::vector<uint64_t>& offs = *offsets;
      if (offs.size() != 2 || offs[0] > offs[1] || offs[1] > file.bytes_.size()) {
        return MakeError(where + ": data_offsets outside the file (truncated?)");
      }
      auto expected = ExpectedBytes(where, e.dtype, e.shape);
      if (!expected) return expected.error();
      if (*expected != offs[1] - offs[0]) {
        return MakeError(where + ": data_offsets do not match shape and dtype");
      }
      e.begin = offs[0];
      e.nbytes = offs[1] - offs[0];
      file.entries_[it.key()] = std::move(e);
    }
  } catch (const nlohmann::json::exception& e) {
    return MakeError(path + ": malformed header: " + e.what());
  }
  return file;
}

const SafetensorsFile::Entry* SafetensorsFile::Find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace strun::train
