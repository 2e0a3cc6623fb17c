// Internal to the queue module: a condition-variable wait until an absl
// deadline, shared by the memory and the disk queue.
#ifndef PROMRELAY_PROXY_QUEUE_WAIT_UNTIL_H_
#define PROMRELAY_PROXY_QUEUE_WAIT_UNTIL_H_

#include <condition_variable>
#include <mutex>

#include "absl/time/time.h"

namespace promrelay::queue::internal {

// Waits on `cv` until `t` (absl time: the records' enqueue times are wall
// clock). std primitives rather than absl::Mutex so ThreadSanitizer, which
// cannot see inside the prebuilt abseil, checks the queues.
inline void WaitUntil(std::condition_variable& cv,
                      std::unique_lock<std::mutex>& lock, absl::Time t) {
  if (t == absl::InfiniteFuture()) {
    cv.wait(lock);
  } else {
    cv.wait_until(lock, absl::ToChronoTime(t));
  }
}

}  // namespace promrelay::queue::internal

#endif  // PROMRELAY_PROXY_QUEUE_WAIT_UNTIL_H_
