// The ingest pipeline: one remote_write request body in, each destination's
// share durably queued out. Per request: snappy (capped) -> RW1 skeleton
// decode (series delimited, label contents not yet parsed) -> per series:
// the outcome cache, keyed by the series' label bytes, says what the rules
// decided before (most series stop here); otherwise labels are parsed and
// checked against the request limits -> global relabel -> per destination:
// write_relabel_configs -> forbidden-label guard -> re-encode (byte-identical
// when the labels did not change) into the shard picked by a stable hash of
// the final labels (of the encoded label bytes when unchanged),
// snappy-compressed block by block as it grows -> records (snappy blocks) of
// at most max_samples_per_send samples -> Queue::AppendAsync on every
// destination, then WaitDurable on each.
//
// Status codes (the server maps them to HTTP):
//   OutOfRange         413  body/decompressed size or series count over a limit
//   InvalidArgument    400  malformed body, label limits
//   ResourceExhausted  429  a destination queue is full with on_full: reject
//   Unavailable        503  a queue is closed (shutting down)
//   anything else      500  (for example a disk write error)
//
// All-or-nothing is per destination only. Before appending anything, the
// pipeline checks every reject-on-full queue it knows the size of for room,
// so the usual "queue full" answer leaves nothing behind; but when an append
// still fails after an earlier destination (or an earlier shard) accepted
// its share, the request fails, the client resends it, and those
// destinations get the accepted series twice. remote_write receivers treat
// an identical (series, timestamp, value) as a no-op, so this costs only
// bandwidth.
#ifndef PROMRELAY_PROXY_PIPELINE_PIPELINE_H_
#define PROMRELAY_PROXY_PIPELINE_PIPELINE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "proxy/config/config.h"
#include "proxy/metrics/metrics.h"
#include "proxy/pipeline/hash.h"
#include "proxy/queue/queue.h"
#include "proxy/relabel/relabel.h"

namespace promrelay::pipeline {

// The shard queues of one destination, in shard order.
struct DestinationQueues {
  std::string name;
  std::vector<std::shared_ptr<queue::Queue>> shards;
  // The byte bound of each shard queue when known (0: unknown). Lets the
  // pipeline refuse a request up front instead of after an earlier
  // destination already accepted its share.
  uint64_t shard_capacity_bytes = 0;
  // Disk queues of shards a previous run had and this config does not
  // (queue_config.shards was lowered): their records are still sent, but
  // the pipeline never appends to them.
  std::vector<std::shared_ptr<queue::Queue>> drain_shards;

  // shards, then drain_shards: every queue the destination sends from.
  std::vector<std::shared_ptr<queue::Queue>> AllShards() const {
    std::vector<std::shared_ptr<queue::Queue>> all = shards;
    all.insert(all.end(), drain_shards.begin(), drain_shards.end());
    return all;
  }
};

struct IngestOptions {
  // Labels set on every series before the global relabel rules, replacing
  // what the client sent (ingress auth's inject_labels).
  absl::Span<const std::pair<std::string, std::string>> inject_labels;
};

struct IngestResult {
  uint64_t series = 0;
  uint64_t samples = 0;  // samples + native histograms
  uint64_t metadata = 0;
  uint64_t queued_series = 0;  // summed over destinations
};

class Pipeline {
 public:
  // Metrics go to `registry` (nullptr: metrics::Default()).
  explicit Pipeline(metrics::Registry* registry = nullptr);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Installs a config and the queues of its destinations (matched by name;
  // every destination needs at least one shard). Requests already running
  // finish with the previous config; later ones use this one. The number of
  // shards used is queues.shards.size(), whatever the config says.
  absl::Status Update(std::shared_ptr<const config::Config> config,
                      std::vector<DestinationQueues> queues);

  // The config in use; nullptr before the first Update().
  std::shared_ptr<const config::Config> config() const;

  // Processes one request body (snappy-compressed RW1 WriteRequest).
  // Thread-safe; uses per-thread scratch buffers.
  absl::Status Ingest(std::string_view snappy_body,
                      const IngestOptions& options = {},
                      IngestResult* result = nullptr) const;
  // The same for an already decompressed WriteRequest.
  absl::Status IngestDecompressed(std::string_view protobuf,
                                  const IngestOptions& options = {},
                                  IngestResult* result = nullptr) const;

  struct State;

 private:
  metrics::Registry* registry_;
  struct Metrics;
  std::unique_ptr<Metrics> metrics_;
  std::atomic<std::shared_ptr<const State>> state_;
};

}  // namespace promrelay::pipeline

#endif  // PROMRELAY_PROXY_PIPELINE_PIPELINE_H_
