#include "model/llama_config.h"

#include <fmt/format.h>

namespace strun::model {

int64_t PaddedVocabSize(int64_t vocab_size, int64_t make_vocab_size_divisible_by, int64_t tp_size) {
  const int64_t multiple = make_vocab_size_divisible_by * tp_size;
  if (multiple <= 1) return vocab_size;
  return (vocab_size + multiple - 1) / multiple * multiple;
}

Status ValidateLlamaConfig(const LlamaModelConfig& c) {
  auto positive = [](int64_t v, const char* key) -> Status {
    if (v <= 0) {
      return MakeError(fmt::format("model.model_config.{} must be positive, got {}", key, v));
    }
    return {};
  };
  for (auto [v, key] : {std::pair{c.hidden_size, "hidden_size"},
                        std::pair{c.intermediate_size, "intermediate_size"},
                        std::pair{c.num_attention_heads, "num_attention_heads"},
                        std::pair{c.num_key_value_heads, "num_key_value_heads"},
                        std::pair{c.num_hidden_layers, "num_hidden_layers"},
                        std::pair{c.vocab_size, "vocab_size"}}) {
    if (auto s = positive(v, key); !s) return s;
  }
  if (c.hidden_size % c.num_attention_heads != 0) {
    return MakeError(fmt::format(
        "model.model_config.hidden_size ({}) must be divisible by num_attention_heads ({})",
        c.hidden_size, c.num_attention_heads));
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return MakeError(fmt::format(
        "model.model_config.num_attention_heads ({}) must be divisible by num_key_value_heads ({})",
        c.num_attention_heads, c.num_key_value_heads));
  }
  if (c.head_dim() % 2 != 0) {
    return MakeError(
        fmt::format("model.model_config: the head dimension hidden_size / num_attention_heads = {} "
                    "must be even "
                    "for rotary embeddings",
                    c.head_dim()));
  }
  if (!(c.rms_norm_eps > 0)) {
    return MakeError(
        fmt::format("model.model_config.rms_norm_eps must be positive, got {}", c.rms_norm_eps));
  }
  if (!(c.rope_theta > 0)) {
    return MakeError(
        fmt::format("model.model_config.rope_theta must be positive, got {}", c.rope_theta));
  }
  static constexpr const char* kActs[] = {"silu",     "swish", "gelu", "gelu_pytorch_tanh",
                                          "gelu_new", "relu"};
  bool known = false;
  for (const char* a : kActs) known = known || c.hidden_act == a;
  if (!known) {
    return MakeError(fmt::format(
        "model.model_config.hidden_act '{}' is not supported; use one of silu, swish, gelu, "
        "gelu_pytorch_tanh, gelu_new, relu",
        c.hidden_act));
  }
  if (c.pad_token_id && (*c.pad_token_id < 0 || *c.pad_token_id >= c.vocab_size)) {
    return MakeError(
        fmt::format("model.model_config.pad_token_id ({}) must lie in [0, vocab_size = {})",
                    *c.pad_token_id, c.vocab_size));
  }
  return {};
}

int64_t CountParameters(const LlamaModelConfig& c) {
  const int64_t d = c.head_dim();
  const int64_t h = c.hidden_size;
  const int64_t qkv = h * (c.num_attention_heads * d + 2 * c.num_key_value_heads * d);
  const int64_t o = c.num_attention_heads * d * h;
  const int64_t mlp = h * 2 * c.intermediate_size + c.intermediate_size * h;
  const int64_t norms = 2 * h;
  const int64_t embedding = c.vocab_size * h;
  const int64_t lm_head = c.tie_word_embeddings ? 0 : c.vocab_size * h;
  return embedding + c.num_hidden_layers * (qkv + o + mlp + norms) + h + lm_head;
}

double ModelFlopsPerStep(const LlamaModelConfig& c, int64_t seq_len, int64_t batch_size) {
  // Same terms as nanotron's get_flops, in double to avoid overflow.
  const double L = static_cast<double>(c.num_hidden_layers);
  const double b = static_cast<double>(batch_size);
  const double s = static_cast<double>(seq_len);
  const double h = static_cast<double>(c.hidden_size);
  const double nh = static_cast<double>(c.num_attention_heads);
  const double nkv = static_cast<double>(c.num_key_value_heads);
  const double d = static_cast<double>(c.hidden_size / c.num_attention_heads);
  const double ff = static_cast<double>(c.intermediate_size);
  const double v = static_cast<double>(c.vocab_size);
  const double qkv = 2 * L * b * s * h * nh * d + 2 * L * b * s * h * 2 * nkv * d;
  const double qk_logits = 2 * L * b * nh * s * d * s;
  const double v_logits = 2 * L * b * nh * s * s * d;
  const double attn_out = 2 * L * b * nh * s * d * h;
  const double ffn1 = 4 * L * b * s * h * ff;
  const double ffn2 = 2 * L * b * s * ff * h;
  const double lm_head = 2 * b * s * h * v;
  return 3 * (qkv + qk_logits + v_logits + attn_out + ffn1 + ffn2 + lm_head);
}

}  // namespace strun::model
