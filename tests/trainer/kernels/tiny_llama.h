// tests/trainer/kernels: the two-layer Llama the whole-model GPU tests train, shaped for the
// kernels (hidden 256, head_dim 64, tied embeddings, a vocabulary that is not a multiple of 128 so
// that the classifier pads it).
#pragma once

#include <cstdint>

#include "model/llama_config.h"

namespace strun::model {

inline LlamaModelConfig TinyGpuLlamaConfig(int64_t kv_heads) {
  LlamaModelConfig c;
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.num_hidden_layers = 2;
  c.vocab_size = 1001;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = true;
  return c;
}

}  // namespace strun::model
