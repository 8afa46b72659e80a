#include "checkpoint/load_model.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "checkpoint/checkpoint_manifest.h"
#include "checkpoint/file_sync.h"
#include "checkpoint/model_config.h"

namespace strun::train {
namespace {

// The checkpoint's model_config.json against the model it is loaded into: a model of another
// shape is refused naming the field (rather than a tensor shape error deep in the resharding).
// Checkpoints without the file are left to the per-tensor shape checks.
Status CheckSameModel(const std::string& step_dir, const model::LlamaModelConfig& c) {
  const std::string path = step_dir + "/model_config.json";
  if (!std::filesystem::exists(path)) return {};
  auto manifest = ChecksumManifest::Read(step_dir);
  if (!manifest) return manifest.error();
  if (*manifest) {
    if (auto s = (*manifest)->Verify(step_dir, "model_config.json"); !s) return s;
  }
  auto text = ReadWholeFile(path);
  if (!text) return text.error();
  try {
    const auto j = nlohmann::json::parse(*text);
    const std::pair<const char*, int64_t> fields[] = {
        {"hidden_size", c.hidden_size},
        {"intermediate_size", c.intermediate_size},
        {"num_attention_heads", c.num_attention_heads},
        {"num_key_value_heads", c.num_key_value_heads},
        {"num_hidden_layers", c.num_hidden_layers},
        {"vocab_size", c.vocab_size},
        {"tie_word_embeddings", c.tie_word_embeddings ? 1 : 0}};
    for (const auto& [key, mine] : fields) {
      if (!j.contains(key)) continue;
      const int64_t saved =
          j.at(key).is_boolean() ? (j.at(key).get<bool>() ? 1 : 0) : j.at(key).get<int64_t>();
      if (saved == mine) continue;
      std::string hint = "; load it into the model it was trained with";
      if (std::string(key) == "vocab_size") {
        hint =
            " (the vocabulary is padded to a multiple of model.make_vocab_size_divisible_by x "
            "parallelism.tp: choose one that pads it alike at both layouts)";
      }
      return MakeError(
          "checkpoint " + step_dir + " holds another model: its model_config.json has " + key +
          " " + std::to_string(saved) + " but this run's model has " + std::to_string(mine) + hint);
    }
  } catch (const std::exception& e) {
    return MakeError(path + ": malformed model config: " + e.what());
  }
  return {};
}

}  // namespace

Result<CheckpointState> LoadModel(const std::string& step_dir, const CheckpointLoadOptions& options,
                                  model::Llama& llama) {
  std::vector<ParameterShape> params;
  for (const auto& [n, t] : llama.NamedParameters()) params.push_back({n, t.sizes().vec()});
  // The model's own TP layout and fused-projection shapes (for merging shards of another tp).
  CheckpointLoadOptions o = options;
  const model::LlamaModelConfig& c = llama.config();
  o.tp = llama.tp_size();
  o.tp_rank = llama.tensor_parallel().rank();
  o.q_rows = c.num_attention_heads * c.head_dim();
  o.kv_rows = c.num_key_value_heads * c.head_dim();
  o.intermediate = c.intermediate_size;
  if (auto s = CheckSameModel(step_dir, c); !s) return s.error();
  auto state = LoadCheckpoint(step_dir, o, params);
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
