// Fuzzes the safetensors reader (trainer/checkpoint/safetensors.h) on whole files. Every accepted
// tensor must lie inside the data section with exactly the bytes its shape and dtype need, as the
// checkpoint code copies that many bytes into a tensor of that shape.
#include <cstdint>

#include "checkpoint/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      strun::fuzz::ScratchDir::Write("model.safetensors", strun::fuzz::AsText(data, size));
  auto file = strun::train::SafetensorsFile::Read(path);
  if (!file) {
    FUZZ_CHECK(!file.error().message.empty(), "an error without a message");
    return 0;
  }
  FUZZ_CHECK(size >= 8, "a file shorter than its header length was accepted");
  for (const auto& [name, e] : file->entries()) {
    FUZZ_CHECK(file->Find(name) == &e, "Find does not return the entry");
    const size_t esize = strun::train::SafetensorsDtypeSize(e.dtype);
    FUZZ_CHECK(esize > 0, "an entry with an unknown dtype");
    // The element count, computed without wrapping around.
    size_t bytes = esize;
    for (int64_t d : e.shape) {
      FUZZ_CHECK(d >= 0, "a negative dimension");
      FUZZ_CHECK(!__builtin_mul_overflow(bytes, static_cast<size_t>(d), &bytes),
                 "the shape's byte count overflows");
    }
    FUZZ_CHECK(bytes == e.nbytes, "nbytes does not match shape and dtype");
    FUZZ_CHECK(e.begin <= size && e.nbytes <= size - e.begin, "an entry outside the file");
    if (e.nbytes > 0) {
      // Touch the first and last byte: AddressSanitizer reports a read outside the buffer.
      volatile char first = file->data(e)[0];
      volatile char last = file->data(e)[e.nbytes - 1];
      (void)first;
      (void)last;
    }
  }
  return 0;
}
