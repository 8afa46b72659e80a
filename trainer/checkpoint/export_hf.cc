#include "checkpoint/export_hf.h"

#include <c10/core/GradMode.h>

#include <filesystem>
#include <system_error>

#include "checkpoint/file_sync.h"
#include "checkpoint/load_model.h"
#include "model/hf_mapping.h"

namespace strun::train {

Status ExportHuggingFace(const std::string& checkpoint, const std::string& output) {
  auto dir = ResolveResumeDirectory(checkpoint);
  if (!dir) return dir.error();
  if (!*dir) {
    return MakeError("--checkpoint " + checkpoint +
                     ": not a checkpoint (no latest.txt and no checkpoint_metadata.json)");
  }
  auto loaded = LoadCheckpointModel(**dir, c10::Device(c10::kCPU));
  if (!loaded) return loaded.error();
  c10::NoGradGuard no_grad;
  const model::NamedTensors weights = loaded->llama.NamedParameters();
  auto hf = model::ToHuggingFace(loaded->shape, weights);
  if (!hf) return hf.error();
  std::error_code ec;
  std::filesystem::create_directories(output, ec);
  if (ec) return MakeError("--output " + output + ": " + ec.message());
  const at::ScalarType saved = weights.empty() ? at::kFloat : weights[0].second.scalar_type();
  const std::string dtype_name = saved == at::kBFloat16 ? "bfloat16"
                                 : saved == at::kHalf   ? "float16"
                                 : saved == at::kDouble ? "float64"
                                                        : "float32";
  NamedTensorList out(hf->begin(), hf->end());
  if (auto s = WriteTensorsSafetensors(output + "/model.safetensors", out, {{"format", "pt"}});
      !s) {
    return s;
  }
  return WriteFileSynced(output + "/config.json",
                         model::HuggingFaceConfigJson(loaded->shape, dtype_name).dump(2) + "\n");
}

}  // namespace strun::train
