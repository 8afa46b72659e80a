// checkpoint/safetensors.h: reading and writing the safetensors format
// (huggingface/safetensors).
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "value"}}, padded with spaces to a multiple of 8, then the raw
// little-endian tensor bytes; offsets are relative to the end of the header. No torch here: the
// checkpoint code adapts tensors to TensorBytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::train {

// One tensor to write: its bytes are not copied.
struct TensorBytes {
  std::string name;
  std::string dtype;  // "F32", "BF16", "F16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::size_t nbytes = 0;
};

// Bytes per element of a safetensors dtype, 0 when unknown.
std::size_t SafetensorsDtypeSize(const std::string& dtype);

// Writes `tensors` (in this order) and `metadata` to `path`, then fsyncs the file. Checks that
// every tensor's nbytes matches its shape and dtype.
Status WriteSafetensors(const std::string& path, const std::vector<TensorBytes>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

// A whole safetensors file in memory.
class SafetensorsFile {
 public:
  struct Entry {
    std::string dtype;
    std::vector<int64_t> shape;
    std::size_t begin = 0;  // into data()
    std::size_t nbytes = 0;
  };

  // Reads and validates `path` (header bounds, dtypes, offsets inside the file and matching the
  // shapes). Errors name the file and what is wrong.
  static Result<SafetensorsFile> Read(const std::string& path);

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::map<std::string, Entry>& entries() const { return entries_; }
  // nullptr when absent.
  const Entry* Find(const std::string& name) const;
  const char* data(const Entry& e) const { return bytes_.data() + e.begin; }

 private:
  std::map<std::string, std::string> metadata_;
  std::map<std::string, Entry> entries_;
  std::string bytes_;  // tensor data section
};

}  // namespace strun::train
