// model/llama.h: nanotron's Llama (models/llama.py at nanotron 5f8a52b0) on libtorch.
//
// Same architecture, parameter names and numerics as nanotron's LlamaForTraining:
//   token embedding -> num_hidden_layers x [RMSNorm -> attention -> residual,
//   RMSNorm -> SwiGLU MLP -> residual] -> RMSNorm -> lm_head (tied to the embedding when
//   tie_word_embeddings) -> fp32 logits -> cross entropy (fp32, over the padded vocabulary,
//   masked mean).
// Attention: one fused qkv_proj (rows: all q heads, then k heads, then v heads), rotary embeddings
// on q and k in nanotron's INTERLEAVED layout (pairs (x[2i], x[2i+1]), as flash-attn's
// RotaryEmbedding(interleaved=True) that nanotron's training path uses), grouped-query attention
// (query head h reads kv head h / (num_attention_heads / num_key_value_heads)), causal softmax
// with scale 1/sqrt(head_dim), o_proj. MLP: gate_up_proj (rows: gate, then up), act(gate) * up,
// down_proj. RMSNorm statistics and the weight product are computed in fp32 and cast back, as
// flash-attn's triton rms_norm.
//
// Parameters live on one device in one dtype (bf16 on the GPU, fp32 or fp64 on CPU); the
// optimizer keeps its own fp32 master copy (optimizer.h, flat_buffer.h).
//
// Tensor parallelism (parallelism.tp > 1, TensorParallelOptions): each rank holds its shards, as
// nanotron's LlamaForTraining does (parallel/tp_linear_sharding.h says which rows or columns):
// qkv_proj (fused: the rank's q, k and v heads) and gate_up_proj column-parallel, o_proj and
// down_proj row-parallel, the embedding and lm_head vocabulary-parallel (V/tp rows each), norms
// replicated; nq/tp query and nkv/tp key/value heads per rank. The forward runs sequence-first
// ([S, B, hidden], nanotron's layout) through parallel/tp_linear.h and vocab_parallel.h, in
// tp_mode ALL_REDUCE or REDUCE_SCATTER (sequence parallel: between the TP regions each rank holds
// S/tp positions; the norm weights' gradients are then partial sums that the trainer reduces over
// TP). tp = 1 runs the unsharded path below unchanged.
//
// Pipeline parallelism (parallelism.pp > 1, PipelineParallelOptions): each stage holds the blocks
// that nanotron's split by compute cost gives it (model/pipeline_stage.h): the token embedding on
// the first stage, a range of decoder layers (named by their model index), the final norm and the
// lm_head on the last stage. StageForward runs the stage's part: token ids or the previous stage's
// hidden state in, the hidden state for the next stage or the loss out. A tied lm_head on a last
// stage without the embedding is a copy of the embedding listed under the embedding's name (as
// nanotron's tied parameter); the trainer keeps the two equal by summing their gradients.
//
// Initialisation does not depend on the layout: every rank draws the same full tensors of the
// whole model from the seed and keeps its stage's shards, so one seed gives one full model at any
// (dp, tp, pp). nanotron (5f8a52b0)
// seeds every TP rank alike and initialises each shard as if it were the whole tensor, so its TP
// shards start as copies of each other; we do not reproduce that.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/llama_config.h"
#include "model/ops.h"
#include "model/pipeline_stage.h"
#include "parallel/process_grid_groups.h"
#include "parallel/tp_linear_sharding.h"
#include "parallel/tp_primitives.h"
#include "strun/result.h"

namespace strun::model {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Weights of one decoder layer. Shapes in [out_features, in_features] like torch.nn.Linear.
struct DecoderLayerWeights {
  at::Tensor input_layernorm;           // [hidden]
  at::Tensor qkv_proj;                  // [(nq + 2 nkv) * head_dim, hidden]
  at::Tensor o_proj;                    // [hidden, nq * head_dim]
  at::Tensor post_attention_layernorm;  // [hidden]
  at::Tensor gate_up_proj;              // [2 * intermediate, hidden]
  at::Tensor down_proj;                 // [hidden, intermediate]
};

// How a Llama is sharded over tensor parallelism (parallelism.tp, tp_mode,
// tp_linear_async_communication). Default: unsharded.
struct TensorParallelOptions {
  parallel::CommGroupPtr group;  // the TP group; null or one rank: unsharded
  parallel::TpMode mode = parallel::TpMode::kAllReduce;
  // Column-parallel linears overlap their communication; row-parallel ones only in
  // REDUCE_SCATTER (as nanotron's Llama).
  bool async_communication = false;
  int size() const { return group ? group->size() : 1; }
  int rank() const { return group ? group->rank() : 0; }
};

// Which pipeline stage a Llama is (parallelism.pp, the rank's pp coordinate). Default: the whole
// model.
struct PipelineParallelOptions {
  int stage = 0;
  int num_stages = 1;
};

class Llama {
 public:
  // Allocates the parameters (uninitialised: call InitRandomly or LoadNamedParameters) on the
  // device and in the dtype of `options`, with requires_grad set, and picks the ops table
  // (SelectOps, model/ops.h). With tp > 1 only this rank's shards. Fails on an invalid config or
  // one that does not shard over tp (heads, intermediate size or vocabulary not divisible). With
  // pp > 1 only this stage's blocks; fails on a split strun-train does not run (pipeline_stage.h).
  static Result<Llama> Create(const LlamaModelConfig& config, const at::TensorOptions& options,
                              TensorParallelOptions tp = {}, PipelineParallelOptions pp = {});

  Llama(Llama&&) = default;
  Llama& operator=(Llama&&) = default;
  Llama(const Llama&) = delete;
  Llama& operator=(const Llama&) = delete;

  // nanotron's init_model_randomly with the standard parametrization: every linear and the
  // embedding ~ N(0, std), the output projections (o_proj, down_proj) ~ N(0, std/sqrt(2 L)),
  // norms = 1. Values are drawn in parameter order (NamedParameters) from one CPU generator
  // seeded with `seed`, in fp32, then cast: the same seed gives the same model on every device.
  // The full tensors of the whole model are drawn (whatever the layout) and this rank keeps its
  // stage's parameters, its shard of each with tp > 1.
  void InitRandomly(const InitOptions& options);

  // pp > 1: this stage's part of the forward. `input`: token ids [B, S] on the first stage, else
  // the hidden state received from the previous stage (StageInputShape). Returns the hidden state
  // for the next stage, or on the last stage the loss (as Loss). label_ids and label_mask [B, S]
  // are read on the last stage only (every stage passes them: S comes from label_ids).
  at::Tensor StageForward(const at::Tensor& input, const at::Tensor& label_ids,
                          const at::Tensor& label_mask) const;
  // The shape of the hidden state a stage receives and sends for micro-batches of `batch`
  // sequences of `seq` tokens: [B, S, hidden]; sequence-first with tp > 1 ([S, B, hidden], or
  // [S/tp, B, hidden] in REDUCE_SCATTER). Its dtype is the parameters'.
  std::vector<int64_t> StageActivationShape(int64_t batch, int64_t seq) const;

  // Logits [B, S, vocab_size] in fp32 (fp64 for an fp64 model) for input ids [B, S] (int64).
  // Unsharded models only (tp = 1).
  at::Tensor Logits(const at::Tensor& input_ids) const;

  // The last hidden states after the final norm, [B, S, hidden], in the parameter dtype. tp = 1.
  at::Tensor Hidden(const at::Tensor& input_ids) const;

  // nanotron's Loss: per-token cross entropy of the fp32 logits against `label_ids` [B, S],
  // then sum(loss * label_mask) / sum(label_mask). label_mask: [B, S], bool or numeric. Runs the
  // ops table's classifier_loss (the CUDA one never materialises the logits).
  at::Tensor Loss(const at::Tensor& input_ids, const at::Tensor& label_ids,
                  const at::Tensor& label_mask) const;

  // Parameters under nanotron's names, in nanotron's order; a tied lm_head is not listed (nanotron
  // keeps the tied parameter under the embedding's name; with pp > 1 a last stage without the
  // embedding lists its tied lm_head under that name, TiedEmbeddingCopy()). With pp > 1 only this
  // stage's parameters:
  //   model.token_position_embeddings.pp_block.token_embedding.weight
  //   model.decoder.{i}.pp_block.input_layernorm.weight
  //   model.decoder.{i}.pp_block.attn.qkv_proj.weight
  //   model.decoder.{i}.pp_block.attn.o_proj.weight
  //   model.decoder.{i}.pp_block.post_attention_layernorm.weight
  //   model.decoder.{i}.pp_block.mlp.gate_up_proj.weight
  //   model.decoder.{i}.pp_block.mlp.down_proj.weight
  //   model.final_layer_norm.pp_block.weight
  //   model.lm_head.pp_block.weight                      (only when not tied)
  // The tensors are the live parameters (shared storage, requires_grad).
  NamedTensors NamedParameters() const;
  std::vector<at::Tensor> Parameters() const;

  // Copies values into the parameters by name (converting dtype and device). Every parameter must
  // be given exactly once with its shape; unknown names are errors naming them. With tp > 1 a
  // value may also be the full (unsharded) tensor: this rank's shard of it is taken.
  Status LoadNamedParameters(const NamedTensors& values);

  // How a parameter of NamedParameters is split over TP (nullopt: replicated, the norms).
  std::optional<parallel::ShardSpec> ShardSpecOf(const std::string& name) const;
  // The parameter's shape in the unsharded model.
  std::vector<int64_t> FullShape(const std::string& name, const at::Tensor& shard) const;

  // Sets every parameter's gradient to undefined (as zero_grad(set_to_none=True)).
  void ZeroGrad();

  // The table the forward and backward run (AtenOps() is the reference); tests switch it.
  const LlamaOps& ops() const { return *ops_; }
  void set_ops(const LlamaOps& ops) { ops_ = &ops; }

  const LlamaModelConfig& config() const { return config_; }
  at::TensorOptions options() const { return options_; }
  const TensorParallelOptions& tensor_parallel() const { return tp_; }
  const PipelineStage& pipeline_stage() const { return stage_; }
  // pp > 1, tied embeddings, the last stage without the embedding: its lm_head is a copy of the
  // first stage's embedding (listed under the embedding's name); their gradients are summed.
  bool TiedEmbeddingCopy() const { return tied() && stage_.head && !stage_.embedding; }
  int tp_size() const { return tp_.size(); }
  // This rank's parameters (its shards with tp > 1, its stage's with pp > 1).
  int64_t NumParameters() const;

  const at::Tensor& token_embedding() const { return token_embedding_; }
  // This stage's decoder layers (all of them at pp = 1): layers()[i] is model layer
  // pipeline_stage().first_layer + i.
  const std::vector<DecoderLayerWeights>& layers() const { return layers_; }
  const at::Tensor& final_layer_norm() const { return final_layer_norm_; }
  // The embedding itself when tied.
  const at::Tensor& lm_head() const { return tied() ? token_embedding_ : lm_head_; }
  bool tied() const { return config_.tie_word_embeddings; }

 private:
  Llama(const LlamaModelConfig& config, const at::TensorOptions& options, TensorParallelOptions tp,
        const PipelineStage& stage);
  at::Tensor DecoderLayer(const DecoderLayerWeights& w, const at::Tensor& x, const at::Tensor& cos,
                          const at::Tensor& sin) const;
  at::Tensor Activation(const at::Tensor& x) const;
  // tp > 1: the sequence-first forward over the rank's shards.
  struct TpLayers;
  at::Tensor TpLoss(const at::Tensor& input_ids, const at::Tensor& label_ids,
                    const at::Tensor& label_mask) const;
  at::Tensor TpDecoderLayer(const DecoderLayerWeights& w, const at::Tensor& x,
                            const at::Tensor& cos, const at::Tensor& sin) const;

  LlamaModelConfig config_;
  at::TensorOptions options_;
  TensorParallelOptions tp_;
  PipelineStage stage_;                        // the whole model at pp = 1
  std::shared_ptr<const TpLayers> tp_layers_;  // null at tp = 1
  const LlamaOps* ops_ = nullptr;
  at::Tensor token_embedding_;  // [vocab, hidden]; undefined on a stage with neither it nor a tied
                                // lm_head
  std::vector<DecoderLayerWeights> layers_;
  at::Tensor final_layer_norm_;  // [hidden]; undefined on a stage without it
  at::Tensor lm_head_;           // [vocab, hidden]; undefined when tied or on a stage without it
};

// ---- building blocks, exposed for tests and for kernels that replace them ----------------------

// RMSNorm as flash-attn's triton rms_norm: y = (x * rsqrt(mean(x^2) + eps) * w) computed in fp32
// (fp64 for fp64 input), cast to x's dtype.
at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);

// cos and sin tables [seq_len, head_dim / 2] of the angles t * theta^(-2i / head_dim), computed as
// flash-attn does (positions and inverse frequencies in fp32; fp64 when dtype is fp64) and cast
// to `dtype`.
std::pair<at::Tensor, at::Tensor> RotaryTables(int64_t seq_len, int64_t head_dim, double theta,
                                               const at::TensorOptions& options);

// Rotates x [B, S, H, D] in the interleaved layout: for each pair (x[2i], x[2i+1]) at position t,
// (x0 cos - x1 sin, x0 sin + x1 cos). Arithmetic in fp32 (fp64 for fp64), result in x's dtype.
at::Tensor ApplyRotaryInterleaved(const at::Tensor& x, const at::Tensor& cos,
                                  const at::Tensor& sin);

// Causal attention for q [B, S, Hq, D] and k, v [B, S, Hkv, D] (Hq a multiple of Hkv); returns
// [B, S, Hq, D]. Uses the fused kernels of libtorch 2.x where present (torch_compat.h).
at::Tensor GroupedCausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// The fp32 per-token cross entropy, masked mean, as nanotron's Loss. logits [B, S, V].
at::Tensor MaskedCrossEntropy(const at::Tensor& logits, const at::Tensor& label_ids,
                              const at::Tensor& label_mask);

}  // namespace strun::model
