#include "strun/tfevents/record_writer.h"

#include "strun/crc32c.h"

namespace strun::tfevents {
namespace {

void AppendLittleEndian(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

uint32_t MaskedCrc32c(const void* data, std::size_t size) {
  const uint32_t crc = Crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void AppendRecord(std::string_view data, std::string* out) {
  std::string header;
  AppendLittleEndian(data.size(), 8, &header);
  out->append(header);
  AppendLittleEndian(MaskedCrc32c(header.data(), header.size()), 4, out);
  out->append(data);
  AppendLittleEndian(MaskedCrc32c(data.data(), data.size()), 4, out);
}

}  // namespace strun::tfevents
