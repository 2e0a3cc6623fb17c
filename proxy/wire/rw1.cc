#include "proxy/wire/rw1.h"

#include <bit>
#include <cstring>
#include <string>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"

namespace promrelay::wire {
namespace {

using Ptr = const uint8_t*;

constexpr uint32_t kWireVarint = 0;
constexpr uint32_t kWireFixed64 = 1;
constexpr uint32_t kWireLen = 2;
constexpr uint32_t kWireStartGroup = 3;
constexpr uint32_t kWireEndGroup = 4;
constexpr uint32_t kWireFixed32 = 5;

constexpr uint32_t Tag(uint32_t field, uint32_t wire) {
  return (field << 3) | wire;
}

// Protobuf varints are at most 10 bytes. Returns the byte after the varint,
// or nullptr when it is truncated or too long (Parser::VarintError tells
// which; the hot path never needs to know).
ABSL_ATTRIBUTE_NOINLINE Ptr ReadVarintSlow(Ptr p, Ptr end, uint64_t* v) {
  uint64_t r = 0;
  for (int i = 0; i < 10; ++i) {
    if (p >= end) return nullptr;
    const uint64_t b = *p++;
    r |= (b & 0x7f) << (7 * i);
    if (b < 0x80) {
      *v = r;
      return p;
    }
  }
  return nullptr;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline Ptr ReadVarint(Ptr p, Ptr end,
                                                   uint64_t* v) {
  if (ABSL_PREDICT_TRUE(p < end && *p < 0x80)) {
    *v = *p;
    return p + 1;
  }
  // Two bytes: series and long label lengths.
  if (ABSL_PREDICT_TRUE(end - p >= 2 && p[1] < 0x80)) {
    *v = (p[0] & 0x7fu) | (static_cast<uint64_t>(p[1]) << 7);
    return p + 2;
  }
  return ReadVarintSlow(p, end, v);
}

// True for the layout every sender uses, "09 <8-byte value> 10 <varint
// timestamp>" (or either field alone), checked without the generic walk.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool IsPlainSample(Ptr p, Ptr end) {
  if (end - p >= 9 && p[0] == Tag(1, kWireFixed64)) p += 9;
  if (p == end) return true;
  if (p[0] != Tag(2, kWireVarint)) return false;
  ++p;
  // At most 10 varint bytes, the last one ending exactly at `end`.
  if (end - p < 1 || end - p > 10) return false;
  for (Ptr q = p; q < end - 1; ++q) {
    if (*q < 0x80) return false;
  }
  return end[-1] < 0x80;
}

// Where the run of plain-sample fields that ends a TimeSeries body [body,
// end) starts, counting them in *samples (0, and `end`, when it does not
// end in one). Read backwards: a sample field is tag 2 (length-delimited),
// a one-byte length, then an optional value (fixed64, field 1) and a
// timestamp (varint, field 2) ending the field. The result is a guess (a
// label's value may end in such bytes) for the caller to confirm. What the
// backward read accepts is exactly what IsPlainSample() accepts forwards
// (the walk stops at the timestamp's tag, below 0x80), so a sample found
// needs no second check.
Ptr TrailingPlainSamples(Ptr body, Ptr end, uint32_t* samples) {
  *samples = 0;
  while (end - body >= 4) {
    // The timestamp varint: its last byte < 0x80, the ones before >= 0x80.
    size_t varint = 1;
    if (end[-1] >= 0x80) break;
    while (varint < 10 && static_cast<size_t>(end - body) > varint + 3 &&
           end[-static_cast<ptrdiff_t>(varint) - 1] >= 0x80) {
      ++varint;
    }
    const Ptr ts_tag = end - varint - 1;
    if (*ts_tag != Tag(2, kWireVarint)) break;
    // With a value, else without.
    size_t payload = varint + 1;
    if (ts_tag - body >= 11 && ts_tag[-9] == Tag(1, kWireFixed64) &&
        ts_tag[-10] == payload + 9 && ts_tag[-11] == Tag(2, kWireLen)) {
      payload += 9;
    } else if (!(ts_tag[-1] == payload && ts_tag[-2] == Tag(2, kWireLen))) {
      break;
    }
    end -= payload + 2;
    ++*samples;
  }
  return end;
}

// Schema of the messages nested in a TimeSeries or WriteRequest that the
// decoder checks but does not expose.
enum class Msg : uint8_t {
  kSample,
  kExemplar,
  kLabel,
  kHistogram,
  kBucketSpan,
  kMetadata,
};

enum class Kind : uint8_t {
  kUnknown,
  kVarint,         // int64, uint64, sint32, enum, ...
  kFixed64,        // double
  kBytes,          // string, bytes
  kPackedVarint,   // repeated varint scalar: packed or one per tag
  kPackedFixed64,  // repeated double: packed or one per tag
  kMessage,        // embedded message of type FieldSpec::sub
};

struct FieldSpec {
  Kind kind = Kind::kUnknown;
  Msg sub = Msg::kSample;
  const char* name = "";
};

// Field numbers from remote write 1.0 (proto/prometheus/types.proto).
FieldSpec Spec(Msg m, uint32_t field) {
  switch (m) {
    case Msg::kSample:
      switch (field) {
        case 1:
          return {Kind::kFixed64, {}, "value"};
        case 2:
          return {Kind::kVarint, {}, "timestamp"};
      }
      break;
    case Msg::kLabel:
      switch (field) {
        case 1:
          return {Kind::kBytes, {}, "name"};
        case 2:
          return {Kind::kBytes, {}, "value"};
      }
      break;
    case Msg::kExemplar:
      switch (field) {
        case 1:
          return {Kind::kMessage, Msg::kLabel, "labels"};
        case 2:
          return {Kind::kFixed64, {}, "value"};
        case 3:
          return {Kind::kVarint, {}, "timestamp"};
      }
      break;
    case Msg::kBucketSpan:
      switch (field) {
        case 1:
          return {Kind::kVarint, {}, "offset"};
        case 2:
          return {Kind::kVarint, {}, "length"};
      }
      break;
    case Msg::kHistogram:
      switch (field) {
        case 1:
          return {Kind::kVarint, {}, "count_int"};
        case 2:
          return {Kind::kFixed64, {}, "count_float"};
        case 3:
          return {Kind::kFixed64, {}, "sum"};
        case 4:
          return {Kind::kVarint, {}, "schema"};
        case 5:
          return {Kind::kFixed64, {}, "zero_threshold"};
        case 6:
          return {Kind::kVarint, {}, "zero_count_int"};
        case 7:
          return {Kind::kFixed64, {}, "zero_count_float"};
        case 8:
          return {Kind::kMessage, Msg::kBucketSpan, "negative_spans"};
        case 9:
          return {Kind::kPackedVarint, {}, "negative_deltas"};
        case 10:
          return {Kind::kPackedFixed64, {}, "negative_counts"};
        case 11:
          return {Kind::kMessage, Msg::kBucketSpan, "positive_spans"};
        case 12:
          return {Kind::kPackedVarint, {}, "positive_deltas"};
        case 13:
          return {Kind::kPackedFixed64, {}, "positive_counts"};
        case 14:
          return {Kind::kVarint, {}, "reset_hint"};
        case 15:
          return {Kind::kVarint, {}, "timestamp"};
        case 16:
          return {Kind::kPackedFixed64, {}, "custom_values"};
      }
      break;
    case Msg::kMetadata:
      switch (field) {
        case 1:
          return {Kind::kVarint, {}, "type"};
        case 2:
          return {Kind::kBytes, {}, "metric_family_name"};
        case 4:
          return {Kind::kBytes, {}, "help"};
        case 5:
          return {Kind::kBytes, {}, "unit"};
      }
      break;
  }
  return {};
}

const char* WireTypeName(uint32_t wt) {
  switch (wt) {
    case kWireVarint:
      return "varint";
    case kWireFixed64:
      return "fixed64";
    case kWireLen:
      return "length-delimited";
    case kWireStartGroup:
      return "start-group";
    case kWireEndGroup:
      return "end-group";
    case kWireFixed32:
      return "fixed32";
  }
  return "invalid";
}

// Walks one buffer. On failure the innermost function records what went
// wrong with its absolute offset; each enclosing level then prepends its
// path component on the way out, so the success path builds no strings.
class Parser {
 public:
  explicit Parser(std::string_view buf)
      : base_(reinterpret_cast<Ptr>(buf.data())) {}

  absl::Status Error() const {
    if (path_.empty()) return absl::InvalidArgumentError(what_);
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", what_));
  }

  // Prepends "name[index]" to the error path.
  void Enter(absl::string_view name, size_t index) {
    std::string comp = absl::StrCat(name, "[", index, "]");
    if (!path_.empty()) absl::StrAppend(&comp, ".", path_);
    path_ = std::move(comp);
  }

  bool Fail(Ptr at, absl::string_view what, absl::string_view detail = {}) {
    what_ = absl::StrCat(what, " at offset ", at - base_);
    if (!detail.empty()) absl::StrAppend(&what_, " (", detail, ")");
    return false;
  }

  // Called after ReadVarint returned nullptr for a varint starting at p:
  // every byte it looked at had the continuation bit set, so either the
  // buffer ended within 10 bytes or the varint is longer than 10 bytes.
  bool VarintError(Ptr p, Ptr end, absl::string_view what) {
    if (end - p < 10) return Fail(p, absl::StrCat("truncated ", what));
    return Fail(p, absl::StrCat(what, " longer than 10 bytes"));
  }

  // Reads a tag at *p (requires *p < end). Rejects tags that do not fit 32
  // bits and field 0.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool ReadTag(Ptr* p, Ptr end, uint32_t* tag) {
    // Nearly every tag is one byte (field numbers below 16).
    if (ABSL_PREDICT_TRUE(**p < 0x80 && (**p >> 3) != 0)) {
      *tag = *(*p)++;
      return true;
    }
    uint64_t t;
    Ptr q = ReadVarint(*p, end, &t);
    if (ABSL_PREDICT_FALSE(q == nullptr)) return VarintError(*p, end, "tag");
    // protoc reads tags as at most 5 bytes (32 bits); padded tags are only
    // ever produced by hand, so they are refused like protoc does.
    if (ABSL_PREDICT_FALSE(q - *p > 5)) {
      return Fail(*p, "tag varint longer than 5 bytes");
    }
    if (ABSL_PREDICT_FALSE(t > UINT32_MAX || (t >> 3) == 0)) {
      return Fail(*p, "invalid field number", absl::StrCat("tag ", t));
    }
    *tag = static_cast<uint32_t>(t);
    *p = q;
    return true;
  }

  // Reads the length prefix at *p and the bytes it covers; `field_start` is
  // where the field's tag began (reported on error).
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool ReadLen(Ptr* p, Ptr end, Ptr field_start,
                                            std::string_view* out) {
    uint64_t len;
    Ptr q = ReadVarint(*p, end, &len);
    if (ABSL_PREDICT_FALSE(q == nullptr)) {
      return VarintError(*p, end, "length varint");
    }
    // Lengths are 32-bit (5 varint bytes at most), as protoc reads them.
    if (ABSL_PREDICT_FALSE(q - *p > 5)) {
      return Fail(*p, "length varint longer than 5 bytes");
    }
    if (ABSL_PREDICT_FALSE(len > static_cast<uint64_t>(end - q))) {
      return Fail(field_start, "truncated length-delimited field",
                  absl::StrCat("length ", len, ", ", end - q, " bytes left"));
    }
    *out = std::string_view(reinterpret_cast<const char*>(q), len);
    *p = q + len;
    return true;
  }

  // Skips a field whose tag has been read. Groups are refused: no remote
  // write sender emits them and skipping them needs unbounded nesting.
  bool SkipField(Ptr* p, Ptr end, Ptr field_start, uint32_t tag) {
    switch (tag & 7) {
      case kWireVarint: {
        uint64_t v;
        Ptr q = ReadVarint(*p, end, &v);
        if (q == nullptr) return VarintError(*p, end, "varint");
        *p = q;
        return true;
      }
      case kWireFixed64:
        if (end - *p < 8) return Fail(field_start, "truncated fixed64 field");
        *p += 8;
        return true;
      case kWireLen: {
        std::string_view unused;
        return ReadLen(p, end, field_start, &unused);
      }
      case kWireFixed32:
        if (end - *p < 4) return Fail(field_start, "truncated fixed32 field");
        *p += 4;
        return true;
      case kWireStartGroup:
      case kWireEndGroup:
        return Fail(field_start,
                    absl::StrCat("unsupported group wire type ", tag & 7,
                                 " for field ", tag >> 3));
      default:
        return Fail(field_start, absl::StrCat("invalid wire type ", tag & 7,
                                              " for field ", tag >> 3));
    }
  }

  bool WrongWireType(Ptr field_start, uint32_t tag, absl::string_view name,
                     absl::string_view expected) {
    return Fail(field_start,
                absl::StrCat("field ", name, " (", tag >> 3, ") has wire type ",
                             WireTypeName(tag & 7), ", want ", expected));
  }

  // Checks the structure of a nested message against its schema.
  bool Validate(Msg m, Ptr p, Ptr end) {
    // Per-field occurrence counts give repeated sub-messages an index in
    // error paths; our schemas use field numbers below 17.
    uint32_t seen[17] = {};
    while (p < end) {
      Ptr field_start = p;
      uint32_t tag = 0;
      if (!ReadTag(&p, end, &tag)) return false;
      const uint32_t field = tag >> 3;
      const uint32_t wt = tag & 7;
      const FieldSpec spec = Spec(m, field);
      switch (spec.kind) {
        case Kind::kUnknown:
          if (!SkipField(&p, end, field_start, tag)) return false;
          continue;
        case Kind::kVarint:
          if (wt != kWireVarint) {
            return WrongWireType(field_start, tag, spec.name, "varint");
          }
          if (!SkipField(&p, end, field_start, tag)) return false;
          break;
        case Kind::kFixed64:
          if (wt != kWireFixed64) {
            return WrongWireType(field_start, tag, spec.name, "fixed64");
          }
          if (!SkipField(&p, end, field_start, tag)) return false;
          break;
        case Kind::kBytes: {
          if (wt != kWireLen) {
            return WrongWireType(field_start, tag, spec.name,
                                 "length-delimited");
          }
          std::string_view unused;
          if (!ReadLen(&p, end, field_start, &unused)) return false;
          break;
        }
        case Kind::kPackedVarint:
          if (wt == kWireVarint) {
            if (!SkipField(&p, end, field_start, tag)) return false;
          } else if (wt == kWireLen) {
            std::string_view packed;
            if (!ReadLen(&p, end, field_start, &packed)) return false;
            Ptr q = reinterpret_cast<Ptr>(packed.data());
            Ptr qend = q + packed.size();
            while (q < qend) {
              uint64_t v;
              Ptr next = ReadVarint(q, qend, &v);
              if (next == nullptr) {
                return VarintError(
                    q, qend, absl::StrCat("varint in packed ", spec.name));
              }
              q = next;
            }
          } else {
            return WrongWireType(field_start, tag, spec.name,
                                 "varint or length-delimited");
          }
          break;
        case Kind::kPackedFixed64:
          if (wt == kWireFixed64) {
            if (!SkipField(&p, end, field_start, tag)) return false;
          } else if (wt == kWireLen) {
            std::string_view packed;
            if (!ReadLen(&p, end, field_start, &packed)) return false;
            if (packed.size() % 8 != 0) {
              return Fail(field_start, absl::StrCat("packed ", spec.name,
                                                    " length ", packed.size(),
                                                    " is not a multiple of 8"));
            }
          } else {
            return WrongWireType(field_start, tag, spec.name,
                                 "fixed64 or length-delimited");
          }
          break;
        case Kind::kMessage: {
          if (wt != kWireLen) {
            return WrongWireType(field_start, tag, spec.name,
                                 "length-delimited");
          }
          std::string_view sub;
          if (!ReadLen(&p, end, field_start, &sub)) return false;
          Ptr s = reinterpret_cast<Ptr>(sub.data());
          if (!Validate(spec.sub, s, s + sub.size())) {
            Enter(spec.name, seen[field]);
            return false;
          }
          break;
        }
      }
      ++seen[field];
    }
    return true;
  }

  // Label in a TimeSeries: the hot path, so hand-rolled for the usual
  // "0a len name 12 len value" layout. Last occurrence wins, as in protobuf.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool ParseLabel(Ptr p, Ptr end, LabelView* out) {
    std::string_view name, value;
    while (p < end) {
      Ptr field_start = p;
      uint32_t tag = 0;
      if (ABSL_PREDICT_TRUE(*p == Tag(1, kWireLen))) {
        ++p;
        if (!ReadLen(&p, end, field_start, &name)) return false;
      } else if (ABSL_PREDICT_TRUE(*p == Tag(2, kWireLen))) {
        ++p;
        if (!ReadLen(&p, end, field_start, &value)) return false;
      } else {
        if (!ReadTag(&p, end, &tag)) return false;
        if (tag >> 3 == 1 || tag >> 3 == 2) {
          return WrongWireType(field_start, tag,
                               tag >> 3 == 1 ? "name" : "value",
                               "length-delimited");
        }
        if (!SkipField(&p, end, field_start, tag)) return false;
      }
    }
    out->name = name;
    out->value = value;
    return true;
  }

  // The layout of nearly every label, "0a <len> name 12 <len> value" with
  // one-byte lengths, recognized with a few compares; false (and nothing
  // decided) for anything else, which ParseLabel then handles.
  ABSL_ATTRIBUTE_ALWAYS_INLINE static bool ParsePlainLabel(Ptr p, size_t n,
                                                           LabelView* out) {
    if (ABSL_PREDICT_FALSE(n < 4 || p[0] != Tag(1, kWireLen) || p[1] >= 0x80))
      return false;
    const size_t name_len = p[1];
    if (ABSL_PREDICT_FALSE(name_len + 4 > n)) return false;
    const Ptr v = p + 2 + name_len;
    if (ABSL_PREDICT_FALSE(v[0] != Tag(2, kWireLen) || v[1] >= 0x80 ||
                           name_len + 4 + v[1] != n)) {
      return false;
    }
    out->name =
        std::string_view(reinterpret_cast<const char*>(p + 2), name_len);
    out->value = std::string_view(reinterpret_cast<const char*>(v + 2), v[1]);
    return true;
  }

  // Parses the Label message `sub` (label number `index` of its series)
  // onto *labels; false, with the error's path, when it is malformed.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool AppendLabel(
      std::string_view sub, uint32_t index, std::vector<LabelView>* labels) {
    LabelView& l = labels->emplace_back();
    Ptr s0 = reinterpret_cast<Ptr>(sub.data());
    if (ParsePlainLabel(s0, sub.size(), &l) ||
        ParseLabel(s0, s0 + sub.size(), &l)) {
      return true;
    }
    Enter("labels", index);
    return false;
  }

  // Appends the labels of a series body that ParseSeries() already
  // accepted without its labels; false on a malformed Label.
  bool ParseSeriesLabels(Ptr p, Ptr end, std::vector<LabelView>* labels) {
    uint32_t n = 0;
    while (p < end) {
      const Ptr field_start = p;
      uint32_t tag = 0;
      if (!ReadTag(&p, end, &tag)) return false;  // not reached: checked
      if (tag != Tag(1, kWireLen)) {
        if (!SkipField(&p, end, field_start, tag)) return false;
        continue;
      }
      std::string_view sub;
      if (!ReadLen(&p, end, field_start, &sub)) return false;
      if (!AppendLabel(sub, n, labels)) return false;
      ++n;
    }
    return true;
  }

  // Parses one TimeSeries body into *s, appending its labels to *labels
  // (null: label fields are only delimited and counted).
  bool ParseSeries(Ptr p, Ptr end, SeriesView* s,
                   std::vector<LabelView>* labels) {
    const Ptr body = p;
    Ptr rest = p;  // end of the leading run of label fields
    bool seen_other = false;
    bool interleaved = false;
    uint32_t num_labels = 0;
    uint32_t samples = 0, exemplars = 0, histograms = 0;
    if (labels == nullptr) {
      // Skeleton: step over the leading run of labels with one-byte
      // lengths (nearly every label) without the general loop; what it
      // accepts is exactly what the loop below would.
      while (end - p >= 2 && p[0] == Tag(1, kWireLen) && p[1] < 0x80 &&
             static_cast<size_t>(end - p) >= size_t{2} + p[1]) {
        p += 2 + p[1];
        ++num_labels;
      }
      rest = p;
    }
    while (p < end) {
      const Ptr field_start = p;
      uint32_t tag = 0;
      if (!ReadTag(&p, end, &tag)) return false;
      std::string_view sub;
      switch (tag) {
        case Tag(1, kWireLen): {
          if (!ReadLen(&p, end, field_start, &sub)) return false;
          if (labels != nullptr && !AppendLabel(sub, num_labels, labels)) {
            return false;
          }
          ++num_labels;
          if (seen_other) {
            interleaved = true;
          } else {
            rest = p;
          }
          continue;
        }
        case Tag(2, kWireLen): {
          if (!ReadLen(&p, end, field_start, &sub)) return false;
          Ptr s0 = reinterpret_cast<Ptr>(sub.data());
          if (ABSL_PREDICT_TRUE(IsPlainSample(s0, s0 + sub.size()))) {
            ++samples;
            break;
          }
          if (!Validate(Msg::kSample, s0, s0 + sub.size())) {
            Enter("samples", samples);
            return false;
          }
          ++samples;
          break;
        }
        case Tag(3, kWireLen): {
          if (!ReadLen(&p, end, field_start, &sub)) return false;
          Ptr s0 = reinterpret_cast<Ptr>(sub.data());
          if (!Validate(Msg::kExemplar, s0, s0 + sub.size())) {
            Enter("exemplars", exemplars);
            return false;
          }
          ++exemplars;
          break;
        }
        case Tag(4, kWireLen): {
          if (!ReadLen(&p, end, field_start, &sub)) return false;
          Ptr s0 = reinterpret_cast<Ptr>(sub.data());
          if (!Validate(Msg::kHistogram, s0, s0 + sub.size())) {
            Enter("histograms", histograms);
            return false;
          }
          ++histograms;
          break;
        }
        default: {
          const uint32_t field = tag >> 3;
          if (field >= 1 && field <= 4) {
            static constexpr const char* kNames[] = {"", "labels", "samples",
                                                     "exemplars", "histograms"};
            return WrongWireType(field_start, tag, kNames[field],
                                 "length-delimited");
          }
          if (!SkipField(&p, end, field_start, tag)) return false;
          break;
        }
      }
      seen_other = true;
    }
    s->num_labels = num_labels;
    if (labels == nullptr) s->first_label = SeriesView::kLabelsNotParsed;
    s->body = std::string_view(reinterpret_cast<const char*>(body), end - body);
    s->samples = samples;
    s->exemplars = exemplars;
    s->histograms = histograms;
    s->rest_offset = interleaved ? SeriesView::kRestUnknown
                                 : static_cast<uint32_t>(rest - body);
    return true;
  }

 private:
  Ptr base_;
  std::string path_;
  std::string what_;
};

inline size_t VarintSize(uint64_t v) {
  // Label lengths are almost always below 128 or 16384.
  if (ABSL_PREDICT_TRUE(v < 0x80)) return 1;
  if (v < 0x4000) return 2;
  return static_cast<size_t>(std::bit_width(v) + 6) / 7;
}

inline char* WriteVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

// Label names and values are mostly short: fixed-size moves (which compile
// to plain loads and stores) beat a memcpy call per string.
inline char* WriteBytes(char* p, std::string_view s) {
  const char* src = s.data();
  const size_t n = s.size();
  if (n >= 8 && n <= 16) {
    std::memcpy(p, src, 8);
    std::memcpy(p + n - 8, src + n - 8, 8);
  } else if (n >= 4 && n < 8) {
    std::memcpy(p, src, 4);
    std::memcpy(p + n - 4, src + n - 4, 4);
  } else if (n < 4) {
    for (size_t i = 0; i < n; ++i) p[i] = src[i];
  } else {
    std::memcpy(p, src, n);
  }
  return p + n;
}

// Size of a Label message as protoc/Go encode it: empty fields omitted.
inline size_t LabelSize(const LabelView& l) {
  size_t n = 0;
  if (!l.name.empty()) n += 1 + VarintSize(l.name.size()) + l.name.size();
  if (!l.value.empty()) n += 1 + VarintSize(l.value.size()) + l.value.size();
  return n;
}

// Calls fn(field_bytes) for every field of `body` that is not a label, in
// order. Stops quietly at anything malformed: bodies given to the encoder
// come from a successful Parse().
template <typename Fn>
void ForEachNonLabelField(std::string_view body, Fn fn) {
  Ptr p = reinterpret_cast<Ptr>(body.data());
  Ptr end = p + body.size();
  while (p < end) {
    Ptr start = p;
    uint64_t tag;
    p = ReadVarint(p, end, &tag);
    if (p == nullptr) return;
    uint64_t v;
    switch (tag & 7) {
      case kWireVarint:
        p = ReadVarint(p, end, &v);
        if (p == nullptr) return;
        break;
      case kWireFixed64:
        if (end - p < 8) return;
        p += 8;
        break;
      case kWireLen:
        p = ReadVarint(p, end, &v);
        if (p == nullptr || v > static_cast<uint64_t>(end - p)) return;
        p += v;
        break;
      case kWireFixed32:
        if (end - p < 4) return;
        p += 4;
        break;
      default:
        return;
    }
    if (tag != Tag(1, kWireLen)) {
      fn(std::string_view(reinterpret_cast<const char*>(start), p - start));
    }
  }
}

}  // namespace

absl::Status WriteRequestView::Parse(std::string_view buf) {
  return ParseImpl(buf, Depth::kFull);
}

absl::Status WriteRequestView::ParseSkeleton(std::string_view buf) {
  return ParseImpl(buf, Depth::kSkeleton);
}

absl::Status WriteRequestView::ParseFrames(std::string_view buf) {
  return ParseImpl(buf, Depth::kFrames);
}

absl::Status WriteRequestView::VerifySeries(size_t index) {
  SeriesView& s = series_[index];
  if (!s.unverified) return absl::OkStatus();
  Parser parser(buf_);
  SeriesView walked;
  const Ptr p = reinterpret_cast<Ptr>(s.body.data());
  if (!parser.ParseSeries(p, p + s.body.size(), &walked, nullptr)) {
    parser.Enter("timeseries", index);
    return parser.Error();
  }
  walked.header_size = s.header_size;
  total_samples_ = total_samples_ - (s.samples + s.histograms) +
                   (walked.samples + walked.histograms);
  s = walked;
  return absl::OkStatus();
}

absl::Status WriteRequestView::ParseLabels(size_t index) {
  absl::Status st = VerifySeries(index);
  if (!st.ok()) return st;
  SeriesView& s = series_[index];
  if (s.first_label != SeriesView::kLabelsNotParsed) return absl::OkStatus();
  Parser parser(buf_);
  const size_t first = labels_.size();
  Ptr p = reinterpret_cast<Ptr>(s.body.data());
  if (!parser.ParseSeriesLabels(p, p + s.body.size(), &labels_)) {
    labels_.resize(first);
    parser.Enter("timeseries", index);
    return parser.Error();
  }
  s.first_label = static_cast<uint32_t>(first);
  return absl::OkStatus();
}

absl::Status WriteRequestView::ParseImpl(std::string_view buf, Depth depth) {
  const bool parse_labels = depth == Depth::kFull;
  buf_ = buf;
  series_.clear();
  labels_.clear();
  metadata_.clear();
  total_samples_ = 0;
  Parser parser(buf);
  auto fail = [&]() {
    buf_ = {};
    series_.clear();
    labels_.clear();
    metadata_.clear();
    total_samples_ = 0;
    return parser.Error();
  };
  if (buf.size() >= UINT32_MAX) {
    return absl::InvalidArgumentError("request of 4 GiB or more");
  }
  Ptr p = reinterpret_cast<Ptr>(buf.data());
  const Ptr end = p + buf.size();
  uint64_t total = 0;
  while (p < end) {
    const Ptr field_start = p;
    uint32_t tag = 0;
    if (!parser.ReadTag(&p, end, &tag)) return fail();
    std::string_view sub;
    if (ABSL_PREDICT_TRUE(tag == Tag(1, kWireLen))) {
      if (!parser.ReadLen(&p, end, field_start, &sub)) return fail();
      SeriesView& s = series_.emplace_back();
      s.first_label = static_cast<uint32_t>(labels_.size());
      Ptr s0 = reinterpret_cast<Ptr>(sub.data());
      uint32_t trailing = 0;
      const Ptr rest =
          depth == Depth::kFrames
              ? TrailingPlainSamples(s0, s0 + sub.size(), &trailing)
              : nullptr;
      if (trailing > 0) {
        s.first_label = SeriesView::kLabelsNotParsed;
        s.body = sub;
        s.samples = trailing;
        s.rest_offset = static_cast<uint32_t>(rest - s0);
        s.unverified = true;
      } else if (!parser.ParseSeries(s0, s0 + sub.size(), &s,
                                     parse_labels ? &labels_ : nullptr)) {
        parser.Enter("timeseries", series_.size() - 1);
        return fail();
      }
      s.header_size = static_cast<uint32_t>(s0 - field_start);
      total += s.samples + s.histograms;
    } else if (tag == Tag(3, kWireLen)) {
      if (!parser.ReadLen(&p, end, field_start, &sub)) return fail();
      Ptr s0 = reinterpret_cast<Ptr>(sub.data());
      if (!parser.Validate(Msg::kMetadata, s0, s0 + sub.size())) {
        parser.Enter("metadata", metadata_.size());
        return fail();
      }
      metadata_.push_back(sub);
    } else {
      if (tag >> 3 == 1 || tag >> 3 == 3) {
        parser.WrongWireType(field_start, tag,
                             tag >> 3 == 1 ? "timeseries" : "metadata",
                             "length-delimited");
        return fail();
      }
      if (!parser.SkipField(&p, end, field_start, tag)) return fail();
    }
  }
  total_samples_ = total;
  return absl::OkStatus();
}

namespace {

size_t LabelFieldsSize(absl::Span<const LabelView> labels) {
  size_t size = 0;
  for (const LabelView& l : labels) {
    const size_t n = LabelSize(l);
    size += 1 + VarintSize(n) + n;
  }
  return size;
}

char* WriteLabelFields(char* p, absl::Span<const LabelView> labels) {
  for (const LabelView& l : labels) {
    *p++ = static_cast<char>(Tag(1, kWireLen));
    p = WriteVarint(p, LabelSize(l));
    if (!l.name.empty()) {
      *p++ = static_cast<char>(Tag(1, kWireLen));
      p = WriteVarint(p, l.name.size());
      p = WriteBytes(p, l.name);
    }
    if (!l.value.empty()) {
      *p++ = static_cast<char>(Tag(2, kWireLen));
      p = WriteVarint(p, l.value.size());
      p = WriteBytes(p, l.value);
    }
  }
  return p;
}

}  // namespace

void WriteRequestEncoder::AppendLabelFields(absl::Span<const LabelView> labels,
                                            std::string* out) {
  const size_t old = out->size();
  out->resize(old + LabelFieldsSize(labels));
  WriteLabelFields(out->data() + old, labels);
}

// Writes one TimeSeries: `label_size` bytes of label fields produced by
// `write_labels`, then the non-label fields of `original`.
template <typename WriteLabels>
void WriteRequestEncoder::AddSeriesImpl(size_t label_size,
                                        WriteLabels write_labels,
                                        const SeriesView& original) {
  const std::string_view body = original.body;
  const bool contiguous = original.rest_offset != SeriesView::kRestUnknown &&
                          original.rest_offset <= body.size();
  std::string_view rest;
  size_t rest_size = 0;
  if (contiguous) {
    rest = body.substr(original.rest_offset);
    rest_size = rest.size();
  } else {
    ForEachNonLabelField(body,
                         [&](std::string_view f) { rest_size += f.size(); });
  }
  const size_t body_size = label_size + rest_size;
  const size_t old = buf_.size();
  buf_.resize(old + 1 + VarintSize(body_size) + body_size);
  char* p = buf_.data() + old;
  *p++ = static_cast<char>(Tag(1, kWireLen));
  p = WriteVarint(p, body_size);
  p = write_labels(p);
  if (contiguous) {
    p = WriteBytes(p, rest);
  } else {
    ForEachNonLabelField(body,
                         [&](std::string_view f) { p = WriteBytes(p, f); });
  }
}

void WriteRequestEncoder::AddSeries(absl::Span<const LabelView> labels,
                                    const SeriesView& original) {
  AddSeriesImpl(
      LabelFieldsSize(labels),
      [labels](char* p) { return WriteLabelFields(p, labels); }, original);
}

void WriteRequestEncoder::AddSeriesWithLabelFields(
    std::string_view label_fields, const SeriesView& original) {
  AddSeriesImpl(
      label_fields.size(),
      [label_fields](char* p) { return WriteBytes(p, label_fields); },
      original);
}

void WriteRequestEncoder::AddRawSeries(const SeriesView& series) {
  const std::string_view body = series.body;
  if (series.header_size != 0) {
    buf_.append(body.data() - series.header_size,
                series.header_size + body.size());
    return;
  }
  char head[1 + 10];
  head[0] = static_cast<char>(Tag(1, kWireLen));
  char* e = WriteVarint(head + 1, body.size());
  buf_.append(head, e - head);
  buf_.append(body);
}

void WriteRequestEncoder::AddMetadata(std::string_view raw) {
  char head[1 + 10];
  head[0] = static_cast<char>(Tag(3, kWireLen));
  char* e = WriteVarint(head + 1, raw.size());
  buf_.append(head, e - head);
  buf_.append(raw);
}

}  // namespace promrelay::wire
