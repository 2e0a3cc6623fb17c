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

}  // namespace promrelay::wire::testing

#endif  // PROMRELAY_TESTS_WIRE_GEN_H_
