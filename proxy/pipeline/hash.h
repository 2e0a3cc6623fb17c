// The hash that picks a series' shard. It must give the same value in every
// run and build (a disk queue's series keep their shard across restarts and
// upgrades), so it is defined here rather than borrowed from a library whose
// hash is seeded per process (absl::Hash) or may change between versions.
#ifndef PROMRELAY_PROXY_PIPELINE_HASH_H_
#define PROMRELAY_PROXY_PIPELINE_HASH_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/types/span.h"

namespace promrelay::pipeline {
namespace hash_internal {

inline constexpr uint64_t kSeed = 0x9e3779b97f4a7c15ull;
inline constexpr uint64_t kP1 = 0xa0761d6478bd642full;
inline constexpr uint64_t kP2 = 0xe7037ed1a0b428dbull;
inline constexpr uint64_t kP3 = 0x8ebc6af09c88c6e3ull;

// 64x64->128 multiply folded to 64 bits (the wyhash/"mum" mixer).
inline uint64_t Mum(uint64_t a, uint64_t b) {
  unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// Little-endian load spelled out byte by byte so the hash does not depend on
// the host's byte order; compilers turn it into one load on x86 and ARM.
inline uint64_t Load64(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint64_t>(u[0]) | static_cast<uint64_t>(u[1]) << 8 |
         static_cast<uint64_t>(u[2]) << 16 | static_cast<uint64_t>(u[3]) << 24 |
         static_cast<uint64_t>(u[4]) << 32 | static_cast<uint64_t>(u[5]) << 40 |
         static_cast<uint64_t>(u[6]) << 48 | static_cast<uint64_t>(u[7]) << 56;
}

}  // namespace hash_internal

// Folds `bytes` into `h`. The length goes in first, so ("ab","c") and
// ("a","bc") hash differently.
inline uint64_t StableHashBytes(uint64_t h, std::string_view bytes) {
  using namespace hash_internal;
  const char* p = bytes.data();
  size_t n = bytes.size();
  h = Mum(h ^ kP1, static_cast<uint64_t>(n) ^ kP2);
  while (n >= 8) {
    h = Mum(h ^ Load64(p) ^ kP1, kP3);
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    for (size_t i = 0; i < n; ++i) {
      w |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    }
    h = Mum(h ^ w ^ kP2, kP3);
  }
  return h;
}

// Hash of a label set (anything with string_view-like .name and .value), in
// the given order. The pipeline hashes final labels, which relabeling leaves
// sorted; untouched series are hashed as the client sent them.
template <typename L>
uint64_t StableLabelsHash(absl::Span<const L> labels) {
  uint64_t h = hash_internal::kSeed;
  for (const L& l : labels) {
    h = StableHashBytes(h, l.name);
    h = StableHashBytes(h, l.value);
  }
  return h;
}

}  // namespace promrelay::pipeline

#endif  // PROMRELAY_PROXY_PIPELINE_HASH_H_
