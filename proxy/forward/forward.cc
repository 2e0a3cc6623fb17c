#include "proxy/forward/forward.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proxy/forward/http_client.h"
#include "proxy/forward/retry.h"
#include "proxy/metrics/log.h"
#include "proxy/wire/snappy.h"

#ifndef PROMRELAY_VERSION
#define PROMRELAY_VERSION "dev"
#endif

namespace promrelay::forward {
namespace {

// How often a waiting shard looks at its queue even without being woken:
// a queue need not call its listener.
constexpr absl::Duration kPollInterval = absl::Milliseconds(100);
// How long Stop() waits for aborted shards to notice: one pass through a
// running loop; a loop that no longer runs never gets there.
constexpr std::chrono::seconds kAbortWait{1};
// A server's Retry-After is honoured up to this much.
constexpr absl::Duration kMaxRetryAfter = absl::Minutes(5);
constexpr absl::Duration kLogInterval = absl::Seconds(10);
// Bound on one request's uncompressed WriteRequest (a single larger record
// still goes alone): receivers limit the decompressed body size.
constexpr uint64_t kMaxRequestBytes = 16ull << 20;
// A shard keeps its request body buffer up to this size between batches;
// a larger one (an unusually big batch) is freed after its send.
constexpr size_t kMaxRetainedBodyBytes = 4u << 20;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(absl::string_view(a.data(), a.size()),
                                absl::string_view(b.data(), b.size()));
}

// Headers that frame the request or that promrelay sets itself; a custom
// header may not replace them.
bool IsReservedHeader(std::string_view name) {
  static constexpr std::string_view kReserved[] = {
      "host",
      "content-length",
      "content-encoding",
      "content-type",
      "transfer-encoding",
      "connection",
      "keep-alive",
      "x-prometheus-remote-write-version",
  };
  for (std::string_view r : kReserved) {
    if (EqualsIgnoreCase(name, r)) return true;
  }
  return false;
}

// Reads a secret file the way Prometheus does (surrounding whitespace
// trimmed). Errors name the file, never its content.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

// Credentials that may come from files: re-read on every new connection
// and after a 401/403, so a rotated secret is picked up without a reload.
class Credentials {
 public:
  Credentials(const config::Destination& dest, const Url& url) {
    if (dest.basic_auth) {
      basic_ = true;
      username_ = dest.basic_auth->username;
      password_ = dest.basic_auth->password;
      password_file_ = dest.basic_auth->password_file;
    } else if (!dest.bearer_token.empty() || !dest.bearer_token_file.empty()) {
      bearer_ = true;
      token_ = dest.bearer_token;
      token_file_ = dest.bearer_token_file;
    } else if (url.username) {
      basic_ = true;
      username_ = *url.username;
      password_ = url.password.value_or("");
    }
    authorization_ = HeaderValue();
  }

  bool has_file() const {
    return !password_file_.empty() || !token_file_.empty();
  }

  // Re-reads the secret file; true when the secret changed. A failed read
  // keeps the old secret (the file may be mid-rotation).
  bool Refresh(std::string_view destination) {
    const std::string& file = basic_ ? password_file_ : token_file_;
    if (file.empty()) return false;
    absl::StatusOr<std::string> secret = ReadSecretFile(file);
    std::lock_guard<std::mutex> lock(mu_);
    if (!secret.ok()) {
      logging::Warn("cannot re-read credentials file; keeping the old secret",
                    {{"destination", destination}, {"file", file}});
      return false;
    }
    std::string& current = basic_ ? password_ : token_;
    if (*secret == current) return false;
    current = *std::move(secret);
    authorization_ = HeaderValue();
    return true;
  }

  // The Authorization header value, or empty.
  std::string Authorization() const {
    std::lock_guard<std::mutex> lock(mu_);
    return authorization_;
  }

 private:
  // Made when the secret is set, not per request.
  std::string HeaderValue() const {
    if (basic_) {
      return absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(
                                        username_, ":", password_)));
    }
    if (bearer_) return absl::StrCat("Bearer ", token_);
    return "";
  }

  mutable std::mutex mu_;
  bool basic_ = false, bearer_ = false;
  std::string username_, password_, password_file_;
  std::string token_, token_file_;
  std::string authorization_;
};

// Everything a shard needs per request; replaced as a whole on reload.
struct Settings {
  std::shared_ptr<const Endpoint> endpoint;
  std::shared_ptr<Credentials> credentials;
  Headers fixed_headers;  // protocol headers + custom headers
  absl::Duration remote_timeout;
  size_t max_samples_per_send;
  absl::Duration batch_send_deadline;
  absl::Duration min_backoff, max_backoff;
  bool retry_on_http_429;
};

absl::StatusOr<std::shared_ptr<const Settings>> MakeSettings(
    const config::Destination& dest) {
  absl::StatusOr<std::shared_ptr<const Endpoint>> ep =
      MakeEndpoint(dest.url, dest.tls_config);
  if (!ep.ok()) {
    return absl::Status(ep.status().code(),
                        absl::StrCat("remote_write \"", dest.name,
                                     "\": ", ep.status().message()));
  }
  auto s = std::make_shared<Settings>();
  s->endpoint = *std::move(ep);
  s->credentials = std::make_shared<Credentials>(dest, s->endpoint->url);
  s->fixed_headers = {
      {"Content-Encoding", "snappy"},
      {"Content-Type", "application/x-protobuf"},
      {"User-Agent", absl::StrCat("promrelay/", PROMRELAY_VERSION)},
      {"X-Prometheus-Remote-Write-Version", "0.1.0"},
  };
  for (const auto& [name, value] : dest.headers) {
    if (IsReservedHeader(name)) {
      logging::Warn("ignoring custom header that promrelay sets itself",
                    {{"destination", dest.name}, {"header", name}});
      continue;
    }
    bool replaced = false;
    for (auto& [n, v] : s->fixed_headers) {
      if (EqualsIgnoreCase(n, name)) {
        v = value;
        replaced = true;
      }
    }
    if (!replaced) s->fixed_headers.emplace_back(name, value);
  }
  const config::QueueConfig& q = dest.queue_config;
  s->remote_timeout = dest.remote_timeout > absl::ZeroDuration()
                          ? dest.remote_timeout
                          : absl::Seconds(30);
  s->max_samples_per_send =
      static_cast<size_t>(std::max(1, q.max_samples_per_send));
  s->batch_send_deadline =
      std::max(q.batch_send_deadline, absl::ZeroDuration());
  s->min_backoff = q.min_backoff;
  s->max_backoff = q.max_backoff;
  s->retry_on_http_429 = q.retry_on_http_429;
  return s;
}

// The destination's queue gauges, read by a registry refresher that may
// outlive the sender (hence the weak_ptr from the refresher).
struct QueueGauges {
  std::vector<std::shared_ptr<queue::Queue>> queues;
  metrics::Gauge* bytes;
  metrics::Gauge* samples;
  metrics::Gauge* oldest_age;

  void Refresh() {
    uint64_t total_bytes = 0, total_samples = 0;
    int64_t oldest = 0;
    for (const auto& q : queues) {
      queue::Stats st = q->GetStats();
      total_bytes += st.bytes;
      total_samples += st.samples;
      if (st.oldest_enqueue_unix_nanos != 0 &&
          (oldest == 0 || st.oldest_enqueue_unix_nanos < oldest)) {
        oldest = st.oldest_enqueue_unix_nanos;
      }
    }
    bytes->Set(static_cast<double>(total_bytes));
    samples->Set(static_cast<double>(total_samples));
    double age = 0;
    if (oldest != 0) {
      age = std::max(0.0, absl::ToDoubleSeconds(absl::Now() -
                                                absl::FromUnixNanos(oldest)));
    }
    oldest_age->Set(age);
  }
};

// For a sender's own threads: they join and send in bursts, while request
// handlers are what clients wait on. SCHED_BATCH keeps a sender's CPU share
// but lets a waking handler preempt it, which keeps request latency low
// when the cores are busy. Best effort.
void MarkBatchThread() {
  sched_param param{};
  param.sched_priority = 0;
  (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
}

// What a destination's shards share: settings, metrics, stop flags.
struct Core {
  std::string name;

  // Per-destination metric children, looked up once.
  metrics::Counter* sent_samples = nullptr;
  metrics::Counter* sent_batches = nullptr;
  metrics::Counter* sent_bytes = nullptr;
  metrics::Counter* retries = nullptr;
  metrics::Histogram* duration = nullptr;
  // Created at the first attempt / success: before that they would claim
  // a failure or a send time that never happened. Up() and LastSuccess()
  // look the child up once, not per request.
  metrics::Family<metrics::Gauge>* up = nullptr;
  metrics::Family<metrics::Gauge>* last_success = nullptr;
  std::atomic<metrics::Gauge*> up_child{nullptr};
  std::atomic<metrics::Gauge*> last_success_child{nullptr};

  metrics::Gauge& Up() { return Child(*up, up_child); }
  metrics::Gauge& LastSuccess() {
    return Child(*last_success, last_success_child);
  }
  // Two threads may both look it up first: With() returns the same child.
  metrics::Gauge& Child(metrics::Family<metrics::Gauge>& family,
                        std::atomic<metrics::Gauge*>& cached) {
    metrics::Gauge* g = cached.load(std::memory_order_acquire);
    if (g == nullptr) {
      g = &family.With({name});
      cached.store(g, std::memory_order_release);
    }
    return *g;
  }
  metrics::Family<metrics::Counter>* dropped = nullptr;
  metrics::Family<metrics::Counter>* errors = nullptr;

  mutable std::mutex settings_mu;
  std::shared_ptr<const Settings> settings;

  std::atomic<bool> draining{false};
  std::atomic<bool> aborting{false};
  std::mutex state_mu;
  std::condition_variable state_cv;
  int finished = 0;  // shards that have stopped for good

  // Set while attempts fail, so the recovery is logged once.
  std::atomic<bool> failing{false};
  logging::RateLimiter drop_log{kLogInterval};
  logging::RateLimiter error_log{kLogInterval};

  std::shared_ptr<const Settings> CurrentSettings() const {
    std::lock_guard<std::mutex> lock(settings_mu);
    return settings;
  }

  void ShardFinished() {
    std::lock_guard<std::mutex> lock(state_mu);
    ++finished;
    state_cv.notify_all();
  }
};

// One shard: a state machine on its HttpClient's strand. It waits for its
// queue (woken by the queue's listener, a batch deadline or a poll), sends
// one batch at a time, and retries it until delivered, dropped or aborted.
// Handlers hold it by shared_ptr, so it lives until the last has run.
class Shard : public std::enable_shared_from_this<Shard> {
 public:
  Shard(std::shared_ptr<Core> core, int index,
        std::shared_ptr<queue::Queue> queue, boost::asio::io_context& ioc,
        std::weak_ptr<HostLookup> lookup)
      : core_(std::move(core)),
        index_(index),
        queue_(std::move(queue)),
        client_(ioc, std::move(lookup)) {}

  const std::shared_ptr<queue::Queue>& queue() const { return queue_; }

  // Any thread: have the shard look at its queue and flags again. Not
  // deferred: Stop() may run on an I/O thread (a reload) and wait there for
  // the shard.
  void Kick() {
    client_.Schedule([self = shared_from_this()] { self->Step(); });
  }

  // Any thread: cancels the request in flight or the backoff wait; the
  // shard then finishes.
  void Abort() {
    client_.Abort();
    Kick();
  }

  // The queue's listener: kicks the shard when it waits for data and the
  // queue now holds a full batch, or its first record (whose deadline the
  // shard must now wait for), or was closed.
  void OnQueueEvent(const queue::QueueEvent& e) {
    if (!waiting_.load(std::memory_order_acquire)) return;
    if (!e.closed && !e.was_empty &&
        e.queued_samples < kick_samples_.load(std::memory_order_relaxed)) {
      return;
    }
    // Deferred: the appending thread (an ingest handler) answers its
    // client first, then sends the batch itself, with no hand-over.
    if (waiting_.exchange(false)) {
      client_.Defer([self = shared_from_this()] { self->Step(); });
    }
  }

 private:
  // The rest runs on the strand only.
  void Step();
  // Sends records_[begin_, ...) up to the uncompressed size bound.
  void StartChunk();
  void Attempt();
  void OnResponse(HttpResponse res);
  void NextChunk();
  void WaitFor(absl::Duration d);
  void Finish();
  void CommitRecords(size_t n);

  const std::shared_ptr<Core> core_;
  const int index_;
  const std::shared_ptr<queue::Queue> queue_;
  HttpClient client_;

  // True while the shard waits for data (an append may kick it), with the
  // sample count that makes a full batch.
  std::atomic<bool> waiting_{false};
  std::atomic<uint64_t> kick_samples_{UINT64_MAX};

  bool busy_ = false;  // a batch is being sent (in flight or backing off)
  bool finished_ = false;
  std::vector<queue::SharedRecord> records_;  // the batch being sent
  size_t begin_ = 0, end_ = 0;  // the chunk in flight: records_[begin_, end_)
  uint64_t chunk_samples_ = 0;
  std::vector<wire::SnappyPart> parts_;  // the chunk's payloads
  wire::ByteBuffer compressed_;          // request body
  Backoff backoff_{absl::Milliseconds(30), absl::Seconds(5), 0};
  bool credentials_retried_ = false;
  absl::Time attempt_start_;
};

void Shard::CommitRecords(size_t n) {
  absl::Status st = queue_->Commit(n);
  if (!st.ok()) {
    // The records stay queued and will be sent again: a duplicate is
    // harmless to remote-write receivers, a loss is not.
    logging::Error(
        "queue commit failed",
        {{"destination", core_->name}, {"shard", index_}, {"error", st}});
  }
}

void Shard::WaitFor(absl::Duration d) {
  // A cancelled wait (a newer one replaced it, or Abort) does nothing: the
  // replacement, or the Kick that comes with Abort, takes over.
  client_.After(d, [self = shared_from_this()](bool fired) {
    if (fired) self->Step();
  });
}

void Shard::Step() {
  if (finished_ || busy_) return;
  if (core_->aborting.load()) {
    Finish();
    return;
  }
  std::shared_ptr<const Settings> s = core_->CurrentSettings();
  const bool drain = core_->draining.load();
  kick_samples_.store(s->max_samples_per_send, std::memory_order_relaxed);
  // Armed before reading, so an append between the read and the wait still
  // kicks the shard.
  waiting_.store(true, std::memory_order_release);
  absl::StatusOr<std::vector<queue::SharedRecord>> got =
      queue_->ReadShared(s->max_samples_per_send,
                         drain ? absl::ZeroDuration() : s->batch_send_deadline,
                         absl::ZeroDuration());
  if (!got.ok() && !absl::IsUnavailable(got.status())) {
    uint64_t suppressed = 0;
    if (core_->error_log.Allow(&suppressed)) {
      logging::Error("queue read failed", {{"destination", core_->name},
                                           {"shard", index_},
                                           {"error", got.status()},
                                           {"suppressed", suppressed}});
    }
  }
  // Unavailable: closed and empty, nothing more will come. Until Stop()
  // the shard keeps polling, so a queue closed ahead of the sender's Stop()
  // is not an error.
  if (!got.ok() || got->empty()) {
    if (drain) {
      Finish();
    } else {
      WaitFor(kPollInterval);
    }
    return;
  }
  if (!drain) {
    // Hold a partial batch (it stays queued) until it is full or old
    // enough, as Prometheus does, so low traffic still goes out in few
    // requests.
    uint64_t samples = 0;
    for (const auto& r : *got) samples += r->samples;
    const bool full = samples >= s->max_samples_per_send ||
                      queue_->GetStats().records > got->size();
    const absl::Time due =
        absl::FromUnixNanos(got->front()->enqueue_unix_nanos) +
        s->batch_send_deadline;
    const absl::Time now = absl::Now();
    if (!full && now < due) {
      WaitFor(std::min(due - now, kPollInterval));
      return;
    }
  }
  waiting_.store(false, std::memory_order_relaxed);
  busy_ = true;
  records_ = *std::move(got);
  begin_ = 0;
  StartChunk();
}

void Shard::StartChunk() {
  // Records are queued compressed, so a Read() bounded by queued bytes can
  // hold far more than kMaxRequestBytes of WriteRequest: send it in
  // requests of at most that much uncompressed (receivers limit the
  // decompressed size), each committed before the next goes out.
  uint64_t raw_bytes = 0;
  chunk_samples_ = 0;
  parts_.clear();
  end_ = begin_;
  for (; end_ < records_.size(); ++end_) {
    const queue::Record& r = *records_[end_];
    const uint64_t raw =
        r.compressed ? wire::SnappyDeclaredLength(r.payload) : r.payload.size();
    if (end_ > begin_ && raw_bytes + raw > kMaxRequestBytes) break;
    raw_bytes += raw;
    chunk_samples_ += r.samples;
    parts_.push_back({r.payload, r.compressed});
  }
  // One body from the records where the queue holds them: compressed
  // records (what the pipeline queues) are joined element for element,
  // others compressed in place.
  wire::SnappyJoin(parts_, &compressed_);
  std::shared_ptr<const Settings> s = core_->CurrentSettings();
  backoff_ = Backoff(
      s->min_backoff, s->max_backoff,
      reinterpret_cast<uintptr_t>(this) ^ absl::ToUnixNanos(absl::Now()));
  credentials_retried_ = false;
  Attempt();
}

void Shard::Attempt() {
  if (core_->aborting.load()) {
    Finish();  // the chunk stays queued, uncommitted
    return;
  }
  std::shared_ptr<const Settings> s =
      core_->CurrentSettings();  // a reload applies to the next attempt
  if (!client_.connected()) s->credentials->Refresh(core_->name);
  attempt_start_ = absl::Now();
  client_.Post(s->endpoint, s->fixed_headers, s->credentials->Authorization(),
               compressed_.view(), s->remote_timeout,
               [self = shared_from_this()](HttpResponse res) {
                 self->OnResponse(std::move(res));
               });
}

void Shard::OnResponse(HttpResponse res) {
  if (res.error == HttpResponse::Error::kAborted) {
    Finish();
    return;
  }
  Core& c = *core_;
  const std::string& name = c.name;
  std::shared_ptr<const Settings> s = c.CurrentSettings();
  c.duration->Observe(absl::ToDoubleSeconds(absl::Now() - attempt_start_));

  std::string reason;
  Verdict verdict;
  if (res.error != HttpResponse::Error::kNone) {
    verdict = Verdict::kRetry;
    reason = res.error == HttpResponse::Error::kTimeout ? "timeout"
             : res.error == HttpResponse::Error::kTls   ? "tls"
                                                        : "network";
  } else {
    verdict = Classify(res.status, s->retry_on_http_429);
    if (verdict != Verdict::kSuccess) reason = HttpErrorReason(res.status);
  }

  if (verdict == Verdict::kSuccess) {
    CommitRecords(end_ - begin_);
    c.sent_samples->Inc(static_cast<double>(chunk_samples_));
    c.sent_batches->Inc();
    c.sent_bytes->Inc(static_cast<double>(compressed_.size()));
    c.Up().Set(1);
    if (c.failing.exchange(false)) {
      logging::Info(
          "destination accepts data again",
          {{"destination", name}, {"url", s->endpoint->url.redacted}});
    }
    c.LastSuccess().Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
    NextChunk();
    return;
  }
  c.errors->With({name, reason}).Inc();
  c.Up().Set(0);
  c.failing.store(true);

  // A rejected credential may have been rotated in its file since we
  // read it: one immediate retry with the new secret before dropping.
  if ((res.status == 401 || res.status == 403) && !credentials_retried_ &&
      s->credentials->has_file()) {
    credentials_retried_ = true;
    if (s->credentials->Refresh(name)) {
      c.retries->Inc();
      Attempt();
      return;
    }
  }

  if (verdict == Verdict::kDrop) {
    std::string drop_reason = absl::StrCat("http_", res.status);
    c.dropped->With({name, drop_reason})
        .Inc(static_cast<double>(chunk_samples_));
    CommitRecords(end_ - begin_);
    uint64_t suppressed = 0;
    if (c.drop_log.Allow(&suppressed)) {
      logging::Error("destination rejected a batch; dropped it (not retryable)",
                     {{"destination", name},
                      {"url", s->endpoint->url.redacted},
                      {"status", res.status},
                      {"samples", chunk_samples_},
                      {"body", absl::CHexEscape(res.body_prefix)},
                      {"suppressed", suppressed}});
    }
    NextChunk();
    return;
  }

  c.retries->Inc();
  absl::Duration delay = backoff_.Next();
  if (res.status == 429 || res.status == 503) {
    if (auto ra = ParseRetryAfter(res.retry_after, absl::Now())) {
      delay = std::max(delay, std::min(*ra, kMaxRetryAfter));
    }
  }
  uint64_t suppressed = 0;
  if (c.error_log.Allow(&suppressed)) {
    std::string what = res.error != HttpResponse::Error::kNone
                           ? res.message
                           : absl::StrCat("HTTP ", res.status);
    logging::Warn("send failed; retrying",
                  {{"destination", name},
                   {"url", s->endpoint->url.redacted},
                   {"shard", index_},
                   {"reason", reason},
                   {"error", what},
                   {"body", absl::CHexEscape(res.body_prefix)},
                   {"backoff", delay},
                   {"suppressed", suppressed}});
  }
  // Abort() cancels the wait; Attempt() then finishes.
  client_.After(delay, [self = shared_from_this()](bool) { self->Attempt(); });
}

void Shard::NextChunk() {
  compressed_.ShrinkTo(kMaxRetainedBodyBytes);
  begin_ = end_;
  if (begin_ < records_.size()) {
    StartChunk();
    return;
  }
  // Drop the references now: a committed record's memory is freed here
  // rather than when the next batch arrives.
  records_.clear();
  busy_ = false;
  Step();
}

void Shard::Finish() {
  if (finished_) return;
  finished_ = true;
  busy_ = false;
  waiting_.store(false);
  records_.clear();
  client_.Close();
  core_->ShardFinished();
}

}  // namespace

struct DestinationSender::Impl {
  std::shared_ptr<Core> core;
  metrics::Registry* registry = nullptr;
  uint64_t refresher_id = 0;
  std::shared_ptr<QueueGauges> gauges;

  // Declared before the shards, so their connections and timers are gone
  // before the loop's io_context.
  std::unique_ptr<PrivateLoop> own_loop;
  // With a caller's loop; its thread is joined before the sender is gone,
  // so no lookup result arrives after (the loop outlives the sender).
  std::shared_ptr<HostLookup> lookup;
  std::vector<std::shared_ptr<Shard>> shards;

  std::mutex state_mu;  // guards the flags below
  bool started = false;
  bool stopped = false;
  uint64_t left_unsent = 0;
};

absl::StatusOr<std::unique_ptr<DestinationSender>> DestinationSender::Create(
    const config::Destination& dest,
    std::vector<std::shared_ptr<queue::Queue>> shard_queues,
    metrics::Registry* registry, boost::asio::io_context* io_context) {
  if (shard_queues.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("remote_write \"", dest.name, "\": no shard queues"));
  }
  for (const auto& q : shard_queues) {
    if (!q) {
      return absl::InvalidArgumentError(
          absl::StrCat("remote_write \"", dest.name, "\": null shard queue"));
    }
  }
  absl::StatusOr<std::shared_ptr<const Settings>> settings = MakeSettings(dest);
  if (!settings.ok()) return settings.status();

  auto impl = std::make_unique<Impl>();
  impl->registry = registry ? registry : &metrics::Default();
  impl->core = std::make_shared<Core>();
  Core& core = *impl->core;
  core.name = dest.name;
  core.settings = *std::move(settings);
  metrics::Registry& reg = *impl->registry;
  const std::string& n = core.name;
  core.sent_samples = &reg.AddCounter("promrelay_sent_samples_total",
                                      "Samples the destination accepted (2xx).",
                                      {"destination"})
                           .With({n});
  core.sent_batches =
      &reg.AddCounter("promrelay_sent_batches_total",
                      "Requests the destination accepted (2xx).",
                      {"destination"})
           .With({n});
  core.sent_bytes =
      &reg.AddCounter("promrelay_sent_bytes_total",
                      "Compressed request body bytes the destination accepted.",
                      {"destination"})
           .With({n});
  core.retries =
      &reg.AddCounter("promrelay_send_retries_total",
                      "Requests sent again after a retryable failure (network "
                      "error, timeout, TLS error, 5xx, 429).",
                      {"destination"})
           .With({n});
  core.duration =
      &reg.AddHistogram("promrelay_send_duration_seconds",
                        "Duration of each remote_write request attempt, "
                        "including connecting.",
                        {"destination"})
           .With({n});
  core.up = &reg.AddGauge("promrelay_destination_up",
                          "1 when the last request to the destination "
                          "succeeded, 0 when it failed (absent before the "
                          "first attempt).",
                          {"destination"});
  core.last_success = &reg.AddGauge(
      "promrelay_last_send_success_timestamp_seconds",
      "Unix time of the last request the destination accepted (absent "
      "before the first).",
      {"destination"});
  core.dropped = &reg.AddCounter(
      "promrelay_dropped_samples_total",
      "Samples dropped and never sent, by reason (forbidden_label: withheld "
      "by the guard; drop_oldest: removed from a full queue; http_<code>: "
      "the destination rejected them with a non-retryable status).",
      {"destination", "reason"});
  core.errors = &reg.AddCounter(
      "promrelay_send_errors_total",
      "Failed remote_write request attempts by reason (network, timeout, "
      "tls, http_429, http_4xx, http_5xx, http_other).",
      {"destination", "reason"});

  auto gauges = std::make_shared<QueueGauges>();
  gauges->queues = shard_queues;
  gauges->bytes = &reg.AddGauge("promrelay_queue_bytes",
                                "Bytes queued for the destination, all shards.",
                                {"destination"})
                       .With({n});
  gauges->samples =
      &reg.AddGauge("promrelay_queue_samples",
                    "Samples queued for the destination, all shards.",
                    {"destination"})
           .With({n});
  gauges->oldest_age =
      &reg.AddGauge("promrelay_queue_oldest_age_seconds",
                    "Age of the oldest record queued for the destination "
                    "(0 when empty).",
                    {"destination"})
           .With({n});
  // The bound the queue alerts compare promrelay_queue_bytes against.
  reg.AddGauge("promrelay_queue_max_bytes",
               "Configured queue bound for the destination, all shards "
               "(storage.max_bytes, or queue_config.max_memory_bytes).",
               {"destination"})
      .With({n})
      .Set(static_cast<double>(dest.storage
                                   ? dest.storage->max_bytes
                                   : dest.queue_config.max_memory_bytes));
  gauges->Refresh();
  impl->refresher_id =
      reg.AddRefresher([weak = std::weak_ptr<QueueGauges>(gauges)] {
        if (auto g = weak.lock()) g->Refresh();
      });
  impl->gauges = std::move(gauges);

  // Host name lookups block a thread each: on a loop shared with others
  // they get a thread of this destination's own, so a destination whose DNS
  // hangs does not delay another's reconnects.
  if (io_context == nullptr) {
    impl->own_loop = std::make_unique<PrivateLoop>();
    io_context = &impl->own_loop->context();
  } else {
    impl->lookup = NewHostLookup();
  }
  for (size_t i = 0; i < shard_queues.size(); ++i) {
    impl->shards.push_back(
        std::make_shared<Shard>(impl->core, static_cast<int>(i),
                                shard_queues[i], *io_context, impl->lookup));
  }
  return std::unique_ptr<DestinationSender>(
      new DestinationSender(std::move(impl)));
}

DestinationSender::DestinationSender(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

DestinationSender::~DestinationSender() {
  Stop(absl::InfinitePast());
  impl_->registry->RemoveRefresher(impl_->refresher_id);
}

const std::string& DestinationSender::name() const { return impl_->core->name; }

void DestinationSender::Start() {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.state_mu);
  if (im.started || im.stopped) return;
  im.started = true;
  if (im.own_loop) {
    // One thread per shard, as each may block on its queue (disk reads,
    // checkpoint writes) while the others go on.
    im.own_loop->Run(static_cast<int>(im.shards.size()), MarkBatchThread);
  }
  for (const std::shared_ptr<Shard>& shard : im.shards) {
    shard->queue()->SetListener(
        [weak = std::weak_ptr<Shard>(shard)](const queue::QueueEvent& e) {
          if (std::shared_ptr<Shard> s = weak.lock()) s->OnQueueEvent(e);
        });
    shard->Kick();
  }
}

uint64_t DestinationSender::Stop(absl::Time deadline) {
  Impl& im = *impl_;
  Core& core = *im.core;
  bool started;
  {
    std::lock_guard<std::mutex> lock(im.state_mu);
    if (im.stopped) return im.left_unsent;
    im.stopped = true;
    started = im.started;
  }
  if (started) {
    const int shards = static_cast<int>(im.shards.size());
    core.draining.store(true);
    for (const auto& shard : im.shards) shard->Kick();
    {
      std::unique_lock<std::mutex> lock(core.state_mu);
      core.state_cv.wait_until(lock, absl::ToChronoTime(deadline),
                               [&] { return core.finished == shards; });
    }
    core.aborting.store(true);
    for (const auto& shard : im.shards) shard->Abort();
    {
      // If the loop no longer runs, the shards' handlers, which hold them,
      // are destroyed with it instead.
      std::unique_lock<std::mutex> lock(core.state_mu);
      core.state_cv.wait_for(lock, kAbortWait,
                             [&] { return core.finished == shards; });
    }
    for (const auto& shard : im.shards) shard->queue()->SetListener(nullptr);
  }
  uint64_t left = 0;
  for (const auto& shard : im.shards) {
    left += shard->queue()->GetStats().samples;
  }
  im.gauges->Refresh();
  std::lock_guard<std::mutex> lock(im.state_mu);
  im.left_unsent = left;
  return left;
}

absl::Status DestinationSender::UpdateConfig(const config::Destination& dest) {
  absl::StatusOr<std::shared_ptr<const Settings>> settings = MakeSettings(dest);
  if (!settings.ok()) return settings.status();
  // Always a new Endpoint: shards reconnect, so rotated CA and client
  // certificate files take effect too.
  auto next = *std::move(settings);
  {
    std::lock_guard<std::mutex> lock(impl_->core->settings_mu);
    impl_->core->settings = std::move(next);
  }
  // A new max_samples_per_send or batch_send_deadline applies at once.
  for (const auto& shard : impl_->shards) shard->Kick();
  return absl::OkStatus();
}

}  // namespace promrelay::forward
