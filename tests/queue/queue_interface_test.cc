// Queue contract tests, run against every implementation (memory and the
// disk queue with each fsync policy).
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proxy/queue/queue.h"
#include "tests/queue/test_util.h"

namespace promrelay::queue {
namespace {

using testing::AllKinds;
using testing::Kind;
using testing::KindName;
using testing::MakeQueue;
using testing::MakeRecord;
using testing::One;
using testing::Payloads;
using testing::RecordCost;
using testing::TempDir;

constexpr uint64_t kBig = 1ull << 30;
const absl::Duration kForever = absl::InfiniteDuration();

std::vector<std::string> Strs(std::initializer_list<const char*> l) {
  return std::vector<std::string>(l.begin(), l.end());
}

// Runs a blocking Read on another thread so a broken implementation fails
// the test instead of hanging it: after a generous limit the queue is closed.
class AsyncRead {
 public:
  AsyncRead(Queue& q, size_t max_samples, absl::Duration deadline,
            absl::Duration wait)
      : q_(q) {
    fut_ = std::async(std::launch::async, [&q, max_samples, deadline, wait] {
      return q.Read(max_samples, deadline, wait);
    });
  }
  bool ReadyWithin(std::chrono::milliseconds ms) {
    return fut_.wait_for(ms) == std::future_status::ready;
  }
  absl::StatusOr<std::vector<Record>> Get() {
    if (!ReadyWithin(std::chrono::seconds(60))) {
      FAIL_CHECK("Read did not return");
      q_.Close();
    }
    return fut_.get();
  }

 private:
  Queue& q_;
  std::future<absl::StatusOr<std::vector<Record>>> fut_;
};

TEST_CASE("queue: FIFO order, Read does not remove, Commit does") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      auto q = MakeQueue(kind, dir.Sub("q"), kBig, OnFull::kReject);
      for (int i = 0; i < 5; ++i) {
        REQUIRE(
            q->Append(One(MakeRecord(absl::StrCat("r", i), 1)), nullptr).ok());
      }
      auto r = q->Read(3, kForever, kForever);
      REQUIRE(r.ok());
      CHECK(Payloads(*r) == Strs({"r0", "r1", "r2"}));
      r = q->Read(3, kForever, kForever);
      REQUIRE(r.ok());
      CHECK(Payloads(*r) == Strs({"r0", "r1", "r2"}));
      CHECK(q->GetStats().records == 5);
      REQUIRE(q->Commit(2).ok());
      CHECK(q->GetStats().records == 3);
      r = q->Read(10, absl::ZeroDuration(), absl::ZeroDuration());
      REQUIRE(r.ok());
      CHECK(Payloads(*r) == Strs({"r2", "r3", "r4"}));
      REQUIRE(q->Commit(1).ok());  // one Read may be committed in parts
      REQUIRE(q->Commit(2).ok());
      auto s = q->GetStats();
      CHECK(s.records == 0);
      CHECK(s.samples == 0);
      CHECK(s.bytes == 0);
      CHECK(s.oldest_enqueue_unix_nanos == 0);
    }
  }
}

// A record with every field set to something a queue could get wrong
// (binary payload with NUL and 0xff, the compressed flag), and the check
// that a record read back still has them all.
Record AllFieldsRecord() {
  Record rec;
  rec.payload = std::string("\0\x01\xff binary", 10);
  rec.compressed = true;
  rec.samples = 7;
  rec.series = 3;
  rec.enqueue_unix_nanos = 1234567890123;
  return rec;
}

void CheckAllFields(const Record& r) {
  CHECK(r.payload == std::string("\0\x01\xff binary", 10));
  CHECK(r.compressed);
  CHECK(r.samples == 7);
  CHECK(r.series == 3);
  CHECK(r.enqueue_unix_nanos == 1234567890123);
}

TEST_CASE("queue: records keep their fields") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      auto q = MakeQueue(kind, dir.Sub("q"), kBig, OnFull::kReject);
      const Record rec = AllFieldsRecord();
      REQUIRE(q->Append(One(rec), nullptr).ok());
      Record stamped = MakeRecord("", 0);  // empty payload, stamped now
      const int64_t before = absl::ToUnixNanos(absl::Now());
      REQUIRE(q->Append(One(stamped), nullptr).ok());
      auto r = q->Read(100, absl::ZeroDuration(), absl::ZeroDuration());
      REQUIRE(r.ok());
      REQUIRE(r->size() == 2);
      CheckAllFields((*r)[0]);
      CHECK((*r)[1].payload.empty());
      CHECK((*r)[1].enqueue_unix_nanos >= before);
      CHECK(q->GetStats().oldest_enqueue_unix_nanos == 1234567890123);
    }
  }
}

TEST_CASE("queue: ReadShared hands out what Read does, same contract") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      auto q = MakeQueue(kind, dir.Sub("q"), kBig, OnFull::kReject);
      const Record rec = AllFieldsRecord();
      REQUIRE(q->Append({rec, MakeRecord("b", 5), MakeRecord("c", 5)}, nullptr)
                  .ok());
      auto shared = q->ReadShared(12, kForever, kForever);
      REQUIRE(shared.ok());
      REQUIRE(shared->size() == 2);
      CheckAllFields(*(*shared)[0]);
      CHECK((*shared)[1]->payload == "b");
      // Nothing removed; Read and ReadShared agree.
      auto copied = q->Read(12, kForever, kForever);
      REQUIRE(copied.ok());
      CHECK(Payloads(*copied) == std::vector<std::string>{rec.payload, "b"});
      CHECK((*copied)[0].payload == rec.payload);
      shared = q->ReadShared(12, kForever, kForever);
      REQUIRE(shared.ok());
      REQUIRE(shared->size() == 2);
      // Commit counts against the last read, whichever flavour it was.
      CHECK_FALSE(q->Commit(3).ok());
      REQUIRE(q->Commit(2).ok());
      // The handed-out records outlive their removal from the queue.
      CHECK((*shared)[0]->payload == rec.payload);
      CHECK((*shared)[1]->payload == "b");
      auto rest =
          q->ReadShared(100, absl::ZeroDuration(), absl::ZeroDuration());
      REQUIRE(rest.ok());
      REQUIRE(rest->size() == 1);
      CHECK((*rest)[0]->payload == "c");
      REQUIRE(q->Commit(1).ok());
      CHECK(q->GetStats().records == 0);
      q->Close();
      CHECK(absl::IsUnavailable(
          q->ReadShared(1, absl::ZeroDuration(), absl::ZeroDuration())
              .status()));
    }
  }
}

TEST_CASE("queue: ReadShared records survive drop_oldest") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      const std::string p(100, 'p');
      const uint64_t cost = RecordCost(kind, p.size() + 1);
      auto q = MakeQueue(kind, dir.Sub("q"), 2 * cost, OnFull::kDropOldest);
      REQUIRE(
          q->Append({MakeRecord(p + "a", 1), MakeRecord(p + "b", 1)}, nullptr)
              .ok());
      auto shared =
          q->ReadShared(100, absl::ZeroDuration(), absl::ZeroDuration());
      REQUIRE(shared.ok());
      REQUIRE(shared->size() == 2);
      uint64_t dropped = 0;
      REQUIRE(
          q->Append({MakeRecord(p + "c", 1), MakeRecord(p + "d", 1)}, &dropped)
              .ok());
      CHECK(dropped == 2);
      // The sender still holds intact payloads of the dropped records.
      CHECK((*shared)[0]->payload == p + "a");
      CHECK((*shared)[1]->payload == p + "b");
      // Committing them removes nothing that was not handed out.
      REQUIRE(q->Commit(2).ok());
      auto r = q->Read(100, absl::ZeroDuration(), absl::ZeroDuration());
      REQUIRE(r.ok());
      CHECK(Payloads(*r) == std::vector<std::string>{p + "c", p + "d"});
    }
  }
}

TEST_CASE("queue: Read batches by max_samples, at least one record") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      auto q = MakeQueue(kind, dir.Sub("q"), kBig, OnFull::kReject);
      REQUIRE(q->Append({MakeRecord("a", 10), MakeRecord("b", 10),
                         MakeRecord("c", 10), MakeRecord("d", 50),
                         MakeRecord("e", 1)},
                        nullptr)
                  .ok());
      auto r = q->Read(25, kForever, kForever);
      REQUIRE(r.ok());
      CHECK(Payloads(*r) == Strs({"a", "b"}));
      REQUIRE(q->Commit(2).ok());
      r = q->Read(30, kForever, kForever);
      REQUIRE(r.ok());
      CHECK(Payloads(*r) == Strs({"c"}));  // c + d = 60 > 30
      REQUIRE(q->Commit(1).ok());
      // A record larger than max_samples still goes out, alone.
      r = q->Read(20, kForever, kForever);
      REQUIRE(r.ok());
      CHECK(Payloads(*r) == Strs({"d"}));
      REQUIRE(q->Commit(1).ok());
      r = q->Read(1, kForever, kForever);
      REQUIRE(r.ok());
      CHECK(Payloads(*r) == Strs({"e"}));
    }
  }
}

TEST_CASE("queue: Read waits for max_samples, then returns") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      auto q = MakeQueue(kind, dir.Sub("q"), kBig, OnFull::kReject);
      AsyncRead read(*q, 100, kForever, kForever);
      REQUIRE(q->Append(One(MakeRecord("a", 40)), nullptr).ok());
      REQUIRE(q->Append(One(MakeRecord("b", 40)), nullptr).ok());
      // 80 < 100 samples, no deadline, no wait limit: must still be waiting.
      CHECK_FALSE(read.ReadyWithin(std::chrono::milliseconds(100)));
      REQUIRE(q->Append(One(MakeRecord("c", 20)), nullptr).ok());
      auto r = read.Get();
      REQUIRE(r.ok());
      CHECK(Payloads(*r) == Strs({"a", "b", "c"}));
    }
  }
}

TEST_CASE("queue: Read returns when the oldest record reaches the deadline") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      auto q = MakeQueue(kind, dir.Sub("q"), kBig, OnFull::kReject);
      SECTION("already old") {
        const int64_t old = absl::ToUnixNanos(absl::Now() - absl::Seconds(10));
        REQUIRE(q->Append(One(MakeRecord("old", 1, old)), nullptr).ok());
        REQUIRE(q->Append(One(MakeRecord("new", 1)), nullptr).ok());
        auto r = q->Read(1000, absl::Seconds(5), kForever);
        REQUIRE(r.ok());
        CHECK(Payloads(*r) == Strs({"old", "new"}));
      }
      SECTION("becomes old while waiting") {
        AsyncRead read(*q, 1000, absl::Milliseconds(50), kForever);
        REQUIRE(q->Append(One(MakeRecord("x", 1)), nullptr).ok());
        auto r = read.Get();
        REQUIRE(r.ok());
        CHECK(Payloads(*r) == Strs({"x"}));
      }
      SECTION("not yet old: waits") {
        REQUIRE(q->Append(One(MakeRecord("x", 1)), nullptr).ok());
        AsyncRead read(*q, 1000, absl::Hours(1), kForever);
        CHECK_FALSE(read.ReadyWithin(std::chrono::milliseconds(100)));
        q->Close();
        auto r = read.Get();
        REQUIRE(r.ok());
        CHECK(Payloads(*r) == Strs({"x"}));
      }
    }
  }
}

TEST_CASE("queue: Read gives up after wait") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      auto q = MakeQueue(kind, dir.Sub("q"), kBig, OnFull::kReject);
      auto r = q->Read(10, kForever, absl::Milliseconds(20));
      REQUIRE(r.ok());
      CHECK(r->empty());
      REQUIRE(q->Append(One(MakeRecord("x", 1)), nullptr).ok());
      r = q->Read(10, kForever, absl::Milliseconds(20));
      REQUIRE(r.ok());
      CHECK(Payloads(*r) == Strs({"x"}));
      r = q->Read(10, kForever, absl::ZeroDuration());
      REQUIRE(r.ok());
      CHECK(Payloads(*r) == Strs({"x"}));
    }
  }
}

TEST_CASE("queue: Commit never removes more than the last Read handed out") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      auto q = MakeQueue(kind, dir.Sub("q"), kBig, OnFull::kReject);
      CHECK(q->Commit(0).ok());
      CHECK(q->Commit(1).code() == absl::StatusCode::kFailedPrecondition);
      REQUIRE(q->Append(
                   {MakeRecord("a", 1), MakeRecord("b", 1), MakeRecord("c", 1)},
                   nullptr)
                  .ok());
      CHECK(q->Commit(1).code() == absl::StatusCode::kFailedPrecondition);
      auto r = q->Read(2, kForever, kForever);
      REQUIRE(r->size() == 2);
      CHECK(q->Commit(3).code() == absl::StatusCode::kFailedPrecondition);
      CHECK(q->GetStats().records == 3);
      REQUIRE(q->Commit(2).ok());
      CHECK(q->Commit(1).code() == absl::StatusCode::kFailedPrecondition);
      CHECK(q->GetStats().records == 1);
    }
  }
}

TEST_CASE("queue: the read size is capped by payload bytes") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      auto q = MakeQueue(kind, dir.Sub("q"), kBig, OnFull::kReject);
      const std::string chunk(kMaxReadPayloadBytes / 3, 'x');
      for (int i = 0; i < 5; ++i) {
        REQUIRE(q->Append(One(MakeRecord(chunk, 0)), nullptr).ok());
      }
      auto r = q->Read(1000, absl::ZeroDuration(), absl::ZeroDuration());
      REQUIRE(r.ok());
      CHECK(r->size() == 3);
    }
  }
}

TEST_CASE("queue: on_full reject is all-or-none") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      const std::string p(100, 'p');
      const uint64_t cost = RecordCost(kind, p.size());
      auto q = MakeQueue(kind, dir.Sub("q"), 5 * cost, OnFull::kReject);
      REQUIRE(q->Append({MakeRecord(p, 1), MakeRecord(p, 1), MakeRecord(p, 1)},
                        nullptr)
                  .ok());
      uint64_t dropped = 0;
      auto st = q->Append(
          {MakeRecord(p, 1), MakeRecord(p, 1), MakeRecord(p, 1)}, &dropped);
      CHECK(st.code() == absl::StatusCode::kResourceExhausted);
      CHECK(dropped == 0);
      CHECK(q->GetStats().records == 3);
      CHECK(q->GetStats().bytes == 3 * cost);
      // Exactly up to the bound is accepted.
      REQUIRE(q->Append({MakeRecord(p, 1), MakeRecord(p, 1)}, nullptr).ok());
      CHECK(q->GetStats().bytes == 5 * cost);
      CHECK(q->Append(One(MakeRecord("x", 1)), nullptr).code() ==
            absl::StatusCode::kResourceExhausted);
      // More than the whole bound can never fit.
      std::vector<Record> huge;
      for (int i = 0; i < 6; ++i) huge.push_back(MakeRecord(p, 1));
      CHECK(q->Append(std::move(huge), nullptr).code() ==
            absl::StatusCode::kInvalidArgument);
      // Committing frees room.
      auto r = q->Read(2, kForever, kForever);
      REQUIRE(q->Commit(2).ok());
      REQUIRE(q->Append({MakeRecord(p, 1), MakeRecord(p, 1)}, nullptr).ok());
    }
  }
}

TEST_CASE("queue: on_full drop_oldest drops from the front and counts") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      const std::string p(100, 'p');
      const uint64_t cost = RecordCost(kind, p.size() + 2);
      auto q = MakeQueue(kind, dir.Sub("q"), 4 * cost, OnFull::kDropOldest);
      for (int i = 0; i < 4; ++i) {
        REQUIRE(
            q->Append(One(MakeRecord(absl::StrCat(p, "r", i), i + 1)), nullptr)
                .ok());
      }
      uint64_t dropped = 0;
      REQUIRE(q->Append({MakeRecord(p + "r4", 10), MakeRecord(p + "r5", 20)},
                        &dropped)
                  .ok());
      CHECK(dropped == 1 + 2);  // r0 and r1
      auto s = q->GetStats();
      CHECK(s.records == 4);
      CHECK(s.samples == 3 + 4 + 10 + 20);
      CHECK(s.dropped_samples == 3);
      CHECK(s.dropped_records == 2);
      auto r = q->Read(1000, absl::ZeroDuration(), absl::ZeroDuration());
      REQUIRE(r.ok());
      CHECK(Payloads(*r) ==
            std::vector<std::string>{p + "r2", p + "r3", p + "r4", p + "r5"});
    }
  }
}

TEST_CASE("queue: drop_oldest of handed-out records keeps Commit correct") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      const std::string p(100, 'p');
      const uint64_t cost = RecordCost(kind, p.size() + 2);
      auto q = MakeQueue(kind, dir.Sub("q"), 4 * cost, OnFull::kDropOldest);
      for (int i = 0; i < 4; ++i) {
        REQUIRE(q->Append(One(MakeRecord(absl::StrCat(p, "r", i), 1)), nullptr)
                    .ok());
      }
      auto r = q->Read(2, kForever, kForever);
      REQUIRE(Payloads(*r) == std::vector<std::string>{p + "r0", p + "r1"});
      uint64_t dropped = 0;
      SECTION("all handed-out records dropped") {
        // Drops r0, r1 (handed out) and r2 (not).
        REQUIRE(q->Append({MakeRecord(p + "r4", 1), MakeRecord(p + "r5", 1),
                           MakeRecord(p + "r6", 1)},
                          &dropped)
                    .ok());
        CHECK(dropped == 3);
        // The consumer commits what it was given: r3 must survive.
        REQUIRE(q->Commit(2).ok());
        r = q->Read(1000, absl::ZeroDuration(), absl::ZeroDuration());
        CHECK(Payloads(*r) ==
              std::vector<std::string>{p + "r3", p + "r4", p + "r5", p + "r6"});
      }
      SECTION("part of the handed-out records dropped") {
        REQUIRE(q->Append(One(MakeRecord(p + "r4", 1)), &dropped).ok());
        CHECK(dropped == 1);         // r0
        REQUIRE(q->Commit(2).ok());  // removes r1 only
        r = q->Read(1000, absl::ZeroDuration(), absl::ZeroDuration());
        CHECK(Payloads(*r) ==
              std::vector<std::string>{p + "r2", p + "r3", p + "r4"});
      }
    }
  }
}

TEST_CASE("queue: Close wakes the reader, then drains, then Unavailable") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      auto q = MakeQueue(kind, dir.Sub("q"), kBig, OnFull::kReject);
      SECTION("blocked on an empty queue") {
        AsyncRead read(*q, 10, kForever, kForever);
        CHECK_FALSE(read.ReadyWithin(std::chrono::milliseconds(50)));
        q->Close();
        auto r = read.Get();
        CHECK(r.status().code() == absl::StatusCode::kUnavailable);
      }
      SECTION("records left are still read and committed") {
        REQUIRE(
            q->Append({MakeRecord("a", 1), MakeRecord("b", 1)}, nullptr).ok());
        q->Close();
        CHECK(q->Append(One(MakeRecord("c", 1)), nullptr).code() ==
              absl::StatusCode::kUnavailable);
        // Closed: no waiting for max_samples or the deadline.
        auto r = q->Read(1000, kForever, kForever);
        REQUIRE(r.ok());
        CHECK(Payloads(*r) == Strs({"a", "b"}));
        REQUIRE(q->Commit(2).ok());
        r = q->Read(1000, kForever, kForever);
        CHECK(r.status().code() == absl::StatusCode::kUnavailable);
      }
    }
  }
}

// N producers, one consumer: every record arrives exactly once and each
// producer's records arrive in the order it appended them.
void RunProducersConsumer(Kind kind, uint64_t max_bytes, int producers,
                          int per_producer) {
  TempDir dir;
  auto q = MakeQueue(kind, dir.Sub("q"), max_bytes, OnFull::kReject);
  std::atomic<int> rejected{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      std::mt19937 rng(p);
      for (int i = 0; i < per_producer;) {
        // Batches of 1..3 records.
        int n = std::min<int>(1 + rng() % 3, per_producer - i);
        std::vector<Record> batch;
        for (int k = 0; k < n; ++k) {
          batch.push_back(MakeRecord(
              absl::StrCat(p, ":", i + k, ":", std::string(rng() % 64, 'z')),
              1 + rng() % 5));
        }
        absl::Status st = q->Append(std::move(batch), nullptr);
        if (st.code() == absl::StatusCode::kResourceExhausted) {
          ++rejected;
          std::this_thread::yield();
          continue;
        }
        if (!st.ok()) {
          FAIL_CHECK(st.ToString());
          return;
        }
        i += n;
      }
    });
  }
  std::vector<int> next(producers, 0);
  const int total = producers * per_producer;
  int got = 0;
  std::mt19937 rng(99);
  bool ok = true;
  while (got < total && ok) {
    auto r = q->Read(1 + rng() % 40, absl::Milliseconds(1), absl::Seconds(30));
    if (!r.ok() || r->empty()) {
      FAIL_CHECK("read failed or timed out");
      break;
    }
    // Sometimes only part of the batch is committed, as after a partial
    // failure; the rest must come back.
    size_t commit = r->size();
    if (rng() % 4 == 0) commit = rng() % (r->size() + 1);
    for (size_t k = 0; k < commit; ++k) {
      const std::string& payload = (*r)[k].payload;
      int p = std::stoi(payload.substr(0, payload.find(':')));
      size_t c2 = payload.find(':', payload.find(':') + 1);
      int i = std::stoi(payload.substr(payload.find(':') + 1, c2));
      if (p < 0 || p >= producers || i != next[p]) {
        FAIL_CHECK("out of order or duplicate: " << payload << " expected " << p
                                                 << ":" << next[p]);
        ok = false;
        break;
      }
      ++next[p];
      ++got;
    }
    REQUIRE(q->Commit(commit).ok());
  }
  for (auto& t : threads) t.join();
  CHECK(got == total);
  CHECK(q->GetStats().records == 0);
  INFO("rejected appends: " << rejected.load());
}

TEST_CASE("queue: many producers, one consumer, exactly once, in order") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      SECTION("unbounded") { RunProducersConsumer(kind, kBig, 8, 1500); }
      SECTION("tight bound, producers retry on reject") {
        RunProducersConsumer(kind, RecordCost(kind, 100) * 20, 6, 800);
      }
    }
  }
}

TEST_CASE("queue: the listener hears every append and the close") {
  for (Kind kind : AllKinds()) {
    SECTION(KindName(kind)) {
      TempDir dir;
      auto q = MakeQueue(kind, dir.Sub("q"), kBig, OnFull::kReject);
      std::mutex mu;
      std::vector<QueueEvent> events;
      q->SetListener([&](const QueueEvent& e) {
        // Outside the queue's locks: reading from here must not deadlock.
        CHECK(q->GetStats().samples == e.queued_samples);
        std::lock_guard<std::mutex> lock(mu);
        events.push_back(e);
      });
      REQUIRE(
          q->Append({MakeRecord("a", 2), MakeRecord("b", 3)}, nullptr).ok());
      REQUIRE(q->Append(One(MakeRecord("c", 4)), nullptr).ok());
      auto token = q->AppendAsync(One(MakeRecord("d", 1)), nullptr);
      REQUIRE(token.ok());
      REQUIRE(q->WaitDurable(*token).ok());
      auto read = q->Read(100, kForever, absl::ZeroDuration());
      REQUIRE(read.ok());
      REQUIRE(q->Commit(read->size()).ok());
      REQUIRE(q->Append(One(MakeRecord("e", 5)), nullptr).ok());
      q->Close();
      // A failed append is no event.
      CHECK_FALSE(q->Append(One(MakeRecord("f", 1)), nullptr).ok());
      q->SetListener(nullptr);
      q->Close();  // no listener any more: nothing recorded

      std::lock_guard<std::mutex> lock(mu);
      REQUIRE(events.size() == 5);
      CHECK(events[0].was_empty);
      CHECK(events[0].queued_samples == 5);
      CHECK_FALSE(events[1].was_empty);
      CHECK(events[1].queued_samples == 9);
      CHECK(events[2].queued_samples == 10);
      CHECK(events[3].was_empty);  // everything was committed before
      CHECK(events[3].queued_samples == 5);
      CHECK(events[4].closed);
      CHECK(events[4].queued_samples == 5);
      for (size_t i = 0; i < 4; ++i) CHECK_FALSE(events[i].closed);
    }
  }
}

}  // namespace
}  // namespace promrelay::queue
