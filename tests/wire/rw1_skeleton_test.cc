// ParseSkeleton + ParseLabels must be Parse split in two: the same
// acceptance, the same series and labels, and for malformed labels the same
// error message (run under ASan+UBSan like the other codec tests). And
// ParseFrames + VerifySeries must be ParseSkeleton split in two, with every
// guess that names the right label bytes exact.
#include <catch2/catch.hpp>

#include <optional>
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

// Two views of the same series describe it alike (labels aside).
void CheckSameSeries(const SeriesView& a, const SeriesView& b) {
  CHECK(a.body.data() == b.body.data());
  CHECK(a.body.size() == b.body.size());
  CHECK(a.header_size == b.header_size);
  CHECK(a.num_labels == b.num_labels);
  CHECK(a.samples == b.samples);
  CHECK(a.exemplars == b.exemplars);
  CHECK(a.histograms == b.histograms);
  CHECK(a.rest_offset == b.rest_offset);
}

// True when the parse that checks less (`got`, into `v`) refused the
// bytes; the one that checks more (`want`) must then refuse them too, and
// the refused view is empty.
bool RefusedBoth(const absl::Status& got, const absl::Status& want,
                 const WriteRequestView& v) {
  if (got.ok()) return false;
  CHECK_FALSE(want.ok());
  CHECK(got.code() == absl::StatusCode::kInvalidArgument);
  CHECK(v.series().empty());
  return true;
}

// Checks ParseFrames against ParseSkeleton on `bytes`.
void CheckFramesAgree(std::string_view bytes) {
  ExactBuffer buf(bytes);
  WriteRequestView skeleton, frames;
  const absl::Status want = skeleton.ParseSkeleton(buf.view());
  const absl::Status got = frames.ParseFrames(buf.view());
  // The frames' checks are a subset of the skeleton's.
  if (RefusedBoth(got, want, frames)) return;
  if (want.ok()) REQUIRE(frames.series().size() == skeleton.series().size());
  std::optional<absl::Status> first_error;
  for (size_t i = 0; i < frames.series().size(); ++i) {
    const SeriesView guess = frames.series()[i];
    absl::Status st = frames.VerifySeries(i);
    if (!st.ok()) {
      if (!first_error) first_error = st;
      continue;
    }
    const SeriesView& walked = frames.series()[i];
    CHECK_FALSE(walked.unverified);
    if (guess.unverified && want.ok() &&
        guess.rest_offset == skeleton.series()[i].rest_offset) {
      // A guess that names the label bytes has the counts right too: what
      // the pipeline relies on when its cache knows those bytes.
      CHECK(guess.samples == walked.samples);
      CHECK(guess.histograms == walked.histograms);
    }
  }
  if (!want.ok()) {
    // Framing errors stop ParseFrames too; the rest is in a series' walk.
    REQUIRE(first_error.has_value());
    CHECK(std::string(first_error->message()) == std::string(want.message()));
    return;
  }
  CHECK_FALSE(first_error.has_value());
  CHECK(frames.total_samples() == skeleton.total_samples());
  for (size_t i = 0; i < skeleton.series().size(); ++i) {
    CheckSameSeries(skeleton.series()[i], frames.series()[i]);
  }
}

// Checks the split parse against Parse on `bytes` (and the frames parse
// against the skeleton); returns whether Parse accepted them.
bool CheckSplitAgrees(std::string_view bytes) {
  CheckFramesAgree(bytes);
  ExactBuffer buf(bytes);
  WriteRequestView full, split;
  const absl::Status want = full.Parse(buf.view());
  const absl::Status skeleton = split.ParseSkeleton(buf.view());
  // The skeleton's checks are a subset of Parse's.
  if (RefusedBoth(skeleton, want, split)) return false;
  // Labels of series whose turn has not come yet are empty, not garbage.
  for (const SeriesView& s : split.series()) {
    CHECK(s.first_label == SeriesView::kLabelsNotParsed);
    CHECK(split.labels(s).empty());
  }
  std::optional<absl::Status> first_error;
  for (size_t i = 0; i < split.series().size(); ++i) {
    absl::Status st = split.ParseLabels(i);
    if (!st.ok()) {
      CHECK(split.labels(split.series()[i]).empty());
      if (!first_error) first_error = st;
    }
    CHECK(split.ParseLabels(i).code() == st.code());  // repeatable
  }
  if (!want.ok()) {
    // Parse stops at the first error in byte order; with the structure
    // intact that is the first series with malformed labels.
    REQUIRE(first_error.has_value());
    CHECK(std::string(first_error->message()) == std::string(want.message()));
    return false;
  }
  CHECK_FALSE(first_error.has_value());
  REQUIRE(split.series().size() == full.series().size());
  CHECK(split.total_samples() == full.total_samples());
  CHECK(split.metadata().size() == full.metadata().size());
  for (size_t i = 0; i < full.series().size(); ++i) {
    const SeriesView& a = full.series()[i];
    const SeriesView& b = split.series()[i];
    CheckSameSeries(a, b);
    auto la = full.labels(a);
    auto lb = split.labels(b);
    REQUIRE(la.size() == lb.size());
    for (size_t j = 0; j < la.size(); ++j) {
      CHECK(la[j].name.data() == lb[j].name.data());
      CHECK(la[j].name.size() == lb[j].name.size());
      CHECK(la[j].value.data() == lb[j].value.data());
      CHECK(la[j].value.size() == lb[j].value.size());
    }
  }
  return true;
}

TEST_CASE("split parse: generated requests", "[rw1][skeleton]") {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    INFO("seed " << seed);
    Generator gen(seed);
    GenOptions opt;
    opt.series = 100;
    opt.metadata = 2;
    opt.long_value_rate = seed % 3 == 0 ? 0.01 : 0;
    CHECK(CheckSplitAgrees(gen.Request(opt).SerializeAsString()));
  }
}

TEST_CASE("split parse: a malformed label is found by ParseLabels",
          "[rw1][skeleton]") {
  // timeseries[1].labels[1]'s name claims 50 bytes but has 1: the series
  // body itself is well delimited, so only the label parse can see it.
  const std::string good =
      Bytes().Len(1, Label("__name__", "up")).Len(2, Sample()).b;
  const std::string bad_label = Bytes().Tag(1, 2).Varint(50).Raw("x").b;
  const std::string bad =
      Bytes().Len(1, Label("a", "b")).Len(1, bad_label).Len(2, Sample()).b;
  const std::string req = Bytes().Len(1, good).Len(1, bad).Len(1, good).b;
  ExactBuffer buf(req);
  WriteRequestView v;
  REQUIRE(v.ParseSkeleton(buf.view()).ok());
  REQUIRE(v.series().size() == 3);
  CHECK(v.series()[1].num_labels == 2);
  CHECK(v.series()[1].samples == 1);
  REQUIRE(v.ParseLabels(0).ok());
  CHECK(v.labels(v.series()[0]).size() == 1);
  CHECK(v.labels(v.series()[0])[0].name == "__name__");
  const absl::Status st = v.ParseLabels(1);
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(st.message()),
             Catch::Matchers::StartsWith("timeseries[1].labels[1]: truncated "
                                         "length-delimited field at offset"));
  // The other series are unaffected.
  REQUIRE(v.ParseLabels(2).ok());
  CHECK(v.labels(v.series()[2])[0].value == "up");
  CHECK(v.labels(v.series()[0])[0].value == "up");
  CHECK_FALSE(CheckSplitAgrees(req));
}

TEST_CASE("split parse: labels interleaved and unknown fields",
          "[rw1][skeleton]") {
  const std::string series = Bytes()
                                 .Len(2, Sample())
                                 .Len(1, Label("b", "2"))
                                 .VarintField(9, 1)
                                 .Len(1, Label("a", "1"))
                                 .b;
  CHECK(CheckSplitAgrees(Bytes().Len(1, series).Len(1, series).b));
  // A label with an unknown field and long lengths takes the general path.
  const std::string odd_label = Bytes()
                                    .VarintField(7, 3)
                                    .Len(1, std::string(200, 'n'))
                                    .Len(2, std::string(300, 'v'))
                                    .b;
  CHECK(CheckSplitAgrees(
      Bytes().Len(1, Bytes().Len(1, odd_label).Len(2, Sample()).b).b));
}

// Mutated and truncated generated payloads: whatever Parse says, the split
// parse says the same (acceptance, content, message).
TEST_CASE("split parse: mutations and truncations agree with Parse",
          "[rw1][skeleton]") {
  std::mt19937_64 rng(424242);
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 30; ++round) {
    Generator gen(500 + round);
    GenOptions opt;
    opt.series = 6;
    opt.metadata = 1;
    const std::string original = gen.Request(opt).SerializeAsString();
    for (int iter = 0; iter < 100; ++iter) {
      std::string m = original;
      Mutate(&m, rng, 3, /*resize=*/false);
      INFO("round " << round << " iter " << iter);
      (CheckSplitAgrees(m) ? accepted : rejected)++;
    }
    for (size_t n = 0; n < original.size(); n += 7) {
      INFO("round " << round << " prefix " << n);
      CheckSplitAgrees(std::string_view(original).substr(0, n));
    }
  }
  CHECK(accepted > 50);
  CHECK(rejected > 50);
}

TEST_CASE("frames parse: guesses from the samples at a series' end",
          "[rw1][skeleton]") {
  const std::string labels =
      Bytes().Len(1, Label("__name__", "up")).Len(1, Label("job", "a")).b;
  const std::string with_value = Bytes().Len(2, Sample()).b;
  const std::string ts_only = Bytes().Len(2, Bytes().VarintField(2, 99).b).b;
  const std::string value_only = Bytes().Len(2, Bytes().Fixed64(1).b).b;
  const std::string exemplar = Bytes().Len(3, Bytes().Fixed64(2).b).b;
  // A label whose value ends in the bytes of a sample field.
  const std::string fake_tail =
      Bytes().Len(1, Label("x", "\x12\x02\x10\x07")).b;
  struct Case {
    std::string body;
    bool guessed;
    bool right;  // the guess names the label fields
    uint32_t samples;
  };
  const std::vector<Case> cases = {
      {labels + with_value, true, true, 1},
      {labels + with_value + with_value + ts_only, true, true, 3},
      {labels + ts_only, true, true, 1},
      {labels + value_only, false, false, 1},  // ends in no timestamp
      {labels + with_value + exemplar, false, false, 1},
      {labels, false, false, 0},
      {labels + fake_tail, true, false, 0},
      // The backward walk takes the fake tail for one more sample.
      {labels + fake_tail + with_value, true, false, 1},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const Case& c = cases[i];
    const std::string req = Bytes().Len(1, c.body).b;
    ExactBuffer buf(req);
    WriteRequestView v;
    REQUIRE(v.ParseFrames(buf.view()).ok());
    REQUIRE(v.series().size() == 1);
    const SeriesView guess = v.series()[0];
    CHECK(guess.unverified == c.guessed);
    REQUIRE(v.VerifySeries(0).ok());
    const SeriesView& walked = v.series()[0];
    CHECK(walked.samples == c.samples);
    CHECK(v.total_samples() == c.samples);
    if (c.guessed) {
      CHECK((guess.rest_offset == walked.rest_offset) == c.right);
      if (!c.right) CHECK(guess.samples != walked.samples);
    }
    CHECK(CheckSplitAgrees(req));
  }
}

}  // namespace
}  // namespace promrelay::wire
