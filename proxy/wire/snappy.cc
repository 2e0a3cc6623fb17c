#include "proxy/wire/snappy.h"

#include <snappy-sinksource.h>
#include <snappy.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace promrelay::wire {

absl::Status SnappyDecompress(std::string_view compressed,
                              size_t max_decompressed_bytes, std::string* out) {
  size_t declared = 0;
  // Only the length preamble is read here, so a tiny body that claims
  // gigabytes is refused before a single byte is allocated for it.
  if (!snappy::GetUncompressedLength(compressed.data(), compressed.size(),
                                     &declared)) {
    return absl::InvalidArgumentError(
        "snappy: corrupt block (unreadable length preamble)");
  }
  if (declared > max_decompressed_bytes) {
    return absl::OutOfRangeError(absl::StrCat("decompressed size ", declared,
                                              " exceeds limit ",
                                              max_decompressed_bytes));
  }
  out->resize(declared);
  if (!snappy::RawUncompress(compressed.data(), compressed.size(),
                             out->data())) {
    out->clear();
    return absl::InvalidArgumentError("snappy: corrupt block");
  }
  return absl::OkStatus();
}

void SnappyCompress(std::string_view in, std::string* out) {
  out->resize(snappy::MaxCompressedLength(in.size()));
  size_t n = 0;
  snappy::RawCompress(in.data(), in.size(), out->data(), &n);
  out->resize(n);
}

char* ByteBuffer::Prepare(size_t n) {
  if (n > capacity_) {
    data_.reset();  // free first: never hold both buffers
    data_.reset(new char[n]);
    capacity_ = n;
  }
  size_ = 0;
  return data_.get();
}

void ByteBuffer::ShrinkTo(size_t max_capacity) {
  if (capacity_ <= max_capacity) return;
  data_.reset();
  size_ = capacity_ = 0;
}

namespace {

// Writes snappy's output in place at `pos_`, dropping the first Append (the
// length preamble of one part's stream).
class InPlaceSink final : public snappy::Sink {
 public:
  explicit InPlaceSink(char* pos) : pos_(pos) {}
  void Append(const char* bytes, size_t n) override {
    if (skip_preamble_) {
      skip_preamble_ = false;
      return;
    }
    if (bytes != pos_) std::memmove(pos_, bytes, n);
    pos_ += n;
  }
  char* GetAppendBuffer(size_t, char*) override { return pos_; }
  char* pos() const { return pos_; }

 private:
  char* pos_;
  bool skip_preamble_ = true;
};

// Snappy's compressor works in blocks of this size; each needs room for its
// worst case.
constexpr size_t kSnappyBlock = 1 << 16;

size_t MaxPartLength(size_t n) {
  const size_t blocks = n / kSnappyBlock + 1;
  return n + n / 6 + 32 * blocks;
}

char* PutVarint32(char* p, uint32_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

}  // namespace

void SnappyCompressParts(absl::Span<const std::string_view> parts,
                         ByteBuffer* out) {
  size_t total = 0, room = 5;  // 5: the longest 32-bit varint
  for (std::string_view part : parts) {
    total += part.size();
    room += MaxPartLength(part.size());
  }
  char* const start = out->Prepare(room);
  // Snappy's length preamble is a 32-bit varint; so is ours.
  char* p = PutVarint32(start, static_cast<uint32_t>(total));
  for (std::string_view part : parts) {
    if (part.empty()) continue;
    snappy::ByteArraySource source(part.data(), part.size());
    InPlaceSink sink(p);
    snappy::Compress(&source, &sink);
    p = sink.pos();
  }
  out->set_size(static_cast<size_t>(p - start));
}

}  // namespace promrelay::wire
