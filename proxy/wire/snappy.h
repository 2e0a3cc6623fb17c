// Snappy block format, promrelay's own codec for it: a decoder with a size
// cap checked before anything is allocated, and a compressor tuned for
// remote-write bodies (output any snappy decoder reads).
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
  // Room for `n` more bytes after the current contents (kept), returned
  // for writing; Commit() then adds what was written to the size.
  char* AppendRoom(size_t n);
  void Commit(size_t n) { size_ += n; }
  void clear() { size_ = 0; }
  // Frees the memory when the capacity is above `max_capacity`, so one
  // unusually large batch does not pin its buffer for good.
  void ShrinkTo(size_t max_capacity);

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Bytes past the output a ByteBuffer decompression may use as scratch.
inline constexpr size_t kSnappyDecodeSlack = 64;

// SnappyDecompress into a ByteBuffer: nothing is zero-filled first, and the
// buffer's spare room lets most elements be copied in fixed-size moves.
absl::Status SnappyDecompress(std::string_view compressed,
                              size_t max_decompressed_bytes, ByteBuffer* out);

// A snappy block is a length preamble and a stream of elements; a copy
// element only reaches back into output already produced. So element
// streams compressed on their own can be joined under one preamble that
// declares their total length, and since snappy compresses in independent
// 64 KiB blocks anyway, the result is about as small as compressing the
// concatenation (identical when the parts are whole 64 KiB blocks).

// Snappy's block size: compressing the input in pieces of this size (and
// one last shorter one) gives the same elements as compressing it whole.
inline constexpr size_t kSnappyBlockSize = size_t{1} << 16;

// The uncompressed length a snappy block declares (0 if unreadable).
size_t SnappyDeclaredLength(std::string_view block);

// Compresses `in` and appends its element stream (no preamble) to *elements.
void SnappyAppendElements(std::string_view in, ByteBuffer* elements);

// *out = a snappy block of `uncompressed_length` bytes with these elements.
void SnappyFinishBlock(size_t uncompressed_length, std::string_view elements,
                       std::string* out);

// One part of a body being joined: uncompressed bytes, or a whole snappy
// block (preamble included).
struct SnappyPart {
  std::string_view bytes;
  bool compressed = false;
};

// Writes into *out one snappy block of the concatenation of the parts'
// uncompressed contents: compressed parts are copied element for element,
// the others compressed where they lie. A compressed part must be a valid
// snappy block (the sender only joins what the pipeline made); its
// declared length is trusted.
void SnappyJoin(absl::Span<const SnappyPart> parts, ByteBuffer* out);

}  // namespace promrelay::wire

#endif  // PROMRELAY_PROXY_WIRE_SNAPPY_H_
