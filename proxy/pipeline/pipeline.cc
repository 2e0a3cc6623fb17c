#include "proxy/pipeline/pipeline.h"

#include <algorithm>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "proxy/pipeline/outcome_cache.h"
#include "proxy/wire/rw1.h"
#include "proxy/wire/snappy.h"

namespace promrelay::pipeline {
namespace {

// Records also stop growing at this size, so one record (and the request a
// sender builds from it) stays far below receivers' body limits even when
// series are unusually large.
constexpr size_t kMaxRecordBytes = 4u << 20;
// Scratch buffers that grew past this for one huge request are released
// afterwards instead of pinning the memory to the thread.
constexpr size_t kMaxRetainedScratchBytes = 16u << 20;

struct DestState {
  const config::Destination* cfg = nullptr;
  std::vector<std::shared_ptr<queue::Queue>> shards;
  uint64_t shard_capacity = 0;
  bool reject_on_full = true;
  uint32_t max_samples_per_send = 2000;
  std::vector<std::string_view> forbidden;  // views into *cfg

  metrics::Counter* relabel_dropped = nullptr;
  metrics::Counter* forbidden_violations = nullptr;
  metrics::Counter* dropped_forbidden = nullptr;
  metrics::Counter* dropped_oldest = nullptr;
  metrics::Counter* queued_samples = nullptr;
  metrics::Counter* queued_series = nullptr;
};

// One shard's share of the current request, compressed as it is built:
// whenever a whole snappy block (64 KiB) of encoded series is ready it is
// compressed while still in cache, so the encoder's buffer stays small and
// hot, and the record queued is a snappy block (the sender joins blocks
// without recompressing; the queues hold and write ~8x fewer bytes).
struct ShardBuf {
  wire::WriteRequestEncoder enc;      // the uncompressed tail of the record
  wire::ByteBuffer elements;          // snappy elements of the record so far
  uint64_t compressed_raw_bytes = 0;  // uncompressed bytes in `elements`
  uint32_t samples = 0;               // in the open record
  uint32_t series = 0;                // in the open record
  std::vector<queue::Record> records;
  uint64_t record_bytes = 0;
  uint64_t record_samples = 0;

  void Reset() {
    enc.Clear();
    elements.clear();
    compressed_raw_bytes = 0;
    samples = series = 0;
    records.clear();
    record_bytes = record_samples = 0;
  }
  bool HasOpen() const { return series > 0 || !enc.bytes().empty(); }
  // Uncompressed size of the open record.
  uint64_t OpenBytes() const {
    return compressed_raw_bytes + enc.bytes().size();
  }
  // Compresses the encoder's whole 64 KiB blocks. Chunks of exactly
  // snappy's block size give the same bytes as compressing at once.
  void CompressFullBlocks() {
    std::string& bytes = enc.mutable_bytes();
    const size_t done = bytes.size() - bytes.size() % wire::kSnappyBlockSize;
    if (done == 0) return;
    wire::SnappyAppendElements(std::string_view(bytes).substr(0, done),
                               &elements);
    bytes.erase(0, done);
    compressed_raw_bytes += done;
  }
  void Flush() {
    if (!HasOpen()) return;
    wire::SnappyAppendElements(enc.bytes(), &elements);
    queue::Record r;
    r.compressed = true;
    wire::SnappyFinishBlock(OpenBytes(), elements.view(), &r.payload);
    r.samples = samples;
    r.series = series;
    // As a queue counts it at most (a disk record's header included), so
    // the room check below does not pass a request the queue then refuses.
    record_bytes += r.payload.size() + queue::kMaxRecordOverheadBytes;
    record_samples += samples;
    records.push_back(std::move(r));
    enc.Clear();
    elements.clear();
    compressed_raw_bytes = 0;
    samples = series = 0;
  }
};

struct DestScratch {
  std::vector<ShardBuf> shards;
  uint64_t relabel_dropped = 0;
  uint64_t forbidden_series = 0;
  uint64_t forbidden_samples = 0;
  uint64_t queued_series = 0;
};

// An AppendAsync whose durability is still to be waited for.
struct PendingAppend {
  queue::Queue* queue;
  uint64_t token;
  size_t dest;
  size_t shard;
};

// The label fields of series a rule rewrote, by outcome-cache key, so a
// known series with a kRewritten outcome is encoded without relabeling. Per
// thread (no locks on the hot path); a thread that lacks an entry another
// thread's outcome points at just relabels that series again. Belongs to
// one config (State): a reload starts it afresh.
class RewriteCache {
 public:
  struct Entry {
    // Destination d's label fields: fields[offsets[d], offsets[d + 1]).
    uint32_t offsets[OutcomeCache::kMaxDests + 1] = {};
    std::string fields;
    std::string_view For(size_t d) const {
      return std::string_view(fields).substr(offsets[d],
                                             offsets[d + 1] - offsets[d]);
    }
  };

  // Empties the cache unless it already belongs to `generation`.
  void Adopt(uint64_t generation) {
    if (generation_ == generation) return;
    Clear();
    generation_ = generation;
  }
  void Prefetch(const OutcomeCache::Key& key) const { map_.prefetch(key); }
  const Entry* Find(const OutcomeCache::Key& key) const {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  void Insert(const OutcomeCache::Key& key, Entry entry) {
    // Bounded: when full, start over (the entries in use come back within
    // a scrape interval), rather than pin memory to the thread.
    // An entry already there is the same (same key, same config).
    if (map_.contains(key)) return;
    if (bytes_ + entry.fields.size() + kEntryOverhead > kMaxBytes) Clear();
    bytes_ += entry.fields.size() + kEntryOverhead;
    map_.emplace(key, std::move(entry));
  }

 private:
  static constexpr size_t kMaxBytes = size_t{8} << 20;
  static constexpr size_t kEntryOverhead = sizeof(Entry) + 32;
  struct KeyHash {
    // The key is already a keyed random hash.
    size_t operator()(const OutcomeCache::Key& k) const { return k.a; }
  };
  void Clear() {
    map_ = {};
    bytes_ = 0;
  }

  uint64_t generation_ = 0;
  size_t bytes_ = 0;
  absl::flat_hash_map<OutcomeCache::Key, Entry, KeyHash> map_;
};

// Distinguishes configs (States) for the per-thread rewrite caches.
std::atomic<uint64_t> next_state_generation{1};

// Per-thread buffers reused across requests: no allocation per series in
// steady state.
struct Scratch {
  wire::ByteBuffer decompressed;
  wire::WriteRequestView view;
  std::vector<relabel::Label> input;
  std::vector<wire::LabelView> out_labels;
  relabel::LabelBuilder global;
  relabel::LabelBuilder dest;
  std::vector<DestScratch> dests;
  std::vector<PendingAppend> pending;
  std::vector<OutcomeCache::Key> keys;
  // Per series: 1 when the outcome cache knew it, with its outcome (and
  // its rewritten labels when the outcome has any).
  std::vector<uint8_t> known;
  std::vector<uint64_t> outcomes;
  std::vector<const RewriteCache::Entry*> rewrites;
  std::vector<size_t> rewritten_known;  // series to look up in rewrite_cache
  RewriteCache rewrite_cache;
  RewriteCache::Entry new_rewrite;
  // Entries learned during a request, added to rewrite_cache after it (an
  // insert may move the entries `rewrites` points at).
  std::vector<std::pair<OutcomeCache::Key, RewriteCache::Entry>> learned;
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

inline bool SameBytes(std::string_view a, std::string_view b) {
  // Labels a rule did not touch still point at the request's bytes: equal
  // pointers settle most comparisons without reading the strings.
  return a.size() == b.size() && (a.data() == b.data() || a == b);
}

template <typename A, typename B>
bool SameLabels(absl::Span<const A> a, absl::Span<const B> b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!SameBytes(a[i].name, b[i].name) ||
        !SameBytes(a[i].value, b[i].value)) {
      return false;
    }
  }
  return true;
}

bool CarriesForbidden(absl::Span<const relabel::Label> labels,
                      const std::vector<std::string_view>& forbidden) {
  for (const relabel::Label& l : labels) {
    if (l.value.empty()) continue;  // an empty label is an absent label
    for (std::string_view f : forbidden) {
      if (l.name == f) return true;
    }
  }
  return false;
}

// The code a request gets for a queue failure the pipeline has no specific
// answer for (a disk write error, say): the queue's own code unless the
// server would answer it with a 4xx (see the status table in pipeline.h),
// which would tell the client its request is at fault.
absl::StatusCode QueueFailureCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kResourceExhausted:
      return absl::StatusCode::kInternal;
    default:
      return code;
  }
}

// Debian's abseil has its own string_view type, which StrCat needs.
absl::string_view Shorten(std::string_view s) {
  return absl::string_view(s.data(), std::min<size_t>(s.size(), 64));
}

}  // namespace

struct Pipeline::State {
  std::shared_ptr<const config::Config> config;
  uint64_t generation = next_state_generation.fetch_add(1);
  std::vector<DestState> dests;
  // Per config: a reload starts with an empty one. Null when the
  // destinations do not fit its encoding.
  std::unique_ptr<OutcomeCache> cache;
};

struct Pipeline::Metrics {
  metrics::Counter* received_samples;
  metrics::Counter* received_series;
  metrics::Counter* received_metadata;
  metrics::Counter* global_dropped;
  metrics::Family<metrics::Counter>* rejected_samples;
  metrics::Family<metrics::Counter>* relabel_dropped;
  metrics::Family<metrics::Counter>* forbidden;
  metrics::Family<metrics::Counter>* dropped;
  metrics::Family<metrics::Counter>* queued_samples;
  metrics::Family<metrics::Counter>* queued_series;
  metrics::Counter* cache_hits;
  metrics::Counter* cache_misses;
};

Pipeline::Pipeline(metrics::Registry* registry)
    : registry_(registry != nullptr ? registry : &metrics::Default()),
      metrics_(std::make_unique<Metrics>()) {
  metrics::Registry& r = *registry_;
  metrics_->received_samples =
      &r.AddCounter("promrelay_received_samples_total",
                    "Samples and native histogram samples in well-formed "
                    "remote_write requests.")
           .With({});
  metrics_->received_series =
      &r.AddCounter("promrelay_received_series_total",
                    "Series in well-formed remote_write requests.")
           .With({});
  metrics_->received_metadata =
      &r.AddCounter("promrelay_received_metadata_total",
                    "Metric metadata entries in well-formed remote_write "
                    "requests.")
           .With({});
  metrics_->global_dropped =
      &r.AddCounter("promrelay_global_relabel_dropped_series_total",
                    "Series dropped by the global relabel_configs (sent to no "
                    "destination, on purpose).")
           .With({});
  metrics_->rejected_samples = &r.AddCounter(
      "promrelay_rejected_samples_total",
      "Samples of well-formed requests refused with an error status, by "
      "reason (limit, queue_full, unavailable, error); the client decides "
      "whether to resend them.",
      {"reason"});
  metrics_->relabel_dropped = &r.AddCounter(
      "promrelay_relabel_dropped_series_total",
      "Series a destination's write_relabel_configs dropped (on purpose: not "
      "for this destination).",
      {"destination"});
  metrics_->forbidden = &r.AddCounter(
      "promrelay_forbidden_label_violations_total",
      "Series withheld from a destination because they still carried one of "
      "its forbidden_labels after relabeling.",
      {"destination"});
  metrics_->dropped = &r.AddCounter(
      "promrelay_dropped_samples_total",
      "Samples dropped and never sent, by reason (forbidden_label: withheld "
      "by the guard; drop_oldest: removed from a full queue; http_<code>: "
      "the destination rejected them with a non-retryable status).",
      {"destination", "reason"});
  metrics_->queued_samples = &r.AddCounter(
      "promrelay_queued_samples_total",
      "Samples appended to a destination's queue.", {"destination"});
  auto& cache_lookups = r.AddCounter(
      "promrelay_series_cache_lookups_total",
      "Lookups of a series' routing outcome by its label bytes (hit: "
      "relabeling skipped).",
      {"result"});
  metrics_->cache_hits = &cache_lookups.With({"hit"});
  metrics_->cache_misses = &cache_lookups.With({"miss"});
  metrics_->queued_series = &r.AddCounter(
      "promrelay_queued_series_total",
      "Series appended to a destination's queue.", {"destination"});
}

Pipeline::~Pipeline() = default;

// 2^19 slots of 16 bytes: 8 MiB, shared by every I/O thread. 100k series
// fill a fifth of it, so few sets overflow their four ways.
constexpr int kCacheSlotsLog2 = 19;

absl::Status Pipeline::Update(std::shared_ptr<const config::Config> config,
                              std::vector<DestinationQueues> queues) {
  if (config == nullptr) return absl::InvalidArgumentError("no config");
  auto state = std::make_shared<State>();
  state->config = config;
  for (const config::Destination& d : config->remote_write) {
    auto it = std::find_if(
        queues.begin(), queues.end(),
        [&](const DestinationQueues& q) { return q.name == d.name; });
    if (it == queues.end() || it->shards.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no queues for destination \"", d.name, "\""));
    }
    for (const auto& q : it->shards) {
      if (q == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("null queue for destination \"", d.name, "\""));
      }
    }
    DestState ds;
    ds.cfg = &d;
    ds.shards = it->shards;
    ds.shard_capacity = it->shard_capacity_bytes;
    ds.reject_on_full = d.on_full == config::OnFull::kReject;
    ds.max_samples_per_send =
        static_cast<uint32_t>(std::max(1, d.queue_config.max_samples_per_send));
    for (const std::string& f : d.forbidden_labels) ds.forbidden.push_back(f);
    ds.relabel_dropped = &metrics_->relabel_dropped->With({d.name});
    ds.forbidden_violations = &metrics_->forbidden->With({d.name});
    ds.dropped_forbidden =
        &metrics_->dropped->With({d.name, "forbidden_label"});
    ds.dropped_oldest = &metrics_->dropped->With({d.name, "drop_oldest"});
    ds.queued_samples = &metrics_->queued_samples->With({d.name});
    ds.queued_series = &metrics_->queued_series->With({d.name});
    state->dests.push_back(std::move(ds));
  }
  bool cacheable = state->dests.size() <= OutcomeCache::kMaxDests;
  for (const DestState& d : state->dests) {
    if (d.shards.size() > OutcomeCache::kMaxShards) cacheable = false;
  }
  if (cacheable) state->cache = std::make_unique<OutcomeCache>(kCacheSlotsLog2);
  state_.store(std::move(state));
  return absl::OkStatus();
}

std::shared_ptr<const config::Config> Pipeline::config() const {
  std::shared_ptr<const State> state = state_.load();
  return state ? state->config : nullptr;
}

absl::Status Pipeline::Ingest(std::string_view snappy_body,
                              const IngestOptions& options,
                              IngestResult* result) const {
  std::shared_ptr<const State> state = state_.load();
  if (state == nullptr) {
    return absl::UnavailableError("no configuration loaded yet");
  }
  Scratch& s = ThreadScratch();
  absl::Status st = wire::SnappyDecompress(
      snappy_body, state->config->server.max_decompressed_bytes,
      &s.decompressed);
  if (!st.ok()) {
    if (absl::IsOutOfRange(st)) {
      return absl::OutOfRangeError(absl::StrCat(
          "decompressed body exceeds server.max_decompressed_bytes (",
          state->config->server.max_decompressed_bytes, "): ", st.message()));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("request body: ", st.message()));
  }
  st = IngestDecompressed(s.decompressed.view(), options, result);
  s.decompressed.ShrinkTo(kMaxRetainedScratchBytes);
  return st;
}

absl::Status Pipeline::IngestDecompressed(std::string_view buf,
                                          const IngestOptions& options,
                                          IngestResult* result) const {
  std::shared_ptr<const State> state = state_.load();
  if (state == nullptr) {
    return absl::UnavailableError("no configuration loaded yet");
  }
  const config::Config& cfg = *state->config;
  const config::ServerConfig& limits = cfg.server;
  Scratch& s = ThreadScratch();
  wire::WriteRequestView& view = s.view;

  // Injected labels depend on the client, not on the series bytes: such
  // requests bypass the cache.
  OutcomeCache* cache =
      options.inject_labels.empty() ? state->cache.get() : nullptr;
  auto malformed = [](const absl::Status& st) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed remote_write request: ", st.message()));
  };

  // Label contents are parsed (and checked) below only for the series the
  // outcome cache does not know: a known series' label bytes were parsed
  // and passed the limits before, under this same config. With the cache,
  // a series' labels are not even walked until its (guessed) label bytes
  // turn out to be unknown: ParseFrames guesses where they end from the
  // samples at the series' end, and a guess whose bytes the cache knows is
  // proven (those bytes are a whole run of label fields, so the samples
  // after them are all the series has).
  absl::Status st =
      cache != nullptr ? view.ParseFrames(buf) : view.ParseSkeleton(buf);
  if (!st.ok()) return malformed(st);
  if (limits.max_series_per_request > 0 &&
      view.series().size() > limits.max_series_per_request) {
    for (size_t i = 0; i < view.series().size(); ++i) {
      st = view.VerifySeries(i);
      if (!st.ok()) return malformed(st);
    }
    metrics_->rejected_samples->With({"limit"}).Inc(view.total_samples());
    return absl::OutOfRangeError(
        absl::StrCat("request has ", view.series().size(),
                     " series, more than server.max_series_per_request (",
                     limits.max_series_per_request, ")"));
  }

  const size_t nseries = view.series().size();
  s.learned.clear();
  s.known.assign(nseries, 0);
  s.outcomes.resize(nseries);
  if (cache != nullptr) {
    // Keys first, with their slots prefetched (a set of slots is two cache
    // lines): the lookups below then mostly find them loaded.
    s.keys.resize(nseries);
    for (size_t i = 0; i < nseries; ++i) {
      const wire::SeriesView& sv = view.series()[i];
      if (sv.rest_offset == wire::SeriesView::kRestUnknown) continue;
      s.keys[i] = cache->KeyOf(sv.body.substr(0, sv.rest_offset));
      cache->Prefetch(s.keys[i]);
    }
    s.rewrite_cache.Adopt(state->generation);
    s.rewrites.resize(nseries);
    const int ndests = static_cast<int>(state->dests.size());
    for (size_t i = 0; i < nseries; ++i) {
      if (view.series()[i].rest_offset == wire::SeriesView::kRestUnknown) {
        continue;
      }
      if (!cache->Lookup(s.keys[i], &s.outcomes[i])) {
        if (!view.series()[i].unverified) continue;
        // Unknown bytes: walk the series to find its real label fields,
        // which may be known after all when the guess was wrong.
        const uint32_t guessed = view.series()[i].rest_offset;
        st = view.VerifySeries(i);
        if (!st.ok()) return malformed(st);
        const wire::SeriesView& sv = view.series()[i];
        if (sv.rest_offset == guessed ||
            sv.rest_offset == wire::SeriesView::kRestUnknown) {
          continue;
        }
        s.keys[i] = cache->KeyOf(sv.body.substr(0, sv.rest_offset));
        if (!cache->Lookup(s.keys[i], &s.outcomes[i])) continue;
      }
      if (OutcomeCache::AnyRewritten(s.outcomes[i], ndests)) {
        // Its new labels are looked up below, once all are prefetched.
        s.rewrite_cache.Prefetch(s.keys[i]);
        s.rewritten_known.push_back(i);
        continue;
      }
      s.known[i] = 1;
    }
    for (size_t i : s.rewritten_known) {
      // Known, but when its new labels are in another thread's cache only,
      // this thread relabels it once.
      s.rewrites[i] = s.rewrite_cache.Find(s.keys[i]);
      s.known[i] = s.rewrites[i] != nullptr ? 1 : 0;
    }
    s.rewritten_known.clear();
  }
  for (size_t i = 0; i < nseries; ++i) {
    if (s.known[i]) continue;
    st = view.ParseLabels(i);  // walks an unverified series first
    if (!st.ok()) return malformed(st);
  }
  // Exact now: every guess is proven or replaced.
  const uint64_t total_samples = view.total_samples();

  // A label name or value is shorter than the series' label fields: when
  // those fit both length limits, no label of the series can break them.
  const uint64_t label_bytes_always_ok =
      std::min(limits.max_label_name_length > 0 ? limits.max_label_name_length
                                                : UINT64_MAX,
               limits.max_label_value_length > 0 ? limits.max_label_value_length
                                                 : UINT64_MAX);
  for (size_t i = 0; i < view.series().size(); ++i) {
    const wire::SeriesView& sv = view.series()[i];
    if (limits.max_labels_per_series > 0 &&
        sv.num_labels > limits.max_labels_per_series) {
      metrics_->rejected_samples->With({"limit"}).Inc(total_samples);
      return absl::InvalidArgumentError(
          absl::StrCat("series ", i, " has ", sv.num_labels,
                       " labels, more than server.max_labels_per_series (",
                       limits.max_labels_per_series, ")"));
    }
    if (s.known[i] || (sv.rest_offset != wire::SeriesView::kRestUnknown &&
                       sv.rest_offset <= label_bytes_always_ok)) {
      continue;
    }
    for (const wire::LabelView& l : view.labels(sv)) {
      if (limits.max_label_name_length > 0 &&
          l.name.size() > limits.max_label_name_length) {
        metrics_->rejected_samples->With({"limit"}).Inc(total_samples);
        return absl::InvalidArgumentError(absl::StrCat(
            "series ", i, ": label name \"", Shorten(l.name), "...\" is ",
            l.name.size(), " bytes, more than server.max_label_name_length (",
            limits.max_label_name_length, ")"));
      }
      if (limits.max_label_value_length > 0 &&
          l.value.size() > limits.max_label_value_length) {
        metrics_->rejected_samples->With({"limit"}).Inc(total_samples);
        return absl::InvalidArgumentError(absl::StrCat(
            "series ", i, ": value of label \"", Shorten(l.name), "\" is ",
            l.value.size(), " bytes, more than server.max_label_value_length (",
            limits.max_label_value_length, ")"));
      }
    }
  }
  metrics_->received_samples->Inc(static_cast<double>(total_samples));
  metrics_->received_series->Inc(static_cast<double>(view.series().size()));
  metrics_->received_metadata->Inc(static_cast<double>(view.metadata().size()));

  const size_t ndest = state->dests.size();
  if (s.dests.size() < ndest) s.dests.resize(ndest);
  for (size_t d = 0; d < ndest; ++d) {
    DestScratch& ds = s.dests[d];
    ds.shards.resize(state->dests[d].shards.size());
    for (ShardBuf& b : ds.shards) b.Reset();
    ds.relabel_dropped = ds.forbidden_series = ds.forbidden_samples = 0;
    ds.queued_series = 0;
  }

  const bool global_rules =
      !cfg.relabel_configs.empty() || !options.inject_labels.empty();
  uint64_t global_dropped = 0;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;

  // Appends `sv` to its shard of destination `d`, with `label_fields`
  // when a rule changed its labels (else its bytes unchanged).
  auto add = [&](size_t d, size_t shard, const wire::SeriesView& sv,
                 uint32_t samples, const std::string_view* label_fields) {
    const DestState& dest = state->dests[d];
    DestScratch& ds = s.dests[d];
    ShardBuf& b = ds.shards[shard];
    if (b.series > 0 && (b.samples + samples > dest.max_samples_per_send ||
                         b.OpenBytes() >= kMaxRecordBytes)) {
      b.Flush();
    }
    if (label_fields != nullptr) {
      b.enc.AddSeriesWithLabelFields(*label_fields, sv);
    } else {
      b.enc.AddRawSeries(sv);
    }
    b.CompressFullBlocks();
    b.samples += samples;
    ++b.series;
    ++ds.queued_series;
  };

  for (size_t series_index = 0; series_index < view.series().size();
       ++series_index) {
    const wire::SeriesView& sv = view.series()[series_index];
    const uint32_t samples = sv.samples + sv.histograms;
    const bool contiguous = sv.rest_offset != wire::SeriesView::kRestUnknown;
    const std::string_view label_fields =
        contiguous ? sv.body.substr(0, sv.rest_offset) : std::string_view();
    OutcomeCache::Key key;
    bool storable = cache != nullptr && contiguous;
    if (storable) {
      key = s.keys[series_index];
      if (s.known[series_index]) {
        const uint64_t outcome = s.outcomes[series_index];
        ++cache_hits;
        if (outcome & OutcomeCache::kGlobalDrop) {
          ++global_dropped;
          continue;
        }
        for (size_t d = 0; d < ndest; ++d) {
          const int di = static_cast<int>(d);
          switch (OutcomeCache::KindOf(outcome, di)) {
            case OutcomeCache::kDrop:
              ++s.dests[d].relabel_dropped;
              break;
            case OutcomeCache::kForbidden:
              ++s.dests[d].forbidden_series;
              s.dests[d].forbidden_samples += samples;
              break;
            case OutcomeCache::kRewritten: {
              const std::string_view fields = s.rewrites[series_index]->For(d);
              add(d, OutcomeCache::ShardOf(outcome, di), sv, samples, &fields);
              break;
            }
            case OutcomeCache::kRaw:
              add(d, OutcomeCache::ShardOf(outcome, di), sv, samples, nullptr);
              break;
          }
        }
        continue;
      }
      ++cache_misses;
    }

    const absl::Span<const wire::LabelView> raw = view.labels(sv);
    s.input.resize(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      s.input[i] = relabel::Label{raw[i].name, raw[i].value};
    }
    absl::Span<const relabel::Label> current = s.input;
    bool relabeled = false;
    if (global_rules) {
      s.global.Reset(s.input);
      for (const auto& [name, value] : options.inject_labels) {
        s.global.Set(name, value);
      }
      bool kept = cfg.relabel_configs.Apply(s.global);
      if (kept) current = s.global.Result();
      if (!kept || current.empty()) {
        ++global_dropped;
        if (storable) cache->Insert(key, OutcomeCache::kGlobalDrop);
        continue;
      }
      relabeled = true;
    }
    uint64_t outcome = 0;
    RewriteCache::Entry& rewrite = s.new_rewrite;
    rewrite.fields.clear();
    bool rewritten = false;
    for (size_t d = 0; d < ndest; ++d) {
      rewrite.offsets[d] = static_cast<uint32_t>(rewrite.fields.size());
      const DestState& dest = state->dests[d];
      DestScratch& ds = s.dests[d];
      const int di = static_cast<int>(d);
      absl::Span<const relabel::Label> final_labels = current;
      bool changed = relabeled;
      if (!dest.cfg->write_relabel_configs.empty()) {
        s.dest.Reset(current);
        bool kept = dest.cfg->write_relabel_configs.Apply(s.dest);
        if (kept) final_labels = s.dest.Result();
        if (!kept || final_labels.empty()) {
          ++ds.relabel_dropped;
          outcome |= OutcomeCache::Pack(di, OutcomeCache::kDrop, 0);
          continue;
        }
        changed = true;
      }
      if (!dest.forbidden.empty() &&
          CarriesForbidden(final_labels, dest.forbidden)) {
        ++ds.forbidden_series;
        ds.forbidden_samples += samples;
        outcome |= OutcomeCache::Pack(di, OutcomeCache::kForbidden, 0);
        continue;
      }
      if (changed && SameLabels(raw, final_labels)) changed = false;
      size_t shard = 0;
      if (dest.shards.size() > 1) {
        const std::vector<std::string>& shard_by =
            dest.cfg->queue_config.shard_by;
        uint64_t h;
        if (!shard_by.empty()) {
          h = StableShardKeyHash(final_labels, absl::MakeConstSpan(shard_by));
        } else if (!changed && contiguous) {
          // Unchanged series with their label fields first (every known
          // sender) hash those bytes in one go.
          h = StableEncodedLabelsHash(label_fields);
        } else {
          h = StableLabelsHash(final_labels);
        }
        shard = h % dest.shards.size();
      }
      if (changed) {
        s.out_labels.resize(final_labels.size());
        for (size_t i = 0; i < final_labels.size(); ++i) {
          s.out_labels[i] =
              wire::LabelView{final_labels[i].name, final_labels[i].value};
        }
        const size_t start = rewrite.fields.size();
        wire::WriteRequestEncoder::AppendLabelFields(s.out_labels,
                                                     &rewrite.fields);
        const std::string_view fields =
            std::string_view(rewrite.fields).substr(start);
        outcome |= OutcomeCache::Pack(di, OutcomeCache::kRewritten, shard);
        rewritten = true;
        add(d, shard, sv, samples, &fields);
      } else {
        outcome |= OutcomeCache::Pack(di, OutcomeCache::kRaw, shard);
        add(d, shard, sv, samples, nullptr);
      }
    }
    rewrite.offsets[ndest] = static_cast<uint32_t>(rewrite.fields.size());
    if (storable) {
      if (rewritten) s.learned.emplace_back(key, rewrite);
      cache->Insert(key, outcome);
    }
  }
  for (auto& [key, entry] : s.learned) {
    s.rewrite_cache.Insert(key, std::move(entry));
  }
  s.learned.clear();
  if (cache != nullptr) {
    metrics_->cache_hits->Inc(static_cast<double>(cache_hits));
    metrics_->cache_misses->Inc(static_cast<double>(cache_misses));
  }
  metrics_->global_dropped->Inc(static_cast<double>(global_dropped));

  // Metadata is not per series: every destination gets all of it, with
  // shard 0's share.
  if (!view.metadata().empty()) {
    for (size_t d = 0; d < ndest; ++d) {
      ShardBuf& b = s.dests[d].shards[0];
      for (std::string_view md : view.metadata()) b.enc.AddMetadata(md);
    }
  }
  for (size_t d = 0; d < ndest; ++d) {
    for (ShardBuf& b : s.dests[d].shards) b.Flush();
  }
  // The encoders are empty now: one unusually large request does not pin
  // its buffers to the thread, whatever happens below. Records a failed
  // request did not queue are released when it returns.
  for (DestScratch& ds : s.dests) {
    for (ShardBuf& b : ds.shards) {
      if (b.enc.bytes().capacity() > kMaxRetainedScratchBytes) {
        b.enc = wire::WriteRequestEncoder();
      }
      b.elements.ShrinkTo(kMaxRetainedScratchBytes);
    }
  }
  absl::Cleanup release_records = [&s] {
    for (DestScratch& ds : s.dests) {
      for (ShardBuf& b : ds.shards) b.records.clear();
    }
  };

  // Refuse up front when a reject-on-full queue visibly lacks room, so the
  // client's retry does not duplicate what other destinations accepted.
  for (size_t d = 0; d < ndest; ++d) {
    const DestState& dest = state->dests[d];
    DestScratch& ds = s.dests[d];
    for (size_t i = 0; i < ds.shards.size(); ++i) {
      const ShardBuf& b = ds.shards[i];
      if (b.records.empty() || dest.shard_capacity == 0) continue;
      if (b.record_bytes > dest.shard_capacity) {
        metrics_->rejected_samples->With({"limit"}).Inc(total_samples);
        return absl::OutOfRangeError(absl::StrCat(
            "request too large for destination \"", dest.cfg->name,
            "\": its share for shard ", i, " is ", b.record_bytes,
            " bytes, more than the queue holds (", dest.shard_capacity, ")"));
      }
      if (!dest.reject_on_full) continue;
      const queue::Stats stats = dest.shards[i]->GetStats();
      if (stats.bytes + b.record_bytes > dest.shard_capacity) {
        // Refused, not dropped: the client got 429 and keeps the data.
        metrics_->rejected_samples->With({"queue_full"}).Inc(total_samples);
        return absl::ResourceExhaustedError(
            absl::StrCat("queue of destination \"", dest.cfg->name,
                         "\" is full (on_full: reject); retry later"));
      }
    }
  }

  // Phase 1: append everywhere (durability work starts in the background);
  // phase 2: wait until every append is durable. With several disk queues
  // on fsync: always, their fsyncs overlap instead of adding up.
  s.pending.clear();
  uint64_t queued_series = 0;
  for (size_t d = 0; d < ndest; ++d) {
    const DestState& dest = state->dests[d];
    DestScratch& ds = s.dests[d];
    uint64_t appended_samples = 0;
    for (size_t i = 0; i < ds.shards.size(); ++i) {
      ShardBuf& b = ds.shards[i];
      if (b.records.empty()) continue;
      uint64_t dropped = 0;
      const uint64_t shard_samples = b.record_samples;
      absl::StatusOr<uint64_t> token =
          dest.shards[i]->AppendAsync(std::move(b.records), &dropped);
      b.records.clear();
      if (dropped > 0) dest.dropped_oldest->Inc(static_cast<double>(dropped));
      if (token.ok()) {
        appended_samples += shard_samples;
        s.pending.push_back({dest.shards[i].get(), *token, d, i});
        continue;
      }
      st = token.status();
      // What this destination accepted before the failure stays queued.
      dest.queued_samples->Inc(static_cast<double>(appended_samples));
      // Whatever was appended must still become durable before anyone
      // relies on it; the request fails either way.
      for (const PendingAppend& p : s.pending) {
        p.queue->WaitDurable(p.token).IgnoreError();
      }
      const std::string where =
          absl::StrCat("destination \"", dest.cfg->name, "\" shard ", i);
      if (absl::IsResourceExhausted(st)) {
        metrics_->rejected_samples->With({"queue_full"}).Inc(total_samples);
        return absl::ResourceExhaustedError(absl::StrCat(
            "queue of ", where, " is full (on_full: reject); retry later"));
      }
      if (absl::IsInvalidArgument(st)) {
        metrics_->rejected_samples->With({"limit"}).Inc(total_samples);
        return absl::OutOfRangeError(absl::StrCat(
            "request too large for the queue of ", where, ": ", st.message()));
      }
      if (absl::IsUnavailable(st)) {
        metrics_->rejected_samples->With({"unavailable"}).Inc(total_samples);
        return absl::UnavailableError(
            absl::StrCat("queue of ", where, " is closed: shutting down"));
      }
      metrics_->rejected_samples->With({"error"}).Inc(total_samples);
      return absl::Status(QueueFailureCode(st.code()),
                          absl::StrCat("queue of ", where, ": ", st.message()));
    }
    dest.queued_samples->Inc(static_cast<double>(appended_samples));
    dest.queued_series->Inc(static_cast<double>(ds.queued_series));
    dest.relabel_dropped->Inc(static_cast<double>(ds.relabel_dropped));
    if (ds.forbidden_series > 0) {
      dest.forbidden_violations->Inc(static_cast<double>(ds.forbidden_series));
      dest.dropped_forbidden->Inc(static_cast<double>(ds.forbidden_samples));
    }
    queued_series += ds.queued_series;
  }
  absl::Status durable;
  for (const PendingAppend& p : s.pending) {
    absl::Status w = p.queue->WaitDurable(p.token);
    if (!w.ok() && durable.ok()) {
      durable =
          absl::Status(QueueFailureCode(w.code()),
                       absl::StrCat("queue of destination \"",
                                    state->dests[p.dest].cfg->name, "\" shard ",
                                    p.shard, ": ", w.message()));
    }
  }
  s.pending.clear();
  if (!durable.ok()) {
    metrics_->rejected_samples->With({"error"}).Inc(total_samples);
    return durable;
  }

  if (result != nullptr) {
    result->series = view.series().size();
    result->samples = total_samples;
    result->metadata = view.metadata().size();
    result->queued_series = queued_series;
  }
  return absl::OkStatus();
}

}  // namespace promrelay::pipeline
