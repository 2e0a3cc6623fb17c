// The hash that picks a series' shard. It must give the same value in every
// run and build (a disk queue's series keep their shard across restarts and
// upgrades), so it is defined here rather than borrowed from a library whose
// hash is seeded per process (absl::Hash) or may change between versions.
#ifndef PROMRELAY_PROXY_PIPELINE_HASH_H_
#define PROMRELAY_PROXY_PIPELINE_HASH_H_

#include <cstddef>
#include <cstdint>
#include <string>
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

// Little-endian loads spelled out byte by byte so the hash does not depend
// on the host's byte order; compilers turn them into single loads on x86 and
// ARM.
inline uint64_t Load64(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint64_t>(u[0]) | static_cast<uint64_t>(u[1]) << 8 |
         static_cast<uint64_t>(u[2]) << 16 | static_cast<uint64_t>(u[3]) << 24 |
         static_cast<uint64_t>(u[4]) << 32 | static_cast<uint64_t>(u[5]) << 40 |
         static_cast<uint64_t>(u[6]) << 48 | static_cast<uint64_t>(u[7]) << 56;
}
inline uint64_t Load32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint64_t>(u[0]) | static_cast<uint64_t>(u[1]) << 8 |
         static_cast<uint64_t>(u[2]) << 16 | static_cast<uint64_t>(u[3]) << 24;
}

}  // namespace hash_internal

// Folds `bytes` into `h`: 16 bytes per multiply, short inputs read with
// overlapping loads instead of a byte loop. The length goes in too, so
// ("ab","c") and ("a","bc") hash differently.
inline uint64_t StableHashBytes(uint64_t h, std::string_view bytes) {
  using namespace hash_internal;
  const char* p = bytes.data();
  const size_t n = bytes.size();
  uint64_t a = 0;
  uint64_t b = 0;
  if (n <= 16) {
    if (n >= 4) {
      const size_t mid = (n >> 3) << 2;  // 0 for 4..7, 4 for 8..16
      a = Load32(p) << 32 | Load32(p + mid);
      b = Load32(p + n - 4) << 32 | Load32(p + n - 4 - mid);
    } else if (n > 0) {
      const auto* u = reinterpret_cast<const unsigned char*>(p);
      a = static_cast<uint64_t>(u[0]) << 16 |
          static_cast<uint64_t>(u[n >> 1]) << 8 | u[n - 1];
    }
  } else {
    size_t left = n;
    while (left > 16) {
      h = Mum(Load64(p) ^ kP1, Load64(p + 8) ^ h);
      p += 16;
      left -= 16;
    }
    a = Load64(p + left - 16);
    b = Load64(p + left - 8);
  }
  return Mum(kP1 ^ static_cast<uint64_t>(n), Mum(a ^ kP2, b ^ h ^ kP3));
}

// Hash of a label set (anything with string_view-like .name and .value), in
// the given order: used for series whose labels relabeling changed (sorted
// by then).
template <typename L>
uint64_t StableLabelsHash(absl::Span<const L> labels) {
  uint64_t h = hash_internal::kSeed;
  for (const L& l : labels) {
    h = StableHashBytes(h, l.name);
    h = StableHashBytes(h, l.value);
  }
  return h;
}

// Hash of the encoded label fields of an unchanged series (the bytes before
// its first sample): one pass over contiguous bytes, cheaper than per label.
inline uint64_t StableEncodedLabelsHash(std::string_view label_fields) {
  return StableHashBytes(hash_internal::kSeed ^ hash_internal::kP3,
                         label_fields);
}

// Hash of the values of the labels named in `names` (in that order; an
// absent label counts as distinct from an empty one), or, when the series
// has none of them, StableLabelsHash of all its labels.
template <typename L>
uint64_t StableShardKeyHash(absl::Span<const L> labels,
                            absl::Span<const std::string> names) {
  uint64_t h = hash_internal::kSeed ^ hash_internal::kP2;
  bool any = false;
  for (const std::string& name : names) {
    const L* found = nullptr;
    for (const L& l : labels) {
      if (l.name == name) {
        found = &l;
        break;
      }
    }
    if (found == nullptr) {
      h = hash_internal::Mum(h ^ hash_internal::kP3, hash_internal::kP1);
      continue;
    }
    any = true;
    h = StableHashBytes(h, found->value);
  }
  return any ? h : StableLabelsHash(labels);
}

}  // namespace promrelay::pipeline

#endif  // PROMRELAY_PROXY_PIPELINE_HASH_H_
