// strun/crc32c.h: CRC-32C (Castagnoli), the checksum of checkpoint files (trainer/train/
// checkpoint_manifest.h) and of TensorBoard event records (strun/tfevents/record_writer.h).
// Library strun_crc32c (launcher/): torch- and Slurm-free, so that the trainer and strund share it.
//
// The same polynomial as iSCSI, ext4 metadata and leveldb's crc32c. Chosen because x86-64 computes
// it in hardware (SSE4.2, used when the CPU has it, ~10 GB/s); elsewhere a slicing-by-8 table does
// ~2 GB/s. Either path gives the same value.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strun {

// Extends `crc` (the value for the bytes before `data`; 0 to start) by `size` bytes.
// Crc32c("123456789") == 0xE3069283.
uint32_t Crc32cExtend(uint32_t crc, const void* data, std::size_t size);

inline uint32_t Crc32c(const void* data, std::size_t size) { return Crc32cExtend(0, data, size); }

// The portable table path, exposed so that tests can compare it with the hardware one.
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, std::size_t size);

}  // namespace strun
