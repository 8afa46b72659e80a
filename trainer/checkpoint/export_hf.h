// checkpoint/export_hf.h: `strun-train export-hf`, a checkpoint as a Hugging Face Llama.
// No torch in this header (main.cc includes it).
#pragma once

#include <string>

#include "strun/result.h"

namespace strun::train {

// Writes <output>/config.json and <output>/model.safetensors (transformers' LlamaForCausalLM
// names, the checkpoint's dtype) from a checkpoint step directory or a checkpoints directory with
// latest.txt.
Status ExportHuggingFace(const std::string& checkpoint, const std::string& output);

}  // namespace strun::train
