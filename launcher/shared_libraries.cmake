# Libraries of launcher/ that strun-train and strund both link (neither depends on the other):
#   strun_crc32c    CRC-32C (strun/crc32c.h): checkpoint checksums, TensorBoard records
#   strun_tfevents  TensorBoard event files (strun/tfevents/), where protobuf is found
# Included by launcher/CMakeLists.txt, also in a Slurm-free build (strun-train alone).
set(_strun_launcher ${CMAKE_CURRENT_LIST_DIR})

add_library(strun_crc32c STATIC ${_strun_launcher}/src/crc32c.cc)
target_include_directories(strun_crc32c PUBLIC ${_strun_launcher}/include)
target_link_libraries(strun_crc32c PRIVATE strun_warnings)
set_target_properties(strun_crc32c PROPERTIES POSITION_INDEPENDENT_CODE ON)

find_package(Protobuf QUIET)
if(Protobuf_FOUND)
  protobuf_generate_cpp(STRUN_TFEVENTS_PROTO_SRCS STRUN_TFEVENTS_PROTO_HDRS
    ${_strun_launcher}/src/tfevents/event.proto)
  add_library(strun_tfevents STATIC ${_strun_launcher}/src/tfevents/event_file.cc
    ${_strun_launcher}/src/tfevents/record_writer.cc ${STRUN_TFEVENTS_PROTO_SRCS})
  target_include_directories(strun_tfevents PUBLIC ${_strun_launcher}/include
    PRIVATE ${CMAKE_CURRENT_BINARY_DIR})
  target_link_libraries(strun_tfevents PUBLIC strun_common strun_crc32c
    PRIVATE protobuf::libprotobuf-lite strun_warnings)
  set_target_properties(strun_tfevents PROPERTIES POSITION_INDEPENDENT_CODE ON)
endif()
