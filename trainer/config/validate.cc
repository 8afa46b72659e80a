// What a training run needs of a config beyond the file being valid (nanotron checks these when
// its trainer starts, or fails on them later with a Python traceback).
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <utility>
#include <vector>

#include "config/config.h"

namespace strun::train {
namespace {

// A NaN or infinite rate, epsilon or scale trains NaN from the first step.
Status CheckFinite(const Config& c, const std::string& source) {
  std::vector<std::pair<const char*, double>> values = {
      {"optimizer.learning_rate_scheduler.learning_rate",
       c.optimizer->learning_rate_scheduler.learning_rate},
      {"optimizer.learning_rate_scheduler.min_decay_lr",
       c.optimizer->learning_rate_scheduler.min_decay_lr},
      {"optimizer.weight_decay", c.optimizer->weight_decay},
      {"model.model_config.rms_norm_eps", c.model.model_config.rms_norm_eps},
      {"model.model_config.rope_theta", c.model.model_config.rope_theta},
      {"model.model_config.initializer_range", c.model.model_config.initializer_range},
  };
  if (c.optimizer->clip_grad) values.push_back({"optimizer.clip_grad", *c.optimizer->clip_grad});
  if (const auto* adam = std::get_if<AdamWOptimizerArgs>(&c.optimizer->optimizer_factory)) {
    values.push_back({"optimizer.optimizer_factory.adam_eps", adam->adam_eps});
    values.push_back({"optimizer.optimizer_factory.adam_beta1", adam->adam_beta1});
    values.push_back({"optimizer.optimizer_factory.adam_beta2", adam->adam_beta2});
  }
  if (const auto* init = std::get_if<RandomInit>(&c.model.init_method)) {
    values.push_back({"model.init_method.std", init->std});
  }
  for (const auto& [key, value] : values) {
    if (!std::isfinite(value)) {
      return MakeError(fmt::format("{}: {} is {}; it must be a finite number", source, key, value));
    }
  }
  return {};
}

// Tensor sizes and counters are int64 (bytes too: up to 8 per element), so every product of
// sizes the trainer forms must stay below 2^60; past it they would wrap around to garbage.
constexpr int64_t kMaxElements = int64_t{1} << 60;

std::optional<int64_t> Product(std::initializer_list<int64_t> factors) {
  int64_t p = 1;
  for (int64_t f : factors) {
    if (__builtin_mul_overflow(p, f, &p) || p > kMaxElements) return std::nullopt;
  }
  return p;
}

std::optional<int64_t> Sum(std::initializer_list<std::optional<int64_t>> terms) {
  int64_t s = 0;
  for (const auto& t : terms) {
    if (!t || __builtin_add_overflow(s, *t, &s) || s > kMaxElements) return std::nullopt;
  }
  return s;
}

Status CheckSizes(const Config& c, const std::string& source) {
  const LlamaConfig& m = c.model.model_config;
  const TokensArgs& t = *c.tokens;
  auto too_large = [&](const std::string& what, const std::string& keys) {
    return MakeError(fmt::format(
        "{}: {} ({}) exceeds 2^60 elements, past which the trainer's 64-bit sizes overflow; make "
        "these keys smaller",
        source, what, keys));
  };
  const auto multiple = Product({c.model.make_vocab_size_divisible_by, c.parallelism.tp});
  if (!multiple) {
    return too_large("the vocabulary padding multiple",
                     "model.make_vocab_size_divisible_by x parallelism.tp");
  }
  if (!Sum({m.vocab_size, *multiple})) {
    return too_large("the padded vocabulary", "model.model_config.vocab_size");
  }
  const int64_t vocab = PaddedVocabSize(c.model, c.parallelism.tp);
  const int64_t h = m.hidden_size;
  const int64_t head_dim = h / m.num_attention_heads;
  const auto embedding = Product({vocab, h});
  if (!embedding) {
    return too_large("the embedding", "model.model_config.vocab_size x hidden_size");
  }
  const auto mlp = Product({3, h, m.intermediate_size});
  if (!mlp) return too_large("the MLP", "model.model_config.hidden_size x intermediate_size");
  const auto kv = Product({2, m.num_key_value_heads, head_dim});
  const auto attention = kv ? Product({h, 2 * h + *kv}) : std::nullopt;
  if (!attention) return too_large("the attention", "model.model_config.hidden_size x hidden_size");
  const auto layer = Sum({Product({2, h}), attention, mlp});
  const auto layers = layer ? Product({m.num_hidden_layers, *layer}) : std::nullopt;
  if (!layers) {
    return too_large("the decoder layers",
                     "model.model_config.num_hidden_layers x (hidden_size, intermediate_size)");
  }
  if (!Sum({*embedding, *embedding, *layers, h})) {
    return too_large("the parameter count",
                     "model.model_config.vocab_size, hidden_size, intermediate_size, "
                     "num_hidden_layers");
  }
  if (!Product({m.max_position_embeddings, head_dim})) {
    return too_large("the rotary embedding table",
                     "model.model_config.max_position_embeddings x hidden_size");
  }
  const auto tokens = Product({t.micro_batch_size, t.sequence_length});
  if (!tokens) return too_large("a micro-batch", "tokens.micro_batch_size x sequence_length");
  if (!Product({*tokens, vocab})) {
    return too_large("the logits of a micro-batch",
                     "tokens.micro_batch_size x sequence_length x model.model_config.vocab_size");
  }
  if (!Product({*tokens, 2, m.intermediate_size})) {
    return too_large("the MLP activations of a micro-batch",
                     "tokens.micro_batch_size x sequence_length x "
                     "model.model_config.intermediate_size");
  }
  if (!Product({t.micro_batch_size, m.num_attention_heads, t.sequence_length, t.sequence_length})) {
    return too_large("the attention scores of a micro-batch",
                     "tokens.micro_batch_size x sequence_length^2 x "
                     "model.model_config.num_attention_heads");
  }
  const auto global_batch =
      Product({t.micro_batch_size, t.batch_accumulation_per_replica, c.parallelism.dp});
  if (!global_batch || !Product({*global_batch, t.sequence_length})) {
    return too_large("the global batch",
                     "tokens.micro_batch_size x batch_accumulation_per_replica x parallelism.dp x "
                     "sequence_length");
  }
  if (!Product({t.train_steps, *global_batch, t.sequence_length})) {
    return too_large("the number of tokens trained",
                     "tokens.train_steps x the global batch x sequence_length");
  }
  return {};
}

}  // namespace

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
  if (auto s = CheckFinite(c, source); !s) return s;
  return CheckSizes(c, source);
}

}  // namespace strun::train
