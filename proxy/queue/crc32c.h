// CRC-32C (Castagnoli), the checksum of disk queue records and checkpoints.
// abseil 20220623 has no public CRC32C, so the queue carries its own: SSE4.2
// when the CPU has it, a slicing-by-8 table otherwise.
#ifndef PROMRELAY_PROXY_QUEUE_CRC32C_H_
#define PROMRELAY_PROXY_QUEUE_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace promrelay::queue {

// Continues `crc` (a finished CRC-32C of earlier bytes, 0 for none) over
// `n` more bytes.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

inline uint32_t Crc32c(const void* data, size_t n) {
  return Crc32cExtend(0, data, n);
}
inline uint32_t Crc32c(std::string_view s) {
  return Crc32c(s.data(), s.size());
}

// The portable implementation, exposed so tests can check both paths agree.
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t n);

}  // namespace promrelay::queue

#endif  // PROMRELAY_PROXY_QUEUE_CRC32C_H_
