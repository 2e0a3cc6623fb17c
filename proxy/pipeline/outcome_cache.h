// What the rules decided for a series, remembered by the series' encoded
// label bytes: agents resend the same series every scrape, so most series
// skip relabeling entirely. Internal to the pipeline.
//
// Per destination the outcome is "dropped by its rules", "withheld by the
// guard", "sent unchanged, to shard N" or "sent rewritten, to shard N"; or
// the series is "dropped by the global rules". The table holds no labels:
// the pipeline keeps a rewritten series' new labels beside it, per thread.
//
// The table is shared by all threads, fixed in size (no allocation after
// construction) and lock-free. A slot is 16 bytes: the value and a check
// word, value XOR key tag; a reader that races a writer sees a check that
// does not match and just misses. Keys are 128-bit hashes with a random
// seed per table (each config gets a new table), so clients cannot craft
// collisions: one half picks the set, the other makes the tag (63 bits, the
// low bit is forced to 1), so a false hit needs two different label sets to
// agree on both by chance (about 2^-78 per lookup).
#ifndef PROMRELAY_PROXY_PIPELINE_OUTCOME_CACHE_H_
#define PROMRELAY_PROXY_PIPELINE_OUTCOME_CACHE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace promrelay::pipeline {

class OutcomeCache {
 public:
  // Per destination: 2 bits of kind, 13 bits of shard; up to kMaxDests.
  enum Kind : uint64_t { kDrop = 0, kForbidden = 1, kRaw = 2, kRewritten = 3 };
  static constexpr int kMaxDests = 4;
  static constexpr uint64_t kMaxShards = 1 << 13;
  static constexpr uint64_t kGlobalDrop = uint64_t{1} << 63;

  static uint64_t Pack(int dest, Kind kind, uint64_t shard) {
    return (static_cast<uint64_t>(kind) | shard << 2) << (15 * dest);
  }
  static Kind KindOf(uint64_t value, int dest) {
    return static_cast<Kind>((value >> (15 * dest)) & 3);
  }
  static uint64_t ShardOf(uint64_t value, int dest) {
    return (value >> (15 * dest + 2)) & (kMaxShards - 1);
  }
  // True if any of the first `dests` destinations has kind kRewritten.
  static bool AnyRewritten(uint64_t value, int dests) {
    for (int d = 0; d < dests; ++d) {
      if (KindOf(value, d) == kRewritten) return true;
    }
    return false;
  }

  struct Key {
    uint64_t a = 0;
    uint64_t b = 0;
    bool operator==(const Key& o) const { return a == o.a && b == o.b; }
  };

  // 2^slots_log2 slots of 16 bytes (slots_log2 >= 2).
  explicit OutcomeCache(int slots_log2);

  Key KeyOf(std::string_view label_fields) const;
  // Starts loading the key's slots into the CPU cache: call it for a whole
  // request's keys before looking them up, so the table's memory latency
  // overlaps instead of stalling every lookup.
  void Prefetch(const Key& key) const {
    __builtin_prefetch(&sets_[key.a & mask_]);
  }
  bool Lookup(const Key& key, uint64_t* value) const;
  void Insert(const Key& key, uint64_t value);

  size_t slots() const { return kWays * (mask_ + 1); }

 private:
  struct Slot {
    std::atomic<uint64_t> check{0};  // value ^ tag; 0 with value 0: empty
    std::atomic<uint64_t> value{0};
  };

  // A key may sit in any slot of its set: four ways in one cache line, so
  // a lookup costs one memory access. (With two ways, 100k series in 2^18
  // slots missed 11% of lookups: about 1 set in 27 draws three keys or
  // more, and those keys evict each other every scrape. Four ways: 2.6%.)
  static constexpr size_t kWays = 4;
  struct alignas(64) Set {
    Slot slot[kWays];
  };
  // The tag stored for a key; never 0, so an empty slot matches no key.
  static uint64_t TagOf(const Key& key) { return key.b | 1; }

  struct FreeTable {
    void operator()(Set* p) const;
  };
  // Zeroed sets, 2 MiB-aligned and backed by transparent huge pages where
  // the kernel allows it: lookups land anywhere in the table, and with
  // 4 KiB pages most of them would also miss the TLB.
  static Set* NewTable(size_t sets);

  std::unique_ptr<Set[], FreeTable> sets_;
  size_t mask_;  // over sets
  uint64_t seed1_;
  uint64_t seed2_;
};

}  // namespace promrelay::pipeline

#endif  // PROMRELAY_PROXY_PIPELINE_OUTCOME_CACHE_H_
