// Differential tests of the hand-written RW1 codec against protoc's classes.
#include "proxy/wire/rw1.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "prometheus/remote.pb.h"
#include "tests/wire/gen.h"

namespace promrelay::wire {
namespace {

using testing::Bytes;

using testing::ExactBuffer;
using testing::Generator;
using testing::GenOptions;

std::string Str(std::string_view s) { return std::string(s); }

// Protobuf serialization is canonical for messages built by protoc (known
// fields in number order, unknown fields after), and comparing bytes keeps
// NaN payloads exact where MessageDifferencer would call NaN != NaN.
template <typename M>
std::string Canon(const M& m) {
  return m.SerializeAsString();
}

// The view must agree with protoc on every series and metadata entry.
void CheckViewMatches(const WriteRequestView& v,
                      const prometheus::WriteRequest& req) {
  REQUIRE(v.series().size() == static_cast<size_t>(req.timeseries_size()));
  uint64_t total = 0;
  for (int i = 0; i < req.timeseries_size(); ++i) {
    INFO("series " << i);
    const prometheus::TimeSeries& ts = req.timeseries(i);
    const SeriesView& s = v.series()[i];
    auto labels = v.labels(s);
    REQUIRE(labels.size() == static_cast<size_t>(ts.labels_size()));
    for (int j = 0; j < ts.labels_size(); ++j) {
      CHECK(Str(labels[j].name) == ts.labels(j).name());
      CHECK(Str(labels[j].value) == ts.labels(j).value());
    }
    CHECK(s.samples == static_cast<uint32_t>(ts.samples_size()));
    CHECK(s.exemplars == static_cast<uint32_t>(ts.exemplars_size()));
    CHECK(s.histograms == static_cast<uint32_t>(ts.histograms_size()));
    total += ts.samples_size() + ts.histograms_size();
    prometheus::TimeSeries reparsed;
    REQUIRE(reparsed.ParseFromArray(s.body.data(), s.body.size()));
    CHECK(Canon(reparsed) == Canon(ts));
  }
  CHECK(v.total_samples() == total);
  REQUIRE(v.metadata().size() == static_cast<size_t>(req.metadata_size()));
  for (int i = 0; i < req.metadata_size(); ++i) {
    prometheus::MetricMetadata md;
    REQUIRE(md.ParseFromArray(v.metadata()[i].data(), v.metadata()[i].size()));
    CHECK(Canon(md) == Canon(req.metadata(i)));
  }
}

std::string Reencode(const WriteRequestView& v, bool raw) {
  WriteRequestEncoder enc;
  for (const SeriesView& s : v.series()) {
    if (raw) {
      enc.AddRawSeries(s);
    } else {
      enc.AddSeries(v.labels(s), s);
    }
  }
  for (std::string_view md : v.metadata()) enc.AddMetadata(md);
  return enc.bytes();
}

TEST_CASE("decode of protoc output matches protoc's own parse", "[rw1]") {
  for (uint64_t seed = 1; seed <= 25; ++seed) {
    INFO("seed " << seed);
    Generator gen(seed);
    GenOptions opt;
    opt.series = 150;
    opt.long_value_rate = seed % 5 == 0 ? 0.003 : 0;
    const prometheus::WriteRequest req = gen.Request(opt);
    const std::string bytes = req.SerializeAsString();
    ExactBuffer buf(bytes);
    WriteRequestView v;
    REQUIRE(v.Parse(buf.view()).ok());
    CheckViewMatches(v, req);
    // Generated series have labels first, so the fast copy path applies.
    for (const SeriesView& s : v.series()) {
      CHECK(s.rest_offset != SeriesView::kRestUnknown);
    }
  }
}

TEST_CASE("100 KiB label values and non-UTF-8 bytes survive", "[rw1]") {
  prometheus::WriteRequest req;
  auto* ts = req.add_timeseries();
  auto* l = ts->add_labels();
  l->set_name("__name__");
  l->set_value("m");
  l = ts->add_labels();
  l->set_name("big");
  l->set_value(std::string(100 * 1024, 'v'));
  l = ts->add_labels();
  l->set_name("\xff\xfe");
  l->set_value("\xc3\x28 \x80\xbf");
  l = ts->add_labels();
  l->set_name("");  // accepted here; the server layer validates names
  l->set_value("empty-name");
  l = ts->add_labels();
  l->set_name("empty-value");
  ts->add_samples()->set_value(1);
  const std::string bytes = req.SerializeAsString();
  ExactBuffer buf(bytes);
  WriteRequestView v;
  REQUIRE(v.Parse(buf.view()).ok());
  CheckViewMatches(v, req);
  auto labels = v.labels(v.series()[0]);
  CHECK(labels[1].value.size() == 100 * 1024);
  CHECK(labels[2].name == "\xff\xfe");
  CHECK(labels[3].name.empty());
  CHECK(labels[4].value.empty());
  // Views point into the caller's buffer: no copies.
  CHECK(labels[1].value.data() >= buf.view().data());
  CHECK(labels[1].value.data() < buf.view().data() + buf.view().size());
  CHECK(Reencode(v, false) == bytes);
}

TEST_CASE("encode(decode(x)) is byte-identical to x", "[rw1]") {
  for (uint64_t seed = 100; seed < 120; ++seed) {
    INFO("seed " << seed);
    Generator gen(seed);
    GenOptions opt;
    opt.series = 120;
    opt.metadata = static_cast<int>(seed % 7);
    opt.long_value_rate = seed % 4 == 0 ? 0.005 : 0;
    const std::string bytes = gen.Request(opt).SerializeAsString();
    WriteRequestView v;
    REQUIRE(v.Parse(bytes).ok());
    CHECK(Reencode(v, /*raw=*/false) == bytes);
    CHECK(Reencode(v, /*raw=*/true) == bytes);
  }
}

TEST_CASE("AddSeries with changed labels keeps everything else", "[rw1]") {
  Generator gen(7);
  GenOptions opt;
  opt.series = 300;
  const prometheus::WriteRequest req = gen.Request(opt);
  const std::string bytes = req.SerializeAsString();
  WriteRequestView v;
  REQUIRE(v.Parse(bytes).ok());

  prometheus::WriteRequest want;
  WriteRequestEncoder enc;
  // The same series through AppendLabelFields + AddSeriesWithLabelFields
  // (the pipeline's cached path) must give the same bytes.
  WriteRequestEncoder enc_fields;
  std::string fields;
  const std::string injected_value = "cluster-\xff-a";
  std::vector<LabelView> labels;
  for (size_t i = 0; i < v.series().size(); ++i) {
    const SeriesView& s = v.series()[i];
    labels.assign(v.labels(s).begin(), v.labels(s).end());
    // Drop the first label, rewrite the last one's value, append one: the
    // shapes relabeling produces.
    if (!labels.empty() && i % 3 == 0) labels.erase(labels.begin());
    if (!labels.empty()) labels.back().value = "rewritten";
    labels.push_back({"cluster_id", injected_value});
    if (i % 5 == 0) labels.clear();  // even no labels at all

    prometheus::TimeSeries* w = want.add_timeseries();
    *w = req.timeseries(static_cast<int>(i));
    w->clear_labels();
    for (const LabelView& l : labels) {
      auto* pl = w->add_labels();
      pl->set_name(Str(l.name));
      pl->set_value(Str(l.value));
    }
    enc.AddSeries(labels, s);
    fields.clear();
    WriteRequestEncoder::AppendLabelFields(labels, &fields);
    enc_fields.AddSeriesWithLabelFields(fields, s);
  }
  CHECK(enc_fields.bytes() == enc.bytes());
  prometheus::WriteRequest got;
  REQUIRE(got.ParseFromString(enc.bytes()));
  CHECK(Canon(got) == Canon(want));
  // Canonical label encoding: protoc's serialization of the expected message
  // is byte-identical to ours.
  CHECK(enc.bytes() == want.SerializeAsString());
}

std::string LabelMsg(std::string_view n, std::string_view v) {
  return Bytes().Len(1, n).Len(2, v).b;
}
std::string SampleMsg(double value, int64_t ts) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return Bytes().Fixed64(1, bits).VarintField(2, static_cast<uint64_t>(ts)).b;
}

TEST_CASE("unknown fields of every wire type are skipped and kept", "[rw1]") {
  const std::string label_with_unknown =
      Bytes().VarintField(9, 5).Len(1, "job").Fixed32(3, 7).Len(2, "api").b;
  const std::string series =
      Bytes()
          .Len(1, LabelMsg("__name__", "up"))
          .Len(1, label_with_unknown)
          .VarintField(5, 300)
          .Len(2, SampleMsg(1.5, 1700000000000))
          .Fixed64(6, 42)
          .Len(7, "opaque")
          .Fixed32(536870911, 1)  // the largest field number
          .Len(3, Bytes()
                      .Len(1, LabelMsg("trace_id", "t"))
                      .Fixed64(2, 0)
                      .Len(77, "x")
                      .b)
          .b;
  const std::string bytes =
      Bytes()
          .VarintField(2, 1)  // Cortex "source" field
          .Len(1, series)
          .Fixed64(15, 9)
          .Len(100, "future")
          .Fixed32(2000, 3)
          .Len(3, Bytes().VarintField(1, 1).Len(2, "up").VarintField(3, 4).b)
          .b;
  prometheus::WriteRequest req;
  REQUIRE(req.ParseFromString(bytes));
  ExactBuffer buf(bytes);
  WriteRequestView v;
  REQUIRE(v.Parse(buf.view()).ok());
  CheckViewMatches(v, req);
  const SeriesView& s = v.series()[0];
  CHECK(s.samples == 1);
  CHECK(s.exemplars == 1);
  CHECK(s.rest_offset ==
        LabelMsg("__name__", "up").size() + 2 + label_with_unknown.size() + 2);

  // AddSeries keeps the series' unknown fields; only the unknown fields
  // inside Label messages go (labels are re-emitted from the views).
  WriteRequestEncoder enc;
  enc.AddSeries(v.labels(s), s);
  prometheus::WriteRequest got;
  REQUIRE(got.ParseFromString(enc.bytes()));
  prometheus::TimeSeries want = req.timeseries(0);
  testing::ClearUnknownFields(want.mutable_labels(1));
  CHECK(Canon(got.timeseries(0)) == Canon(want));
  // AddRawSeries keeps everything.
  enc.Clear();
  enc.AddRawSeries(s);
  REQUIRE(got.ParseFromString(enc.bytes()));
  CHECK(Canon(got.timeseries(0)) == Canon(req.timeseries(0)));
}

TEST_CASE("a raw series keeps its field header as sent", "[rw1]") {
  const std::string body =
      Bytes().Len(1, LabelMsg("__name__", "up")).Len(2, SampleMsg(1, 10)).b;
  // The series' length as a 3-byte varint: valid protobuf, not minimal.
  const std::string padded =
      Bytes()
          .Tag(1, 2)
          .Raw(std::string{static_cast<char>(0x80 | body.size()),
                           static_cast<char>(0x80), '\0'})
          .Raw(body)
          .b;
  const std::string minimal = Bytes().Len(1, body).b;
  for (const std::string& request : {padded, minimal}) {
    WriteRequestView v;
    REQUIRE(v.ParseSkeleton(request).ok());
    REQUIRE(v.series().size() == 1);
    CHECK(v.series()[0].header_size == request.size() - body.size());
    WriteRequestEncoder enc;
    enc.AddRawSeries(v.series()[0]);
    CHECK(enc.bytes() == request);  // copied verbatim, header included
    prometheus::WriteRequest got;
    REQUIRE(got.ParseFromString(enc.bytes()));
    CHECK(got.timeseries(0).labels(0).value() == "up");
  }
  // A view not made by a parse: the body framed anew.
  SeriesView hand_made;
  hand_made.body = body;
  WriteRequestEncoder enc;
  enc.AddRawSeries(hand_made);
  CHECK(enc.bytes() == minimal);
}

TEST_CASE("labels interleaved with other fields", "[rw1]") {
  const std::string series = Bytes()
                                 .Len(2, SampleMsg(1, 10))
                                 .Len(1, LabelMsg("b", "2"))
                                 .VarintField(9, 1)
                                 .Len(2, SampleMsg(2, 20))
                                 .Len(1, LabelMsg("a", "1"))
                                 .b;
  const std::string bytes = Bytes().Len(1, series).b;
  prometheus::WriteRequest req;
  REQUIRE(req.ParseFromString(bytes));
  WriteRequestView v;
  REQUIRE(v.Parse(bytes).ok());
  CheckViewMatches(v, req);
  const SeriesView& s = v.series()[0];
  CHECK(s.rest_offset == SeriesView::kRestUnknown);
  CHECK(v.labels(s)[0].name == "b");
  CHECK(v.labels(s)[1].name == "a");

  std::vector<LabelView> sorted = {{"a", "1"}, {"b", "2"}};
  WriteRequestEncoder enc;
  enc.AddSeries(sorted, s);
  std::string fields;
  WriteRequestEncoder::AppendLabelFields(sorted, &fields);
  WriteRequestEncoder enc_fields;
  enc_fields.AddSeriesWithLabelFields(fields, s);
  CHECK(enc_fields.bytes() == enc.bytes());
  // Labels move to the front; samples and the unknown field keep their order.
  const std::string want_series = Bytes()
                                      .Len(1, LabelMsg("a", "1"))
                                      .Len(1, LabelMsg("b", "2"))
                                      .Len(2, SampleMsg(1, 10))
                                      .VarintField(9, 1)
                                      .Len(2, SampleMsg(2, 20))
                                      .b;
  CHECK(enc.bytes() == Bytes().Len(1, want_series).b);
}

TEST_CASE("labels-only and empty series", "[rw1]") {
  const std::string bytes = Bytes()
                                .Len(1, "")
                                .Len(1, Bytes().Len(1, LabelMsg("a", "1")).b)
                                .Len(1, Bytes().Len(1, "").b)  // empty Label
                                .b;
  WriteRequestView v;
  REQUIRE(v.Parse(bytes).ok());
  REQUIRE(v.series().size() == 3);
  CHECK(v.series()[0].num_labels == 0);
  CHECK(v.series()[1].rest_offset == v.series()[1].body.size());
  CHECK(v.series()[2].num_labels == 1);
  CHECK(v.total_samples() == 0);
  CHECK(Reencode(v, false) == bytes);
}

TEST_CASE("empty request parses to nothing", "[rw1]") {
  WriteRequestView v;
  REQUIRE(v.Parse("").ok());
  CHECK(v.series().empty());
  CHECK(v.metadata().empty());
  CHECK(v.total_samples() == 0);
}

TEST_CASE("a view is reusable and empty after an error", "[rw1]") {
  Generator gen(3);
  GenOptions big;
  big.series = 500;
  GenOptions small;
  small.series = 7;
  const prometheus::WriteRequest a = gen.Request(big);
  const prometheus::WriteRequest b = gen.Request(small);
  const std::string ab = a.SerializeAsString(), bb = b.SerializeAsString();
  WriteRequestView v;
  REQUIRE(v.Parse(ab).ok());
  CheckViewMatches(v, a);
  REQUIRE(v.Parse(bb).ok());
  CheckViewMatches(v, b);
  REQUIRE_FALSE(v.Parse(ab.substr(0, ab.size() - 1)).ok());
  CHECK(v.series().empty());
  CHECK(v.all_labels().empty());
  CHECK(v.metadata().empty());
  CHECK(v.total_samples() == 0);
  REQUIRE(v.Parse(ab).ok());
  CheckViewMatches(v, a);
}

TEST_CASE("a large request", "[rw1]") {
  Generator gen(11);
  GenOptions opt;
  opt.series = 20000;
  opt.metadata = 200;
  const prometheus::WriteRequest req = gen.Request(opt);
  const std::string bytes = req.SerializeAsString();
  WriteRequestView v;
  REQUIRE(v.Parse(bytes).ok());
  CheckViewMatches(v, req);
  CHECK(Reencode(v, false) == bytes);
}

// Thread CPU time, so that other processes on a shared machine do not
// inflate the figures the way wall-clock time would.
double ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

// Not a test: `wire_test "[.bench]"` prints decode/encode CPU cost per
// series for a typical request, with protoc's parse as a yardstick.
TEST_CASE("decode and encode cost per series", "[.bench]") {
  Generator gen(42);
  GenOptions opt;
  opt.series = 2000;
  opt.metadata = 0;
  prometheus::WriteRequest req = gen.Request(opt);
  // Typical scrape traffic: float samples only, one per series.
  for (auto& ts : *req.mutable_timeseries()) {
    ts.clear_histograms();
    ts.clear_exemplars();
    ts.clear_samples();
    auto* s = ts.add_samples();
    s->set_value(1.5);
    s->set_timestamp(1700000000123);
  }
  const std::string bytes = req.SerializeAsString();
  WriteRequestView v;
  WriteRequestEncoder enc;
  prometheus::WriteRequest ref;
  constexpr int kRounds = 300;
  uint64_t sink = 0;
  const double t0 = ThreadCpuNanos();
  for (int i = 0; i < kRounds; ++i) {
    REQUIRE(v.Parse(bytes).ok());
    sink += v.total_samples();
  }
  const double t1 = ThreadCpuNanos();
  for (int i = 0; i < kRounds; ++i) {
    enc.Clear();
    for (const SeriesView& s : v.series()) enc.AddSeries(v.labels(s), s);
    sink += enc.bytes().size();
  }
  const double t2 = ThreadCpuNanos();
  for (int i = 0; i < kRounds; ++i) {
    REQUIRE(ref.ParseFromString(bytes));
    sink += ref.timeseries_size();
  }
  const double t3 = ThreadCpuNanos();
  const double n = static_cast<double>(kRounds) * opt.series;
  std::printf(
      "%zu bytes/request, %.0f bytes/series, CPU per series: decode %.1f ns, "
      "AddSeries %.1f ns, protoc ParseFromString %.1f ns (sink %llu)\n",
      bytes.size(), bytes.size() / static_cast<double>(opt.series),
      (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n,
      static_cast<unsigned long long>(sink));
  CHECK(sink > 0);
}

}  // namespace
}  // namespace promrelay::wire
