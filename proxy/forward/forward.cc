#include "proxy/forward/forward.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string_view>
#include <thread>
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

using Headers = std::vector<std::pair<std::string, std::string>>;

// How long a shard blocks in Queue::Read before it looks at the stop flags
// again; also bounds how late a partial batch leaves after its deadline.
constexpr absl::Duration kPollInterval = absl::Milliseconds(100);
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
    return true;
  }

  // The Authorization header value, or empty.
  std::string Authorization() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (basic_) {
      return absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(
                                        username_, ":", password_)));
    }
    if (bearer_) return absl::StrCat("Bearer ", token_);
    return "";
  }

 private:
  mutable std::mutex mu_;
  bool basic_ = false, bearer_ = false;
  std::string username_, password_, password_file_;
  std::string token_, token_file_;
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

// Senders compress in bursts; request handlers are what clients wait on.
// SCHED_BATCH keeps a sender's CPU share but lets a waking handler preempt
// it, which keeps request latency low when the cores are busy. Best effort.
void MarkBatchThread() {
  sched_param param{};
  param.sched_priority = 0;
  (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
}

}  // namespace

struct DestinationSender::Impl {
  struct Shard {
    int index = 0;
    std::shared_ptr<queue::Queue> queue;
    HttpClient client;
    std::thread thread;
    Backoff backoff{absl::Milliseconds(30), absl::Seconds(5), 0};
    std::vector<wire::SnappyPart> parts;  // the batch's payloads
    wire::ByteBuffer compressed;          // request body
  };

  std::string name;
  metrics::Registry* registry = nullptr;

  // Per-destination metric children, looked up once.
  metrics::Counter* sent_samples = nullptr;
  metrics::Counter* sent_batches = nullptr;
  metrics::Counter* sent_bytes = nullptr;
  metrics::Counter* retries = nullptr;
  metrics::Histogram* duration = nullptr;
  // Created at the first attempt / success: before that they would claim
  // a failure or a send time that never happened.
  metrics::Family<metrics::Gauge>* up = nullptr;
  metrics::Family<metrics::Gauge>* last_success = nullptr;
  uint64_t refresher_id = 0;
  metrics::Family<metrics::Counter>* dropped = nullptr;
  metrics::Family<metrics::Counter>* errors = nullptr;
  std::shared_ptr<QueueGauges> gauges;

  mutable std::mutex settings_mu;
  std::shared_ptr<const Settings> settings;

  std::vector<std::unique_ptr<Shard>> shards;

  std::mutex state_mu;
  std::condition_variable state_cv;
  bool started = false;
  bool stopped = false;
  std::atomic<bool> draining{false};
  std::atomic<bool> aborting{false};
  int exited = 0;
  uint64_t left_unsent = 0;

  // Set while attempts fail, so the recovery is logged once.
  std::atomic<bool> failing{false};
  logging::RateLimiter drop_log{kLogInterval};
  logging::RateLimiter error_log{kLogInterval};

  std::shared_ptr<const Settings> CurrentSettings() const {
    std::lock_guard<std::mutex> lock(settings_mu);
    return settings;
  }

  // Sleeps up to `d` unless the sender starts stopping.
  void Pause(absl::Duration d) {
    std::unique_lock<std::mutex> lock(state_mu);
    state_cv.wait_for(lock, absl::ToChronoNanoseconds(d),
                      [&] { return draining.load() || aborting.load(); });
  }

  void RunShard(Shard& shard);
  // Sends one Read()'s records, in as many requests as the uncompressed
  // size bound needs, each until delivered, dropped, or the sender aborts.
  void SendBatch(Shard& shard, const std::vector<queue::SharedRecord>& records);
  // Sends shard.compressed (the batch of `records` records with `samples`
  // samples) until delivered, dropped, or the sender aborts.
  // True once the batch is committed (delivered, or dropped and counted);
  // false when the sender aborted first.
  bool SendCompressed(Shard& shard, size_t records, uint64_t samples);
  void CommitRecords(Shard& shard, size_t n);
};

void DestinationSender::Impl::CommitRecords(Shard& shard, size_t n) {
  absl::Status st = shard.queue->Commit(n);
  if (!st.ok()) {
    // The records stay queued and will be sent again: a duplicate is
    // harmless to remote-write receivers, a loss is not.
    logging::Error(
        "queue commit failed",
        {{"destination", name}, {"shard", shard.index}, {"error", st}});
  }
}

void DestinationSender::Impl::RunShard(Shard& shard) {
  std::vector<queue::SharedRecord> records;
  while (!aborting.load()) {
    std::shared_ptr<const Settings> s = CurrentSettings();
    bool drain = draining.load();
    absl::Duration wait = drain
                              ? absl::ZeroDuration()
                              : std::min(s->batch_send_deadline, kPollInterval);
    absl::Time read_start = absl::Now();
    absl::StatusOr<std::vector<queue::SharedRecord>> got =
        shard.queue->ReadShared(
            s->max_samples_per_send,
            drain ? absl::ZeroDuration() : s->batch_send_deadline, wait);
    if (absl::IsUnavailable(got.status())) {
      // Closed and empty: nothing more will come. Keep polling until Stop()
      // so a queue closed ahead of the sender's Stop() is not an error.
      if (drain) break;
      Pause(kPollInterval);
      continue;
    }
    if (!got.ok()) {
      uint64_t suppressed = 0;
      if (error_log.Allow(&suppressed)) {
        logging::Error("queue read failed", {{"destination", name},
                                             {"shard", shard.index},
                                             {"error", got.status()},
                                             {"suppressed", suppressed}});
      }
      Pause(kPollInterval);
      if (drain) break;
      continue;
    }
    records = *std::move(got);
    if (records.empty()) {
      if (drain) break;
      continue;
    }
    if (!drain) {
      // Read() may hand back a partial batch once `wait` passes; hold it
      // (it stays queued) until it is full or old enough, as Prometheus
      // does, so low traffic still goes out in few requests.
      size_t samples = 0;
      for (const auto& r : records) samples += r->samples;
      absl::Time oldest =
          absl::FromUnixNanos(records.front()->enqueue_unix_nanos);
      bool full = samples >= s->max_samples_per_send ||
                  shard.queue->GetStats().records > records.size();
      bool due = absl::Now() - oldest >= s->batch_send_deadline;
      if (!full && !due) {
        // Guard against a Read() that returns at once (e.g. a closed queue).
        if (absl::Now() - read_start < wait / 2) Pause(wait);
        continue;
      }
    }
    SendBatch(shard, records);
    // Drop the references now: a committed record's memory is freed here
    // rather than when the next batch arrives.
    records.clear();
  }
}

void DestinationSender::Impl::SendBatch(
    Shard& shard, const std::vector<queue::SharedRecord>& records) {
  // Records are queued compressed, so a Read() bounded by queued bytes can
  // hold far more than kMaxRequestBytes of WriteRequest: send it in
  // requests of at most that much uncompressed (receivers limit the
  // decompressed size), each committed before the next goes out.
  size_t begin = 0;
  while (begin < records.size()) {
    uint64_t samples = 0;
    uint64_t raw_bytes = 0;
    size_t end = begin;
    shard.parts.clear();
    for (; end < records.size(); ++end) {
      const queue::Record& r = *records[end];
      const uint64_t raw = r.compressed ? wire::SnappyDeclaredLength(r.payload)
                                        : r.payload.size();
      if (end > begin && raw_bytes + raw > kMaxRequestBytes) break;
      raw_bytes += raw;
      samples += r.samples;
      shard.parts.push_back({r.payload, r.compressed});
    }
    // One body from the records where the queue holds them: compressed
    // records (what the pipeline queues) are joined element for element,
    // others compressed in place.
    wire::SnappyJoin(shard.parts, &shard.compressed);
    const bool done = SendCompressed(shard, end - begin, samples);
    shard.compressed.ShrinkTo(kMaxRetainedBodyBytes);
    if (!done) return;  // aborted: the rest stays queued, uncommitted
    begin = end;
  }
}

bool DestinationSender::Impl::SendCompressed(Shard& shard, size_t records,
                                             uint64_t samples) {
  bool credentials_retried = false;
  std::shared_ptr<const Settings> s = CurrentSettings();
  shard.backoff = Backoff(
      s->min_backoff, s->max_backoff,
      reinterpret_cast<uintptr_t>(&shard) ^ absl::ToUnixNanos(absl::Now()));
  while (!aborting.load()) {
    s = CurrentSettings();  // a reload applies to the next attempt
    if (!shard.client.connected()) s->credentials->Refresh(name);
    Headers headers = s->fixed_headers;
    std::string auth = s->credentials->Authorization();
    if (!auth.empty()) headers.emplace_back("Authorization", std::move(auth));

    absl::Time start = absl::Now();
    HttpResponse res = shard.client.Post(
        *s->endpoint, headers, shard.compressed.view(), s->remote_timeout);
    if (res.error == HttpResponse::Error::kAborted) return false;
    duration->Observe(absl::ToDoubleSeconds(absl::Now() - start));

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
      CommitRecords(shard, records);
      sent_samples->Inc(static_cast<double>(samples));
      sent_batches->Inc();
      sent_bytes->Inc(static_cast<double>(shard.compressed.size()));
      up->With({name}).Set(1);
      if (failing.exchange(false)) {
        logging::Info(
            "destination accepts data again",
            {{"destination", name}, {"url", s->endpoint->url.redacted}});
      }
      last_success->With({name}).Set(
          absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
      return true;
    }
    errors->With({name, reason}).Inc();
    up->With({name}).Set(0);
    failing.store(true);

    // A rejected credential may have been rotated in its file since we
    // read it: one immediate retry with the new secret before dropping.
    if ((res.status == 401 || res.status == 403) && !credentials_retried &&
        s->credentials->has_file()) {
      credentials_retried = true;
      if (s->credentials->Refresh(name)) {
        retries->Inc();
        continue;
      }
    }

    if (verdict == Verdict::kDrop) {
      std::string drop_reason = absl::StrCat("http_", res.status);
      dropped->With({name, drop_reason}).Inc(static_cast<double>(samples));
      CommitRecords(shard, records);
      uint64_t suppressed = 0;
      if (drop_log.Allow(&suppressed)) {
        logging::Error(
            "destination rejected a batch; dropped it (not retryable)",
            {{"destination", name},
             {"url", s->endpoint->url.redacted},
             {"status", res.status},
             {"samples", samples},
             {"body", absl::CHexEscape(res.body_prefix)},
             {"suppressed", suppressed}});
      }
      return true;
    }

    retries->Inc();
    absl::Duration delay = shard.backoff.Next();
    if (res.status == 429 || res.status == 503) {
      if (auto ra = ParseRetryAfter(res.retry_after, absl::Now())) {
        delay = std::max(delay, std::min(*ra, kMaxRetryAfter));
      }
    }
    uint64_t suppressed = 0;
    if (error_log.Allow(&suppressed)) {
      std::string what = res.error != HttpResponse::Error::kNone
                             ? res.message
                             : absl::StrCat("HTTP ", res.status);
      logging::Warn("send failed; retrying",
                    {{"destination", name},
                     {"url", s->endpoint->url.redacted},
                     {"shard", shard.index},
                     {"reason", reason},
                     {"error", what},
                     {"body", absl::CHexEscape(res.body_prefix)},
                     {"backoff", delay},
                     {"suppressed", suppressed}});
    }
    if (!shard.client.Sleep(delay)) return false;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<DestinationSender>> DestinationSender::Create(
    const config::Destination& dest,
    std::vector<std::shared_ptr<queue::Queue>> shard_queues,
    metrics::Registry* registry) {
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
  impl->name = dest.name;
  impl->registry = registry ? registry : &metrics::Default();
  impl->settings = *std::move(settings);
  metrics::Registry& reg = *impl->registry;
  const std::string& n = impl->name;
  impl->sent_samples =
      &reg.AddCounter("promrelay_sent_samples_total",
                      "Samples the destination accepted (2xx).",
                      {"destination"})
           .With({n});
  impl->sent_batches =
      &reg.AddCounter("promrelay_sent_batches_total",
                      "Requests the destination accepted (2xx).",
                      {"destination"})
           .With({n});
  impl->sent_bytes =
      &reg.AddCounter("promrelay_sent_bytes_total",
                      "Compressed request body bytes the destination accepted.",
                      {"destination"})
           .With({n});
  impl->retries =
      &reg.AddCounter("promrelay_send_retries_total",
                      "Requests sent again after a retryable failure (network "
                      "error, timeout, TLS error, 5xx, 429).",
                      {"destination"})
           .With({n});
  impl->duration =
      &reg.AddHistogram("promrelay_send_duration_seconds",
                        "Duration of each remote_write request attempt, "
                        "including connecting.",
                        {"destination"})
           .With({n});
  impl->up = &reg.AddGauge("promrelay_destination_up",
                           "1 when the last request to the destination "
                           "succeeded, 0 when it failed (absent before the "
                           "first attempt).",
                           {"destination"});
  impl->last_success = &reg.AddGauge(
      "promrelay_last_send_success_timestamp_seconds",
      "Unix time of the last request the destination accepted (absent "
      "before the first).",
      {"destination"});
  impl->dropped = &reg.AddCounter(
      "promrelay_dropped_samples_total",
      "Samples dropped and never sent, by reason (forbidden_label: withheld "
      "by the guard; drop_oldest: removed from a full queue; http_<code>: "
      "the destination rejected them with a non-retryable status).",
      {"destination", "reason"});
  impl->errors = &reg.AddCounter(
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

  for (size_t i = 0; i < shard_queues.size(); ++i) {
    auto shard = std::make_unique<Impl::Shard>();
    shard->index = static_cast<int>(i);
    shard->queue = shard_queues[i];
    impl->shards.push_back(std::move(shard));
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

const std::string& DestinationSender::name() const { return impl_->name; }

void DestinationSender::Start() {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.state_mu);
  if (im.started || im.stopped) return;
  im.started = true;
  for (auto& shard : im.shards) {
    Impl::Shard* sh = shard.get();
    sh->thread = std::thread([&im, sh] {
      MarkBatchThread();
      im.RunShard(*sh);
      std::lock_guard<std::mutex> l(im.state_mu);
      ++im.exited;
      im.state_cv.notify_all();
    });
  }
}

uint64_t DestinationSender::Stop(absl::Time deadline) {
  Impl& im = *impl_;
  {
    std::unique_lock<std::mutex> lock(im.state_mu);
    if (im.stopped) return im.left_unsent;
    im.stopped = true;
    if (im.started) {
      im.draining.store(true);
      im.state_cv.notify_all();
      im.state_cv.wait_until(lock, absl::ToChronoTime(deadline), [&] {
        return im.exited == static_cast<int>(im.shards.size());
      });
      im.aborting.store(true);
      im.state_cv.notify_all();
    }
  }
  for (auto& shard : im.shards) shard->client.Abort();
  for (auto& shard : im.shards) {
    if (shard->thread.joinable()) shard->thread.join();
  }
  uint64_t left = 0;
  for (auto& shard : im.shards) left += shard->queue->GetStats().samples;
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
  std::lock_guard<std::mutex> lock(impl_->settings_mu);
  impl_->settings = std::move(next);
  return absl::OkStatus();
}

}  // namespace promrelay::forward
