#include "proxy/wire/snappy.h"

#include <snappy-sinksource.h>
#include <snappy.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace promrelay::wire {

namespace {

// Reads the length preamble; false if it is malformed (or over 32 bits, as
// snappy's own reader).
bool ReadPreamble(std::string_view block, size_t* length, size_t* used) {
  uint32_t v = 0;
  for (size_t i = 0; i < 5 && i < block.size(); ++i) {
    const auto byte = static_cast<unsigned char>(block[i]);
    if (i == 4 && byte > 0x0f) return false;
    v |= static_cast<uint32_t>(byte & 0x7f) << (7 * i);
    if (byte < 0x80) {
      *length = v;
      *used = i + 1;
      return true;
    }
  }
  return false;
}

inline void Copy16(char* dst, const char* src) {
  char chunk[16];
  std::memcpy(chunk, src, 16);
  std::memcpy(dst, chunk, 16);
}

// 64 bytes in 16-byte steps, each read before it is written: with
// dst - src >= 16 this is exactly a back-reference copy (a step only reads
// bytes earlier steps already wrote), for any length up to 64.
inline void Copy64(char* dst, const char* src) {
  Copy16(dst, src);
  Copy16(dst + 16, src + 16);
  Copy16(dst + 32, src + 32);
  Copy16(dst + 48, src + 48);
}

// An element's tag byte: what kind, its length, and (copies) its offset.
struct Element {
  bool literal = false;
  size_t length = 0;
  size_t offset = 0;  // copies only
};

// Decodes the element at *ip (which has at least one byte). `available` is
// the input left after the tag. False if it runs past the input.
inline bool ReadElement(const unsigned char*& ip, size_t available,
                        Element* e) {
  const unsigned tag = ip[-1];
  switch (tag & 3) {
    case 0: {
      size_t length = (tag >> 2) + 1;
      if (length > 60) {
        const size_t extra = length - 60;
        if (available < extra) return false;
        length = 0;
        for (size_t i = 0; i < extra; ++i) length |= size_t{ip[i]} << (8 * i);
        length += 1;
        ip += extra;
      }
      e->literal = true;
      e->length = length;
      return true;
    }
    case 1:
      if (available < 1) return false;
      e->literal = false;
      e->length = ((tag >> 2) & 7) + 4;
      e->offset = (size_t{tag >> 5} << 8) | ip[0];
      ip += 1;
      return true;
    case 2:
      if (available < 2) return false;
      e->literal = false;
      e->length = (tag >> 2) + 1;
      e->offset = size_t{ip[0]} | size_t{ip[1]} << 8;
      ip += 2;
      return true;
    default:
      if (available < 4) return false;
      e->literal = false;
      e->length = (tag >> 2) + 1;
      e->offset = size_t{ip[0]} | size_t{ip[1]} << 8 | size_t{ip[2]} << 16 |
                  size_t{ip[3]} << 24;
      ip += 4;
      return true;
  }
}

// Decodes the elements in [ip, in_end) into out[0, n); bytes out[n,
// capacity) are scratch the fast path may scribble on. True when the
// elements are valid and produce exactly n bytes.
//
// Most elements are short: while at least 64 bytes of input and of output
// room remain, a literal or a copy moves a fixed 64 bytes (vector moves,
// no length-dependent branches or memcpy calls) and only the first
// `length` count. Near either end each element is copied exactly.
bool DecodeElements(const unsigned char* ip, const unsigned char* in_end,
                    char* out, size_t n, size_t capacity) {
  char* op = out;
  char* const op_end = out + n;
  Element e;
  while (ip < in_end) {
    // 5: a tag and up to 4 length/offset bytes, then a literal's 64; and
    // the 64-byte stores stay below out + capacity.
    const bool fast =
        in_end - ip >= 5 + 64 && static_cast<size_t>(op - out) + 64 <= capacity;
    const unsigned tag = *ip++;
    if (fast && (tag & 3) == 0 && tag < (60 << 2)) {  // literal, ≤ 60 bytes
      const size_t length = (tag >> 2) + 1;
      if (static_cast<size_t>(op_end - op) < length) return false;
      Copy64(op, reinterpret_cast<const char*>(ip));
      op += length;
      ip += length;
      continue;
    }
    if (!ReadElement(ip, static_cast<size_t>(in_end - ip), &e)) return false;
    if (e.literal) {
      if (static_cast<size_t>(in_end - ip) < e.length ||
          static_cast<size_t>(op_end - op) < e.length) {
        return false;
      }
      std::memcpy(op, ip, e.length);
      op += e.length;
      ip += e.length;
      continue;
    }
    if (e.offset == 0 || e.offset > static_cast<size_t>(op - out) ||
        static_cast<size_t>(op_end - op) < e.length) {
      return false;
    }
    const char* src = op - e.offset;
    if (fast && e.offset >= 16) {
      Copy64(op, src);
    } else {
      for (size_t i = 0; i < e.length; ++i) op[i] = src[i];
    }
    op += e.length;
  }
  return op == op_end;
}

// The length a block declares, checked against the cap; the elements'
// start in *elements.
absl::Status CheckedLength(std::string_view compressed,
                           size_t max_decompressed_bytes, size_t* declared,
                           std::string_view* elements) {
  size_t used = 0;
  // Only the length preamble is read here, so a tiny body that claims
  // gigabytes is refused before a single byte is allocated for it.
  if (!ReadPreamble(compressed, declared, &used)) {
    return absl::InvalidArgumentError(
        "snappy: corrupt block (unreadable length preamble)");
  }
  if (*declared > max_decompressed_bytes) {
    return absl::OutOfRangeError(absl::StrCat("decompressed size ", *declared,
                                              " exceeds limit ",
                                              max_decompressed_bytes));
  }
  *elements = compressed.substr(used);
  return absl::OkStatus();
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

absl::Status SnappyDecompress(std::string_view compressed,
                              size_t max_decompressed_bytes, std::string* out) {
  size_t declared = 0;
  std::string_view elements;
  absl::Status st =
      CheckedLength(compressed, max_decompressed_bytes, &declared, &elements);
  if (!st.ok()) return st;
  out->resize(declared);
  if (!DecodeElements(Bytes(elements), Bytes(elements) + elements.size(),
                      out->data(), declared, declared)) {
    out->clear();
    return absl::InvalidArgumentError("snappy: corrupt block");
  }
  return absl::OkStatus();
}

absl::Status SnappyDecompress(std::string_view compressed,
                              size_t max_decompressed_bytes, ByteBuffer* out) {
  size_t declared = 0;
  std::string_view elements;
  absl::Status st =
      CheckedLength(compressed, max_decompressed_bytes, &declared, &elements);
  if (!st.ok()) return st;
  // Room for the fast path's overshoot past the end.
  char* data = out->Prepare(declared + kSnappyDecodeSlack);
  if (!DecodeElements(Bytes(elements), Bytes(elements) + elements.size(), data,
                      declared, declared + kSnappyDecodeSlack)) {
    out->clear();
    return absl::InvalidArgumentError("snappy: corrupt block");
  }
  out->set_size(declared);
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

// The elements of a snappy block: what follows its length preamble (none
// if the preamble is unreadable).
std::string_view ElementsOf(std::string_view block, size_t* length) {
  size_t used = 0;
  if (!ReadPreamble(block, length, &used)) {
    *length = 0;
    return {};
  }
  return block.substr(used);
}

}  // namespace

size_t SnappyDeclaredLength(std::string_view block) {
  size_t n = 0;
  ElementsOf(block, &n);
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
