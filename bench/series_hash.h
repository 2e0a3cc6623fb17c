// An order-independent fingerprint of a stream of samples, shared by the load
// generator (what each destination should receive) and the blackhole sink
// (what it did receive). Each sample hashes to 64 bits from its sorted label
// set, timestamp and value bits; a stream's fingerprint is the sum of those
// (mod 2^64), so batching and reordering by a proxy do not change it while a
// lost, duplicated or altered sample does.
#ifndef PROMRELAY_BENCH_SERIES_HASH_H_
#define PROMRELAY_BENCH_SERIES_HASH_H_

#include <cstdint>
#include <cstring>
#include <string_view>

namespace promrelay::bench {

inline uint64_t Mix64(uint64_t x) {
  // splitmix64's finalizer: a full avalanche in three multiply/xor-shift steps.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// Incremental hasher over byte strings. Each string is hashed on its own
// short multiply chain and then folded into the running state, so that the
// chains of consecutive strings overlap in the CPU: the sink fingerprints
// every sample it receives and must not become the benchmark's bottleneck.
class StreamHasher {
 public:
  void AddString(std::string_view s) {
    // The length seeds the string's chain: ("ab","c") != ("a","bc").
    uint64_t h = (s.size() + 1) * 0x9e3779b97f4a7c15ull;
    const char* p = s.data();
    size_t n = s.size();
    while (n >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      h = Rotl((h ^ w) * 0xbf58476d1ce4e5b9ull, 31);
      p += 8;
      n -= 8;
    }
    if (n > 0) {
      // Loads in registers (a byte-wise memcpy into a stack word stalls on
      // store forwarding); overlapping reads are fine, the length is mixed.
      uint64_t w;
      if (n >= 4) {
        uint32_t lo, hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + n - 4, 4);
        w = lo | (static_cast<uint64_t>(hi) << 32);
      } else {
        const auto* u = reinterpret_cast<const unsigned char*>(p);
        w = u[0] | (static_cast<uint64_t>(u[n / 2]) << 8) |
            (static_cast<uint64_t>(u[n - 1]) << 16);
      }
      h = Rotl((h ^ w) * 0xbf58476d1ce4e5b9ull, 31);
    }
    Fold(h);
  }
  void AddU64(uint64_t v) { Fold(v * 0x9e3779b97f4a7c15ull); }
  uint64_t Finish() const { return Mix64(acc_ ^ 0x27d4eb2f165667c5ull); }

 private:
  static uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
  void Fold(uint64_t h) { acc_ = Rotl((acc_ ^ h) * 0x94d049bb133111ebull, 23); }
  uint64_t acc_ = 0x243f6a8885a308d3ull;
};

// Fingerprint of one sample given the hash of its (sorted) label set.
inline uint64_t SampleHash(uint64_t labels_hash, int64_t timestamp_ms,
                           double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, 8);
  return Mix64(
      labels_hash ^
      Mix64(static_cast<uint64_t>(timestamp_ms) + 0x632be59bd9b4e019ull) ^
      Mix64(bits));
}

}  // namespace promrelay::bench

#endif  // PROMRELAY_BENCH_SERIES_HASH_H_
