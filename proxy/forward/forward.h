// The outbound remote_write client: drains one destination's shard queues
// and POSTs their records (snappy-compressed RW1) over HTTP(S) with
// keep-alive, TLS verification, auth, timeouts and retry with backoff.
//
// Delivery (DESIGN.md): one sender thread per shard with one request in
// flight, so a series (hashed to one shard by the pipeline) stays in order.
// Records are committed only after a 2xx, or after a non-retryable 4xx has
// been counted as a drop in promrelay_dropped_samples_total. A dead
// destination only fills its own queues; it never blocks another
// destination or the ingest path.
#ifndef PROMRELAY_PROXY_FORWARD_FORWARD_H_
#define PROMRELAY_PROXY_FORWARD_FORWARD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/config/config.h"
#include "proxy/metrics/metrics.h"
#include "proxy/queue/queue.h"

namespace promrelay::forward {

class DestinationSender {
 public:
  // Validates the URL and builds the TLS context (CA, client certificate)
  // from `dest`; an unreadable file or a bad URL is an InvalidArgument
  // naming the field (never a secret). `shard_queues` has one queue per
  // shard (usually dest.queue_config.shards of them); the sender only reads
  // and commits, the caller keeps appending. Metrics go to `registry`
  // (nullptr: metrics::Default()).
  static absl::StatusOr<std::unique_ptr<DestinationSender>> Create(
      const config::Destination& dest,
      std::vector<std::shared_ptr<queue::Queue>> shard_queues,
      metrics::Registry* registry = nullptr);

  // Stops (without draining) if still running.
  ~DestinationSender();

  DestinationSender(const DestinationSender&) = delete;
  DestinationSender& operator=(const DestinationSender&) = delete;

  // Starts one thread per shard. Call once.
  void Start();

  // Sends what is queued, with partial batches going out at once, until the
  // queues are empty or `deadline` passes; then aborts in-flight requests
  // and backoff waits and joins the threads. Returns the samples still
  // queued (left for the next start with a disk queue; lost with memory).
  // The queues are not closed. Idempotent; Stop(absl::Now()) stops at once.
  uint64_t Stop(absl::Time deadline);

  // Reload: new url, auth, headers, tls_config, remote_timeout and
  // queue_config (except shards, which is fixed by the queues given to
  // Create). Applies from each shard's next request; a changed url or TLS
  // setting reconnects. On error (bad URL, unreadable CA/cert) the old
  // settings stay and the error says why.
  absl::Status UpdateConfig(const config::Destination& dest);

  const std::string& name() const;

 private:
  struct Impl;
  explicit DestinationSender(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace promrelay::forward

#endif  // PROMRELAY_PROXY_FORWARD_FORWARD_H_
