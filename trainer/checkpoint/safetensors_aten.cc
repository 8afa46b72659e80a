// safetensors_aten.h: ATen tensors to and from safetensors files.
#include "checkpoint/safetensors_aten.h"

#include <ATen/ATen.h>

#include <cstring>

#include "checkpoint/safetensors.h"

namespace strun::train {

namespace {

Result<std::string> SafetensorsDtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return std::string("F32");
    case at::kBFloat16:
      return std::string("BF16");
    case at::kHalf:
      return std::string("F16");
    case at::kDouble:
      return std::string("F64");
    case at::kLong:
      return std::string("I64");
    case at::kInt:
      return std::string("I32");
    case at::kShort:
      return std::string("I16");
    case at::kChar:
      return std::string("I8");
    case at::kByte:
      return std::string("U8");
    case at::kBool:
      return std::string("BOOL");
    default:
      return MakeError(std::string("no safetensors dtype for ") + c10::toString(t));
  }
}

Result<at::ScalarType> ScalarTypeOf(const std::string& dtype) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"F32", at::kFloat}, {"BF16", at::kBFloat16}, {"F16", at::kHalf},  {"F64", at::kDouble},
      {"I64", at::kLong},  {"I32", at::kInt},       {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},   {"BOOL", at::kBool}};
  auto it = kTypes.find(dtype);
  if (it == kTypes.end()) return MakeError("unsupported safetensors dtype " + dtype);
  return it->second;
}

}  // namespace

Status WriteTensorsSafetensors(const std::string& path, const NamedTensorList& tensors,
                               const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> keep;
  std::vector<TensorBytes> items;
  for (const auto& [name, t] : tensors) {
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    keep.push_back(c);
    auto dtype = SafetensorsDtype(c.scalar_type());
    if (!dtype) return MakeError(path + ": tensor " + name + ": " + dtype.error().message);
    TensorBytes b;
    b.name = name;
    b.dtype = *dtype;
    b.shape = c.sizes().vec();
    b.data = c.data_ptr();
    b.nbytes = c.numel() * c.element_size();
    items.push_back(std::move(b));
  }
  return WriteSafetensors(path, items, metadata);
}

Result<NamedTensorList> TensorsOfSafetensors(const SafetensorsFile& file, const std::string& path) {
  NamedTensorList out;
  for (const auto& [name, e] : file.entries()) {
    auto st = ScalarTypeOf(e.dtype);
    if (!st) return MakeError(path + ": tensor " + name + ": " + st.error().message);
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(*st));
    std::memcpy(t.data_ptr(), file.data(e), e.nbytes);
    out.emplace_back(name, t);
  }
  return out;
}

Result<NamedTensorList> ReadAllTensors(const std::string& path) {
  auto file = SafetensorsFile::Read(path);
  if (!file) return file.error();
  return TensorsOfSafetensors(*file, path);
}

Result<at::Tensor> TensorFromSafetensors(const std::string& path, const std::string& name) {
  auto all = ReadAllTensors(path);
  if (!all) return all.error();
  for (auto& [n, t] : *all) {
    if (n == name) return t;
  }
  return MakeError(path + ": no tensor named '" + name + "'");
}

}  // namespace strun::train
