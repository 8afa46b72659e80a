// Quantities derived from a config: padded vocabulary, parameter count, batch sizes.
#include "config/config.h"

namespace strun::train {

int64_t PaddedVocabSize(int64_t vocab_size, int64_t make_vocab_size_divisible_by, int64_t tp) {
  // nanotron's _vocab_size_with_padding: ceil(vocab / multiple) * multiple.
  const int64_t multiple = make_vocab_size_divisible_by * tp;
  if (multiple <= 1) return vocab_size;
  return (vocab_size + multiple - 1) / multiple * multiple;
}

int64_t PaddedVocabSize(const ModelArgs& model, int64_t tp) {
  return PaddedVocabSize(model.model_config.vocab_size, model.make_vocab_size_divisible_by, tp);
}

int64_t CountParameters(const LlamaConfig& c, int64_t tp, int64_t make_vocab_size_divisible_by) {
  const int64_t vocab = PaddedVocabSize(c.vocab_size, make_vocab_size_divisible_by, tp);
  const int64_t h = c.hidden_size;
  const int64_t head_dim = c.num_attention_heads > 0 ? h / c.num_attention_heads : 0;
  // nanotron's LlamaDecoderLayer: RMSNorm, fused qkv projection (no bias), output projection,
  // RMSNorm, fused gate/up projection, down projection.
  const int64_t qkv = h * (c.num_attention_heads * head_dim + 2 * c.num_key_value_heads * head_dim);
  const int64_t o = c.num_attention_heads * head_dim * h;
  const int64_t gate_up = h * 2 * c.intermediate_size;
  const int64_t down = c.intermediate_size * h;
  const int64_t layer = 2 * h + qkv + o + gate_up + down;
  const int64_t embeddings = vocab * h;
  const int64_t lm_head =
      c.tie_word_embeddings ? 0 : vocab * h;  // tied: the same tensor, counted once
  return embeddings + c.num_hidden_layers * layer + h /* final RMSNorm */ + lm_head;
}

int64_t CountParameters(const ModelArgs& model, int64_t tp) {
  return CountParameters(model.model_config, tp, model.make_vocab_size_divisible_by);
}

int64_t GlobalBatchSize(const Config& config) {
  if (!config.tokens) return 0;
  return config.tokens->micro_batch_size * config.tokens->batch_accumulation_per_replica *
         config.parallelism.dp;
}

int64_t TokensPerStep(const Config& config) {
  if (!config.tokens) return 0;
  return GlobalBatchSize(config) * config.tokens->sequence_length;
}

}  // namespace strun::train
