#!/usr/bin/python3
"""Independent reference for strun's Llama: nanotron's LlamaForTraining forward (models/llama.py at
nanotron 5f8a52b0) re-implemented in plain PyTorch, in nanotron's [seq, batch, hidden] layout, with
nanotron's own complex-number RotaryEmbedding (interleaved pairs), fp64.

usage: nanotron_reference.py DIR
DIR holds manifest.json (config, tensor shapes and files) and raw little-endian float64/int64 files
written by the C++ test: parameters, input ids, labels, mask, and the C++ logits, loss and gradients.
Exit 0 when everything matches; prints the first mismatch and exits 1 otherwise."""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F


def main(d):
    man = json.load(open(f"{d}/manifest.json"))
    cfg = man["config"]

    def load(name):
        e = man["tensors"][name]
        dtype = np.int64 if e["dtype"] == "int64" else np.float64
        return torch.from_numpy(np.fromfile(f"{d}/{e['file']}", dtype=dtype).reshape(e["shape"]))

    params = {n: load("param/" + n).clone().requires_grad_(True) for n in man["params"]}
    ids, labels, mask = load("input_ids"), load("label_ids"), load("label_mask").bool()
    h, nq, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    dqk = h // nq
    inter = cfg["intermediate_size"]
    eps = cfg["rms_norm_eps"]

    def rms_norm(x, w):  # flash-attn's rms_norm: fp32 (here fp64) statistics
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def rotary(x):  # nanotron RotaryEmbedding.forward, x: [batch, seq, heads, d]
        b, s, nh, dim = x.shape
        freqs = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float64)[: dim // 2] / dim))
        t = torch.arange(s, dtype=torch.float64)
        freqs = torch.outer(t, freqs)
        freqs_cis = torch.view_as_real(torch.polar(torch.ones_like(freqs), freqs))[None, :, None, :]
        cx = torch.view_as_complex(x.reshape(b, s, nh, dim // 2, 2).contiguous())
        return torch.view_as_real(cx * torch.view_as_complex(freqs_cis.contiguous())).reshape(b, s, nh, dim)

    B, S = ids.shape
    emb = params["model.token_position_embeddings.pp_block.token_embedding.weight"]
    pad = cfg.get("pad_token_id")
    x = F.embedding(ids.transpose(0, 1), emb, padding_idx=pad)  # [S, B, h]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.decoder.{i}.pp_block."
        residual = x
        hs = rms_norm(x, params[p + "input_layernorm.weight"])
        qkv = hs @ params[p + "attn.qkv_proj.weight"].t()  # [S, B, (nq + 2 nkv) d]
        if nq != nkv:
            q, k, v = torch.split(qkv, [nq * dqk, nkv * dqk, nkv * dqk], dim=-1)
            q = q.transpose(0, 1).reshape(B, S, nq, dqk)
            k = k.transpose(0, 1).reshape(B, S, nkv, dqk)
            v = v.transpose(0, 1).reshape(B, S, nkv, dqk)
        else:
            q, k, v = qkv.view(S, B, 3, nq, dqk).permute(2, 1, 0, 3, 4)
        q, k = rotary(q), rotary(k)
        # flash-attn causal GQA: query head j reads kv head j // (nq // nkv)
        k = k.repeat_interleave(nq // nkv, dim=2)
        v = v.repeat_interleave(nq // nkv, dim=2)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / dqk**0.5
        causal = torch.ones(S, S, dtype=torch.bool).triu(1)
        probs = scores.masked_fill(causal, float("-inf")).softmax(-1)
        attn = torch.einsum("bhqk,bkhd->bqhd", probs, v).reshape(B, S, nq * dqk).transpose(0, 1)
        x = attn @ params[p + "attn.o_proj.weight"].t() + residual
        residual = x
        hs = rms_norm(x, params[p + "post_attention_layernorm.weight"])
        merged = hs @ params[p + "mlp.gate_up_proj.weight"].t()
        gate, up = torch.split(merged, inter, dim=-1)
        act = {"silu": F.silu, "gelu_pytorch_tanh": lambda t: F.gelu(t, approximate="tanh")}[cfg["hidden_act"]]
        x = (act(gate) * up) @ params[p + "mlp.down_proj.weight"].t() + residual
    x = rms_norm(x, params["model.final_layer_norm.pp_block.weight"])
    head = emb if cfg["tie_word_embeddings"] else params["model.lm_head.pp_block.weight"]
    logits = x @ head.t()  # [S, B, V]
    loss = F.cross_entropy(logits.reshape(S * B, -1), labels.transpose(0, 1).reshape(-1), reduction="none")
    loss = loss.reshape(S, B).transpose(0, 1)
    loss = (loss * mask).sum() / mask.sum()
    loss.backward()

    def check(what, ours, theirs, tol):
        err = (ours - theirs).abs().max().item()
        if not err <= tol:
            print(f"MISMATCH {what}: max abs difference {err} > {tol}")
            sys.exit(1)

    check("logits", logits.detach().transpose(0, 1), load("logits"), 1e-10)
    check("loss", loss.detach(), load("loss").reshape(()), 1e-12)
    for n in man["params"]:
        check("grad " + n, params[n].grad, load("grad/" + n), 1e-10)
    print(f"nanotron reference matches: loss {loss.item():.12f}, {len(man['params'])} gradients")


if __name__ == "__main__":
    main(sys.argv[1])
