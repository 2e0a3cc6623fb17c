// DestinationSender against real in-process HTTP(S) receivers on loopback.
// Timing never decides a result: tests wait for events (requests seen,
// queue empty) and count attempts.
#include "proxy/forward/forward.h"

#include <snappy.h>

#include <atomic>
#include <latch>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "prometheus/remote.pb.h"
#include "proxy/forward/http_client.h"
#include "proxy/metrics/log.h"
#include "proxy/metrics/metrics.h"
#include "tests/forward/test_queue.h"
#include "tests/forward/test_server.h"

namespace promrelay::forward {
namespace {

using testing::Reply;
using testing::TestPki;
using testing::TestQueue;
using testing::TestServer;

config::Destination MakeDest(const std::string& url) {
  config::Destination d;
  d.name = "dest";
  d.url = url;
  d.remote_timeout = absl::Seconds(20);
  d.queue_config.max_samples_per_send = 100;
  d.queue_config.batch_send_deadline = absl::Milliseconds(5);
  d.queue_config.min_backoff = absl::Milliseconds(1);
  d.queue_config.max_backoff = absl::Milliseconds(5);
  return d;
}

// A record of `n` series, each with one sample; series are labelled with
// the shard and a sequence number so order can be checked at the receiver.
queue::Record MakeRecord(int shard, int seq, int n = 1) {
  prometheus::WriteRequest wr;
  for (int i = 0; i < n; ++i) {
    auto* ts = wr.add_timeseries();
    auto* l = ts->add_labels();
    l->set_name("__name__");
    l->set_value("test_metric");
    l = ts->add_labels();
    l->set_name("seq");
    l->set_value(std::to_string(seq));
    l = ts->add_labels();
    l->set_name("series");
    l->set_value(std::to_string(i));
    l = ts->add_labels();
    l->set_name("shard");
    l->set_value(std::to_string(shard));
    auto* s = ts->add_samples();
    s->set_value(seq * 1000 + i);
    s->set_timestamp(1700000000000 + seq);
  }
  queue::Record r;
  r.payload = wr.SerializeAsString();
  r.samples = n;
  r.series = n;
  return r;
}

prometheus::WriteRequest Decode(const std::string& body) {
  std::string raw;
  REQUIRE(snappy::Uncompress(body.data(), body.size(), &raw));
  prometheus::WriteRequest wr;
  REQUIRE(wr.ParseFromString(raw));
  return wr;
}

std::string Label(const prometheus::TimeSeries& ts, const std::string& name) {
  for (const auto& l : ts.labels()) {
    if (l.name() == name) return l.value();
  }
  return "";
}

void Append(TestQueue& q, queue::Record r) {
  std::vector<queue::Record> v;
  v.push_back(std::move(r));
  REQUIRE(q.Append(std::move(v), nullptr).ok());
}

struct Metrics {
  metrics::Registry reg;
  double Counter(const std::string& name, const std::string& reason = "") {
    if (reason.empty()) {
      return reg.AddCounter(name, "", {"destination"}).With({"dest"}).Value();
    }
    return reg.AddCounter(name, "", {"destination", "reason"})
        .With({"dest", reason})
        .Value();
  }
  double Sent() { return Counter("promrelay_sent_samples_total"); }
  double Retries() { return Counter("promrelay_send_retries_total"); }
  double Errors(const std::string& reason) {
    return Counter("promrelay_send_errors_total", reason);
  }
  double Dropped(const std::string& reason) {
    return Counter("promrelay_dropped_samples_total", reason);
  }
};

// A sender on the queues, on `loop` (nullptr: its own threads).
std::unique_ptr<DestinationSender> MakeSender(
    const config::Destination& dest, std::vector<std::shared_ptr<TestQueue>> qs,
    Metrics& m, PrivateLoop* loop = nullptr) {
  std::vector<std::shared_ptr<queue::Queue>> base(qs.begin(), qs.end());
  auto sender = DestinationSender::Create(dest, base, &m.reg,
                                          loop ? &loop->context() : nullptr);
  REQUIRE(sender.ok());
  return *std::move(sender);
}

// A destination whose batches leave only when they hold
// `max_samples_per_send` samples, or at Stop(): the deadline is an hour.
config::Destination MakeHeldDest(const std::string& url,
                                 int max_samples_per_send) {
  config::Destination d = MakeDest(url);
  d.queue_config.batch_send_deadline = absl::Hours(1);
  d.queue_config.max_samples_per_send = max_samples_per_send;
  return d;
}

// Sends everything `q` holds: a sender started on it, the queue drained,
// then Stop() with `stop_within`; returns what Stop() returns.
uint64_t SendAll(const config::Destination& dest, std::shared_ptr<TestQueue> q,
                 Metrics& m, absl::Duration stop_within) {
  auto sender = MakeSender(dest, {q}, m);
  sender->Start();
  REQUIRE(q->WaitEmpty());
  return sender->Stop(absl::Now() + stop_within);
}

// Samples in the bodies of requests the server answered 2xx, in order.
std::vector<prometheus::TimeSeries> Accepted(
    const std::vector<testing::RecordedRequest>& reqs,
    const std::set<size_t>& rejected = {}) {
  std::vector<prometheus::TimeSeries> out;
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (rejected.count(i)) continue;
    auto wr = Decode(reqs[i].body);
    for (const auto& ts : wr.timeseries()) out.push_back(ts);
  }
  return out;
}

TEST_CASE(
    "batches arrive decodable with every sample and the protocol headers") {
  TestServer server;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  for (int i = 0; i < 3; ++i) Append(*q, MakeRecord(0, i, 5));
  REQUIRE(SendAll(MakeDest(server.Url()), q, m, absl::Seconds(10)) == 0);

  auto reqs = server.Requests();
  REQUIRE(!reqs.empty());
  auto series = Accepted(reqs);
  CHECK(series.size() == 15);
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& ts : series) {
    REQUIRE(ts.samples_size() == 1);
    seen.insert({Label(ts, "seq"), Label(ts, "series")});
  }
  CHECK(seen.size() == 15);
  const auto& h = reqs[0].headers;
  CHECK(reqs[0].method == "POST");
  CHECK(reqs[0].target == "/api/v1/write");
  CHECK(h.at("content-encoding") == "snappy");
  CHECK(h.at("content-type") == "application/x-protobuf");
  CHECK(h.at("x-prometheus-remote-write-version") == "0.1.0");
  CHECK(absl::StartsWith(h.at("user-agent"), "promrelay/"));
  CHECK(h.at("host") == absl::StrCat("127.0.0.1:", server.port()));
  CHECK(h.count("authorization") == 0);
  CHECK(m.Sent() == 15);
  CHECK(m.Counter("promrelay_sent_batches_total") == reqs.size());
  CHECK(m.Retries() == 0);
}

// `r` as the pipeline queues it: a snappy block.
queue::Record Compressed(queue::Record r) {
  std::string block;
  snappy::Compress(r.payload.data(), r.payload.size(), &block);
  r.payload = std::move(block);
  r.compressed = true;
  return r;
}

TEST_CASE("compressed and uncompressed records join into one valid body") {
  TestServer server;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  for (int i = 0; i < 6; ++i) {
    queue::Record r = MakeRecord(0, i, 4);
    Append(*q, i % 2 == 0 ? Compressed(std::move(r)) : std::move(r));
  }
  REQUIRE(SendAll(MakeDest(server.Url()), q, m, absl::Seconds(10)) == 0);
  // All six were queued before the sender started: one Read, one body.
  REQUIRE(server.Requests().size() == 1);
  auto series = Accepted(server.Requests());
  REQUIRE(series.size() == 24);
  for (size_t i = 0; i < series.size(); ++i) {
    CHECK(Label(series[i], "seq") == std::to_string(i / 4));
    CHECK(Label(series[i], "series") == std::to_string(i % 4));
  }
  CHECK(m.Sent() == 24);
}

TEST_CASE("a batch is split so no request exceeds 16 MiB uncompressed") {
  TestServer server;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  // Four records of one 5 MiB series each: 20 MiB of WriteRequest that
  // compresses to well under a MiB, so one Read() returns all of them.
  for (int i = 0; i < 4; ++i) {
    queue::Record r = MakeRecord(0, i, 1);
    prometheus::WriteRequest wr;
    REQUIRE(wr.ParseFromString(r.payload));
    auto* big = wr.mutable_timeseries(0)->add_labels();
    big->set_name("zz_big");
    big->set_value(std::string(5u << 20, static_cast<char>('a' + i)));
    r.payload = wr.SerializeAsString();
    Append(*q, Compressed(std::move(r)));
  }
  REQUIRE(SendAll(MakeDest(server.Url()), q, m, absl::Seconds(10)) == 0);
  // One Read() of all four: 3 x 5 MiB fit under 16 MiB, the fourth goes
  // alone; each part committed after its own request.
  auto reqs = server.Requests();
  REQUIRE(reqs.size() == 2);
  CHECK(q->commits() == 2);
  size_t series = 0;
  for (const auto& req : reqs) {
    std::string raw;
    REQUIRE(snappy::Uncompress(req.body.data(), req.body.size(), &raw));
    CHECK(raw.size() <= (16u << 20));  // the sender's request bound
    prometheus::WriteRequest wr;
    REQUIRE(wr.ParseFromString(raw));
    for (const auto& ts : wr.timeseries()) {
      CHECK(Label(ts, "seq") == std::to_string(series));
      ++series;
    }
  }
  CHECK(series == 4);
  CHECK(m.Sent() == 4);
}

TEST_CASE("batches respect max_samples_per_send") {
  TestServer server;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  for (int i = 0; i < 10; ++i) Append(*q, MakeRecord(0, i, 3));
  auto dest = MakeDest(server.Url());
  dest.queue_config.max_samples_per_send = 7;  // two 3-sample records
  SendAll(dest, q, m, absl::ZeroDuration());
  auto reqs = server.Requests();
  CHECK(reqs.size() == 5);
  for (const auto& r : reqs) CHECK(Decode(r.body).timeseries_size() <= 7);
  CHECK(m.Sent() == 30);
}

TEST_CASE("basic auth, bearer token and custom headers are sent") {
  TestServer server;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  auto dest = MakeDest(server.Url());
  dest.headers["X-Scope-OrgID"] = "tenant-1";
  std::string want_auth;
  SECTION("basic") {
    dest.basic_auth = config::BasicAuth{"user", "s3cret:pw", ""};
    want_auth = "Basic " + absl::Base64Escape("user:s3cret:pw");
  }
  SECTION("bearer") {
    dest.bearer_token = "tok-123";
    want_auth = "Bearer tok-123";
  }
  SECTION("userinfo in the URL when there is no basic_auth") {
    dest.url = absl::StrCat("http://u%40x:p%3Aw@127.0.0.1:", server.port(),
                            "/api/v1/write");
    want_auth = "Basic " + absl::Base64Escape("u@x:p:w");
  }
  Append(*q, MakeRecord(0, 0));
  SendAll(dest, q, m, absl::ZeroDuration());
  auto reqs = server.Requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].headers.at("authorization") == want_auth);
  CHECK(reqs[0].headers.at("x-scope-orgid") == "tenant-1");
  CHECK(reqs[0].target == "/api/v1/write");
}

TEST_CASE("a rotated password_file is re-read after a 401") {
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("promrelay-fwd-" + std::to_string(::getpid())))
                        .string();
  std::filesystem::create_directories(dir);
  std::string file = dir + "/password";
  std::ofstream(file) << "old-pass\n";
  std::atomic<bool> rotated{false};
  TestServer server;
  server.SetHandler([&](const testing::RecordedRequest& r) {
    std::string want = rotated ? "new-pass" : "old-pass";
    Reply reply;
    if (r.headers.count("authorization") == 0 ||
        r.headers.at("authorization") !=
            "Basic " + absl::Base64Escape("user:" + want)) {
      reply.status = 401;
    }
    return reply;
  });
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  auto dest = MakeDest(server.Url());
  dest.basic_auth = config::BasicAuth{"user", "old-pass", file};
  auto sender = MakeSender(dest, {q}, m);
  sender->Start();
  Append(*q, MakeRecord(0, 0));
  REQUIRE(q->WaitEmpty());
  REQUIRE(server.RequestCount() == 1);

  // Rotate while the connection stays open: only the 401 makes the sender
  // look at the file again.
  std::ofstream(file, std::ios::trunc) << "new-pass\n";
  rotated = true;
  Append(*q, MakeRecord(0, 1));
  REQUIRE(q->WaitEmpty());
  sender->Stop(absl::Now());
  CHECK(server.RequestCount() == 3);
  CHECK(m.Sent() == 2);
  CHECK(m.Dropped("http_401") == 0);
  CHECK(m.Retries() == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a rotated bearer_token_file is re-read on a new connection") {
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("promrelay-fwd-bearer-" + std::to_string(::getpid())))
                        .string();
  std::filesystem::create_directories(dir);
  std::string file = dir + "/token";
  std::ofstream(file) << "token-1\n";
  TestServer server;
  Reply close;
  close.close = true;
  server.SetDefault(close);
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  auto dest = MakeDest(server.Url());
  dest.bearer_token = "token-1";
  dest.bearer_token_file = file;
  auto sender = MakeSender(dest, {q}, m);
  sender->Start();
  Append(*q, MakeRecord(0, 0));
  REQUIRE(q->WaitEmpty());
  std::ofstream(file, std::ios::trunc) << "token-2\n";
  Append(*q, MakeRecord(0, 1));
  REQUIRE(q->WaitEmpty());
  sender->Stop(absl::Now());
  auto reqs = server.Requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].headers.at("authorization") == "Bearer token-1");
  CHECK(reqs[1].headers.at("authorization") == "Bearer token-2");
  CHECK(m.Retries() == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("500 is retried until 204 and delivered once") {
  TestServer server;
  server.Script({Reply{500, {}, "overloaded"}, Reply{502}, Reply{204}});
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  Append(*q, MakeRecord(0, 0, 4));
  SendAll(MakeDest(server.Url()), q, m, absl::ZeroDuration());
  auto reqs = server.Requests();
  REQUIRE(reqs.size() == 3);
  // The same bytes every time: the batch was neither split nor changed.
  CHECK(reqs[1].body == reqs[0].body);
  CHECK(reqs[2].body == reqs[0].body);
  CHECK(m.Sent() == 4);
  CHECK(m.Counter("promrelay_sent_batches_total") == 1);
  CHECK(m.Retries() == 2);
  CHECK(m.Errors("http_5xx") == 2);
  CHECK(q->committed_samples() == 4);
}

TEST_CASE("429 is retried after Retry-After") {
  TestServer server;
  server.Script({Reply{429, {{"Retry-After", "1"}}, "slow down"}});
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  Append(*q, MakeRecord(0, 0, 2));
  SendAll(MakeDest(server.Url()), q, m, absl::ZeroDuration());
  auto reqs = server.Requests();
  REQUIRE(reqs.size() == 2);
  // A lower bound only: the backoff alone (<= 5ms) would retry far sooner.
  CHECK(reqs[1].received - reqs[0].received >= absl::Milliseconds(990));
  CHECK(m.Errors("http_429") == 1);
  CHECK(m.Retries() == 1);
  CHECK(m.Sent() == 2);
}

TEST_CASE("non-retryable statuses drop the batch and count it") {
  int status = GENERATE(400, 401, 404, 413);
  TestServer server;
  server.Script({Reply{status, {}, "bad request: out of order sample"}});
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  Append(*q, MakeRecord(0, 0, 3));
  Append(*q, MakeRecord(0, 1, 2));
  auto dest = MakeDest(server.Url());
  dest.queue_config.max_samples_per_send = 3;  // one record per batch
  SendAll(dest, q, m, absl::ZeroDuration());
  CHECK(server.RequestCount() == 2);  // first dropped, second delivered
  CHECK(m.Dropped(absl::StrCat("http_", status)) == 3);
  CHECK(m.Sent() == 2);
  CHECK(m.Retries() == 0);
  CHECK(m.Errors("http_4xx") == 1);
}

TEST_CASE("429 without retry_on_http_429 is a counted drop") {
  TestServer server;
  server.Script({Reply{429}});
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  Append(*q, MakeRecord(0, 0, 3));
  auto dest = MakeDest(server.Url());
  dest.queue_config.retry_on_http_429 = false;
  SendAll(dest, q, m, absl::ZeroDuration());
  CHECK(server.RequestCount() == 1);
  CHECK(m.Dropped("http_429") == 3);
  CHECK(m.Retries() == 0);
}

TEST_CASE("one keep-alive connection carries many requests") {
  TestServer server;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  auto sender = MakeSender(MakeDest(server.Url()), {q}, m);
  sender->Start();
  for (int i = 0; i < 6; ++i) {
    Append(*q, MakeRecord(0, i));
    REQUIRE(server.WaitForRequests(i + 1));
    REQUIRE(q->WaitEmpty());
  }
  sender->Stop(absl::Now());
  CHECK(server.RequestCount() == 6);
  CHECK(server.Connections() == 1);
}

TEST_CASE("Connection: close and idle-closed connections are reopened") {
  TestServer server;
  Metrics m;
  bool silent = GENERATE(false, true);
  Reply r;
  r.close = !silent;
  r.silent_close = silent;
  server.SetDefault(r);
  auto q = std::make_shared<TestQueue>();
  auto sender = MakeSender(MakeDest(server.Url()), {q}, m);
  sender->Start();
  for (int i = 0; i < 4; ++i) {
    Append(*q, MakeRecord(0, i));
    REQUIRE(q->WaitEmpty());
  }
  sender->Stop(absl::Now());
  CHECK(server.RequestCount() == 4);
  CHECK(server.Connections() == 4);
  CHECK(m.Sent() == 4);
  // A connection the server closed while idle is not an error.
  CHECK(m.Retries() == 0);
  CHECK(m.Errors("network") == 0);
}

TEST_CASE("per-shard order is kept through retries") {
  TestServer server;
  std::set<size_t> rejected;
  std::mutex mu;
  int n = 0;
  server.SetHandler([&](const testing::RecordedRequest&) {
    Reply reply;
    std::lock_guard<std::mutex> lock(mu);
    if (++n % 3 == 0) {
      reply.status = 503;
      rejected.insert(n - 1);
    }
    return reply;
  });
  Metrics m;
  constexpr int kShards = 3, kRecords = 40;
  std::vector<std::shared_ptr<TestQueue>> qs;
  for (int s = 0; s < kShards; ++s) qs.push_back(std::make_shared<TestQueue>());
  auto dest = MakeDest(server.Url());
  dest.queue_config.max_samples_per_send = 5;
  auto sender = MakeSender(dest, qs, m);
  sender->Start();
  for (int i = 0; i < kRecords; ++i) {
    for (int s = 0; s < kShards; ++s) Append(*qs[s], MakeRecord(s, i, 2));
  }
  for (auto& q : qs) REQUIRE(q->WaitEmpty());
  sender->Stop(absl::Now());
  std::set<size_t> rej;
  {
    std::lock_guard<std::mutex> lock(mu);
    rej = rejected;
  }
  auto series = Accepted(server.Requests(), rej);
  REQUIRE(series.size() == kShards * kRecords * 2);
  std::map<std::string, int> last_seq;
  std::set<std::tuple<std::string, std::string, std::string>> unique;
  for (const auto& ts : series) {
    std::string shard = Label(ts, "shard");
    int seq = std::stoi(Label(ts, "seq"));
    auto it = last_seq.find(shard);
    if (it != last_seq.end()) CHECK(seq >= it->second);
    last_seq[shard] = seq;
    unique.insert({shard, Label(ts, "seq"), Label(ts, "series")});
  }
  CHECK(unique.size() == series.size());  // no accepted duplicates
  CHECK(m.Sent() == kShards * kRecords * 2);
  CHECK(m.Retries() == rej.size());
}

TEST_CASE("Stop drains partial batches at once") {
  TestServer server;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  auto sender = MakeSender(MakeHeldDest(server.Url(), 1000), {q}, m);
  sender->Start();
  for (int i = 0; i < 5; ++i) Append(*q, MakeRecord(0, i, 2));
  CHECK(sender->Stop(absl::Now() + absl::Seconds(30)) == 0);
  CHECK(q->size() == 0);
  CHECK(Accepted(server.Requests()).size() == 10);
  CHECK(m.Sent() == 10);
  // Idempotent.
  CHECK(sender->Stop(absl::Now()) == 0);
}

TEST_CASE("works with the memory queue, closed before Stop") {
  TestServer server;
  server.Script({Reply{500}});
  Metrics m;
  std::vector<std::shared_ptr<queue::Queue>> qs;
  for (int i = 0; i < 2; ++i) {
    qs.push_back(queue::NewMemoryQueue(1 << 20, queue::OnFull::kReject));
  }
  auto dest = MakeDest(server.Url());
  dest.queue_config.max_samples_per_send = 4;
  SECTION("sent while running") {}
  SECTION("only drained by Stop") {
    dest.queue_config.batch_send_deadline = absl::Hours(1);
    dest.queue_config.max_samples_per_send = 1000;
  }
  auto sender = DestinationSender::Create(dest, qs, &m.reg);
  REQUIRE(sender.ok());
  (*sender)->Start();
  for (int i = 0; i < 10; ++i) {
    for (int s = 0; s < 2; ++s) {
      std::vector<queue::Record> v;
      v.push_back(MakeRecord(s, i, 2));
      REQUIRE(qs[s]->Append(std::move(v), nullptr).ok());
    }
  }
  for (auto& q : qs) q->Close();
  CHECK((*sender)->Stop(absl::Now() + absl::Seconds(60)) == 0);
  auto reqs = server.Requests();
  auto series = Accepted(reqs, {0});
  CHECK(series.size() == 40);
  CHECK(m.Sent() == 40);
  CHECK(m.Retries() == 1);
  for (auto& q : qs) CHECK(q->GetStats().records == 0);
}

// The proxy passes its I/O threads' loop; the records are appended from
// that loop's threads, as ingest requests do, so a full batch leaves from
// the appending thread.
TEST_CASE("shards on the caller's loop deliver once and in order") {
  TestServer server;
  server.SetHandler([n = std::make_shared<std::atomic<int>>(0)](
                        const testing::RecordedRequest&) {
    Reply reply;
    if (n->fetch_add(1) % 5 == 4) reply.status = 503;
    return reply;
  });
  Metrics m;
  PrivateLoop loop;
  loop.Run(2, nullptr);
  constexpr int kShards = 3, kRecords = 60;
  std::vector<std::shared_ptr<TestQueue>> qs;
  for (int s = 0; s < kShards; ++s) qs.push_back(std::make_shared<TestQueue>());
  auto sender = MakeSender(MakeHeldDest(server.Url(), 6), qs, m, &loop);
  sender->Start();
  // One appender per shard, each a handler on the loop (like a request).
  std::latch appended(kShards);
  for (int s = 0; s < kShards; ++s) {
    boost::asio::post(loop.context(), [q = qs[s], s, &appended] {
      for (int i = 0; i < kRecords; ++i) Append(*q, MakeRecord(s, i, 2));
      appended.count_down();
    });
  }
  appended.wait();
  // Full batches only (kRecords * 2 is a multiple of 6): nothing waits for
  // the one-hour deadline, so every record leaves before Stop.
  for (auto& q : qs) REQUIRE(q->WaitEmpty());
  CHECK(sender->Stop(absl::Now() + absl::Seconds(30)) == 0);

  std::set<size_t> rejected;
  auto reqs = server.Requests();
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (i % 5 == 4) rejected.insert(i);
  }
  auto series = Accepted(reqs, rejected);
  REQUIRE(series.size() == kShards * kRecords * 2);
  std::map<std::string, int> last_seq;
  for (const auto& ts : series) {
    const std::string shard = Label(ts, "shard");
    const int seq = std::stoi(Label(ts, "seq"));
    auto it = last_seq.find(shard);
    if (it != last_seq.end()) CHECK(seq >= it->second);
    last_seq[shard] = seq;
  }
  CHECK(m.Sent() == kShards * kRecords * 2);
  CHECK(m.Retries() == rejected.size());
}

TEST_CASE("on the caller's loop, host names are looked up and connected") {
  TestServer server;
  Metrics m;
  PrivateLoop loop;
  loop.Run(1, nullptr);
  auto q = std::make_shared<TestQueue>();
  std::string url = server.Url();
  url.replace(url.find("127.0.0.1"), 9, "localhost");
  auto sender = MakeSender(MakeDest(url), {q}, m, &loop);
  sender->Start();
  for (int i = 0; i < 3; ++i) Append(*q, MakeRecord(0, i, 2));
  REQUIRE(q->WaitEmpty());
  CHECK(sender->Stop(absl::Now()) == 0);
  CHECK(m.Sent() == 6);
  CHECK(server.Connections() == 1);
}

TEST_CASE("a queue that never calls its listener is still drained") {
  TestServer server;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  q->set_notify_listener(false);
  auto sender = MakeSender(MakeHeldDest(server.Url(), 4), {q}, m);
  sender->Start();
  for (int i = 0; i < 6; ++i) Append(*q, MakeRecord(0, i, 2));
  // Three full batches; only the shard's own polling can find them.
  REQUIRE(q->WaitEmpty());
  CHECK(server.RequestCount() == 3);
  CHECK(sender->Stop(absl::Now()) == 0);
  CHECK(m.Sent() == 12);
}

TEST_CASE("Stop returns when the caller's loop does not run") {
  TestServer server;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  PrivateLoop loop;  // never Run(): no thread ever runs the shards
  auto sender = MakeSender(MakeDest(server.Url()), {q}, m, &loop);
  sender->Start();
  for (int i = 0; i < 3; ++i) Append(*q, MakeRecord(0, i, 2));
  // Nothing could be sent; what is queued is reported, and the sender (and
  // then the loop, with the shards' handlers) is destroyed cleanly.
  CHECK(sender->Stop(absl::Now()) == 6);
  CHECK(server.RequestCount() == 0);
  sender.reset();
}

// A port nothing listens on: bind one, then close it.
int DeadPort() {
  TestServer s;
  return s.port();
}

TEST_CASE("a dead destination keeps its data, retries, and blocks no one") {
  TestServer live;
  Metrics m;
  auto dead_q = std::make_shared<TestQueue>();
  auto live_q = std::make_shared<TestQueue>();
  auto dead_dest =
      MakeDest(absl::StrCat("http://127.0.0.1:", DeadPort(), "/w"));
  auto dead = MakeSender(dead_dest, {dead_q}, m);
  auto live_dest = MakeDest(live.Url());
  live_dest.name = "live";
  auto live_sender = MakeSender(live_dest, {live_q}, m);
  dead->Start();
  live_sender->Start();
  for (int i = 0; i < 20; ++i) {
    Append(*dead_q, MakeRecord(0, i));
    Append(*live_q, MakeRecord(0, i));
  }
  REQUIRE(live_q->WaitEmpty());
  CHECK(live_sender->Stop(absl::Now()) == 0);
  // Wait for a few failed attempts, then give up.
  while (m.Retries() < 3)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(dead->Stop(absl::Now() + absl::Milliseconds(50)) == 20);
  CHECK(dead_q->size() == 20);
  CHECK(m.Errors("network") >= 3);
  CHECK(m.Sent() == 0);
  CHECK(m.reg.AddCounter("promrelay_sent_samples_total", "", {"destination"})
            .With({"live"})
            .Value() == 20);
  CHECK(m.reg.AddGauge("promrelay_destination_up", "", {"destination"})
            .With({"dest"})
            .Value() == 0);
}

TEST_CASE("remote_timeout bounds a request that hangs") {
  TestServer server;
  Reply slow;
  slow.delay = absl::Seconds(30);
  server.Script({slow});
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  Append(*q, MakeRecord(0, 0));
  auto dest = MakeDest(server.Url());
  dest.remote_timeout = absl::Milliseconds(200);
  SendAll(dest, q, m, absl::ZeroDuration());
  CHECK(m.Errors("timeout") == 1);
  CHECK(m.Retries() == 1);
  CHECK(server.RequestCount() == 2);
  CHECK(m.Sent() == 1);
}

TEST_CASE("queue gauges come from the queues through the registry") {
  Metrics m;
  auto q1 = std::make_shared<TestQueue>();
  auto q2 = std::make_shared<TestQueue>();
  auto r1 = MakeRecord(0, 0, 3);
  auto r2 = MakeRecord(1, 0, 4);
  uint64_t bytes = r1.payload.size() + r2.payload.size();
  r1.enqueue_unix_nanos = absl::ToUnixNanos(absl::Now() - absl::Seconds(100));
  Append(*q1, r1);
  Append(*q2, r2);
  auto sender = MakeSender(MakeDest("http://127.0.0.1:1/"), {q1, q2}, m);
  std::string text = m.reg.Expose();
  CHECK_THAT(text, Catch::Contains(absl::StrCat(
                       "promrelay_queue_bytes{destination=\"dest\"} ", bytes)));
  CHECK_THAT(
      text, Catch::Contains("promrelay_queue_samples{destination=\"dest\"} 7"));
  double age =
      m.reg.AddGauge("promrelay_queue_oldest_age_seconds", "", {"destination"})
          .With({"dest"})
          .Value();
  CHECK(age >= 100);
  sender.reset();
  // The refresher must not touch a destroyed sender.
  CHECK(!m.reg.Expose().empty());
}

TEST_CASE("Create rejects bad URLs and unreadable TLS files without secrets") {
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  std::vector<std::shared_ptr<queue::Queue>> qs{q};
  auto dest = MakeDest("ftp://user:hunter2@example.com/");
  auto s = DestinationSender::Create(dest, qs, &m.reg);
  REQUIRE(!s.ok());
  CHECK_THAT(std::string(s.status().message()), !Catch::Contains("hunter2"));
  CHECK_THAT(std::string(s.status().message()), Catch::Contains("scheme"));

  dest = MakeDest("https://127.0.0.1:1/");
  dest.tls_config.ca_file = "/nonexistent/ca.pem";
  s = DestinationSender::Create(dest, qs, &m.reg);
  REQUIRE(!s.ok());
  CHECK_THAT(std::string(s.status().message()), Catch::Contains("ca_file"));

  CHECK(!DestinationSender::Create(MakeDest("http://127.0.0.1:1/"), {}, &m.reg)
             .ok());
}

// ---- TLS ----

struct TlsFixture {
  TestPki pki;
  std::unique_ptr<TestServer> server;
  explicit TlsFixture(bool require_client_cert = false) {
    REQUIRE(pki.ok);
    TestServer::Options o;
    o.tls = true;
    o.cert_file = pki.server_cert;
    o.key_file = pki.server_key;
    if (require_client_cert) o.client_ca_file = pki.ca_cert;
    server = std::make_unique<TestServer>(o);
  }
};

TEST_CASE("TLS with ca_file verifies the server and delivers") {
  TlsFixture f;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  auto dest = MakeDest(f.server->Url());
  dest.tls_config.ca_file = f.pki.ca_cert;
  SECTION("IP address in the URL") {}
  SECTION("server_name matching a DNS SAN") {
    dest.tls_config.server_name = "localhost";
  }
  Append(*q, MakeRecord(0, 0, 3));
  SendAll(dest, q, m, absl::ZeroDuration());
  CHECK(Accepted(f.server->Requests()).size() == 3);
  CHECK(m.Errors("tls") == 0);
}

TEST_CASE("TLS verification failures are retried errors; data is kept") {
  TlsFixture f;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  auto dest = MakeDest(f.server->Url());
  SECTION("wrong CA") { dest.tls_config.ca_file = f.pki.other_ca_cert; }
  SECTION("system CAs do not know the test CA") {}
  SECTION("server_name not in the certificate") {
    dest.tls_config.ca_file = f.pki.ca_cert;
    dest.tls_config.server_name = "wrong.example";
  }
  Append(*q, MakeRecord(0, 0, 3));
  auto sender = MakeSender(dest, {q}, m);
  sender->Start();
  REQUIRE(f.server->WaitForHandshakeFailures(2));
  while (m.Errors("tls") < 2)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  CHECK(f.server->RequestCount() == 0);
  CHECK(q->size() == 1);
  CHECK(m.Retries() >= 1);

  // Fixing the config by reload delivers what was kept.
  dest.tls_config.ca_file = f.pki.ca_cert;
  dest.tls_config.server_name = "";
  REQUIRE(sender->UpdateConfig(dest).ok());
  REQUIRE(q->WaitEmpty());
  sender->Stop(absl::Now());
  CHECK(Accepted(f.server->Requests()).size() == 3);
  CHECK(m.Sent() == 3);
}

TEST_CASE("insecure_skip_verify accepts an unknown CA") {
  TlsFixture f;
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  auto dest = MakeDest(f.server->Url());
  dest.tls_config.ca_file = f.pki.other_ca_cert;
  dest.tls_config.server_name = "wrong.example";
  dest.tls_config.insecure_skip_verify = true;
  Append(*q, MakeRecord(0, 0, 2));
  SendAll(dest, q, m, absl::ZeroDuration());
  CHECK(m.Sent() == 2);
  CHECK(m.Errors("tls") == 0);
}

TEST_CASE("client certificates are presented when configured") {
  TlsFixture f(/*require_client_cert=*/true);
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  auto dest = MakeDest(f.server->Url());
  dest.tls_config.ca_file = f.pki.ca_cert;
  SECTION("with a certificate") {
    dest.tls_config.cert_file = f.pki.client_cert;
    dest.tls_config.key_file = f.pki.client_key;
    Append(*q, MakeRecord(0, 0, 2));
    auto sender = MakeSender(dest, {q}, m);
    sender->Start();
    REQUIRE(q->WaitEmpty());
    sender->Stop(absl::Now());
    CHECK(m.Sent() == 2);
  }
  SECTION("without one the server refuses") {
    Append(*q, MakeRecord(0, 0, 2));
    auto sender = MakeSender(dest, {q}, m);
    sender->Start();
    REQUIRE(f.server->WaitForHandshakeFailures(1));
    while (m.Errors("tls") < 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    sender->Stop(absl::Now());
    CHECK(m.Sent() == 0);
    CHECK(q->size() == 1);
  }
}

TEST_CASE("secrets never reach the logs") {
  std::mutex mu;
  std::string logs;
  logging::SetSinkForTesting([&](std::string_view line) {
    std::lock_guard<std::mutex> lock(mu);
    logs.append(line);
  });
  TestServer server;
  server.Script({Reply{500, {}, "oops"}, Reply{401, {}, "who are you"}});
  Metrics m;
  auto q = std::make_shared<TestQueue>();
  auto dest =
      MakeDest(absl::StrCat("http://urluser:urlpass@127.0.0.1:", server.port(),
                            "/api/v1/write?token=qsecret"));
  dest.headers["X-Api-Key"] = "hdrsecret";
  Append(*q, MakeRecord(0, 0, 2));
  SendAll(dest, q, m, absl::ZeroDuration());
  logging::SetSinkForTesting(nullptr);
  CHECK(m.Dropped("http_401") == 2);
  std::lock_guard<std::mutex> lock(mu);
  CHECK_THAT(logs, Catch::Contains("who are you"));
  CHECK_THAT(logs, Catch::Contains("127.0.0.1"));
  for (const char* secret : {"urlpass", "urluser", "qsecret", "hdrsecret"}) {
    CHECK_THAT(logs, !Catch::Contains(secret));
  }
}

}  // namespace
}  // namespace promrelay::forward
