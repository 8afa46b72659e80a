"""export-hf against transformers: loads the export with AutoModelForCausalLM and compares its
logits with strun-train's own (`strun-train logits`) on the same token ids, at bf16 tolerance.
Exits non-zero when they differ."""
import argparse, json, subprocess, sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--checkpoint", required=True)
ap.add_argument("--export", required=True)
ap.add_argument("--work", required=True)
a = ap.parse_args()

cfg = json.load(open(a.export + "/config.json"))
torch.manual_seed(1)
ids = torch.randint(0, cfg["vocab_size"], (2, 128), dtype=torch.int64)
save_file({"input_ids": ids}, a.work + "/ids.safetensors")
subprocess.run([a.bin, "logits", "--checkpoint", a.checkpoint, "--input-ids", a.work + "/ids.safetensors",
                "--output", a.work + "/ours.safetensors"], check=True)
ours = load_file(a.work + "/ours.safetensors")["logits"].float()

try:
    model = AutoModelForCausalLM.from_pretrained(a.export, dtype=torch.bfloat16)
except TypeError:  # transformers < 4.56
    model = AutoModelForCausalLM.from_pretrained(a.export, torch_dtype=torch.bfloat16)
model = model.cuda().eval()
with torch.no_grad():
    theirs = model(input_ids=ids.cuda()).logits.float().cpu()
theirs = theirs[..., : ours.shape[-1]]
diff = (ours - theirs).abs()
scale = theirs.abs().max().item()
agree = (ours.argmax(-1) == theirs.argmax(-1)).float().mean().item()
ok = diff.max().item() <= 0.05 * scale + 0.05 and agree >= 0.95
print(f"export-hf: transformers {type(model).__name__} loaded; logits max|diff| {diff.max().item():.4f} "
      f"mean|diff| {diff.mean().item():.5f} (max|logit| {scale:.2f}); argmax agreement {agree:.1%}; "
      f"{'MATCH' if ok else 'MISMATCH'} at bf16 tolerance")
sys.exit(0 if ok else 1)
