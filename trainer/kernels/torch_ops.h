// kernels/torch_ops.h: ATen/autograd wrappers of the kernels of this folder, as the ops table of
// model/ops.h. Compiled only where libtorch has CUDA; every op takes bf16 CUDA tensors.
#pragma once

#include "model/ops.h"

namespace strun::kernels {

const model::LlamaOps& CudaLlamaOps();

}  // namespace strun::kernels
