// Malformed input: every class must give an InvalidArgument naming what and
// where, never a crash or an out-of-bounds read (run under ASan+UBSan).
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "prometheus/remote.pb.h"
#include "proxy/wire/rw1.h"
#include "tests/wire/gen.h"

namespace promrelay::wire {
namespace {

using testing::Bytes;

using testing::ExactBuffer;
using testing::Generator;
using testing::GenOptions;
using testing::Label;
using testing::Mutate;
using testing::Sample;

std::string Series(std::string_view extra = {}) {
  return Bytes().Len(1, Label("__name__", "up")).Len(2, Sample()).Raw(extra).b;
}

absl::Status ParseExact(std::string_view bytes) {
  ExactBuffer buf(bytes);
  WriteRequestView v;
  return v.Parse(buf.view());
}

std::string ErrorOf(std::string_view bytes) {
  absl::Status st = ParseExact(bytes);
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  return std::string(st.message());
}

using Catch::Matchers::Contains;
using Catch::Matchers::Equals;

TEST_CASE("error names the path and the byte offset", "[rw1][malformed]") {
  // timeseries[1].labels[1]'s name claims 50 bytes but has 1.
  Bytes b;
  b.Len(1, Series());
  const std::string good_label = Label("a", "b");
  const std::string bad_label = Bytes().Tag(1, 2).Varint(50).Raw("x").b;
  const std::string series1 = Bytes().Len(1, good_label).Len(1, bad_label).b;
  b.Tag(1, 2).Varint(series1.size());
  const size_t series1_start = b.b.size();
  b.Raw(series1);
  const size_t bad_field_offset =
      series1_start + 2 + good_label.size() + 2;  // tag+len of each label
  CHECK_THAT(
      ErrorOf(b.b),
      Equals("timeseries[1].labels[1]: truncated length-delimited "
             "field at offset " +
             std::to_string(bad_field_offset) + " (length 50, 1 bytes left)"));
}

TEST_CASE("nested paths in histograms and exemplars", "[rw1][malformed]") {
  // histograms[1].positive_spans[0] carries a fixed32 where a varint belongs.
  const std::string bad_span = Bytes().Tag(2, 5).Raw("\x01\x02\x03\x04").b;
  const std::string hist_ok = Bytes().VarintField(1, 3).b;
  const std::string hist_bad = Bytes().VarintField(1, 3).Len(11, bad_span).b;
  const std::string series = Series(Bytes().Len(4, hist_ok).Len(4, hist_bad).b);
  CHECK_THAT(ErrorOf(Bytes().Len(1, series).b),
             Contains("timeseries[0].histograms[1].positive_spans[0]: field "
                      "length (2) has wire type fixed32, want varint"));
  const std::string exemplar =
      Bytes().Len(1, Label("trace_id", "x")).Len(1, "\x0a\x09").b;
  CHECK_THAT(ErrorOf(Bytes().Len(1, Series(Bytes().Len(3, exemplar).b)).b),
             Contains("timeseries[0].exemplars[0].labels[1]: truncated "
                      "length-delimited field"));
  const std::string md = Bytes().VarintField(1, 2).Fixed64(2).b;
  CHECK_THAT(ErrorOf(Bytes().Len(1, Series()).Len(3, md).b),
             Contains("metadata[0]: field metric_family_name (2) has wire "
                      "type fixed64"));
}

TEST_CASE("bad varints", "[rw1][malformed]") {
  const std::string eleven(10, '\xff');  // + a final byte below
  // 11-byte tag.
  CHECK_THAT(ErrorOf(eleven + "\x01"), Contains("longer than"));
  // 11-byte length of a timeseries.
  CHECK_THAT(ErrorOf("\x0a" + eleven + "\x01"), Contains("longer than"));
  // 11-byte varint in a sample timestamp, inside a valid-looking series.
  const std::string bad_sample =
      Bytes().Fixed64(1).Tag(2, 0).Raw(eleven).Raw("\x01").b;
  CHECK_THAT(ErrorOf(Bytes().Len(1, Bytes().Len(2, bad_sample).b).b),
             Contains("timeseries[0].samples[0]: varint longer than 10 bytes"));
  // 11-byte varint inside packed deltas.
  const std::string packed = eleven + "\x01";
  const std::string hist = Bytes().Len(12, packed).b;
  CHECK_THAT(
      ErrorOf(Bytes().Len(1, Bytes().Len(4, hist).b).b),
      Contains("histograms[0]: varint in packed positive_deltas longer than"));
  // Truncated varints.
  CHECK_THAT(ErrorOf("\x0a\xff"),
             Contains("truncated length varint at offset 1"));
  CHECK_THAT(ErrorOf("\xff\xff"), Contains("truncated tag at offset 0"));
  // A 10-byte varint is fine (negative int64 timestamps look like this).
  const std::string neg =
      Bytes().Fixed64(1).VarintField(2, static_cast<uint64_t>(-5)).b;
  CHECK(ParseExact(Bytes().Len(1, Bytes().Len(2, neg).b).b).ok());
  // Padded tags and lengths (more than 5 bytes) are refused, as protoc does.
  CHECK_THAT(ErrorOf(std::string("\x8a\x80\x80\x80\x80\x00\x00", 7)),
             Contains("tag varint longer than 5 bytes"));
  CHECK_THAT(ErrorOf(std::string("\x0a\x80\x80\x80\x80\x80\x00", 7)),
             Contains("length varint longer than 5 bytes"));
  // Tag values beyond 32 bits, and field number 0.
  CHECK_THAT(ErrorOf("\xfa\xff\xff\xff\x7f"), Contains("invalid field number"));
  CHECK_THAT(ErrorOf(std::string("\x02\x00", 2)),
             Contains("invalid field number"));
  CHECK_THAT(ErrorOf(Bytes().Len(1, std::string("\x00", 1)).b),
             Contains("timeseries[0]: invalid field number at offset 2"));
}

TEST_CASE("length beyond the buffer at every level", "[rw1][malformed]") {
  CHECK_THAT(ErrorOf(Bytes().Tag(1, 2).Varint(100).Raw(Series()).b),
             Contains("truncated length-delimited field at offset 0"));
  CHECK_THAT(ErrorOf(Bytes().Tag(3, 2).Varint(5).b),
             Contains("truncated length-delimited field at offset 0"));
  CHECK_THAT(ErrorOf(Bytes().Len(1, Bytes().Tag(2, 2).Varint(3).Raw("ab").b).b),
             Contains("timeseries[0]: truncated length-delimited"));
  CHECK_THAT(
      ErrorOf(
          Bytes().Len(1, Bytes().Len(1, Bytes().Tag(2, 2).Varint(9).b).b).b),
      Contains("timeseries[0].labels[0]: truncated"));
  CHECK_THAT(
      ErrorOf(
          Bytes().Len(1, Bytes().Len(2, Bytes().Tag(1, 1).Raw("1234").b).b).b),
      Contains("timeseries[0].samples[0]: truncated fixed64 field"));
  CHECK_THAT(ErrorOf(Bytes().Len(1, Series(Bytes().Tag(9, 5).Raw("12").b)).b),
             Contains("timeseries[0]: truncated fixed32 field"));
  // Unknown length-delimited field, top level.
  CHECK_THAT(ErrorOf(Bytes().Len(1, Series()).Tag(7, 2).Varint(1000).b),
             Contains("truncated length-delimited"));
  // Packed doubles must be whole.
  CHECK_THAT(
      ErrorOf(
          Bytes()
              .Len(1, Series(Bytes().Len(4, Bytes().Len(13, "1234567").b).b))
              .b),
      Contains("histograms[0]: packed positive_counts length 7 is not a "
               "multiple of 8"));
}

TEST_CASE("wrong wire types for known fields", "[rw1][malformed]") {
  struct Case {
    std::string bytes;
    std::string want;
  };
  const std::vector<Case> cases = {
      {Bytes().VarintField(1, 5).b,
       "field timeseries (1) has wire type varint"},
      {Bytes().Fixed64(3).b, "field metadata (3) has wire type fixed64"},
      {Bytes().Len(1, Bytes().VarintField(1, 1).b).b,
       "timeseries[0]: field labels (1) has wire type varint"},
      {Bytes().Len(1, Bytes().Fixed64(2).b).b, "field samples (2)"},
      {Bytes().Len(1, Bytes().VarintField(3, 0).b).b, "field exemplars (3)"},
      {Bytes().Len(1, Bytes().VarintField(4, 0).b).b, "field histograms (4)"},
      {Bytes().Len(1, Bytes().Len(1, Bytes().VarintField(1, 1).b).b).b,
       "timeseries[0].labels[0]: field name (1) has wire type varint"},
      {Bytes().Len(1, Bytes().Len(1, Bytes().Fixed64(2).b).b).b,
       "labels[0]: field value (2) has wire type fixed64"},
      {Bytes().Len(1, Bytes().Len(2, Bytes().VarintField(1, 1).b).b).b,
       "samples[0]: field value (1) has wire type varint, want fixed64"},
      {Bytes().Len(1, Bytes().Len(2, Bytes().Fixed64(2).b).b).b,
       "samples[0]: field timestamp (2) has wire type fixed64"},
      {Bytes().Len(1, Bytes().Len(4, Bytes().Len(1, "x").b).b).b,
       "histograms[0]: field count_int (1)"},
      {Bytes().Len(1, Bytes().Len(4, Bytes().Fixed64(9).b).b).b,
       "field negative_deltas (9) has wire type fixed64, want varint or "
       "length-delimited"},
      {Bytes().Len(1, Bytes().Len(4, Bytes().VarintField(10, 1).b).b).b,
       "field negative_counts (10) has wire type varint"},
      {Bytes().Len(1, Bytes().Len(4, Bytes().VarintField(8, 1).b).b).b,
       "field negative_spans (8) has wire type varint"},
      {Bytes().Len(1, Bytes().Len(3, Bytes().VarintField(2, 1).b).b).b,
       "exemplars[0]: field value (2)"},
      {Bytes().Len(3, Bytes().Len(1, "x").b).b, "metadata[0]: field type (1)"},
  };
  for (const Case& c : cases) {
    INFO(c.want);
    CHECK_THAT(ErrorOf(c.bytes), Contains(c.want));
  }
}

TEST_CASE("groups and invalid wire types", "[rw1][malformed]") {
  for (uint32_t wt : {3u, 4u, 6u, 7u}) {
    INFO("wire type " << wt);
    const std::string msg =
        wt < 5 ? "unsupported group wire type " : "invalid wire type ";
    CHECK_THAT(ErrorOf(Bytes().Tag(9, wt).b),
               Contains(msg + std::to_string(wt)));
    CHECK_THAT(ErrorOf(Bytes().Len(1, Series(Bytes().Tag(9, wt).b)).b),
               Contains("timeseries[0]: " + msg));
    CHECK_THAT(
        ErrorOf(Bytes().Len(1, Bytes().Len(1, Bytes().Tag(5, wt).b).b).b),
        Contains("timeseries[0].labels[0]: " + msg));
    CHECK_THAT(
        ErrorOf(
            Bytes().Len(1, Series(Bytes().Len(4, Bytes().Tag(30, wt).b).b)).b),
        Contains("timeseries[0].histograms[0]: " + msg));
  }
}

// Prefixes of a valid payload: either a valid shorter request (cut at a
// top-level field boundary) or an error, exactly when protoc says so.
TEST_CASE("truncation at every byte offset", "[rw1][malformed]") {
  Generator gen(5);
  GenOptions opt;
  opt.series = 25;
  opt.metadata = 3;
  const std::string bytes = gen.Request(opt).SerializeAsString();
  REQUIRE(bytes.size() > 1000);
  WriteRequestView v;
  size_t ok = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    ExactBuffer buf(std::string_view(bytes).substr(0, n));
    absl::Status st = v.Parse(buf.view());
    prometheus::WriteRequest ref;
    const bool ref_ok = ref.ParseFromArray(buf.view().data(), n);
    INFO("prefix " << n << ": " << st);
    REQUIRE(st.ok() == ref_ok);
    if (st.ok()) {
      ++ok;
      CHECK(v.series().size() == static_cast<size_t>(ref.timeseries_size()));
    } else {
      CHECK_THAT(std::string(st.message()), Contains("at offset"));
    }
  }
  CHECK(ok == 1 + 25 + 3 - 1);  // empty prefix + every complete top-level field
}

// Bit flips and byte edits on valid payloads: never a crash; whatever the
// decoder accepts protoc accepts too, with the same content, and the
// re-encoded request means the same to protoc.
TEST_CASE("randomized mutations never crash", "[rw1][malformed]") {
  std::mt19937_64 rng(20240601);
  WriteRequestView v;
  WriteRequestEncoder enc;
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 40; ++round) {
    Generator gen(1000 + round);
    GenOptions opt;
    opt.series = 8;
    opt.metadata = 2;
    const std::string original = gen.Request(opt).SerializeAsString();
    for (int iter = 0; iter < 150; ++iter) {
      std::string m = original;
      Mutate(&m, rng, 4, /*resize=*/true);
      ExactBuffer buf(m);
      absl::Status st = v.Parse(buf.view());
      if (!st.ok()) {
        ++rejected;
        CHECK(st.code() == absl::StatusCode::kInvalidArgument);
        continue;
      }
      ++accepted;
      prometheus::WriteRequest ref;
      INFO("round " << round << " iter " << iter);
      REQUIRE(ref.ParseFromArray(m.data(), m.size()));
      REQUIRE(v.series().size() == static_cast<size_t>(ref.timeseries_size()));
      REQUIRE(v.metadata().size() == static_cast<size_t>(ref.metadata_size()));
      enc.Clear();
      for (int i = 0; i < ref.timeseries_size(); ++i) {
        const SeriesView& s = v.series()[i];
        auto labels = v.labels(s);
        const prometheus::TimeSeries& ts = ref.timeseries(i);
        REQUIRE(labels.size() == static_cast<size_t>(ts.labels_size()));
        for (int j = 0; j < ts.labels_size(); ++j) {
          CHECK(std::string(labels[j].name) == ts.labels(j).name());
          CHECK(std::string(labels[j].value) == ts.labels(j).value());
        }
        CHECK(s.samples == static_cast<uint32_t>(ts.samples_size()));
        CHECK(s.exemplars == static_cast<uint32_t>(ts.exemplars_size()));
        CHECK(s.histograms == static_cast<uint32_t>(ts.histograms_size()));
        enc.AddSeries(labels, s);
      }
      for (std::string_view md : v.metadata()) enc.AddMetadata(md);
      prometheus::WriteRequest got;
      REQUIRE(got.ParseFromString(enc.bytes()));
      // Labels are re-emitted from the views: unknown fields inside Label
      // messages do not survive AddSeries, everything else does.
      for (auto& ts : *ref.mutable_timeseries()) {
        for (auto& l : *ts.mutable_labels()) testing::ClearUnknownFields(&l);
      }
      testing::ClearUnknownFields(&ref);
      CHECK(got.SerializeAsString() == ref.SerializeAsString());
    }
  }
  // Both outcomes must actually be exercised for the test to mean anything.
  CHECK(accepted > 100);
  CHECK(rejected > 100);
}

TEST_CASE("random garbage never crashes", "[rw1][malformed]") {
  std::mt19937_64 rng(99);
  WriteRequestView v;
  for (int i = 0; i < 20000; ++i) {
    std::string g(rng() % 64, '\0');
    for (char& c : g) {
      // Bias towards bytes that look like tags of known fields.
      c = rng() % 3 == 0 ? "\x0a\x12\x1a\x22\x09\x10\x08\x80"[rng() % 8]
                         : static_cast<char>(rng());
    }
    ExactBuffer buf(g);
    absl::Status st = v.Parse(buf.view());
    if (st.ok()) {
      prometheus::WriteRequest ref;
      INFO("garbage " << i);
      CHECK(ref.ParseFromArray(g.data(), g.size()));
      CHECK(v.series().size() == static_cast<size_t>(ref.timeseries_size()));
    } else {
      CHECK(st.code() == absl::StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace promrelay::wire
