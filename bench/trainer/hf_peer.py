"""The peer of strun-train: Hugging Face transformers' LlamaForCausalLM with the tutorial model's
shape, trained as nanotron's config asks (mbs 64 x seq 512, AdamW fused, betas 0.9/0.95, eps 1e-8,
weight decay 0.01, clip 1.0), in pure bf16 under torch.compile, on the same prepared tokens.
Prints one JSON line: tokens_per_sec, model_tflops (nanotron's get_flops), steps measured.
"""
import argparse, json, time

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True, help="prepared split base (without .bin/.idx)")
ap.add_argument("--steps", type=int, default=60)
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--mbs", type=int, default=64)
ap.add_argument("--seq", type=int, default=512)
a = ap.parse_args()

L, H, F, NH, V = 12, 768, 1536, 12, 50257
cfg = LlamaConfig(vocab_size=V, hidden_size=H, intermediate_size=F, num_hidden_layers=L,
                  num_attention_heads=NH, num_key_value_heads=NH, max_position_embeddings=a.seq,
                  rms_norm_eps=1e-5, tie_word_embeddings=True, hidden_act="silu",
                  attn_implementation="sdpa")
torch.manual_seed(0)
model = LlamaForCausalLM(cfg).to(device="cuda", dtype=torch.bfloat16)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8,
                        weight_decay=0.01, fused=True)
cmodel = torch.compile(model)

with open(a.data + ".idx", "rb") as f:
    header = json.loads(f.readline())
dtype = np.uint16 if header["dtype"] == "uint16" else np.uint32
tokens = np.fromfile(a.data + ".bin", dtype=dtype)
per_step = a.mbs * (a.seq + 1)
n_batches = len(tokens) // per_step


def batch(i):
    j = i % n_batches
    x = torch.from_numpy(tokens[j * per_step:(j + 1) * per_step].astype(np.int64)).view(a.mbs, a.seq + 1)
    return x.cuda(non_blocking=True)


def step(i):
    x = batch(i)
    # transformers shifts the labels itself: position t predicts x[t + 1].
    out = cmodel(input_ids=x[:, :-1], labels=x[:, :-1])
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return out.loss

for i in range(a.warmup):
    step(i)
torch.cuda.synchronize()
t0 = time.time()
for i in range(a.warmup, a.warmup + a.steps):
    loss = step(i)
torch.cuda.synchronize()
dt = (time.time() - t0) / a.steps
tps = a.mbs * a.seq / dt
d = H // NH
B, T = a.mbs, a.seq
fwd = (2 * L * B * T * H * NH * d + 2 * L * B * T * H * 2 * NH * d + 2 * L * B * NH * T * d * T
       + 2 * L * B * NH * T * T * d + 2 * L * B * NH * T * d * H + 4 * L * B * T * H * F
       + 2 * L * B * T * F * H + 2 * B * T * H * V)
print(json.dumps({"steps_measured": a.steps, "tokens_per_sec": tps, "model_tflops": 3 * fwd / dt / 1e12,
                  "elapsed_ms": dt * 1000, "last_loss": loss.item(),
                  "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
                  "max_reserved_gib": torch.cuda.max_memory_reserved() / 2**30}))
