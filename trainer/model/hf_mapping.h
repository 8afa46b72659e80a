// model/hf_mapping.h: nanotron Llama parameters <-> Hugging Face transformers' LlamaForCausalLM.
//
// As nanotron's examples/llama/convert_nanotron_to_hf.py: qkv_proj splits into q_proj, k_proj,
// v_proj and gate_up_proj into gate_proj, up_proj. The rows of each q and k head are permuted
// from nanotron's interleaved rotary layout (pairs x[2i], x[2i+1]) to the half-split layout of
// transformers' rotate_half (x[i], x[i + d/2]): new row j < d/2 is old row 2j, new row d/2 + j is
// old row 2j + 1. A tied lm_head has no entry (transformers re-ties it from tie_word_embeddings).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model/llama.h"
#include "strun/result.h"

namespace strun::model {

// nanotron names and tensors (Llama::NamedParameters or a checkpoint) -> transformers names
// (model.embed_tokens.weight, model.layers.{i}.self_attn.q_proj.weight, ..., model.norm.weight,
// lm_head.weight). Tensors are new contiguous tensors in the input dtype, detached.
Result<NamedTensors> ToHuggingFace(const LlamaModelConfig& config, const NamedTensors& nanotron);

// The inverse: transformers names -> nanotron names (for importing a transformers checkpoint).
Result<NamedTensors> FromHuggingFace(const LlamaModelConfig& config, const NamedTensors& hf);

// Rows of one projection ([heads * head_dim, in]) from the interleaved to the half-split rotary
// layout, and back.
at::Tensor InterleavedToHalfSplit(const at::Tensor& weight, int64_t head_dim);
at::Tensor HalfSplitToInterleaved(const at::Tensor& weight, int64_t head_dim);

// transformers' config.json for the exported model. torch_dtype: "bfloat16", "float32", ...
nlohmann::json HuggingFaceConfigJson(const LlamaModelConfig& config,
                                     const std::string& torch_dtype);

}  // namespace strun::model
