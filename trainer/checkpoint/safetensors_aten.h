// checkpoint/safetensors_aten.h: ATen tensors written to and read from safetensors files
// (safetensors.h is the torch-free format).
//
// Tensors are written from CPU contiguous copies and read back as CPU tensors of their saved
// dtype; a dtype safetensors has no name for (or a file's dtype ATen has none for) is an error
// naming the file and the tensor.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "strun/result.h"

namespace strun::train {

using NamedTensorList = std::vector<std::pair<std::string, at::Tensor>>;

class SafetensorsFile;

// Every tensor of a file read from `path` (CPU copies, in name order).
Result<NamedTensorList> TensorsOfSafetensors(const SafetensorsFile& file, const std::string& path);
// Reads the file at `path` and returns all its tensors (TensorsOfSafetensors).
Result<NamedTensorList> ReadAllTensors(const std::string& path);
// The tensor `name` of the file at `path`.
Result<at::Tensor> TensorFromSafetensors(const std::string& path, const std::string& name);
// Writes `tensors` (any device) and `metadata` to `path`, fsynced (safetensors.h).
Status WriteTensorsSafetensors(const std::string& path, const NamedTensorList& tensors,
                               const std::map<std::string, std::string>& metadata);

}  // namespace strun::train
