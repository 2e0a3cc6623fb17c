// Snappy block format with a size cap checked before anything is allocated.
#ifndef PROMRELAY_PROXY_WIRE_SNAPPY_H_
#define PROMRELAY_PROXY_WIRE_SNAPPY_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace promrelay::wire {

// Decompresses a snappy block into *out (reusing its capacity). Reads the
// declared length first: above `max_decompressed_bytes` it returns
// OutOfRange without allocating; a corrupt block gives InvalidArgument.
absl::Status SnappyDecompress(std::string_view compressed,
                              size_t max_decompressed_bytes, std::string* out);

// Compresses `in` into *out (replacing its contents, reusing capacity).
void SnappyCompress(std::string_view in, std::string* out);

// A reusable output buffer that, unlike std::string::resize, never
// zero-fills: the compressor overwrites what it uses, and pages it does not
// reach are never touched (so they do not count in RSS).
class ByteBuffer {
 public:
  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  std::string_view view() const { return {data_.get(), size_}; }
  // Makes room for `n` bytes (keeping none of the old contents) and returns
  // the start; set the size with set_size() afterwards.
  char* Prepare(size_t n);
  void set_size(size_t n) { size_ = n; }
  // Frees the memory when the capacity is above `max_capacity`, so one
  // unusually large batch does not pin its buffer for good.
  void ShrinkTo(size_t max_capacity);

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Compresses the concatenation of `parts` into *out as one snappy block,
// without first copying the parts together. Each part is compressed on its
// own and their element streams are joined under one length preamble: the
// format allows it (a copy element only reaches back into output already
// produced), and snappy compresses in independent 64 KiB blocks anyway, so
// the result is about as small as compressing the concatenation.
void SnappyCompressParts(absl::Span<const std::string_view> parts,
                         ByteBuffer* out);

}  // namespace promrelay::wire

#endif  // PROMRELAY_PROXY_WIRE_SNAPPY_H_
