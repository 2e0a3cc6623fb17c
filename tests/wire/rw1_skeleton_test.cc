// ParseSkeleton + ParseLabels must be Parse split in two: the same
// acceptance, the same series and labels, and for malformed labels the same
// error message (run under ASan+UBSan like the other codec tests).
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

// Checks the split parse against Parse on `bytes`; returns whether Parse
// accepted them.
bool CheckSplitAgrees(std::string_view bytes) {
  ExactBuffer buf(bytes);
  WriteRequestView full, split;
  const absl::Status want = full.Parse(buf.view());
  const absl::Status skeleton = split.ParseSkeleton(buf.view());
  if (!skeleton.ok()) {
    // The skeleton's checks are a subset of Parse's.
    CHECK_FALSE(want.ok());
    CHECK(skeleton.code() == absl::StatusCode::kInvalidArgument);
    CHECK(split.series().empty());
    return false;
  }
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
    CHECK(a.body.data() == b.body.data());
    CHECK(a.body.size() == b.body.size());
    CHECK(a.num_labels == b.num_labels);
    CHECK(a.samples == b.samples);
    CHECK(a.exemplars == b.exemplars);
    CHECK(a.histograms == b.histograms);
    CHECK(a.rest_offset == b.rest_offset);
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

}  // namespace
}  // namespace promrelay::wire
