// Remote write 1.0 codec for the hot path: a zero-copy decoder (label names
// and values are views into the decompressed buffer) and an encoder that
// re-emits untouched sample, exemplar and histogram bytes verbatim.
#ifndef PROMRELAY_PROXY_WIRE_RW1_H_
#define PROMRELAY_PROXY_WIRE_RW1_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace promrelay::wire {

struct LabelView {
  std::string_view name;
  std::string_view value;
};

struct SeriesView {
  // rest_offset value meaning "labels and other fields are interleaved (or
  // unknown): scan the body to find the non-label fields".
  static constexpr uint32_t kRestUnknown = UINT32_MAX;

  // first_label after ParseSkeleton(), until ParseLabels() for the series.
  static constexpr uint32_t kLabelsNotParsed = UINT32_MAX;

  uint32_t first_label = 0;  // index into WriteRequestView::all_labels()
  uint32_t num_labels = 0;   // label fields of the series
  std::string_view body;     // the whole TimeSeries message (without tag/len)
  uint32_t samples = 0;
  uint32_t histograms = 0;
  uint32_t exemplars = 0;
  // Where the non-label fields start in `body` when every label field comes
  // before every other field (what all known senders emit): then
  // body.substr(rest_offset) is exactly the non-label fields and the encoder
  // copies it in one go. Set by Parse() and ParseSkeleton() (a guess after
  // ParseFrames(), see `unverified`); kRestUnknown otherwise.
  uint32_t rest_offset = kRestUnknown;
  // Bytes of the `timeseries` field's tag and length right before `body`
  // in the parsed buffer (0: unknown, the view was not made by a parse).
  // The encoder copies a raw series with them, as sent, in one go.
  uint32_t header_size = 0;
  // Set by ParseFrames() for a series it did not walk: rest_offset and
  // samples are then its guess (see there) until VerifySeries().
  bool unverified = false;
};

// A parsed WriteRequest whose views point into the buffer given to Parse().
// Reuse one per thread: Parse() keeps the vectors' capacity.
class WriteRequestView {
 public:
  // Parses `buf` (uncompressed protobuf). On malformed input returns
  // InvalidArgument saying what is wrong, where in the message tree and at
  // which byte offset of `buf`, e.g.
  //   "timeseries[12].labels[3]: truncated length-delimited field at offset
  //   4711".
  // Every nested message (samples, exemplars, histograms, metadata) is
  // checked too, so whatever is later copied verbatim is well-formed.
  // Known fields must have their schema's wire type (packed or not for
  // repeated scalars); unknown fields are skipped by wire type; groups
  // (wire types 3/4) and wire types 6/7 are errors. Label bytes are not
  // checked for UTF-8, and empty label names are accepted (the caller
  // validates label content). After an error the view is empty.
  absl::Status Parse(std::string_view buf);

  // Parse() except for the contents of label fields: every series is
  // checked and described (body, counts, rest_offset, num_labels), but its
  // Label messages are only delimited, not parsed or checked, and
  // labels(series) stays empty until ParseLabels(). For a caller that
  // already knows most series by their label bytes (the outcome cache).
  absl::Status ParseSkeleton(std::string_view buf);

  // ParseSkeleton() for a caller that knows most series by their label
  // bytes, without walking their labels either. A series that ends in
  // plain samples (a value and/or a timestamp, what every known sender
  // writes) is split, from its end, into those samples and what comes
  // before them, taken for its label fields: rest_offset and samples are
  // set from that guess, num_labels is 0 and `unverified` is true. The
  // guess is right exactly when body.substr(0, rest_offset) is a whole run
  // of label fields; bytes the caller has seen a verified series start
  // with prove that. Otherwise the caller calls VerifySeries(), which
  // walks the series as ParseSkeleton() does. Everything else (framing of
  // every series and metadata, the trailing samples, other series) is
  // checked as in ParseSkeleton(). total_samples() counts the guesses.
  absl::Status ParseFrames(std::string_view buf);

  // Walks an unverified series as ParseSkeleton() would and replaces the
  // guess with what it finds (total_samples() follows). Returns the error
  // ParseSkeleton() would have given for the series; nothing to do for a
  // series that is not unverified.
  absl::Status VerifySeries(size_t index);

  // Parses and checks the labels of series `index` after ParseSkeleton()
  // (nothing to do after Parse() or a previous call). On malformed labels
  // returns the error Parse() would give for them ("timeseries[3].labels[1]:
  // ... at offset N") and leaves the series without labels; the rest of
  // the view stays usable.
  absl::Status ParseLabels(size_t index);

  absl::Span<const SeriesView> series() const { return series_; }
  // Empty for a series whose labels are not parsed yet (ParseSkeleton).
  absl::Span<const LabelView> labels(const SeriesView& s) const {
    if (s.first_label == SeriesView::kLabelsNotParsed) return {};
    return absl::MakeConstSpan(labels_).subspan(s.first_label, s.num_labels);
  }
  absl::Span<const LabelView> all_labels() const { return labels_; }
  // Raw MetricMetadata messages (field 3), in order.
  absl::Span<const std::string_view> metadata() const { return metadata_; }
  uint64_t total_samples() const { return total_samples_; }  // + histograms

 private:
  enum class Depth { kFull, kSkeleton, kFrames };
  absl::Status ParseImpl(std::string_view buf, Depth depth);

  std::string_view buf_;  // what the views point into (error offsets)
  std::vector<SeriesView> series_;
  std::vector<LabelView> labels_;
  std::vector<std::string_view> metadata_;
  uint64_t total_samples_ = 0;
};

// Builds a WriteRequest. Appends to an internal buffer; Clear() reuses it.
class WriteRequestEncoder {
 public:
  void Clear() { buf_.clear(); }
  // Labels are written canonically (empty name/value omitted, like protoc and
  // Go); with the original labels and a protoc- or Go-encoded input the
  // output equals the input byte for byte.
  // Emits a TimeSeries with `labels` (in the given order) followed by every
  // non-label field of `original.body`, byte for byte.
  // `original` must come from WriteRequestView::Parse() or ParseSkeleton()
  // (or have
  // rest_offset == kRestUnknown and a well-formed body).
  void AddSeries(absl::Span<const LabelView> labels,
                 const SeriesView& original);
  // The label fields AddSeries() writes for `labels`, appended to *out: a
  // series' relabeled labels can be kept encoded and reused.
  static void AppendLabelFields(absl::Span<const LabelView> labels,
                                std::string* out);
  // AddSeries() with labels already encoded by AppendLabelFields(): the
  // same bytes as AddSeries() with those labels.
  void AddSeriesWithLabelFields(std::string_view label_fields,
                                const SeriesView& original);
  // Emits the series unchanged: its field as it came (tag and length as the
  // sender wrote them) when the view is from a parse, else `body` framed
  // anew.
  void AddRawSeries(const SeriesView& series);
  // Emits a MetricMetadata message unchanged.
  void AddMetadata(std::string_view raw);
  const std::string& bytes() const { return buf_; }
  std::string& mutable_bytes() { return buf_; }

 private:
  template <typename WriteLabels>
  void AddSeriesImpl(size_t label_size, WriteLabels write_labels,
                     const SeriesView& original);

  std::string buf_;
};

}  // namespace promrelay::wire

#endif  // PROMRELAY_PROXY_WIRE_RW1_H_
