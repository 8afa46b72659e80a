// strun/tfevents/record_writer.h: TFRecord framing, the container of TensorBoard event files.
//
// A file is a sequence of records, each
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes |
//   data (length bytes)           | uint32 masked CRC-32C of the data
// with mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (TFRecord's, so that a CRC of data
// that itself holds CRCs is not trivially related to them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace strun::tfevents {

uint32_t MaskedCrc32c(const void* data, std::size_t size);

// Appends the framed record of `data` to `out`.
void AppendRecord(std::string_view data, std::string* out);

}  // namespace strun::tfevents
