// Snappy block format with a size cap checked before anything is allocated.
#ifndef PROMRELAY_PROXY_WIRE_SNAPPY_H_
#define PROMRELAY_PROXY_WIRE_SNAPPY_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace promrelay::wire {

// Decompresses a snappy block into *out (reusing its capacity). Reads the
// declared length first: above `max_decompressed_bytes` it returns
// OutOfRange without allocating; a corrupt block gives InvalidArgument.
absl::Status SnappyDecompress(std::string_view compressed,
                              size_t max_decompressed_bytes, std::string* out);

// Compresses `in` into *out (replacing its contents, reusing capacity).
void SnappyCompress(std::string_view in, std::string* out);

}  // namespace promrelay::wire

#endif  // PROMRELAY_PROXY_WIRE_SNAPPY_H_
