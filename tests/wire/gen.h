// Seeded generator of remote write 1.0 requests (protoc classes) for the
// codec tests: realistic and adversarial label sets, float samples including
// NaN/stale markers, exemplars, integer and float native histograms, custom
// buckets, metadata.
#ifndef PROMRELAY_TESTS_WIRE_GEN_H_
#define PROMRELAY_TESTS_WIRE_GEN_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "prometheus/remote.pb.h"

namespace promrelay::wire::testing {

struct GenOptions {
  int series = 100;
  int metadata = 5;
  // Probability that a label value is 100 KiB long.
  double long_value_rate = 0.0;
};

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  prometheus::WriteRequest Request(const GenOptions& opt);
  void FillSeries(prometheus::TimeSeries* ts, double long_value_rate);
  void FillHistogram(prometheus::Histogram* h);
  std::string LabelValue(double long_value_rate);

  int Uniform(int lo, int hi) {  // inclusive
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  std::mt19937_64& rng() { return rng_; }

 private:
  double Value();
  int64_t Timestamp();

  std::mt19937_64 rng_;
};

// Drops the unknown fields of `m` itself (not of its sub-messages).
inline void ClearUnknownFields(google::protobuf::Message* m) {
  m->GetReflection()->MutableUnknownFields(m)->Clear();
}

// Copies `s` into a heap block of exactly s.size() bytes, so ASan flags any
// read past the end (std::string keeps a terminator and spare capacity).
class ExactBuffer {
 public:
  explicit ExactBuffer(std::string_view s)
      : data_(new char[s.empty() ? 1 : s.size()]), size_(s.size()) {
    if (!s.empty()) std::memcpy(data_.get(), s.data(), s.size());
  }
  std::string_view view() const { return {data_.get(), size_}; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_;
};

// Hand-built protobuf bytes for tests that need layouts protoc never
// produces (wrong wire types, padded varints, interleaved fields).
struct Bytes {
  std::string b;
  Bytes& Raw(std::string_view s) {
    b.append(s);
    return *this;
  }
  Bytes& Varint(uint64_t v) {
    while (v >= 0x80) {
      b.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    b.push_back(static_cast<char>(v));
    return *this;
  }
  Bytes& Tag(uint32_t field, uint32_t wt) { return Varint(field << 3 | wt); }
  Bytes& Len(uint32_t field, std::string_view s) {
    Tag(field, 2).Varint(s.size());
    b.append(s);
    return *this;
  }
  Bytes& Fixed64(uint32_t field, uint64_t v = 0x0101010101010101) {
    Tag(field, 1);
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  Bytes& Fixed32(uint32_t field, uint32_t v) {
    Tag(field, 5);
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  Bytes& VarintField(uint32_t field, uint64_t v) {
    return Tag(field, 0).Varint(v);
  }
};

// A Label message's bytes, and a plain Sample's (value field 1, timestamp 17).
inline std::string Label(std::string_view name, std::string_view value) {
  return Bytes().Len(1, name).Len(2, value).b;
}
inline std::string Sample() { return Bytes().Fixed64(1).VarintField(2, 17).b; }

// Applies 1..max_edits random byte edits to *m: flip a bit, overwrite a
// byte, delete a byte; with `resize`, deletions take 1-3 bytes and a byte
// may be inserted too.
inline void Mutate(std::string* m, std::mt19937_64& rng, int max_edits,
                   bool resize) {
  const int edits = 1 + static_cast<int>(rng() % max_edits);
  for (int e = 0; e < edits && !m->empty(); ++e) {
    const size_t pos = rng() % m->size();
    switch (rng() % (resize ? 4 : 3)) {
      case 0:
        (*m)[pos] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:
        (*m)[pos] = static_cast<char>(rng());
        break;
      case 2:
        m->erase(pos, resize ? 1 + rng() % 3 : 1);
        break;
      case 3:
        m->insert(pos, 1, static_cast<char>(rng()));
        break;
    }
  }
}

}  // namespace promrelay::wire::testing

#endif  // PROMRELAY_TESTS_WIRE_GEN_H_
