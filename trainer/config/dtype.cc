// model.dtype names: nanotron's utils_config.str_to_dtype.
#include <array>
#include <utility>

#include "config/config.h"

namespace strun::train {
namespace {

constexpr std::array<std::pair<DType, std::string_view>, 12> kNames = {{
    {DType::kFloat32, "float32"},
    {DType::kFloat64, "float64"},
    {DType::kComplex64, "complex64"},
    {DType::kComplex128, "complex128"},
    {DType::kFloat16, "float16"},
    {DType::kBFloat16, "bfloat16"},
    {DType::kUInt8, "uint8"},
    {DType::kInt8, "int8"},
    {DType::kInt16, "int16"},
    {DType::kInt32, "int32"},
    {DType::kInt64, "int64"},
    {DType::kBool, "bool"},
}};

}  // namespace

std::string_view DTypeName(DType dtype) {
  for (const auto& [d, name] : kNames) {
    if (d == dtype) return name;
  }
  return "unknown";
}

std::optional<DType> DTypeFromName(std::string_view name) {
  for (const auto& [d, n] : kNames) {
    if (n == name) return d;
  }
  return std::nullopt;
}

}  // namespace strun::train
