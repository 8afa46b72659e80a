#include "model/hf_mapping.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>

namespace strun::model {
namespace {

using TensorMap = std::map<std::string, at::Tensor>;

Result<at::Tensor> Take(const TensorMap& m, const std::string& name) {
  auto it = m.find(name);
  if (it == m.end()) return MakeError(fmt::format("parameter '{}' is missing", name));
  return it->second;
}

Status CheckRows(const at::Tensor& t, const std::string& name, int64_t rows, int64_t cols) {
  if (t.dim() != 2 || t.size(0) != rows || t.size(1) != cols) {
    return MakeError(fmt::format("parameter '{}' has shape [{}], expected [{}, {}]", name,
                                 fmt::join(t.sizes(), ", "), rows, cols));
  }
  return {};
}

}  // namespace

at::Tensor InterleavedToHalfSplit(const at::Tensor& weight, int64_t head_dim) {
  const int64_t heads = weight.size(0) / head_dim;
  return weight.reshape({heads, head_dim / 2, 2, -1})
      .transpose(1, 2)
      .reshape(weight.sizes())
      .contiguous();
}

at::Tensor HalfSplitToInterleaved(const at::Tensor& weight, int64_t head_dim) {
  const int64_t heads = weight.size(0) / head_dim;
  return weight.reshape({heads, 2, head_dim / 2, -1})
      .transpose(1, 2)
      .reshape(weight.sizes())
      .contiguous();
}

Result<NamedTensors> ToHuggingFace(const LlamaModelConfig& c, const NamedTensors& nanotron) {
  TensorMap in;
  for (const auto& [name, t] : nanotron) in[name] = t.detach();
  const int64_t d = c.head_dim(), h = c.hidden_size;
  const int64_t q_rows = c.num_attention_heads * d, kv_rows = c.num_key_value_heads * d;
  NamedTensors out;
  auto add = [&](std::string hf, const std::string& nt) -> Status {
    auto t = Take(in, nt);
    if (!t) return t.error();
    out.emplace_back(std::move(hf), t->contiguous());
    return {};
  };
  if (auto s = add("model.embed_tokens.weight",
                   "model.token_position_embeddings.pp_block.token_embedding.weight");
      !s) {
    return s.error();
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string nt = fmt::format("model.decoder.{}.pp_block.", i);
    const std::string hf = fmt::format("model.layers.{}.", i);
    if (auto s = add(hf + "input_layernorm.weight", nt + "input_layernorm.weight"); !s) {
      return s.error();
    }
    auto qkv = Take(in, nt + "attn.qkv_proj.weight");
    if (!qkv) return qkv.error();
    if (auto s = CheckRows(*qkv, nt + "attn.qkv_proj.weight", q_rows + 2 * kv_rows, h); !s) {
      return s.error();
    }
    out.emplace_back(hf + "self_attn.q_proj.weight",
                     InterleavedToHalfSplit(qkv->narrow(0, 0, q_rows), d));
    out.emplace_back(hf + "self_attn.k_proj.weight",
                     InterleavedToHalfSplit(qkv->narrow(0, q_rows, kv_rows), d));
    out.emplace_back(hf + "self_attn.v_proj.weight",
                     qkv->narrow(0, q_rows + kv_rows, kv_rows).contiguous());
    if (auto s = add(hf + "self_attn.o_proj.weight", nt + "attn.o_proj.weight"); !s) {
      return s.error();
    }
    if (auto s =
            add(hf + "post_attention_layernorm.weight", nt + "post_attention_layernorm.weight");
        !s) {
      return s.error();
    }
    auto gate_up = Take(in, nt + "mlp.gate_up_proj.weight");
    if (!gate_up) return gate_up.error();
    const int64_t inter = c.intermediate_size;
    if (auto s = CheckRows(*gate_up, nt + "mlp.gate_up_proj.weight", 2 * inter, h); !s) {
      return s.error();
    }
    out.emplace_back(hf + "mlp.gate_proj.weight", gate_up->narrow(0, 0, inter).contiguous());
    out.emplace_back(hf + "mlp.up_proj.weight", gate_up->narrow(0, inter, inter).contiguous());
    if (auto s = add(hf + "mlp.down_proj.weight", nt + "mlp.down_proj.weight"); !s) {
      return s.error();
    }
  }
  if (auto s = add("model.norm.weight", "model.final_layer_norm.pp_block.weight"); !s) {
    return s.error();
  }
  if (!c.tie_word_embeddings) {
    if (auto s = add("lm_head.weight", "model.lm_head.pp_block.weight"); !s) return s.error();
  }
  return out;
}

Result<NamedTensors> FromHuggingFace(const LlamaModelConfig& c, const NamedTensors& hf_tensors) {
  TensorMap in;
  for (const auto& [name, t] : hf_tensors) in[name] = t.detach();
  const int64_t d = c.head_dim(), h = c.hidden_size;
  const int64_t q_rows = c.num_attention_heads * d, kv_rows = c.num_key_value_heads * d;
  NamedTensors out;
  auto add = [&](std::string nt, const std::string& hf) -> Status {
    auto t = Take(in, hf);
    if (!t) return t.error();
    out.emplace_back(std::move(nt), t->contiguous());
    return {};
  };
  if (auto s = add("model.token_position_embeddings.pp_block.token_embedding.weight",
                   "model.embed_tokens.weight");
      !s) {
    return s.error();
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string nt = fmt::format("model.decoder.{}.pp_block.", i);
    const std::string hf = fmt::format("model.layers.{}.", i);
    if (auto s = add(nt + "input_layernorm.weight", hf + "input_layernorm.weight"); !s) {
      return s.error();
    }
    auto q = Take(in, hf + "self_attn.q_proj.weight");
    auto k = Take(in, hf + "self_attn.k_proj.weight");
    auto v = Take(in, hf + "self_attn.v_proj.weight");
    if (!q) return q.error();
    if (!k) return k.error();
    if (!v) return v.error();
    if (auto s = CheckRows(*q, hf + "self_attn.q_proj.weight", q_rows, h); !s) return s.error();
    if (auto s = CheckRows(*k, hf + "self_attn.k_proj.weight", kv_rows, h); !s) return s.error();
    if (auto s = CheckRows(*v, hf + "self_attn.v_proj.weight", kv_rows, h); !s) return s.error();
    out.emplace_back(
        nt + "attn.qkv_proj.weight",
        at::cat({HalfSplitToInterleaved(*q, d), HalfSplitToInterleaved(*k, d), *v}, 0));
    if (auto s = add(nt + "attn.o_proj.weight", hf + "self_attn.o_proj.weight"); !s) {
      return s.error();
    }
    if (auto s =
            add(nt + "post_attention_layernorm.weight", hf + "post_attention_layernorm.weight");
        !s) {
      return s.error();
    }
    auto gate = Take(in, hf + "mlp.gate_proj.weight");
    auto up = Take(in, hf + "mlp.up_proj.weight");
    if (!gate) return gate.error();
    if (!up) return up.error();
    out.emplace_back(nt + "mlp.gate_up_proj.weight", at::cat({*gate, *up}, 0));
    if (auto s = add(nt + "mlp.down_proj.weight", hf + "mlp.down_proj.weight"); !s) {
      return s.error();
    }
  }
  if (auto s = add("model.final_layer_norm.pp_block.weight", "model.norm.weight"); !s) {
    return s.error();
  }
  if (!c.tie_word_embeddings) {
    if (auto s = add("model.lm_head.pp_block.weight", "lm_head.weight"); !s) return s.error();
  }
  return out;
}

nlohmann::json HuggingFaceConfigJson(const LlamaModelConfig& c, const std::string& torch_dtype) {
  nlohmann::json j;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["mlp_bias"] = false;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] = c.eos_token_id;
  j["pad_token_id"] = c.pad_token_id ? nlohmann::json(*c.pad_token_id) : nlohmann::json(nullptr);
  j["hidden_act"] = c.hidden_act;
  j["hidden_size"] = c.hidden_size;
  j["head_dim"] = c.head_dim();
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = c.intermediate_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["pretraining_tp"] = 1;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_scaling"] = nullptr;
  j["rope_theta"] = c.rope_theta;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["torch_dtype"] = torch_dtype;
  j["use_cache"] = true;
  j["vocab_size"] = c.vocab_size;
  return j;
}

}  // namespace strun::model
