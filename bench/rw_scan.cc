#include "bench/rw_scan.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "bench/series_hash.h"

namespace promrelay::bench {
namespace {

class Reader {
 public:
  explicit Reader(std::string_view b)
      : p_(reinterpret_cast<const uint8_t*>(b.data())), end_(p_ + b.size()) {}
  bool done() const { return p_ >= end_; }
  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) return false;
      uint8_t b = *p_++;
      r |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  bool Tag(uint32_t* field, uint32_t* wt) {
    uint64_t t;
    if (!Varint(&t) || t == 0 || (t >> 3) > 0x1fffffff) return false;
    *field = static_cast<uint32_t>(t >> 3);
    *wt = t & 7;
    return true;
  }
  bool Bytes(std::string_view* out) {
    uint64_t n;
    if (!Varint(&n) || n > static_cast<uint64_t>(end_ - p_)) return false;
    *out = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }
  bool Fixed64(uint64_t* v) {
    if (end_ - p_ < 8) return false;
    std::memcpy(v, p_, 8);
    p_ += 8;
    return true;
  }
  bool Skip(uint32_t wt) {
    uint64_t v;
    std::string_view s;
    switch (wt) {
      case 0:
        return Varint(&v);
      case 1:
        return Fixed64(&v);
      case 2:
        return Bytes(&s);
      case 5:
        if (end_ - p_ < 4) return false;
        p_ += 4;
        return true;
      default:
        return false;
    }
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

struct LabelSV {
  std::string_view name, value;
  bool operator<(const LabelSV& o) const {
    return name != o.name ? name < o.name : value < o.value;
  }
};

struct SampleTV {
  int64_t ts;
  double value;
};

bool ScanLabel(std::string_view b, LabelSV* l) {
  Reader r(b);
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.Tag(&f, &wt)) return false;
    if (f == 1 && wt == 2) {
      if (!r.Bytes(&l->name)) return false;
    } else if (f == 2 && wt == 2) {
      if (!r.Bytes(&l->value)) return false;
    } else if (!r.Skip(wt)) {
      return false;
    }
  }
  return true;
}

bool ScanSample(std::string_view b, SampleTV* s) {
  Reader r(b);
  s->ts = 0;
  s->value = 0;
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.Tag(&f, &wt)) return false;
    if (f == 1 && wt == 1) {
      uint64_t bits;
      if (!r.Fixed64(&bits)) return false;
      std::memcpy(&s->value, &bits, 8);
    } else if (f == 2 && wt == 0) {
      uint64_t v;
      if (!r.Varint(&v)) return false;
      s->ts = static_cast<int64_t>(v);
    } else if (!r.Skip(wt)) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool ScanWriteRequest(std::string_view buf, const ScanOptions& options,
                      ScanResult* res, std::string* error) {
  thread_local std::vector<LabelSV> labels;
  thread_local std::vector<SampleTV> samples;
  Reader r(buf);
  while (!r.done()) {
    uint32_t f, wt;
    if (!r.Tag(&f, &wt)) {
      *error = "bad tag in WriteRequest";
      return false;
    }
    std::string_view body;
    if (f == 3 && wt == 2) {
      if (!r.Bytes(&body)) {
        *error = "truncated metadata";
        return false;
      }
      ++res->metadata;
      continue;
    }
    if (f != 1 || wt != 2) {
      if (!r.Skip(wt)) {
        *error = absl::StrCat("bad field ", f, " in WriteRequest");
        return false;
      }
      continue;
    }
    if (!r.Bytes(&body)) {
      *error = "truncated timeseries";
      return false;
    }
    labels.clear();
    samples.clear();
    Reader ts(body);
    while (!ts.done()) {
      uint32_t tf, twt;
      std::string_view sub;
      if (!ts.Tag(&tf, &twt)) {
        *error = "bad tag in TimeSeries";
        return false;
      }
      if (twt != 2) {
        if (!ts.Skip(twt)) {
          *error = "bad field in TimeSeries";
          return false;
        }
        continue;
      }
      if (!ts.Bytes(&sub)) {
        *error = "truncated field in TimeSeries";
        return false;
      }
      if (tf == 1) {
        LabelSV l;
        if (!ScanLabel(sub, &l)) {
          *error = "malformed Label";
          return false;
        }
        labels.push_back(l);
      } else if (tf == 2) {
        SampleTV s;
        if (!ScanSample(sub, &s)) {
          *error = "malformed Sample";
          return false;
        }
        samples.push_back(s);
      } else if (tf == 3) {
        ++res->exemplars;
      } else if (tf == 4) {
        ++res->histograms;
      }
    }
    ++res->series;
    res->samples += samples.size();
    res->labels += labels.size();
    bool sorted = true;
    for (size_t i = 1; i < labels.size(); ++i) {
      if (labels[i].name < labels[i - 1].name) {
        sorted = false;
        break;
      }
    }
    if (!sorted) {
      ++res->unsorted_series;
      std::sort(labels.begin(), labels.end());
    }
    for (const std::string& w : options.watch_labels) {
      bool hit = false;
      for (const LabelSV& l : labels) hit |= (l.name == w);
      if (hit) {
        ++res->watched_label_series;
        break;
      }
    }
    StreamHasher h;
    for (const LabelSV& l : labels) {
      h.AddString(l.name);
      h.AddString(l.value);
    }
    uint64_t lh = h.Finish();
    for (const SampleTV& s : samples)
      res->hash += SampleHash(lh, s.ts, s.value);
  }
  return true;
}

}  // namespace promrelay::bench
