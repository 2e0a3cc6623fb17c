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

// Two independent 64-bit lanes over the same pass, each keyed by a secret
// seed.
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
    while (left > 16) {
      const uint64_t a = Load64(p);
      const uint64_t b = Load64(p + 8);
      h1 = Mum(a ^ h1, b ^ seed1_);
      h2 = Mum(b ^ h2, a ^ seed2_);
      p += 16;
      left -= 16;
    }
    x = Load64(p + left - 16);
    y = Load64(p + left - 8);
  }
  Key k;
  k.a = Mum(x ^ h1 ^ kP2, y ^ seed1_ ^ kP3);
  k.b = Mum(y ^ h2 ^ kP1, x ^ seed2_ ^ kP2);
  return k;
}

bool OutcomeCache::Lookup(const Key& key, uint64_t* value) const {
  const Set& set = sets_[key.a & mask_];
  for (const Slot& s : set.slot) {
    const uint64_t v1 = s.version.load(std::memory_order_acquire);
    if (v1 == 0 || (v1 & 1)) continue;
    const uint64_t a = s.a.load(std::memory_order_relaxed);
    const uint64_t b = s.b.load(std::memory_order_relaxed);
    const uint64_t val = s.value.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.version.load(std::memory_order_relaxed) != v1) continue;
    if (a == key.a && b == key.b) {
      *value = val;
      return true;
    }
  }
  return false;
}

void OutcomeCache::Insert(const Key& key, uint64_t value) {
  Set& set = sets_[key.a & mask_];
  // An empty slot of the set if there is one, else the one the key's
  // other half picks (random replacement keeps cyclic access patterns
  // larger than the table from missing every time).
  // The slot already holding the key comes first, so an update replaces
  // the old value instead of leaving it beside the new one.
  size_t target = (key.b >> 17) & (kWays - 1);
  bool found = false;
  for (size_t i = 0; i < kWays && !found; ++i) {
    if (set.slot[i].a.load(std::memory_order_relaxed) == key.a &&
        set.slot[i].b.load(std::memory_order_relaxed) == key.b) {
      target = i;
      found = true;
    }
  }
  for (size_t i = 0; i < kWays && !found; ++i) {
    if (set.slot[i].version.load(std::memory_order_relaxed) == 0) {
      target = i;
      found = true;
    }
  }
  Slot& s = set.slot[target];
  uint64_t v = s.version.load(std::memory_order_relaxed);
  if (v & 1) return;  // another writer has it; this entry can wait
  if (!s.version.compare_exchange_strong(v, v + 1, std::memory_order_relaxed)) {
    return;
  }
  std::atomic_thread_fence(std::memory_order_release);
  s.a.store(key.a, std::memory_order_relaxed);
  s.b.store(key.b, std::memory_order_relaxed);
  s.value.store(value, std::memory_order_relaxed);
  s.version.store(v + 2, std::memory_order_release);
}

}  // namespace promrelay::pipeline
