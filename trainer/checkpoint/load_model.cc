#include "checkpoint/load_model.h"

#include <utility>
#include <vector>

#include "checkpoint/model_config.h"

namespace strun::train {

Result<CheckpointState> LoadModel(const std::string& step_dir, const CheckpointLoadOptions& options,
                                  model::Llama& llama) {
  std::vector<std::string> names;
  for (const auto& [n, t] : llama.NamedParameters()) names.push_back(n);
  // The model's own TP layout and fused-projection shapes (for merging shards of another tp).
  CheckpointLoadOptions o = options;
  const model::LlamaModelConfig& c = llama.config();
  o.tp = llama.tp_size();
  o.tp_rank = llama.tensor_parallel().rank();
  o.q_rows = c.num_attention_heads * c.head_dim();
  o.kv_rows = c.num_key_value_heads * c.head_dim();
  o.intermediate = c.intermediate_size;
  auto state = LoadCheckpoint(step_dir, o, names);
  if (!state) return state.error();
  if (auto s = llama.LoadNamedParameters(state->model); !s) {
    return MakeError("checkpoint " + step_dir + ": " + s.error().message);
  }
  state->model.clear();  // the copies in `llama` are the weights now
  return state;
}

Result<CheckpointModel> LoadCheckpointModel(const std::string& step_dir, c10::Device device) {
  auto config = LoadConfig(step_dir + "/config.yaml");
  if (!config) return config.error();
  const model::LlamaModelConfig shape = ModelConfigFrom(*config);
  auto llama =
      model::Llama::Create(shape, at::TensorOptions().dtype(ModelDType(*config)).device(device));
  if (!llama) return MakeError(step_dir + "/config.yaml: " + llama.error().message);
  CheckpointLoadOptions options;
  options.load_optimizer = false;
  if (auto state = LoadModel(step_dir, options, *llama); !state) return state.error();
  return CheckpointModel{std::move(*config), shape, std::move(*llama)};
}

}  // namespace strun::train
