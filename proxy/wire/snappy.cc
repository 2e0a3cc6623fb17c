#include "proxy/wire/snappy.h"

#include <snappy-sinksource.h>
#include <snappy.h>

#include <algorithm>
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

char* ByteBuffer::AppendRoom(size_t n) {
  if (size_ + n > capacity_) {
    const size_t capacity = std::max(size_ + n, capacity_ + capacity_ / 2);
    std::unique_ptr<char[]> grown(new char[capacity]);
    if (size_ > 0) std::memcpy(grown.get(), data_.get(), size_);
    data_ = std::move(grown);
    capacity_ = capacity;
  }
  return data_.get() + size_;
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

// Room snappy's compressor may need for `n` bytes: it works in blocks of
// kSnappyBlockSize, and each needs room for its own worst case.
size_t MaxPartLength(size_t n) {
  const size_t blocks = n / kSnappyBlockSize + 1;
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

// Compresses `in` at `p` (which has MaxPartLength(in.size()) bytes of
// room), without the preamble; returns the end of what was written.
char* CompressElementsAt(std::string_view in, char* p) {
  if (in.empty()) return p;
  snappy::ByteArraySource source(in.data(), in.size());
  InPlaceSink sink(p);
  snappy::Compress(&source, &sink);
  return sink.pos();
}

// The elements of a snappy block: what follows its length preamble.
std::string_view ElementsOf(std::string_view block, size_t* length) {
  uint64_t v = 0;
  size_t i = 0;
  for (int shift = 0; i < block.size() && i < 5; shift += 7) {
    const auto byte = static_cast<unsigned char>(block[i++]);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (byte < 0x80) break;
  }
  *length = static_cast<size_t>(v);
  return block.substr(i);
}

}  // namespace

size_t SnappyDeclaredLength(std::string_view block) {
  size_t n = 0;
  if (!snappy::GetUncompressedLength(block.data(), block.size(), &n)) return 0;
  return n;
}

void SnappyAppendElements(std::string_view in, ByteBuffer* elements) {
  char* p = elements->AppendRoom(MaxPartLength(in.size()));
  elements->Commit(static_cast<size_t>(CompressElementsAt(in, p) - p));
}

void SnappyFinishBlock(size_t uncompressed_length, std::string_view elements,
                       std::string* out) {
  char preamble[5];
  const char* end =
      PutVarint32(preamble, static_cast<uint32_t>(uncompressed_length));
  out->reserve(static_cast<size_t>(end - preamble) + elements.size());
  out->assign(preamble, static_cast<size_t>(end - preamble));
  out->append(elements);
}

void SnappyJoin(absl::Span<const SnappyPart> parts, ByteBuffer* out) {
  size_t total = 0, room = 5;  // 5: the longest 32-bit varint
  for (const SnappyPart& part : parts) {
    if (part.compressed) {
      size_t n = 0;
      room += ElementsOf(part.bytes, &n).size();
      total += n;
    } else {
      total += part.bytes.size();
      room += MaxPartLength(part.bytes.size());
    }
  }
  char* const start = out->Prepare(room);
  // Snappy's length preamble is a 32-bit varint; so is ours.
  char* p = PutVarint32(start, static_cast<uint32_t>(total));
  for (const SnappyPart& part : parts) {
    if (part.compressed) {
      size_t n = 0;
      const std::string_view elements = ElementsOf(part.bytes, &n);
      if (!elements.empty()) std::memcpy(p, elements.data(), elements.size());
      p += elements.size();
    } else {
      p = CompressElementsAt(part.bytes, p);
    }
  }
  out->set_size(static_cast<size_t>(p - start));
}

}  // namespace promrelay::wire
