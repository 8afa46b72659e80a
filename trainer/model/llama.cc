#include "model/llama.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Reduction.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <set>

#include "model/torch_compat.h"
#include "parallel/tp_linear.h"
#include "parallel/vocab_parallel.h"

namespace strun::model {
namespace {

// Dtype of the arithmetic for rotary, norms and the loss: fp32, or fp64 for an fp64 model.
at::ScalarType ComputeType(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

at::Tensor NewParameter(at::IntArrayRef shape, const at::TensorOptions& options) {
  return at::empty(shape, options.requires_grad(false)).requires_grad_(true);
}

std::string LayerPrefix(int64_t i) { return fmt::format("model.decoder.{}.pp_block.", i); }

constexpr const char* kEmbeddingName =
    "model.token_position_embeddings.pp_block.token_embedding.weight";

// The whole model's parameters (names and unsharded shapes) in NamedParameters' order: what
// InitRandomly draws, whichever part of it a rank holds.
std::vector<std::pair<std::string, std::vector<int64_t>>> FullParameterShapes(
    const LlamaModelConfig& c) {
  const int64_t h = c.hidden_size, d = c.head_dim();
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  out.push_back({kEmbeddingName, {c.vocab_size, h}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = LayerPrefix(i);
    out.push_back({p + "input_layernorm.weight", {h}});
    out.push_back(
        {p + "attn.qkv_proj.weight", {(c.num_attention_heads + 2 * c.num_key_value_heads) * d, h}});
    out.push_back({p + "attn.o_proj.weight", {h, c.num_attention_heads * d}});
    out.push_back({p + "post_attention_layernorm.weight", {h}});
    out.push_back({p + "mlp.gate_up_proj.weight", {2 * c.intermediate_size, h}});
    out.push_back({p + "mlp.down_proj.weight", {h, c.intermediate_size}});
  }
  out.push_back({"model.final_layer_norm.pp_block.weight", {h}});
  if (!c.tie_word_embeddings) out.push_back({"model.lm_head.pp_block.weight", {c.vocab_size, h}});
  return out;
}

// nanotron asserts the same when it builds a sharded Llama; the error names the keys.
Status ValidateTensorParallel(const LlamaModelConfig& c, int tp) {
  if (tp == 1) return {};
  auto check = [&](int64_t n, const char* key) -> Status {
    if (n % tp == 0) return {};
    return MakeError(fmt::format(
        "model.model_config.{} ({}) is not divisible by parallelism.tp ({}): tensor parallelism "
        "splits it evenly over the tp ranks; choose a tp that divides it",
        key, n, tp));
  };
  if (auto s = check(c.num_attention_heads, "num_attention_heads"); !s) return s;
  if (auto s = check(c.num_key_value_heads, "num_key_value_heads"); !s) return s;
  if (auto s = check(c.intermediate_size, "intermediate_size"); !s) return s;
  if (c.vocab_size % tp != 0) {
    return MakeError(fmt::format(
        "the padded vocabulary ({}) is not divisible by parallelism.tp ({}); pad it with "
        "model.make_vocab_size_divisible_by",
        c.vocab_size, tp));
  }
  return {};
}

}  // namespace

// ---- building blocks ----------------------------------------------------------------------------

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::ScalarType ct = ComputeType(x.scalar_type());
  at::Tensor xf = x.to(ct);
  at::Tensor rstd = at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true).add(eps));
  return xf.mul(rstd).mul(weight.to(ct)).to(x.scalar_type());
}

std::pair<at::Tensor, at::Tensor> RotaryTables(int64_t seq_len, int64_t head_dim, double theta,
                                               const at::TensorOptions& options) {
  const at::ScalarType ct = ComputeType(options.dtype().toScalarType());
  const at::TensorOptions co = options.dtype(ct).requires_grad(false);
  at::Tensor exponents = at::arange(0, head_dim, 2, co).div(static_cast<double>(head_dim));
  at::Tensor inv_freq = at::reciprocal(at::pow(theta, exponents));
  at::Tensor positions = at::arange(seq_len, co);
  at::Tensor angles = at::outer(positions, inv_freq);  // [S, D/2]
  const at::ScalarType out = options.dtype().toScalarType();
  return {at::cos(angles).to(out), at::sin(angles).to(out)};
}

at::Tensor ApplyRotaryInterleaved(const at::Tensor& x, const at::Tensor& cos,
                                  const at::Tensor& sin) {
  TORCH_CHECK(x.dim() == 4, "ApplyRotaryInterleaved: x must be [B, S, H, D]");
  const int64_t b = x.size(0), s = x.size(1), h = x.size(2), d = x.size(3);
  TORCH_CHECK(d % 2 == 0 && cos.size(0) >= s && cos.size(1) == d / 2,
              "ApplyRotaryInterleaved: tables do not fit x");
  const at::ScalarType ct = ComputeType(x.scalar_type());
  at::Tensor pairs = x.to(ct).reshape({b, s, h, d / 2, 2});
  at::Tensor x0 = pairs.select(-1, 0);
  at::Tensor x1 = pairs.select(-1, 1);
  at::Tensor c = cos.narrow(0, 0, s).to(ct).view({1, s, 1, d / 2});
  at::Tensor sn = sin.narrow(0, 0, s).to(ct).view({1, s, 1, d / 2});
  at::Tensor o0 = x0 * c - x1 * sn;
  at::Tensor o1 = x0 * sn + x1 * c;
  return at::stack({o0, o1}, -1).reshape({b, s, h, d}).to(x.scalar_type());
}

at::Tensor GroupedCausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const int64_t hq = q.size(2), hkv = k.size(2);
  TORCH_CHECK(hkv > 0 && hq % hkv == 0, "GroupedCausalAttention: query heads (", hq,
              ") must be a multiple of key/value heads (", hkv, ")");
  at::Tensor kk = k, vv = v;
  if (hq != hkv) {
    // Query head h reads kv head h / n_rep, as flash-attn's GQA.
    kk = k.repeat_interleave(hq / hkv, /*dim=*/2);
    vv = v.repeat_interleave(hq / hkv, /*dim=*/2);
  }
  at::Tensor out = compat::CausalAttention(q.transpose(1, 2), kk.transpose(1, 2),
                                           vv.transpose(1, 2));  // [B, H, S, D]
  return out.transpose(1, 2);
}

at::Tensor MaskedCrossEntropy(const at::Tensor& logits, const at::Tensor& label_ids,
                              const at::Tensor& label_mask) {
  const int64_t vocab = logits.size(-1);
  const at::ScalarType ct = ComputeType(logits.scalar_type());
  at::Tensor per_token = at::cross_entropy_loss(logits.to(ct).reshape({-1, vocab}),
                                                label_ids.reshape({-1}).to(at::kLong),
                                                /*weight=*/{}, at::Reduction::None);
  at::Tensor mask = label_mask.reshape({-1}).to(ct);
  return per_token.mul(mask).sum().div(mask.sum());
}

// ---- the model
// ------------------------------------------------------------------------------------

// The TP layers (value objects over the TP group; they own no parameters).
struct Llama::TpLayers {
  std::optional<parallel::VocabParallelEmbedding> embedding;
  std::optional<parallel::ColumnParallelLinear> qkv, gate_up, lm_head;
  std::optional<parallel::RowParallelLinear> o, down;
};

Llama::Llama(const LlamaModelConfig& config, const at::TensorOptions& options,
             TensorParallelOptions tp, const PipelineStage& stage)
    : config_(config),
      options_(options.requires_grad(false)),
      tp_(std::move(tp)),
      stage_(stage),
      ops_(&SelectOps(config, options_)) {
  // With tp > 1 this rank's shards (parallel/tp_linear_sharding.h); t = 1 is the full model.
  const int64_t t = tp_.size();
  const int64_t h = config.hidden_size;
  const int64_t d = config.head_dim();
  const int64_t qkv_rows = (config.num_attention_heads + 2 * config.num_key_value_heads) * d;
  // With pp > 1 only this stage's blocks (the whole model at pp = 1).
  if (stage.embedding || (config.tie_word_embeddings && stage.head)) {
    token_embedding_ = NewParameter({config.vocab_size / t, h}, options_);
  }
  layers_.reserve(static_cast<size_t>(stage.end_layer - stage.first_layer));
  for (int64_t i = stage.first_layer; i < stage.end_layer; ++i) {
    DecoderLayerWeights w;
    w.input_layernorm = NewParameter({h}, options_);
    w.qkv_proj = NewParameter({qkv_rows / t, h}, options_);
    w.o_proj = NewParameter({h, config.num_attention_heads * d / t}, options_);
    w.post_attention_layernorm = NewParameter({h}, options_);
    w.gate_up_proj = NewParameter({2 * config.intermediate_size / t, h}, options_);
    w.down_proj = NewParameter({h, config.intermediate_size / t}, options_);
    layers_.push_back(std::move(w));
  }
  if (stage.final_norm) final_layer_norm_ = NewParameter({h}, options_);
  if (!config.tie_word_embeddings && stage.head) {
    lm_head_ = NewParameter({config.vocab_size / t, h}, options_);
  }
}

Result<Llama> Llama::Create(const LlamaModelConfig& config, const at::TensorOptions& options,
                            TensorParallelOptions tp, PipelineParallelOptions pp) {
  if (auto s = ValidateLlamaConfig(config); !s) return s.error();
  if (auto s = ValidateTensorParallel(config, tp.size()); !s) return s.error();
  auto stage = LlamaPipelineStage(config, pp.stage, pp.num_stages);
  if (!stage) return stage.error();
  if (tp.size() == 1) return Llama(config, options, std::move(tp), *stage);
  const auto& g = tp.group;
  const int64_t h = config.hidden_size, d = config.head_dim();
  const parallel::TpLinearOptions column{tp.mode, tp.async_communication};
  const parallel::TpLinearOptions row{
      tp.mode, tp.async_communication && tp.mode == parallel::TpMode::kReduceScatter};
  auto layers = std::make_shared<TpLayers>();
  auto fail = [](const Error& e) { return MakeError("parallelism.tp: " + e.message); };
  auto emb = parallel::VocabParallelEmbedding::Create(config.vocab_size, h, g, tp.mode,
                                                      config.pad_token_id);
  if (!emb) return fail(emb.error());
  layers->embedding.emplace(std::move(*emb));
  auto qkv = parallel::ColumnParallelLinear::Create(
      h, (config.num_attention_heads + 2 * config.num_key_value_heads) * d, g, column);
  auto gate_up = parallel::ColumnParallelLinear::Create(h, 2 * config.intermediate_size, g, column);
  auto lm_head = parallel::ColumnParallelLinear::Create(h, config.vocab_size, g, column);
  auto o = parallel::RowParallelLinear::Create(config.num_attention_heads * d, h, g, row);
  auto down = parallel::RowParallelLinear::Create(config.intermediate_size, h, g, row);
  if (!qkv) return fail(qkv.error());
  if (!gate_up) return fail(gate_up.error());
  if (!lm_head) return fail(lm_head.error());
  if (!o) return fail(o.error());
  if (!down) return fail(down.error());
  layers->qkv.emplace(std::move(*qkv));
  layers->gate_up.emplace(std::move(*gate_up));
  layers->lm_head.emplace(std::move(*lm_head));
  layers->o.emplace(std::move(*o));
  layers->down.emplace(std::move(*down));
  Llama llama(config, options, std::move(tp), *stage);
  llama.tp_layers_ = std::move(layers);
  return llama;
}

std::optional<parallel::ShardSpec> Llama::ShardSpecOf(const std::string& name) const {
  const parallel::LlamaShardShape shape{config_.num_attention_heads, config_.num_key_value_heads,
                                        config_.head_dim(), config_.intermediate_size};
  auto spec = parallel::LlamaParameterShardSpec(name, shape);
  return spec ? *spec : std::nullopt;
}

std::vector<int64_t> Llama::FullShape(const std::string& name, const at::Tensor& shard) const {
  std::vector<int64_t> shape = shard.sizes().vec();
  if (auto spec = ShardSpecOf(name)) shape[static_cast<size_t>(spec->dim)] *= tp_size();
  return shape;
}

NamedTensors Llama::NamedParameters() const {
  NamedTensors out;
  if (token_embedding_.defined()) out.emplace_back(kEmbeddingName, token_embedding_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string p = LayerPrefix(stage_.first_layer + static_cast<int64_t>(i));
    const DecoderLayerWeights& w = layers_[i];
    out.emplace_back(p + "input_layernorm.weight", w.input_layernorm);
    out.emplace_back(p + "attn.qkv_proj.weight", w.qkv_proj);
    out.emplace_back(p + "attn.o_proj.weight", w.o_proj);
    out.emplace_back(p + "post_attention_layernorm.weight", w.post_attention_layernorm);
    out.emplace_back(p + "mlp.gate_up_proj.weight", w.gate_up_proj);
    out.emplace_back(p + "mlp.down_proj.weight", w.down_proj);
  }
  if (final_layer_norm_.defined()) {
    out.emplace_back("model.final_layer_norm.pp_block.weight", final_layer_norm_);
  }
  if (lm_head_.defined()) out.emplace_back("model.lm_head.pp_block.weight", lm_head_);
  return out;
}

std::vector<at::Tensor> Llama::Parameters() const {
  std::vector<at::Tensor> out;
  for (auto& [name, t] : NamedParameters()) out.push_back(t);
  return out;
}

int64_t Llama::NumParameters() const {
  int64_t n = 0;
  for (auto& [name, t] : NamedParameters()) n += t.numel();
  return n;
}

void Llama::InitRandomly(const InitOptions& init) {
  c10::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(init.seed);
  const double scaled_std =
      init.std / std::sqrt(2.0 * static_cast<double>(config_.num_hidden_layers));
  auto ends_with = [](const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  std::map<std::string, at::Tensor> held;
  for (auto& [name, param] : NamedParameters()) held.emplace(name, param);
  // Every tensor of the whole model is drawn in order, also those of other pipeline stages: the
  // layout does not change the model.
  for (const auto& [name, full_shape] : FullParameterShapes(config_)) {
    const auto it = held.find(name);
    if (ends_with(name, "layernorm.weight") ||
        ends_with(name, "final_layer_norm.pp_block.weight")) {
      if (it != held.end()) it->second.fill_(1.0);
      continue;
    }
    // nanotron's StandardParametrizator: row-parallel linears (o_proj, down_proj) get the scaled
    // std.
    const bool row_linear = ends_with(name, "o_proj.weight") || ends_with(name, "down_proj.weight");
    at::Tensor values = at::empty(full_shape, at::TensorOptions().dtype(at::kFloat));
    values.normal_(0.0, row_linear ? scaled_std : init.std, gen);
    if (it == held.end()) continue;
    at::Tensor& param = it->second;
    if (tp_size() == 1) {
      param.copy_(values);
      continue;
    }
    // The full tensor, as at tp = 1, then this rank's shard.
    if (auto spec = ShardSpecOf(name)) {
      values = parallel::ShardTensor(values, *spec, tp_.rank(), tp_size()).value();
    }
    param.copy_(values);
  }
}

at::Tensor Llama::Activation(const at::Tensor& x) const {
  const std::string& act = config_.hidden_act;
  if (act == "silu" || act == "swish") return at::silu(x);
  if (act == "gelu") return at::gelu(x);
  if (act == "gelu_pytorch_tanh" || act == "gelu_new") return at::gelu(x, "tanh");
  if (act == "relu") return at::relu(x);
  TORCH_CHECK(false, "unsupported hidden_act ", act);  // ValidateLlamaConfig rejects it earlier
}

at::Tensor Llama::DecoderLayer(const DecoderLayerWeights& w, const at::Tensor& x,
                               const at::Tensor& cos, const at::Tensor& sin) const {
  const int64_t b = x.size(0), s = x.size(1);
  const int64_t d = config_.head_dim();
  const int64_t nq = config_.num_attention_heads, nkv = config_.num_key_value_heads;

  const LlamaOps& ops = *ops_;
  // x and hidden each feed a norm and a residual add (the residual reads the fork's second output).
  std::vector<at::Tensor> norm_x = ops.rms_norm_fork(x, w.input_layernorm, config_.rms_norm_eps);
  at::Tensor qkv = ops.linear(norm_x[0], w.qkv_proj);  // [B, S, (nq + 2 nkv) d]
  std::vector<at::Tensor> qkv_heads = ops.rotary_qkv(qkv, nq, nkv, d, cos, sin);
  at::Tensor attn =
      GroupedCausalAttention(qkv_heads[0], qkv_heads[1], qkv_heads[2]).reshape({b, s, nq * d});
  at::Tensor hidden = ops.linear_residual(attn, w.o_proj, norm_x[1]);

  std::vector<at::Tensor> norm_hidden =
      ops.rms_norm_fork(hidden, w.post_attention_layernorm, config_.rms_norm_eps);
  at::Tensor gate_up = ops.linear(norm_hidden[0], w.gate_up_proj);
  const int64_t inter = config_.intermediate_size;
  const bool silu = config_.hidden_act == "silu" || config_.hidden_act == "swish";
  at::Tensor mlp =
      silu ? ops.silu_mul(gate_up)
           : Activation(gate_up.narrow(-1, 0, inter)) * gate_up.narrow(-1, inter, inter);
  return ops.linear_residual(mlp, w.down_proj, norm_hidden[1]);
}

at::Tensor Llama::TpDecoderLayer(const DecoderLayerWeights& w, const at::Tensor& x,
                                 const at::Tensor& cos, const at::Tensor& sin) const {
  // x: [S, B, hidden], or [S/tp, B, hidden] in REDUCE_SCATTER; the linears gather and scatter.
  const TpLayers& tl = *tp_layers_;
  const int64_t t = tp_size();
  const int64_t d = config_.head_dim();
  const int64_t nq = config_.num_attention_heads / t, nkv = config_.num_key_value_heads / t;
  const LlamaOps& ops = *ops_;
  std::vector<at::Tensor> norm_x = ops.rms_norm_fork(x, w.input_layernorm, config_.rms_norm_eps);
  // Rotary and attention take [B, S, ...]: this rank's heads are whole, so only the layout moves.
  at::Tensor qkv = tl.qkv->Forward(norm_x[0], w.qkv_proj).transpose(0, 1).contiguous();
  const int64_t b = qkv.size(0), s = qkv.size(1);
  std::vector<at::Tensor> qkv_heads = ops.rotary_qkv(qkv, nq, nkv, d, cos, sin);
  at::Tensor attn = GroupedCausalAttention(qkv_heads[0], qkv_heads[1], qkv_heads[2])
                        .reshape({b, s, nq * d})
                        .transpose(0, 1)
                        .contiguous();
  at::Tensor hidden = tl.o->Forward(attn, w.o_proj) + norm_x[1];

  std::vector<at::Tensor> norm_hidden =
      ops.rms_norm_fork(hidden, w.post_attention_layernorm, config_.rms_norm_eps);
  at::Tensor gate_up = tl.gate_up->Forward(norm_hidden[0], w.gate_up_proj);  // [gate | up] shard
  const int64_t inter = config_.intermediate_size / t;
  const bool silu = config_.hidden_act == "silu" || config_.hidden_act == "swish";
  at::Tensor mlp =
      silu ? ops.silu_mul(gate_up)
           : Activation(gate_up.narrow(-1, 0, inter)) * gate_up.narrow(-1, inter, inter);
  return tl.down->Forward(mlp, w.down_proj) + norm_hidden[1];
}

at::Tensor Llama::TpLoss(const at::Tensor& input_ids, const at::Tensor& label_ids,
                         const at::Tensor& label_mask) const {
  const TpLayers& tl = *tp_layers_;
  // Sequence-first, as nanotron's Llama: sequence parallelism splits dim 0.
  at::Tensor x =
      tl.embedding->Forward(input_ids.to(at::kLong).transpose(0, 1).contiguous(), token_embedding_);
  auto [cos, sin] =
      RotaryTables(input_ids.size(1), config_.head_dim(), config_.rope_theta, options_);
  for (const DecoderLayerWeights& w : layers_) x = TpDecoderLayer(w, x, cos, sin);
  x = ops_->rms_norm(x, final_layer_norm_, config_.rms_norm_eps);
  at::Tensor sharded_logits = tl.lm_head->Forward(x, lm_head());  // [S, B, V/tp]
  return parallel::VocabParallelMaskedLoss(sharded_logits, label_ids, label_mask, tp_.group);
}

at::Tensor Llama::StageForward(const at::Tensor& input, const at::Tensor& label_ids,
                               const at::Tensor& label_mask) const {
  TORCH_CHECK(label_ids.dim() == 2, "Llama: label_ids must be [batch, seq], got ",
              label_ids.sizes());
  at::Tensor x = input;
  if (stage_.embedding) {
    TORCH_CHECK(input.dim() == 2, "Llama: input_ids must be [batch, seq], got ", input.sizes());
    at::Tensor ids = input.to(at::kLong);
    if (tp_layers_) {
      x = tp_layers_->embedding->Forward(ids.transpose(0, 1).contiguous(), token_embedding_);
    } else {
      const int64_t padding_idx = config_.pad_token_id ? *config_.pad_token_id : -1;
      x = at::embedding(token_embedding_, ids, padding_idx);
    }
  }
  if (!layers_.empty()) {
    auto [cos, sin] =
        RotaryTables(label_ids.size(1), config_.head_dim(), config_.rope_theta, options_);
    for (const DecoderLayerWeights& w : layers_) {
      x = tp_layers_ ? TpDecoderLayer(w, x, cos, sin) : DecoderLayer(w, x, cos, sin);
    }
  }
  if (stage_.final_norm) x = ops_->rms_norm(x, final_layer_norm_, config_.rms_norm_eps);
  if (!stage_.head) return x;
  if (tp_layers_) {
    at::Tensor sharded_logits = tp_layers_->lm_head->Forward(x, lm_head());  // [S, B, V/tp]
    return parallel::VocabParallelMaskedLoss(sharded_logits, label_ids, label_mask, tp_.group);
  }
  return ops_->classifier_loss(x, lm_head(), label_ids, label_mask);
}

std::vector<int64_t> Llama::StageActivationShape(int64_t batch, int64_t seq) const {
  const int64_t h = config_.hidden_size;
  if (!tp_layers_) return {batch, seq, h};
  if (tp_.mode == parallel::TpMode::kReduceScatter) return {seq / tp_size(), batch, h};
  return {seq, batch, h};
}

at::Tensor Llama::Hidden(const at::Tensor& input_ids) const {
  TORCH_CHECK(tp_size() == 1, "Llama::Hidden: not available on a tensor-parallel shard");
  TORCH_CHECK(stage_.whole(), "Llama::Hidden: a pipeline stage runs StageForward");
  TORCH_CHECK(input_ids.dim() == 2, "Llama: input_ids must be [batch, seq], got ",
              input_ids.sizes());
  const int64_t padding_idx = config_.pad_token_id ? *config_.pad_token_id : -1;
  at::Tensor x = at::embedding(token_embedding_, input_ids.to(at::kLong), padding_idx);
  auto [cos, sin] =
      RotaryTables(input_ids.size(1), config_.head_dim(), config_.rope_theta, options_);
  for (const DecoderLayerWeights& w : layers_) x = DecoderLayer(w, x, cos, sin);
  return ops_->rms_norm(x, final_layer_norm_, config_.rms_norm_eps);
}

at::Tensor Llama::Logits(const at::Tensor& input_ids) const {
  at::Tensor logits = at::linear(Hidden(input_ids), lm_head());
  return logits.to(ComputeType(logits.scalar_type()));
}

at::Tensor Llama::Loss(const at::Tensor& input_ids, const at::Tensor& label_ids,
                       const at::Tensor& label_mask) const {
  TORCH_CHECK(stage_.whole(), "Llama::Loss: a pipeline stage runs StageForward");
  if (tp_layers_) return TpLoss(input_ids, label_ids, label_mask);
  return ops_->classifier_loss(Hidden(input_ids), lm_head(), label_ids, label_mask);
}

Status Llama::LoadNamedParameters(const NamedTensors& values) {
  std::map<std::string, at::Tensor> params;
  for (auto& [name, t] : NamedParameters()) params.emplace(name, t);
  std::set<std::string> seen;
  c10::NoGradGuard no_grad;
  for (const auto& [name, value] : values) {
    auto it = params.find(name);
    if (it == params.end()) {
      return MakeError(fmt::format("unknown parameter '{}' (not part of this Llama{})", name,
                                   tied() && name == "model.lm_head.pp_block.weight"
                                       ? ": lm_head is tied to the embedding"
                                       : ""));
    }
    if (!seen.insert(name).second)
      return MakeError(fmt::format("parameter '{}' given twice", name));
    at::Tensor v = value;
    if (tp_size() > 1 && !v.sizes().equals(it->second.sizes()) &&
        v.sizes().equals(FullShape(name, it->second))) {
      if (auto spec = ShardSpecOf(name)) {  // a full tensor: this rank's shard of it
        auto shard = parallel::ShardTensor(v, *spec, tp_.rank(), tp_size());
        if (!shard)
          return MakeError(fmt::format("parameter '{}': {}", name, shard.error().message));
        v = *shard;
      }
    }
    if (!v.sizes().equals(it->second.sizes())) {
      return MakeError(fmt::format("parameter '{}' has shape [{}], expected [{}]", name,
                                   fmt::join(v.sizes(), ", "),
                                   fmt::join(it->second.sizes(), ", ")));
    }
    it->second.copy_(v);
  }
  for (const auto& [name, t] : params) {
    if (!seen.count(name)) return MakeError(fmt::format("parameter '{}' is missing", name));
  }
  return {};
}

void Llama::ZeroGrad() {
  for (auto& [name, t] : NamedParameters()) {
    if (t.grad().defined()) t.mutable_grad().reset();
  }
}

}  // namespace strun::model
