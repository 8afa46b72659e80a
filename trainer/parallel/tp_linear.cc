#include "parallel/tp_linear.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/custom_function.h>

namespace strun::parallel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor Rows2d(const at::Tensor& t) { return t.reshape({-1, t.size(-1)}); }

// out (a contiguous block of rows) := in @ weight^T (+ bias), written in place.
void LinearInto(const at::Tensor& in, const at::Tensor& weight, const at::Tensor& bias,
                at::Tensor out) {
  if (out.numel() == 0) return;
  at::Tensor out2d = out.view({-1, out.size(-1)});
  if (bias.defined()) {
    at::addmm_out(out2d, bias, Rows2d(in), weight.t());
  } else {
    at::mm_out(out2d, Rows2d(in), weight.t());
  }
}

// out := in @ weight (the input gradient of a linear), written in place.
void InputGradInto(const at::Tensor& grad_out, const at::Tensor& weight, at::Tensor out) {
  if (out.numel() == 0) return;
  at::Tensor out2d = out.view({-1, out.size(-1)});
  at::mm_out(out2d, Rows2d(grad_out), weight);
}

// Fills the row blocks of `out` (one per rank, `rows` each) other than `rank`'s from `all`.
template <typename F>
void OtherBlocks(int rank, int size, int64_t rows, F&& fill) {
  if (rank > 0) fill(0, rank * rows);
  if (rank + 1 < size) fill((rank + 1) * rows, (size - rank - 1) * rows);
}

std::vector<int64_t> WithDims(at::IntArrayRef shape, int64_t dim0, int64_t last) {
  std::vector<int64_t> s = shape.vec();
  s.front() = dim0;
  s.back() = last;
  return s;
}

// libtorch 1.13's custom functions reject undefined tensor inputs: a missing bias travels as an
// empty tensor and is undefined again inside.
at::Tensor BiasArg(const at::Tensor& bias, const at::Tensor& like) {
  return bias.defined() ? bias : at::empty({0}, like.options());
}
at::Tensor BiasOrNone(const at::Tensor& bias_arg) {
  return bias_arg.numel() == 0 ? at::Tensor() : bias_arg;
}

void SaveGroup(AutogradContext* ctx, const CommGroupPtr& group) {
  ctx->saved_data["group"] = c10::IValue::make_capsule(group);
}
CommGroupPtr LoadGroup(AutogradContext* ctx) {
  return c10::static_intrusive_pointer_cast<CommGroup>(ctx->saved_data["group"].toCapsule());
}

struct ColumnAsyncFn : torch::autograd::Function<ColumnAsyncFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias_arg, const CommGroupPtr& group, int64_t mode) {
    const at::Tensor bias = BiasOrNone(bias_arg);
    SaveGroup(ctx, group);
    ctx->saved_data["mode"] = mode;
    ctx->saved_data["bias"] = bias.defined();
    const at::Tensor xc = x.contiguous();
    ctx->save_for_backward({xc, weight});
    if (static_cast<TpMode>(mode) == TpMode::kAllReduce || group->size() == 1) {
      return at::linear(xc, weight, bias);
    }
    const int rank = group->rank(), size = group->size();
    const int64_t rows = xc.size(0);
    at::Tensor gathered = at::empty(WithDims(xc.sizes(), rows * size, xc.size(-1)), xc.options());
    PendingWork gather = group->AllGatherDim0(xc, gathered);
    at::Tensor out = at::empty(WithDims(xc.sizes(), rows * size, weight.size(0)), xc.options());
    LinearInto(xc, weight, bias, out.narrow(0, rank * rows, rows));  // overlaps the gather
    gather.Wait();
    OtherBlocks(rank, size, rows, [&](int64_t start, int64_t n) {
      LinearInto(gathered.narrow(0, start, n), weight, bias, out.narrow(0, start, n));
    });
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const CommGroupPtr group = LoadGroup(ctx);
    const auto mode = static_cast<TpMode>(ctx->saved_data["mode"].toInt());
    const bool has_bias = ctx->saved_data["bias"].toBool();
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor grad_out = grads[0].contiguous();
    const bool sequence_parallel = mode == TpMode::kReduceScatter && group->size() > 1;

    at::Tensor total_x = x;
    PendingWork gather;
    if (sequence_parallel) {
      total_x = at::empty(WithDims(x.sizes(), x.size(0) * group->size(), x.size(-1)), x.options());
      gather = group->AllGatherDim0(x, total_x);
    }
    at::Tensor grad_full = grad_out.matmul(weight);  // [S, ..., in], partial over TP ranks
    gather.Wait();
    at::Tensor grad_x;
    PendingWork reduce;
    if (sequence_parallel) {
      grad_x = at::empty(x.sizes(), x.options());
      reduce = group->ReduceScatterDim0(grad_full, grad_x);
    } else {
      grad_x = grad_full;
      reduce = group->AllReduce(grad_x);
    }
    // The weight gradient overlaps the reduction of the input gradient.
    at::Tensor grad_w = Rows2d(grad_out).t().mm(Rows2d(total_x));
    at::Tensor grad_b = has_bias ? Rows2d(grad_out).sum(0) : at::Tensor();
    reduce.Wait();
    return {grad_x, grad_w, grad_b, at::Tensor(), at::Tensor()};
  }
};

struct RowAsyncFn : torch::autograd::Function<RowAsyncFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias_arg, const CommGroupPtr& group) {
    const at::Tensor bias = BiasOrNone(bias_arg);
    SaveGroup(ctx, group);
    ctx->saved_data["bias"] = bias.defined();
    ctx->save_for_backward({x, weight});
    at::Tensor out = at::linear(x, weight, bias);
    return group->size() == 1 ? out : ReduceScatterDim0(out, *group);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const CommGroupPtr group = LoadGroup(ctx);
    const bool has_bias = ctx->saved_data["bias"].toBool();
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor grad_out = grads[0].contiguous();  // [S/tp, ..., out]
    const int rank = group->rank(), size = group->size();
    const int64_t rows = grad_out.size(0);

    at::Tensor total_grad_out = grad_out;
    PendingWork gather;
    if (size > 1) {
      total_grad_out =
          at::empty(WithDims(grad_out.sizes(), rows * size, grad_out.size(-1)), grad_out.options());
      gather = group->AllGatherDim0(grad_out, total_grad_out);
    }
    // grad_x = total_grad_out @ W_rank: this rank's sequence block first, while gathering.
    at::Tensor grad_x =
        at::empty(WithDims(grad_out.sizes(), rows * size, weight.size(1)), grad_out.options());
    InputGradInto(grad_out, weight, grad_x.narrow(0, rank * rows, rows));
    gather.Wait();
    OtherBlocks(rank, size, rows, [&](int64_t start, int64_t n) {
      InputGradInto(total_grad_out.narrow(0, start, n), weight, grad_x.narrow(0, start, n));
    });
    at::Tensor grad_w = Rows2d(total_grad_out).t().mm(Rows2d(x));
    at::Tensor grad_b = has_bias ? Rows2d(total_grad_out).sum(0) : at::Tensor();
    return {grad_x, grad_w, grad_b, at::Tensor()};
  }
};

}  // namespace

Result<ColumnParallelLinear> ColumnParallelLinear::Create(int64_t in_features, int64_t out_features,
                                                          CommGroupPtr group,
                                                          TpLinearOptions options) {
  if (in_features < 1 || out_features < 1 || out_features % group->size() != 0) {
    return MakeError(fmt::format(
        "column-parallel linear {} -> {}: out_features must be a positive multiple of tp={}",
        in_features, out_features, group->size()));
  }
  return ColumnParallelLinear(in_features, out_features, std::move(group), options);
}

at::Tensor ColumnParallelLinear::Forward(const at::Tensor& x, const at::Tensor& weight,
                                         const at::Tensor& bias) const {
  TORCH_CHECK(weight.dim() == 2 && weight.size(0) == local_out_features() && weight.size(1) == in_,
              "ColumnParallelLinear: weight must be [", local_out_features(), ", ", in_, "], got ",
              weight.sizes());
  if (options_.async_communication) {
    return ColumnAsyncFn::apply(x, weight, BiasArg(bias, weight), group_,
                                static_cast<int64_t>(options_.mode));
  }
  const at::Tensor input = options_.mode == TpMode::kAllReduce ? CopyToTpRegion(x, group_)
                                                               : AllGatherSequence(x, group_);
  return at::linear(input, weight, bias);
}

Result<RowParallelLinear> RowParallelLinear::Create(int64_t in_features, int64_t out_features,
                                                    CommGroupPtr group, TpLinearOptions options) {
  if (in_features < 1 || out_features < 1 || in_features % group->size() != 0) {
    return MakeError(fmt::format(
        "row-parallel linear {} -> {}: in_features must be a positive multiple of tp={}",
        in_features, out_features, group->size()));
  }
  if (options.async_communication && options.mode == TpMode::kAllReduce) {
    return MakeError(
        "tp_linear_async_communication needs tp_mode REDUCE_SCATTER for row-parallel layers "
        "(nanotron: \"async_communication is not supported for ALL_REDUCE mode\"); set "
        "parallelism.tp_mode: REDUCE_SCATTER or tp_linear_async_communication: false");
  }
  return RowParallelLinear(in_features, out_features, std::move(group), options);
}

at::Tensor RowParallelLinear::Forward(const at::Tensor& x, const at::Tensor& weight,
                                      const at::Tensor& bias) const {
  TORCH_CHECK(weight.dim() == 2 && weight.size(0) == out_ && weight.size(1) == local_in_features(),
              "RowParallelLinear: weight must be [", out_, ", ", local_in_features(), "], got ",
              weight.sizes());
  TORCH_CHECK(!bias.defined() || group_->rank() == 0,
              "RowParallelLinear: the bias lives on TP rank 0 only");
  if (options_.async_communication)
    return RowAsyncFn::apply(x, weight, BiasArg(bias, weight), group_);
  const at::Tensor partial = at::linear(x, weight, bias);
  return options_.mode == TpMode::kAllReduce ? ReduceFromTpRegion(partial, group_)
                                             : ReduceScatterSequence(partial, group_);
}

}  // namespace strun::parallel
