// The HTTP/1.1 listener (Boost.Beast): remote_write ingest and the operator
// endpoints, with keep-alive, N I/O threads and optional TLS.
//
//   POST /api/v1/write, /api/v1/push, /api/prom/push   remote write 1.0
//   GET  /metrics        self-metrics (text format 0.0.4)
//   GET  /-/healthy      200 while the process runs
//   GET  /-/ready        200 while serving, 503 once shutdown began
//   POST /-/reload       re-reads the config (200, or 500 with the error)
//
// Status codes of the write endpoints (DESIGN.md): 204 accepted (durably
// queued for every destination); 400 malformed body or a label limit; 401
// missing/wrong credentials when server.clients is set; 413 body,
// decompressed size or series count over a limit; 415 unsupported
// Content-Type (including remote write 2.0) or Content-Encoding; 429 with
// Retry-After when a destination queue is full with on_full: reject; 503
// while shutting down; 500 for anything else (e.g. a disk error). Errors
// are text/plain with a one-line message.
//
// Ingest runs on the I/O thread that read the request: decoding and
// relabeling are fast, but Queue::Append with `fsync: always` blocks that
// thread for the duration of an fsync; size io_threads for it.
#ifndef PROMRELAY_PROXY_SERVER_SERVER_H_
#define PROMRELAY_PROXY_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proxy/config/config.h"
#include "proxy/metrics/metrics.h"
#include "proxy/pipeline/pipeline.h"

namespace boost::asio {
class io_context;
}

namespace promrelay::server {

// The I/O threads config.io_threads asks for (0: one per core).
int IoThreadCount(const config::ServerConfig& config);

struct ServerOptions {
  // Called by POST /-/reload; nullptr: the endpoint answers 500.
  std::function<absl::Status()> reload;
  // nullptr: metrics::Default(). /metrics exposes this registry.
  metrics::Registry* registry = nullptr;
  // How long a keep-alive connection may sit idle between requests, and how
  // long reading one request or writing one response may take.
  absl::Duration idle_timeout = absl::Minutes(5);
  absl::Duration io_timeout = absl::Minutes(1);
  // Retry-After (seconds) sent with 429.
  int retry_after_seconds = 5;
};

// The HTTP status for a pipeline Status (OK: 204).
int HttpStatusFor(const absl::Status& status);

class Server {
 public:
  // `pipeline` must outlive the server. Limits and ingress credentials are
  // read from pipeline->config() on every request, so a reload applies them
  // at once; listen_address, io_threads and whether TLS is on apply at
  // Start(); the certificate can be reloaded (StageTls, CommitStagedTls).
  Server(pipeline::Pipeline* pipeline, ServerOptions options);
  // Stops at once if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds `config.listen_address` ("host:port", ":port", port 0 = any free
  // port), loads the TLS certificate if configured, and starts the I/O
  // threads (config.io_threads, 0 = one per core).
  absl::Status Start(const config::ServerConfig& config);

  // A certificate reload in two steps, so a config reload can check the
  // certificate before it applies anything: StageTls() loads config.tls's
  // certificate and key (an error, such as an unreadable file or a key
  // that does not match the certificate, changes nothing);
  // CommitStagedTls() then makes connections accepted from now on use
  // them (open ones keep theirs). Both do nothing unless TLS was on at
  // Start() and still is in `config`: turning it on or off needs a
  // restart.
  absl::Status StageTls(const config::ServerConfig& config);
  void CommitStagedTls();

  // The bound port (after Start).
  int port() const;

  // Stops accepting connections; /-/ready and the write endpoints answer
  // 503 from now on (with Connection: close). Requests being handled finish.
  void BeginShutdown();

  // BeginShutdown(), then waits until no request is in progress or
  // `deadline` passes. The I/O threads keep running (for other work on
  // io_context(), such as senders draining).
  void DrainRequests(absl::Time deadline);

  // DrainRequests(), then closes every connection, stops io_context() and
  // joins the I/O threads.
  void Stop(absl::Time deadline);

  // The loop the I/O threads run (from Start() until Stop()). Other modules
  // may run work on it (the senders of memory-queue destinations do); the
  // server outlives such work only if its owner stops it before Stop().
  boost::asio::io_context& io_context();

  bool shutting_down() const;
  // Requests being read, handled or answered right now.
  int in_flight() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace promrelay::server

#endif  // PROMRELAY_PROXY_SERVER_SERVER_H_
