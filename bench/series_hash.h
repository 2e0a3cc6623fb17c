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

// Incremental hasher over byte strings; word-at-a-time so that the sink can
// fingerprint a million samples per second without becoming the bottleneck.
class StreamHasher {
 public:
  void AddString(std::string_view s) {
    // Length first, so that ("ab","c") and ("a","bc") differ.
    Word(s.size() | 0x8000000000000000ull);
    const char* p = s.data();
    size_t n = s.size();
    while (n >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      Word(w);
      p += 8;
      n -= 8;
    }
    if (n > 0) {
      uint64_t w = 0;
      std::memcpy(&w, p, n);
      Word(w);
    }
  }
  void AddU64(uint64_t v) { Word(v); }
  uint64_t Finish() const { return Mix64(h_ ^ 0x27d4eb2f165667c5ull); }

 private:
  void Word(uint64_t w) {
    h_ = (h_ ^ w) * 0x9e3779b97f4a7c15ull;
    h_ ^= h_ >> 32;
  }
  uint64_t h_ = 0x243f6a8885a308d3ull;
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
