#include "optim/flat_buffer.h"

#include <ATen/ops/zeros.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <algorithm>

namespace strun::optim {

FlatLayout::FlatLayout(const NamedTensors& tensors, int64_t multiple) {
  for (const auto& [name, t] : tensors) {
    FlatSegment s;
    s.name = name;
    s.shape.assign(t.sizes().begin(), t.sizes().end());
    s.offset = used_;
    s.numel = t.numel();
    used_ += s.numel;
    segments_.push_back(std::move(s));
  }
  multiple = std::max<int64_t>(multiple, 1);
  numel_ = (used_ + multiple - 1) / multiple * multiple;
}

std::pair<int64_t, int64_t> FlatLayout::ShardRange(int64_t rank, int64_t world_size) const {
  TORCH_CHECK(world_size > 0 && rank >= 0 && rank < world_size, "ShardRange: bad rank ", rank,
              " of ", world_size);
  const int64_t share = (numel_ + world_size - 1) / world_size;
  const int64_t begin = std::min(numel_, rank * share);
  return {begin, std::min(numel_, begin + share)};
}

std::vector<FlatSlice> FlatLayout::SlicesIn(int64_t begin, int64_t end) const {
  std::vector<FlatSlice> out;
  for (const FlatSegment& s : segments_) {
    const int64_t b = std::max(begin, s.offset);
    const int64_t e = std::min(end, s.offset + s.numel);
    if (b < e) out.push_back({s.name, b - s.offset, b, e - b});
  }
  return out;
}

at::Tensor FlatLayout::NewBuffer(const at::TensorOptions& options) const {
  return at::zeros({numel_}, options.requires_grad(false));
}

std::vector<at::Tensor> FlatLayout::Views(const at::Tensor& flat) const {
  TORCH_CHECK(flat.dim() == 1 && flat.numel() >= used_, "FlatLayout: buffer too small");
  std::vector<at::Tensor> out;
  out.reserve(segments_.size());
  for (const FlatSegment& s : segments_)
    out.push_back(flat.narrow(0, s.offset, s.numel).view(s.shape));
  return out;
}

void FlatLayout::Pack(const std::vector<at::Tensor>& tensors, const at::Tensor& flat) const {
  TORCH_CHECK(tensors.size() == segments_.size(), "FlatLayout::Pack: expected ", segments_.size(),
              " tensors, got ", tensors.size());
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> views = Views(flat);
  for (size_t i = 0; i < views.size(); ++i) views[i].copy_(tensors[i]);
}

void FlatLayout::Accumulate(const std::vector<at::Tensor>& tensors, const at::Tensor& flat) const {
  TORCH_CHECK(tensors.size() == segments_.size(), "FlatLayout::Accumulate: expected ",
              segments_.size(), " tensors, got ", tensors.size());
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> views = Views(flat);
  for (size_t i = 0; i < views.size(); ++i) {
    if (tensors[i].defined()) views[i].add_(tensors[i]);
  }
}

void FlatLayout::Assign(const std::vector<at::Tensor>& tensors, const at::Tensor& flat) const {
  TORCH_CHECK(tensors.size() == segments_.size(), "FlatLayout::Assign: expected ", segments_.size(),
              " tensors, got ", tensors.size());
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> views = Views(flat);
  for (size_t i = 0; i < views.size(); ++i) {
    if (tensors[i].defined()) {
      views[i].copy_(tensors[i]);
    } else {
      views[i].zero_();
    }
  }
}

void FlatLayout::Unpack(const at::Tensor& flat, const std::vector<at::Tensor>& tensors) const {
  TORCH_CHECK(tensors.size() == segments_.size(), "FlatLayout::Unpack: expected ", segments_.size(),
              " tensors, got ", tensors.size());
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> views = Views(flat);
  for (size_t i = 0; i < views.size(); ++i) tensors[i].copy_(views[i]);
}

void FlatLayout::Alias(const std::vector<at::Tensor>& tensors, const at::Tensor& flat) const {
  Pack(tensors, flat);
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> views = Views(flat);
  for (size_t i = 0; i < views.size(); ++i) {
    TORCH_CHECK(
        tensors[i].scalar_type() == flat.scalar_type() && tensors[i].device() == flat.device(),
        "FlatLayout::Alias: ", segments_[i].name, " differs from the buffer in dtype or device");
    // set_data keeps the tensor's autograd metadata (requires_grad, grad) and swaps its storage.
    at::Tensor t = tensors[i];
    t.set_data(views[i]);
  }
}

}  // namespace strun::optim
