// c10d_compat.h: the c10d (torch.distributed C++) API differences between libtorch 1.13 (Debian,
// CPU) and 2.x (the GPU host). Only communicator.cc includes it.
//
// 1.13: ProcessGroupGloo/NCCL derive from c10d::ProcessGroup and carry the collectives.
// 2.x:  they derive from c10d::Backend (ProcessGroup became a dispatcher over backends); the
//       collectives have the same signatures on the Backend, so we call the backend directly.
#pragma once

#include <torch/version.h>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

// gloo: Debian's libtorch-dev has its headers (libgloo-dev); a pip wheel's libtorch may not.
#if __has_include(<gloo/context.h>)
#define STRUN_HAVE_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#if defined(STRUN_WITH_NCCL) && __has_include(<nccl.h>)
#define STRUN_HAVE_NCCL 1
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace strun::train::compat {

#if TORCH_VERSION_MAJOR >= 2
using CommBackend = ::c10d::Backend;
#else
using CommBackend = ::c10d::ProcessGroup;
#endif

}  // namespace strun::train::compat
