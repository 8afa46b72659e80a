// What a training run needs of a config beyond the file being valid (nanotron checks these when
// its trainer starts, or fails on them later with a Python traceback).
#include <fmt/format.h>

#include "config/config.h"

namespace strun::train {

Status ValidateForTraining(const Config& c, const std::string& source) {
  auto missing = [&](const char* section) {
    return MakeError(
        fmt::format("{}: the {} section is missing (or null); training needs it "
                    "(see etc/examples/config_tiny_llama_wikitext.yaml)",
                    source, section));
  };
  if (!c.checkpoints) return missing("checkpoints");
  if (!c.logging) return missing("logging");
  if (!c.tokens) return missing("tokens");
  if (!c.optimizer) return missing("optimizer");
  if (!c.data_stages) return missing("data_stages");

  const TokensArgs& t = *c.tokens;
  const std::pair<const char*, int64_t> sizes[] = {
      {"sequence_length", t.sequence_length},
      {"train_steps", t.train_steps},
      {"micro_batch_size", t.micro_batch_size},
      {"batch_accumulation_per_replica", t.batch_accumulation_per_replica},
  };
  for (const auto& [key, value] : sizes) {
    if (value < 1)
      return MakeError(fmt::format("{}: tokens.{} must be at least 1, not {}", source, key, value));
  }

  const LlamaConfig& m = c.model.model_config;
  if (m.hidden_size % m.num_attention_heads != 0) {
    return MakeError(
        fmt::format("{}: model.model_config.hidden_size ({}) must be a multiple of "
                    "num_attention_heads ({})",
                    source, m.hidden_size, m.num_attention_heads));
  }
  if (m.num_attention_heads % m.num_key_value_heads != 0) {
    return MakeError(
        fmt::format("{}: model.model_config.num_attention_heads ({}) must be a multiple of "
                    "num_key_value_heads ({})",
                    source, m.num_attention_heads, m.num_key_value_heads));
  }
  // nanotron's init_model: a new model is built for exactly one sequence length.
  if (!std::holds_alternative<ExistingCheckpointInit>(c.model.init_method) &&
      t.sequence_length != m.max_position_embeddings) {
    return MakeError(
        fmt::format("{}: tokens.sequence_length ({}) does not match "
                    "model.model_config.max_position_embeddings ({}); make them equal "
                    "(they may differ only when init_method.path starts from a checkpoint)",
                    source, t.sequence_length, m.max_position_embeddings));
  }
  return {};
}

}  // namespace strun::train
