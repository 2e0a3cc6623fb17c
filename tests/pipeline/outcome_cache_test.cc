#include "proxy/pipeline/outcome_cache.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace promrelay::pipeline {
namespace {

TEST_CASE("pack and unpack outcomes") {
  uint64_t v =
      OutcomeCache::Pack(0, OutcomeCache::kRaw, 5) |
      OutcomeCache::Pack(1, OutcomeCache::kDrop, 0) |
      OutcomeCache::Pack(2, OutcomeCache::kForbidden, 0) |
      OutcomeCache::Pack(3, OutcomeCache::kRaw, OutcomeCache::kMaxShards - 1);
  CHECK(OutcomeCache::KindOf(v, 0) == OutcomeCache::kRaw);
  CHECK(OutcomeCache::ShardOf(v, 0) == 5);
  CHECK(OutcomeCache::KindOf(v, 1) == OutcomeCache::kDrop);
  CHECK(OutcomeCache::KindOf(v, 2) == OutcomeCache::kForbidden);
  CHECK(OutcomeCache::KindOf(v, 3) == OutcomeCache::kRaw);
  CHECK(OutcomeCache::ShardOf(v, 3) == OutcomeCache::kMaxShards - 1);
  CHECK((v & OutcomeCache::kGlobalDrop) == 0);
}

TEST_CASE("lookup finds what was inserted, and only that") {
  OutcomeCache cache(10);
  auto k1 = cache.KeyOf(
      "\x0a\x06\x0a\x01"
      "a\x12\x01"
      "b");
  auto k2 = cache.KeyOf(
      "\x0a\x06\x0a\x01"
      "a\x12\x01"
      "c");
  CHECK((k1.a != k2.a || k1.b != k2.b));
  uint64_t v = 0;
  CHECK_FALSE(cache.Lookup(k1, &v));
  cache.Insert(k1, 42);
  REQUIRE(cache.Lookup(k1, &v));
  CHECK(v == 42);
  CHECK_FALSE(cache.Lookup(k2, &v));
  cache.Insert(k1, 43);  // overwrite
  REQUIRE(cache.Lookup(k1, &v));
  CHECK(v == 43);
  // Every length class keys on every byte.
  for (size_t n = 0; n < 40; ++n) {
    std::string a(n, 'x');
    for (size_t i = 0; i < n; ++i) {
      std::string b = a;
      b[i] = 'y';
      auto ka = cache.KeyOf(a);
      auto kb = cache.KeyOf(b);
      CHECK((ka.a != kb.a || ka.b != kb.b));
    }
  }
}

TEST_CASE("a table smaller than the key set still hits often") {
  OutcomeCache cache(10);  // 1024 slots
  for (int round = 0; round < 3; ++round) {
    int hits = 0;
    for (int i = 0; i < 1500; ++i) {
      auto k = cache.KeyOf("series-" + std::to_string(i));
      uint64_t v;
      if (cache.Lookup(k, &v)) {
        CHECK(v == static_cast<uint64_t>(i));
        ++hits;
      } else {
        cache.Insert(k, i);
      }
    }
    if (round > 0) CHECK(hits > 100);  // LRU would hit none
  }
}

TEST_CASE("concurrent readers never see a torn entry") {
  // Tiny (64 slots) against 100 keys taken in turn: each set sees about
  // six inserts between two uses of a key, so entries are overwritten all
  // the time and still found often enough to be read while racing.
  OutcomeCache cache(6);
  std::atomic<int> bad{0};
  std::atomic<int> hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        const int id = (i * 7 + t) % 100;
        auto k = cache.KeyOf("k" + std::to_string(id));
        uint64_t v;
        if (cache.Lookup(k, &v)) {
          hits.fetch_add(1);
          if (v != static_cast<uint64_t>(id) * 1000003) bad.fetch_add(1);
        } else {
          cache.Insert(k, static_cast<uint64_t>(id) * 1000003);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(bad.load() == 0);
  CHECK(hits.load() > 0);  // the readers did read entries
}

}  // namespace
}  // namespace promrelay::pipeline
