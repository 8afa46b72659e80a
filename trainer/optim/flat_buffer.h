// optim/flat_buffer.h: many tensors laid out back to back in one flat buffer.
//
// Mixed precision and ZeRO-1 are built from it: the fp32 master weights and the fp32 accumulated
// gradients are flat buffers with the model's parameter layout; each data-parallel rank optimizes
// its ShardRange of them; after the step the updated weights are copied (Unpack) into the bf16
// model parameters.
//   FlatLayout layout(model.NamedParameters(), dp_size);
//   at::Tensor master = layout.NewBuffer(fp32), grads = layout.NewBuffer(fp32);
//   layout.Pack(params, master);                 // once
//   layout.Accumulate(param_grads, grads);       // after each micro-batch's backward (Assign
//                                                // for the step's first: no read, no zeroing)
//   auto [b, e] = layout.ShardRange(dp_rank, dp_size);
//   Optimizer opt(o, {{"shard", master.narrow(0, b, e - b), grads.narrow(0, b, e - b)}});
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <string>
#include <utility>
#include <vector>

namespace strun::optim {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct FlatSegment {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;  // first element in the flat buffer
  int64_t numel = 0;
};

// The part of one tensor that falls inside a range of the flat buffer.
struct FlatSlice {
  std::string name;
  int64_t tensor_offset = 0;  // first element inside the (flattened) tensor
  int64_t flat_offset = 0;    // first element inside the flat buffer
  int64_t numel = 0;
};

class FlatLayout {
 public:
  FlatLayout() = default;
  // Segments in the given order; the total is padded up to a multiple of `multiple` (e.g. the
  // data-parallel size, so that every rank's shard has the same length).
  explicit FlatLayout(const NamedTensors& tensors, int64_t multiple = 1);

  int64_t numel() const { return numel_; }  // with padding
  int64_t used() const { return used_; }    // without padding
  const std::vector<FlatSegment>& segments() const { return segments_; }

  // [begin, end) of rank's equal share of numel().
  std::pair<int64_t, int64_t> ShardRange(int64_t rank, int64_t world_size) const;
  // The tensors' pieces inside [begin, end), in order.
  std::vector<FlatSlice> SlicesIn(int64_t begin, int64_t end) const;

  // A zero-filled buffer of numel() elements.
  at::Tensor NewBuffer(const at::TensorOptions& options) const;
  // Views of `flat` shaped as each tensor.
  std::vector<at::Tensor> Views(const at::Tensor& flat) const;

  // flat[segment i] = tensors[i] (converted to flat's dtype). Gradient tracking is off.
  void Pack(const std::vector<at::Tensor>& tensors, const at::Tensor& flat) const;
  // flat[segment i] += tensors[i]; undefined tensors are skipped.
  void Accumulate(const std::vector<at::Tensor>& tensors, const at::Tensor& flat) const;
  // flat[segment i] = tensors[i], 0 where undefined: the first Accumulate of a step without reading
  // (or first zeroing) the buffer. The padding between segments is left as it is (zero).
  void Assign(const std::vector<at::Tensor>& tensors, const at::Tensor& flat) const;
  // tensors[i] = flat[segment i] (converted to each tensor's dtype), in place.
  void Unpack(const at::Tensor& flat, const std::vector<at::Tensor>& tensors) const;
  // Packs `tensors` into `flat` (of their dtype and device), then makes each tensor a view of its
  // segment (same tensor object, so parameters keep their autograd identity): a write to `flat`
  // is a write to the tensors, e.g. an optimizer writing all bf16 weights in one pass.
  void Alias(const std::vector<at::Tensor>& tensors, const at::Tensor& flat) const;

 private:
  std::vector<FlatSegment> segments_;
  int64_t used_ = 0;
  int64_t numel_ = 0;
};

}  // namespace strun::optim
