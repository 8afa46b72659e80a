#include "train/step.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>  // c10::NoGradGuard: libtorch 2.x's ATen.h no longer brings it

#include <utility>
#include <vector>

#include "checkpoint/fault_injection.h"
#include "optim/grad_clip.h"
#include "train/pipeline_step.h"

namespace strun::train {
namespace {

std::vector<at::Tensor> ParamGrads(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> g;
  g.reserve(params.size());
  for (const auto& p : params) g.push_back(p.grad());
  return g;
}

// One micro-batch of the step's data as [input, labels] token ids on the model's device.
Result<at::Tensor> NextTokens(Run& run, int64_t step) {
  auto batch = run.stream->Next(step);
  if (!batch) return batch.error();
  return run.tokens->ToDevice(*batch);
}

// The gradients of the micro-batch just backpropagated added to the fp32 buffer, its loss (scaled,
// undefined on pipeline stages without the loss) to run.loss_sum.
void TakeGradients(Run& run, const at::Tensor& loss) {
  c10::NoGradGuard no_grad;
  if (const auto to_flat = run.llama->ops().grads_to_flat; to_flat && run.grads.is_cuda()) {
    // One kernel for all parameters.
    std::vector<int64_t> offsets, numels;
    for (const optim::FlatSegment& s : run.layout.segments()) {
      offsets.push_back(s.offset);
      numels.push_back(s.numel);
    }
    to_flat(ParamGrads(run.params), offsets, numels, run.grads, !run.grads_empty);
  } else if (run.grads_empty) {
    run.layout.Assign(ParamGrads(run.params), run.grads);
  } else {
    run.layout.Accumulate(ParamGrads(run.params), run.grads);
  }
  run.grads_empty = false;
  if (loss.defined()) run.loss_sum.add_(loss.detach().to(at::kFloat));
  run.llama->ZeroGrad();
}

// Forward and backward of one micro-batch of token ids [mbs, seq + 1]; its gradients and loss
// taken as TakeGradients says.
void MicroBatch(Run& run, const at::Tensor& ids) {
  at::Tensor input = ids.narrow(1, 0, run.seq);
  at::Tensor labels = ids.narrow(1, 1, run.seq);
  at::Tensor mask = at::ones({run.mbs, run.seq}, run.device.dtype(at::kBool));
  at::Tensor loss = run.llama->Loss(input, labels, mask).div(static_cast<double>(run.n_micro));
  loss.backward();
  TakeGradients(run, loss);
}

// Forward and backward of every micro-batch (a CUDA graph's replay where run.graphs is set): each
// loss divided by their number, its gradients added to the fp32 buffer and its loss to
// run.loss_sum. With pp > 1 the stage's pipeline schedule
// (pipeline_step.h); only the last stage's loss_sum is not zero.
Status ForwardBackward(Run& run, int64_t step) {
  run.loss_sum.zero_();
  run.grads_empty = true;
  if (run.pp > 1) {
    MicroBatchHooks hooks;
    hooks.next_tokens = [&run, step] { return NextTokens(run, step); };
    hooks.after_backward = [&run](const at::Tensor& loss) { TakeGradients(run, loss); };
    return PipelineForwardBackward(run, hooks);
  }
  for (int64_t micro = 0; micro < run.n_micro; ++micro) {
    auto ids = NextTokens(run, step);
    if (!ids) return ids.error();
    if (run.graphs) {
      run.graphs->Run(run.grads_empty ? 0 : 1, *ids,
                      [&run](const at::Tensor& t) { MicroBatch(run, t); });
      run.grads_empty = false;  // a replay does not run TakeGradients on the host
    } else {
      MicroBatch(run, *ids);
    }
  }
  return {};
}

// The accumulated gradients of this rank's parameters split into TP-sharded and replicated ones
// (views of run.grads).
std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> ShardedAndReplicatedGrads(Run& run) {
  std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> out;
  const std::vector<at::Tensor> views = run.layout.Views(run.grads);
  for (size_t i = 0; i < views.size(); ++i) {
    (run.tp_sharded[i] ? out.first : out.second).push_back(views[i]);
  }
  return out;
}

// Sequence parallelism (tp_mode REDUCE_SCATTER): each TP rank's norm weights saw only its
// sequence block, so their gradients are partial sums; the TP sum makes them whole (and equal on
// every TP rank), as nanotron does. One collective over the replicated gradients packed together.
void ReduceReplicatedGradsOverTp(Run& run) {
  std::vector<at::Tensor> replicated = ShardedAndReplicatedGrads(run).second;
  if (replicated.empty()) return;
  std::vector<at::Tensor> flat;
  for (const auto& g : replicated) flat.push_back(g.reshape({-1}));
  at::Tensor packed = at::cat(flat);
  run.groups->tp()->AllReduce(packed).Wait();
  int64_t offset = 0;
  for (auto& g : replicated) {
    g.view({-1}).copy_(packed.narrow(0, offset, g.numel()));
    offset += g.numel();
  }
}

// pp > 1 with tied embeddings: the first stage's embedding and the last stage's lm_head copy are
// one parameter; their gradients are summed (nanotron's sync_tied_weights_gradients, after the DP
// reduction) so that both stages take the same optimizer step and stay identical. Over the pp group
// (the first and last stage of this (dp, tp) coordinate; stages between add zeros).
void SumTiedEmbeddingGradients(Run& run) {
  at::Tensor g =
      run.tied_index >= 0
          ? run.layout.Views(run.grads)[static_cast<size_t>(run.tied_index)]
          : at::zeros({run.shape.vocab_size / run.tp, run.shape.hidden_size}, run.grads.options());
  run.groups->pp()->AllReduce(g).Wait();
}

// The global gradient norm over the whole (unsharded) model: the TP-sharded gradients summed over
// the TP ranks, the replicated ones (equal on every TP rank) counted once, and with pp > 1 summed
// over the stages, the tied lm_head copy of the last stage not counted again (nanotron's
// clip_grad_norm over its parameters without duplicates). Every rank holds its parameters' whole
// gradients (DP-reduced; ZeRO-1 shards only the optimizer), so no DP reduction.
at::Tensor GlobalGradNorm(Run& run) {
  if (run.tp == 1 && run.pp == 1) return optim::GradNormSquared({run.grads}).pow(0.5);
  std::vector<at::Tensor> sharded, replicated;
  const std::vector<at::Tensor> views = run.layout.Views(run.grads);
  for (size_t i = 0; i < views.size(); ++i) {
    if (run.tied_copy && static_cast<int>(i) == run.tied_index) continue;
    (run.tp_sharded[i] ? sharded : replicated).push_back(views[i]);
  }
  // (.to: an empty list's zero is on the CPU.)
  at::Tensor sq = optim::GradNormSquared(sharded).reshape({1}).to(run.grads.device());
  if (run.tp_rank == 0) sq = sq + optim::GradNormSquared(replicated).to(run.grads.device());
  // The model-parallel group: tp x pp of this DP replica (the tp group at pp = 1).
  run.groups->mp()->AllReduce(sq).Wait();
  return sq.reshape({}).pow(0.5);
}

// Clipping and the optimizer on this rank's shard; the gradients are zero afterwards.
void UpdateWeights(Run& run, double lr) {
  if (run.fused) {
    // One pass: the clipping scale (kept on the device), AdamW, grads zeroed, bf16 weights.
    at::Tensor scale;
    if (run.clip) {
      run.grad_norm = GlobalGradNorm(run);
      scale = optim::ClipCoefficient(run.grad_norm, *run.clip);
    }
    run.optimizer->FusedStep(run.llama->ops(), lr, scale, {run.params_flat});
  } else {
    if (run.clip) {
      if (run.tp == 1 && run.pp == 1) {
        run.grad_norm = optim::ClipGradNorm({run.grads}, *run.clip);
      } else {
        run.grad_norm = GlobalGradNorm(run);
        optim::ScaleGradsByNorm({run.grads}, run.grad_norm, *run.clip);
      }
    }
    run.optimizer->Step(lr);
    run.grads.zero_();
  }
}

// The model's weights from the master weights (not needed where they alias one buffer that the
// fused optimizer wrote).
void CopyToModel(Run& run) {
  if (!run.params_flat.defined()) run.layout.Unpack(run.master, run.params);
}

// The step's one host read: [loss, stop votes, grad norm].
StepResult ReadStepResult(const Run& run, double lr) {
  const at::Tensor host =
      (run.clip ? at::cat({run.step_sums, run.grad_norm.reshape({1}).to(at::kFloat)})
                : run.step_sums)
          .cpu();
  StepResult r;
  r.lr = lr;
  r.lm_loss = host[0].item<float>();
  r.stop_vote = host[1].item<float>();
  if (run.clip) r.grad_norm = host[2].item<float>();
  return r;
}

}  // namespace

Result<StepResult> TrainStep(Run& run, int64_t step, StopVote& vote) {
  if (auto s = ForwardBackward(run, step); !s) return s.error();
  c10::NoGradGuard no_grad;
  MaybeInjectWatchdogAbort(step, run.rank);  // tests only (checkpoint/fault_injection.h)
  if (run.tp > 1 && run.config.parallelism.tp_mode == TensorParallelLinearMode::kReduceScatter) {
    ReduceReplicatedGradsOverTp(run);
  }
  parallel::AllReduceGradients(*run.dp_comm, run.grads, run.bucket_elems);
  if (run.pp > 1 && run.llama->tied()) SumTiedEmbeddingGradients(run);
  run.stop_votes.fill_(vote.Cast(step, run.train_steps, run.log));
  // Over the world: the loss's DP mean (nanotron: ReduceOp.AVG; it is the same on every TP rank)
  // and every rank's stop vote. With pp > 1 only the last stage has the loss: scaled by pp, the
  // world mean is the DP mean of the last stage's (rank 0 logs it, as nanotron broadcasts it).
  if (run.pp > 1) run.loss_sum.mul_(static_cast<double>(run.pp));
  run.comm->AllReduceMean(run.step_sums);
  const double lr = run.schedule->LearningRateAt(step);
  UpdateWeights(run, lr);
  run.shard.AllGather(*run.dp_comm, run.master);
  CopyToModel(run);
  return ReadStepResult(run, lr);
}

}  // namespace strun::train
