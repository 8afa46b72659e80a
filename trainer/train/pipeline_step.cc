#include "train/pipeline_step.h"

#include <ATen/ATen.h>

#include <utility>
#include <vector>

#include "parallel/pipeline_schedule.h"

namespace strun::train {
namespace {

using Kind = parallel::PipelineAction::Kind;

// Activations flow to the next stage over the pp group, gradients to the previous one over
// pp_backward (process_grid_groups.h: one NCCL stream per direction); the tags keep the two apart
// also where they share a group.
constexpr int kActivationTag = 0;
constexpr int kGradTag = 1;

parallel::PipelineSchedule ScheduleOf(const Run& run) {
  return run.config.parallelism.pp_engine == PipelineEngine::kOneForwardOneBackward
             ? parallel::PipelineSchedule::kOneForwardOneBackward
             : parallel::PipelineSchedule::kAllForwardAllBackward;
}

}  // namespace

Status PipelineForwardBackward(Run& run, const MicroBatchHooks& hooks) {
  const int n = static_cast<int>(run.n_micro);
  auto plan = parallel::StageSchedule(ScheduleOf(run), run.pp, run.pp_rank, n);
  if (!plan) return plan.error();
  parallel::CommGroup& forward = *run.groups->pp();
  parallel::CommGroup& backward = *run.groups->pp_backward();
  const model::Llama& llama = *run.llama;
  const bool first = run.pp_rank == 0, last = run.pp_rank == run.pp - 1;
  const std::vector<int64_t> activation_shape = llama.StageActivationShape(run.mbs, run.seq);
  const at::TensorOptions activation_options = run.device.dtype(run.dtype);
  const at::Tensor mask = at::ones({run.mbs, run.seq}, run.device.dtype(at::kBool));

  // Per micro-batch: the received input (a leaf whose gradient goes back), the output (the hidden
  // state sent on, or the loss) and the gradient received for it.
  std::vector<at::Tensor> inputs(static_cast<size_t>(n)), outputs(inputs.size()),
      output_grads(inputs.size());
  // Sends in flight and the tensors they read (kept alive until they finished).
  std::vector<std::pair<parallel::PendingWork, at::Tensor>> sends;
  for (const parallel::PipelineAction& a : *plan) {
    const auto i = static_cast<size_t>(a.micro_batch);
    switch (a.kind) {
      case Kind::kRecvActivation: {
        at::Tensor buffer = at::empty(activation_shape, activation_options);
        forward.Recv(buffer, a.peer_stage, kActivationTag).Wait();
        inputs[i] = buffer.requires_grad_(true);
        break;
      }
      case Kind::kForward: {
        auto ids = hooks.next_tokens();
        if (!ids) return ids.error();
        const at::Tensor input = first ? ids->narrow(1, 0, run.seq) : inputs[i];
        const at::Tensor labels = ids->narrow(1, 1, run.seq);
        at::Tensor out = llama.StageForward(input, labels, mask);
        outputs[i] = last ? out.div(static_cast<double>(n)) : out;
        break;
      }
      case Kind::kSendActivation: {
        at::Tensor t = outputs[i].detach().contiguous();
        sends.emplace_back(forward.Send(t, a.peer_stage, kActivationTag), t);
        break;
      }
      case Kind::kRecvGrad: {
        at::Tensor g = at::empty(outputs[i].sizes(), activation_options);
        backward.Recv(g, a.peer_stage, kGradTag).Wait();
        output_grads[i] = g;
        break;
      }
      case Kind::kBackward: {
        if (last) {
          outputs[i].backward();
        } else {
          outputs[i].backward(output_grads[i]);
        }
        hooks.after_backward(last ? outputs[i] : at::Tensor());
        outputs[i] = at::Tensor();
        output_grads[i] = at::Tensor();
        break;
      }
      case Kind::kSendGrad: {
        at::Tensor g = inputs[i].grad().contiguous();
        sends.emplace_back(backward.Send(g, a.peer_stage, kGradTag), g);
        inputs[i] = at::Tensor();
        break;
      }
    }
  }
  for (auto& [work, tensor] : sends) work.Wait();
  return {};
}

}  // namespace strun::train
