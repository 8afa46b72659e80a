#include "checkpoint/model_config.h"

#include <nlohmann/json.hpp>

namespace strun::train {

model::LlamaModelConfig ModelConfigFrom(const Config& c) {
  const LlamaConfig& l = c.model.model_config;
  model::LlamaModelConfig m;
  m.hidden_size = l.hidden_size;
  m.intermediate_size = l.intermediate_size;
  m.num_attention_heads = l.num_attention_heads;
  m.num_key_value_heads = l.num_key_value_heads;
  m.num_hidden_layers = l.num_hidden_layers;
  // nanotron pads the vocabulary to a multiple of make_vocab_size_divisible_by * tp.
  m.vocab_size = PaddedVocabSize(c.model, c.parallelism.tp);
  m.max_position_embeddings = l.max_position_embeddings;
  m.rms_norm_eps = l.rms_norm_eps;
  m.rope_theta = l.rope_theta;
  m.tie_word_embeddings = l.tie_word_embeddings;
  m.hidden_act = l.hidden_act;
  m.pad_token_id = l.pad_token_id;
  m.bos_token_id = l.bos_token_id;
  m.eos_token_id = l.eos_token_id;
  return m;
}

c10::ScalarType ModelDType(const Config& c) {
  switch (c.model.dtype) {
    case DType::kFloat32:
      return c10::kFloat;
    case DType::kFloat64:
      return c10::kDouble;
    case DType::kFloat16:
      return c10::kHalf;
    case DType::kBFloat16:
      return c10::kBFloat16;
    default:
      return c10::kFloat;
  }
}

std::string ModelConfigJson(const Config& c) {
  const LlamaConfig& l = c.model.model_config;
  nlohmann::json j = {{"bos_token_id", l.bos_token_id},
                      {"eos_token_id", l.eos_token_id},
                      {"hidden_act", l.hidden_act},
                      {"hidden_size", l.hidden_size},
                      {"initializer_range", l.initializer_range},
                      {"intermediate_size", l.intermediate_size},
                      {"is_llama_config", l.is_llama_config},
                      {"max_position_embeddings", l.max_position_embeddings},
                      {"num_attention_heads", l.num_attention_heads},
                      {"num_hidden_layers", l.num_hidden_layers},
                      {"num_key_value_heads", l.num_key_value_heads},
                      {"pretraining_tp", l.pretraining_tp},
                      {"rms_norm_eps", l.rms_norm_eps},
                      {"rope_theta", l.rope_theta},
                      {"tie_word_embeddings", l.tie_word_embeddings},
                      {"use_cache", l.use_cache},
                      {"vocab_size", PaddedVocabSize(c.model, c.parallelism.tp)}};
  j["pad_token_id"] = l.pad_token_id ? nlohmann::json(*l.pad_token_id) : nlohmann::json();
  j["rope_scaling"] = nullptr;
  return j.dump(2);
}

}  // namespace strun::train
