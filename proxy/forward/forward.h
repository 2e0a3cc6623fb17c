// The outbound remote_write client: drains one destination's shard queues
// and POSTs their records (snappy-compressed RW1) over HTTP(S) with
// keep-alive, TLS verification, auth, timeouts and retry with backoff.
//
// Delivery (DESIGN.md): each shard has one request in flight, so a series
// (hashed to one shard by the pipeline) stays in order. Records are
// committed only after a 2xx, or after a non-retryable 4xx has been counted
// as a drop in promrelay_dropped_samples_total. A dead destination only
// fills its own queues; it never blocks another destination or the ingest
// path.
//
// Shards are event-driven on an io_context: the queue's listener wakes a
// shard when a batch is full, and the request is written and its response
// read by whichever thread runs the loop. Given the proxy's I/O threads, a
// batch completed by an ingest request leaves from that same thread, right
// after the request is answered, with no hand-over to a sender thread and
// back.
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

namespace boost::asio {
class io_context;
}

namespace promrelay::forward {

class DestinationSender {
 public:
  // Validates the URL and builds the TLS context (CA, client certificate)
  // from `dest`; an unreadable file or a bad URL is an InvalidArgument
  // naming the field (never a secret). `shard_queues` has one queue per
  // shard (usually dest.queue_config.shards of them); the sender only reads
  // and commits, the caller keeps appending, and the sender sets itself as
  // each queue's listener. Metrics go to `registry` (nullptr:
  // metrics::Default()).
  //
  // `io_context`: the loop the shards run on, which must run (on threads of
  // the caller's) until Stop() has returned and must outlive the sender.
  // Queue reads and commits then happen on those threads, so give it only
  // for queues that do not block (memory). nullptr: the sender runs its own
  // loop with one thread per shard.
  static absl::StatusOr<std::unique_ptr<DestinationSender>> Create(
      const config::Destination& dest,
      std::vector<std::shared_ptr<queue::Queue>> shard_queues,
      metrics::Registry* registry = nullptr,
      boost::asio::io_context* io_context = nullptr);

  // Stops (without draining) if still running.
  ~DestinationSender();

  DestinationSender(const DestinationSender&) = delete;
  DestinationSender& operator=(const DestinationSender&) = delete;

  // Starts the shards (and the sender's own loop, if it has one). Call once.
  void Start();

  // Sends what is queued, with partial batches going out at once, until the
  // queues are empty or `deadline` passes; then aborts in-flight requests
  // and backoff waits (waiting up to 1 s more for the shards to notice, as
  // their loop must run to do so). Returns the samples still
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
