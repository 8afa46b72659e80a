// Fuzzes the "flat_layout" metadata of optimizer files (trainer/checkpoint/flat_layout.h), which
// resharding reads from a checkpoint on disk and then uses to cut flat buffers. An accepted layout
// must satisfy what its users rely on (ranks in range, every segment's elements, counted without
// overflow, inside the buffer and after the previous one; names unique; range inside the buffer)
// and print to JSON that parses back to the same layout.
#include <cstdint>
#include <set>

#include "checkpoint/flat_layout.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(strun::fuzz::AsText(data, size));
  auto layout = strun::train::ParseFlatLayout(text, "optimizer/opt.safetensors");
  if (!layout) {
    FUZZ_CHECK(layout.error().message.find("optimizer/opt.safetensors") != std::string::npos,
               "an error that does not name the file");
    return 0;
  }
  const auto& l = *layout;
  FUZZ_CHECK(l.pp >= 1 && l.pp_rank >= 0 && l.pp_rank < l.pp, "pp rank out of range");
  FUZZ_CHECK(l.dp >= 1 && l.dp_rank >= 0 && l.dp_rank < l.dp, "dp rank out of range");
  FUZZ_CHECK(l.tp >= 1 && l.tp_rank >= 0 && l.tp_rank < l.tp, "tp rank out of range");
  FUZZ_CHECK(0 <= l.begin && l.begin <= l.end && l.end <= l.numel, "range outside the buffer");
  int64_t next = 0;
  std::set<std::string> names;
  for (const auto& s : l.segments) {
    int64_t n = 1;
    for (int64_t d : s.shape) {
      FUZZ_CHECK(d >= 0, "a negative dimension");
      FUZZ_CHECK(!__builtin_mul_overflow(n, d, &n), "a segment's element count overflows");
    }
    FUZZ_CHECK(s.offset >= next, "a segment overlaps the previous one");
    FUZZ_CHECK(s.offset <= l.numel && n <= l.numel - s.offset, "a segment leaves the buffer");
    FUZZ_CHECK(names.insert(s.name).second, "a parameter listed twice");
    next = s.offset + n;
  }
  auto again = strun::train::ParseFlatLayout(strun::train::FlatLayoutJson(l), "again");
  if (!again) std::fprintf(stderr, "%s\n", again.error().message.c_str());
  FUZZ_CHECK(again.ok(), "the printed layout does not parse");
  FUZZ_CHECK(*again == l, "the printed layout parses to another layout");
  return 0;
}
