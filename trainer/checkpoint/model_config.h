// checkpoint/model_config.h: the model a config describes, as the model and the checkpoint need
// it: the Llama's shape (vocabulary padded for parallelism.tp, as nanotron) and dtype, and
// nanotron's model_config.json. Used for a training config and for the config.yaml a checkpoint
// carries alike.
#pragma once

#include <c10/core/ScalarType.h>

#include <string>

#include "config/config.h"
#include "model/llama_config.h"

namespace strun::train {

model::LlamaModelConfig ModelConfigFrom(const Config& config);

// model.dtype as a torch dtype (float32 for the names the model cannot train in).
c10::ScalarType ModelDType(const Config& config);

// nanotron's model_config.json (LlamaConfig as a dict), with the padded vocabulary.
std::string ModelConfigJson(const Config& config);

}  // namespace strun::train
