# strun_model_parallel: tensor- and pipeline-parallel building blocks after nanotron's
# parallel/ (process grid and groups, differentiable TP collectives, column/row-parallel linears,
# vocabulary-parallel embedding and cross entropy, pipeline schedules). Included by this folder's
# CMakeLists.txt.
#
# process_grid.cc and pipeline_schedule.cc are torch-free; the other units include torch (~30 s
# each on the shared machine), so keep their number small.
add_library(strun_model_parallel STATIC
  ${CMAKE_CURRENT_LIST_DIR}/process_grid.cc
  ${CMAKE_CURRENT_LIST_DIR}/process_grid_groups.cc
  ${CMAKE_CURRENT_LIST_DIR}/tp_primitives.cc
  ${CMAKE_CURRENT_LIST_DIR}/tp_linear.cc
  ${CMAKE_CURRENT_LIST_DIR}/tp_linear_sharding.cc
  ${CMAKE_CURRENT_LIST_DIR}/vocab_parallel.cc
  ${CMAKE_CURRENT_LIST_DIR}/pipeline_schedule.cc)
# Headers are included as "parallel/..." (and "model/torch_compat.h", header-only).
target_include_directories(strun_model_parallel PUBLIC ${PROJECT_SOURCE_DIR}/trainer)
target_link_libraries(strun_model_parallel
  PUBLIC ${TORCH_LIBRARIES} fmt::fmt-header-only strun_common
  PRIVATE strun_warnings)
# c10d: gloo everywhere, NCCL where libtorch has CUDA (as strun_parallel). PUBLIC: the headers
# include model/torch_compat.h, which picks the process-group headers from these.
target_compile_definitions(strun_model_parallel PUBLIC USE_C10D_GLOO)
if(TARGET torch_cuda OR TARGET c10_cuda OR TORCH_CUDA_LIBRARIES)
  target_compile_definitions(strun_model_parallel PUBLIC STRUN_WITH_NCCL USE_C10D_NCCL)
endif()
