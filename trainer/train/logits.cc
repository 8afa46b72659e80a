// `strun-train logits` (trainer.h).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "checkpoint/load_model.h"
#include "train/device.h"
#include "train/trainer.h"

namespace strun::train {

Status WriteLogits(const std::string& checkpoint, const std::string& input_ids,
                   const std::string& output) {
  auto dir = ResolveResumeDirectory(checkpoint);
  if (!dir) return dir.error();
  if (!*dir) return MakeError("--checkpoint " + checkpoint + ": not a checkpoint");
  const c10::Device device = UseCuda() ? c10::Device(at::kCUDA, 0) : c10::Device(at::kCPU);
  auto loaded = LoadCheckpointModel(**dir, device);
  if (!loaded) return loaded.error();
  auto ids = TensorFromSafetensors(input_ids, "input_ids");
  if (!ids) return ids.error();
  c10::NoGradGuard no_grad;
  at::Tensor logits = loaded->llama.Logits(ids->to(at::kLong).to(device)).to(at::kFloat).cpu();
  return WriteTensorsSafetensors(output, {{"logits", logits}}, {});
}

}  // namespace strun::train
