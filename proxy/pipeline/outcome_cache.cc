#include "proxy/pipeline/outcome_cache.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>
#include <random>

#include "proxy/pipeline/hash.h"

namespace promrelay::pipeline {

using hash_internal::kP1;
using hash_internal::kP2;
using hash_internal::kP3;
using hash_internal::Load32;
using hash_internal::Load64;
using hash_internal::Mum;

OutcomeCache::Set* OutcomeCache::NewTable(size_t sets) {
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t bytes = sets * sizeof(Set);
  const size_t align = bytes >= kHugePage ? kHugePage : alignof(Set);
  void* mem = std::aligned_alloc(align, (bytes + align - 1) / align * align);
  if (mem == nullptr) throw std::bad_alloc();
  if (align == kHugePage) (void)madvise(mem, bytes, MADV_HUGEPAGE);
  return new (mem) Set[sets]();
}

void OutcomeCache::FreeTable::operator()(Set* p) const { std::free(p); }

OutcomeCache::OutcomeCache(int slots_log2)
    : sets_(NewTable(size_t{1} << (slots_log2 - 2))),
      mask_((size_t{1} << (slots_log2 - 2)) - 1) {
  std::random_device rd;
  seed1_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  seed2_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// Two 64-bit chains, each keyed by a secret seed, taking alternate 16-byte
// blocks (one multiply per 16 bytes, two multiplies in flight); both
// halves of the key then depend on every byte.
OutcomeCache::Key OutcomeCache::KeyOf(std::string_view bytes) const {
  const char* p = bytes.data();
  const size_t n = bytes.size();
  uint64_t h1 = seed1_ ^ n;
  uint64_t h2 = seed2_ ^ (n * kP1);
  uint64_t x = 0;
  uint64_t y = 0;
  if (n <= 16) {
    if (n >= 4) {
      const size_t mid = (n >> 3) << 2;
      x = Load32(p) << 32 | Load32(p + mid);
      y = Load32(p + n - 4) << 32 | Load32(p + n - 4 - mid);
    } else if (n > 0) {
      const auto* u = reinterpret_cast<const unsigned char*>(p);
      x = static_cast<uint64_t>(u[0]) << 16 |
          static_cast<uint64_t>(u[n >> 1]) << 8 | u[n - 1];
    }
  } else {
    size_t left = n;
    while (left > 32) {
      h1 = Mum(Load64(p) ^ h1, Load64(p + 8) ^ seed1_);
      h2 = Mum(Load64(p + 16) ^ h2, Load64(p + 24) ^ seed2_);
      p += 32;
      left -= 32;
    }
    if (left > 16) {
      h1 = Mum(Load64(p) ^ h1, Load64(p + 8) ^ seed1_);
      p += 16;
      left -= 16;
    }
    x = Load64(p + left - 16);
    y = Load64(p + left - 8);
  }
  Key k;
  k.a = Mum(x ^ h1 ^ kP2, y ^ h2 ^ kP3);
  k.b = Mum(y ^ h2 ^ kP1, x ^ h1 ^ seed2_);
  return k;
}

bool OutcomeCache::Lookup(const Key& key, uint64_t* value) const {
  const Set& set = sets_[key.a & mask_];
  const uint64_t tag = TagOf(key);
  for (const Slot& s : set.slot) {
    const uint64_t check = s.check.load(std::memory_order_relaxed);
    const uint64_t val = s.value.load(std::memory_order_relaxed);
    // A slot being rewritten pairs one write's check with another's value:
    // that pair matches no tag (but by 2^-64 chance), so it is a miss.
    if ((check ^ val) == tag) {
      *value = val;
      return true;
    }
  }
  return false;
}

void OutcomeCache::Insert(const Key& key, uint64_t value) {
  Set& set = sets_[key.a & mask_];
  const uint64_t tag = TagOf(key);
  // The slot already holding the key comes first, so an update replaces
  // the old value instead of leaving it beside the new one; then an empty
  // slot; else one picked by high bits of the key (random replacement
  // keeps cyclic access patterns larger than the table from missing every
  // time).
  size_t target = kWays;
  for (size_t i = 0; i < kWays && target == kWays; ++i) {
    const Slot& s = set.slot[i];
    if ((s.check.load(std::memory_order_relaxed) ^
         s.value.load(std::memory_order_relaxed)) == tag) {
      target = i;
    }
  }
  for (size_t i = 0; i < kWays && target == kWays; ++i) {
    const Slot& s = set.slot[i];
    if (s.check.load(std::memory_order_relaxed) == 0 &&
        s.value.load(std::memory_order_relaxed) == 0) {
      target = i;
    }
  }
  if (target == kWays) target = (key.a >> 40) & (kWays - 1);
  Slot& s = set.slot[target];
  // Concurrent inserts into one slot may leave a check and a value from
  // different writers: that slot then misses until it is written again.
  s.value.store(value, std::memory_order_relaxed);
  s.check.store(value ^ tag, std::memory_order_relaxed);
}

}  // namespace promrelay::pipeline
