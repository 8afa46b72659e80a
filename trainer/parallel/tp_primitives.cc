#include "parallel/tp_primitives.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace strun::parallel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The group rides in the autograd context as a capsule, which keeps it alive until backward.
void SaveGroup(AutogradContext* ctx, const CommGroupPtr& group) {
  ctx->saved_data["group"] = c10::IValue::make_capsule(group);
}
CommGroupPtr LoadGroup(AutogradContext* ctx) {
  return c10::static_intrusive_pointer_cast<CommGroup>(ctx->saved_data["group"].toCapsule());
}

at::Tensor AllReduceSumCopy(const at::Tensor& x, CommGroup& group) {
  at::Tensor out = x.clone(at::MemoryFormat::Contiguous);
  group.AllReduce(out).Wait();
  return out;
}

at::Tensor GatherLast(const at::Tensor& x, CommGroup& group) {
  // Gather [size, ...] blocks along a new leading dim, then lay them side by side.
  at::Tensor blocks = AllGatherDim0(x.unsqueeze(0), group);
  return at::cat(blocks.unbind(0), -1);
}

at::Tensor SplitLast(const at::Tensor& x, CommGroup& group) {
  TORCH_CHECK(x.size(-1) % group.size() == 0, "SplitLastDim: last dim ", x.size(-1),
              " does not split over ", group.size(), " ranks");
  return x.chunk(group.size(), -1)[group.rank()].contiguous();
}

struct CopyToTpFn : torch::autograd::Function<CopyToTpFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const CommGroupPtr& group) {
    SaveGroup(ctx, group);
    return x;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {AllReduceSumCopy(grads[0], *LoadGroup(ctx)), at::Tensor()};
  }
};

struct ReduceFromTpFn : torch::autograd::Function<ReduceFromTpFn> {
  static at::Tensor forward(AutogradContext*, const at::Tensor& x, const CommGroupPtr& group) {
    return AllReduceSumCopy(x, *group);
  }
  static variable_list backward(AutogradContext*, variable_list grads) {
    return {grads[0], at::Tensor()};
  }
};

struct AllGatherSeqFn : torch::autograd::Function<AllGatherSeqFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const CommGroupPtr& group) {
    SaveGroup(ctx, group);
    return AllGatherDim0(x, *group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {ReduceScatterDim0(grads[0], *LoadGroup(ctx)), at::Tensor()};
  }
};

struct ReduceScatterSeqFn : torch::autograd::Function<ReduceScatterSeqFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const CommGroupPtr& group) {
    SaveGroup(ctx, group);
    return ReduceScatterDim0(x, *group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {AllGatherDim0(grads[0], *LoadGroup(ctx)), at::Tensor()};
  }
};

struct GatherLastFn : torch::autograd::Function<GatherLastFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const CommGroupPtr& group) {
    SaveGroup(ctx, group);
    return GatherLast(x, *group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {SplitLast(grads[0], *LoadGroup(ctx)), at::Tensor()};
  }
};

struct SplitLastFn : torch::autograd::Function<SplitLastFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const CommGroupPtr& group) {
    SaveGroup(ctx, group);
    return SplitLast(x, *group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {GatherLast(grads[0], *LoadGroup(ctx)), at::Tensor()};
  }
};

}  // namespace

at::Tensor AllGatherDim0(const at::Tensor& x, CommGroup& group) {
  std::vector<int64_t> shape = x.sizes().vec();
  shape[0] *= group.size();
  at::Tensor out = at::empty(shape, x.options().requires_grad(false));
  group.AllGatherDim0(x, out).Wait();
  return out;
}

at::Tensor ReduceScatterDim0(const at::Tensor& x, CommGroup& group) {
  TORCH_CHECK(x.size(0) % group.size() == 0, "ReduceScatterDim0: dim 0 (", x.size(0),
              ") does not split over ", group.size(), " ranks");
  std::vector<int64_t> shape = x.sizes().vec();
  shape[0] /= group.size();
  at::Tensor out = at::empty(shape, x.options().requires_grad(false));
  group.ReduceScatterDim0(x, out).Wait();
  return out;
}

// With one rank the functions return x itself, as nanotron's (no autograd node at all).
at::Tensor CopyToTpRegion(const at::Tensor& x, const CommGroupPtr& group) {
  return group->size() == 1 ? x : CopyToTpFn::apply(x, group);
}
at::Tensor ReduceFromTpRegion(const at::Tensor& x, const CommGroupPtr& group) {
  return group->size() == 1 ? x : ReduceFromTpFn::apply(x, group);
}
at::Tensor AllGatherSequence(const at::Tensor& x, const CommGroupPtr& group) {
  return group->size() == 1 ? x : AllGatherSeqFn::apply(x, group);
}
at::Tensor ReduceScatterSequence(const at::Tensor& x, const CommGroupPtr& group) {
  return group->size() == 1 ? x : ReduceScatterSeqFn::apply(x, group);
}
at::Tensor GatherLastDim(const at::Tensor& x, const CommGroupPtr& group) {
  return group->size() == 1 ? x : GatherLastFn::apply(x, group);
}
at::Tensor SplitLastDim(const at::Tensor& x, const CommGroupPtr& group) {
  return group->size() == 1 ? x : SplitLastFn::apply(x, group);
}

}  // namespace strun::parallel
