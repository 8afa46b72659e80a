// model/llama_config.h: the shape of nanotron's Llama, as the model needs it.
//
// A plain struct so that the model does not depend on the YAML config (trainer/config): the
// trainer fills it from nanotron's `model.model_config` (LlamaConfig at nanotron 5f8a52b0) after
// padding the vocabulary with PaddedVocabSize. Pure arithmetic, no libtorch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "strun/result.h"

namespace strun::model {

struct LlamaModelConfig {
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;  // nanotron: null means num_attention_heads
  int64_t num_hidden_layers = 32;
  // Rows of the embedding and of the lm_head: the vocabulary AFTER padding (PaddedVocabSize).
  int64_t vocab_size = 32000;
  int64_t max_position_embeddings = 2048;  // informational: rotary tables grow with the sequence
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  // One of: silu (swish), gelu, gelu_pytorch_tanh, gelu_new, relu (nanotron's ACT2FN names).
  std::string hidden_act = "silu";
  // nanotron passes it as the embedding's padding_idx: that row gets no gradient from the input.
  std::optional<int64_t> pad_token_id;
  int64_t bos_token_id = 1;  // only written to exported configs
  int64_t eos_token_id = 2;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// How nanotron initialises a model (init_method: {std: ...}) plus the seed (general.seed).
struct InitOptions {
  double std = 0.02;
  uint64_t seed = 42;
};

// nanotron's _vocab_size_with_padding: rounds `vocab_size` up to a multiple of
// make_vocab_size_divisible_by * tp_size.
int64_t PaddedVocabSize(int64_t vocab_size, int64_t make_vocab_size_divisible_by, int64_t tp_size);

// Checks what nanotron asserts when it builds the model; the error names the offending field.
Status ValidateLlamaConfig(const LlamaModelConfig& config);

// Number of distinct parameters (a tied lm_head counted once), as nanotron's parameter count at
// tp=1.
int64_t CountParameters(const LlamaModelConfig& config);

// nanotron's get_flops (models/llama.py): model FLOPs of one training step (forward + backward) of
// `batch_size` sequences of `seq_len` tokens. Hardware FLOPs are the same number in nanotron.
double ModelFlopsPerStep(const LlamaModelConfig& config, int64_t seq_len, int64_t batch_size);

}  // namespace strun::model
