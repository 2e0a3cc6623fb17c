// A log-linear latency histogram (under 1% relative error) cheap enough to
// record every request; one per thread, merged at the end.
#ifndef PROMRELAY_BENCH_HISTOGRAM_H_
#define PROMRELAY_BENCH_HISTOGRAM_H_

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace promrelay::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr int kSub = 1 << kSubBits;

  LatencyHistogram() : counts_((64 - kSubBits + 1) * kSub, 0) {}

  void Record(uint64_t ns) {
    ++counts_[Index(ns)];
    ++count_;
    max_ = std::max(max_, ns);
    min_ = std::min(min_, ns);
    sum_ += ns;
  }
  void Merge(const LatencyHistogram& o) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
    sum_ += o.sum_;
  }
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const {
    return count_ ? static_cast<double>(sum_) / count_ : 0;
  }

  // The value at quantile q (0..1): the upper bound of the bucket holding
  // the ceil(q*count)-th smallest value, capped at the maximum seen.
  uint64_t Quantile(double q) const {
    if (count_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * count_ + 0.999999);
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(UpperBound(i), max_);
    }
    return max_;
  }

 private:
  static size_t Index(uint64_t v) {
    if (v < kSub) return v;
    int e = 63 - std::countl_zero(v);  // >= kSubBits
    uint64_t mantissa = (v >> (e - kSubBits)) & (kSub - 1);
    return static_cast<size_t>(e - kSubBits + 1) * kSub + mantissa;
  }
  static uint64_t UpperBound(size_t i) {
    if (i < kSub) return i;
    int e = static_cast<int>(i / kSub) + kSubBits - 1;
    uint64_t mantissa = i % kSub;
    return ((kSub + mantissa + 1) << (e - kSubBits)) - 1;
  }

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0, max_ = 0, min_ = UINT64_MAX, sum_ = 0;
};

}  // namespace promrelay::bench

#endif  // PROMRELAY_BENCH_HISTOGRAM_H_
