#include "proxy/wire/snappy.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <snappy.h>

#include "tests/wire/gen.h"

namespace promrelay::wire {
namespace {

using testing::ExactBuffer;

std::string RandomText(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  // Compressible: a small alphabet with repeats, like label sets.
  for (char& c : s) c = "abcdefgh{}=\",_0123"[rng() % 18];
  return s;
}

TEST_CASE("snappy round trip", "[snappy]") {
  for (size_t n : {0, 1, 100, 65536, 65537, 1 << 20}) {
    INFO("size " << n);
    const std::string in = RandomText(n, n);
    std::string compressed, out;
    SnappyCompress(in, &compressed);
    // Interoperates with the reference implementation both ways.
    std::string ref;
    REQUIRE(snappy::Uncompress(compressed.data(), compressed.size(), &ref));
    CHECK(ref == in);
    REQUIRE(SnappyDecompress(compressed, n, &out).ok());
    CHECK(out == in);
    snappy::Compress(in.data(), in.size(), &ref);
    REQUIRE(SnappyDecompress(ref, n + 1, &out).ok());
    CHECK(out == in);
  }
}

TEST_CASE("the output buffer is reused and replaced", "[snappy]") {
  std::string big, small, out;
  SnappyCompress(RandomText(10000, 1), &big);
  SnappyCompress("tiny", &small);
  REQUIRE(SnappyDecompress(big, 1 << 20, &out).ok());
  const size_t cap = out.capacity();
  REQUIRE(SnappyDecompress(small, 1 << 20, &out).ok());
  CHECK(out == "tiny");
  CHECK(out.capacity() == cap);
  // Compression replaces, never appends.
  std::string c = "junk";
  SnappyCompress("tiny", &c);
  CHECK(c == small);
}

TEST_CASE("the cap is enforced before allocating", "[snappy]") {
  // 10 bytes declaring 4 GiB - 1 (the largest snappy length).
  const std::string bomb("\xff\xff\xff\xff\x0f\x00\x01\x02\x03\x04", 10);
  std::string out;
  absl::Status st = SnappyDecompress(bomb, 32 << 20, &out);
  CHECK(st.code() == absl::StatusCode::kOutOfRange);
  CHECK(st.message() == "decompressed size 4294967295 exceeds limit 33554432");
  CHECK(out.capacity() < 1024);  // nothing was allocated for it

  const std::string in = RandomText(5000, 9);
  std::string compressed;
  SnappyCompress(in, &compressed);
  st = SnappyDecompress(compressed, 4999, &out);
  CHECK(st.code() == absl::StatusCode::kOutOfRange);
  CHECK(st.message() == "decompressed size 5000 exceeds limit 4999");
  CHECK(SnappyDecompress(compressed, 5000, &out).ok());  // cap is inclusive
  CHECK(out == in);
}

TEST_CASE("corrupt blocks are InvalidArgument", "[snappy]") {
  std::string out;
  auto code = [&](std::string_view b) {
    ExactBuffer buf(b);
    return SnappyDecompress(buf.view(), 1 << 20, &out).code();
  };
  CHECK(code("") == absl::StatusCode::kInvalidArgument);
  // A length preamble that never ends.
  CHECK(code("\xff\xff\xff\xff\xff\xff") == absl::StatusCode::kInvalidArgument);
  // Declares 100 bytes, then garbage.
  CHECK(code(std::string("\x64\xfe\xfe\xfe\xfe\xfe", 6)) ==
        absl::StatusCode::kInvalidArgument);
  // Declares 10 bytes, holds a literal of 3.
  CHECK(code(std::string("\x0a\x08"
                         "abc",
                         5)) == absl::StatusCode::kInvalidArgument);
  // A back-reference before the start of the output.
  CHECK(code(std::string("\x08\x01\x10\x00", 4)) ==
        absl::StatusCode::kInvalidArgument);
  // Content parsed as snappy by mistake (e.g. an uncompressed body).
  CHECK(code("\x0a\x0b\x0a\x08__name__\x12\x02up") ==
        absl::StatusCode::kInvalidArgument);

  // Every truncation of a valid block fails cleanly.
  std::string compressed;
  SnappyCompress(RandomText(3000, 4), &compressed);
  for (size_t n = 0; n < compressed.size(); ++n) {
    INFO("prefix " << n);
    CHECK(code(std::string_view(compressed).substr(0, n)) ==
          absl::StatusCode::kInvalidArgument);
  }
  CHECK(out.empty());  // a failed decompress leaves no partial output

  // Bit flips: an error or some output, never a crash.
  std::mt19937_64 rng(17);
  for (int i = 0; i < 3000; ++i) {
    std::string m = compressed;
    m[rng() % m.size()] ^= static_cast<char>(1u << (rng() % 8));
    ExactBuffer buf(m);
    absl::Status st = SnappyDecompress(buf.view(), 1 << 20, &out);
    if (!st.ok()) {
      CHECK((st.code() == absl::StatusCode::kInvalidArgument ||
             st.code() == absl::StatusCode::kOutOfRange));
    }
  }
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// At least `n` bytes of short random units (1..max_period bytes), each
// repeated up to max_repeats times: copies at small offsets that overlap
// themselves.
std::string PeriodicRuns(size_t n, size_t max_period, size_t max_repeats,
                         std::mt19937_64& rng) {
  std::string runs;
  while (runs.size() < n) {
    const size_t period = 1 + rng() % max_period;
    const std::string unit = RandomBytes(period, rng());
    for (size_t k = rng() % max_repeats; k > 0; --k) runs += unit;
  }
  return runs;
}

// Splits `in` at the given offsets (sorted, <= size).
std::vector<std::string_view> Split(std::string_view in,
                                    std::vector<size_t> cuts) {
  std::vector<std::string_view> parts;
  size_t at = 0;
  for (size_t c : cuts) {
    parts.push_back(in.substr(at, c - at));
    at = c;
  }
  parts.push_back(in.substr(at));
  return parts;
}

// Which parts CheckParts hands to SnappyJoin already compressed.
enum class Given { kRaw, kCompressed, kMixed };

void CheckJoin(const std::string& in, std::vector<size_t> cuts, ByteBuffer* out,
               Given given) {
  const std::vector<std::string_view> raw = Split(in, cuts);
  std::vector<std::string> blocks(raw.size());
  std::vector<SnappyPart> parts;
  for (size_t i = 0; i < raw.size(); ++i) {
    const bool compress =
        given == Given::kCompressed || (given == Given::kMixed && i % 2 == 1);
    if (compress) {
      SnappyCompress(raw[i], &blocks[i]);
      parts.push_back({blocks[i], true});
    } else {
      parts.push_back({raw[i], false});
    }
  }
  SnappyJoin(parts, out);
  // Exactly-sized copy: ASan catches a reader that runs past the end.
  ExactBuffer compressed(out->view());
  REQUIRE(snappy::IsValidCompressedBuffer(compressed.view().data(),
                                          compressed.view().size()));
  std::string ref;
  REQUIRE(snappy::Uncompress(compressed.view().data(), compressed.view().size(),
                             &ref));
  CHECK(ref == in);
  std::string ours;
  REQUIRE(SnappyDecompress(compressed.view(), in.size(), &ours).ok());
  CHECK(ours == in);
  // About as small as compressing the concatenation: at most a few bytes
  // per part boundary more.
  std::string whole;
  SnappyCompress(in, &whole);
  CHECK(out->size() <= whole.size() + 16 * parts.size() + in.size() / 100);
}

void CheckParts(const std::string& in, std::vector<size_t> cuts,
                ByteBuffer* out) {
  for (Given given : {Given::kRaw, Given::kCompressed, Given::kMixed}) {
    INFO("given " << static_cast<int>(given));
    CheckJoin(in, cuts, out, given);
  }
}

TEST_CASE("snappy: compressing parts equals the concatenation", "[snappy]") {
  ByteBuffer out;
  const std::string text = RandomText(300000, 5);
  const std::string noise = RandomBytes(200000, 6);  // incompressible
  SECTION("one part") {
    for (size_t n : {0, 1, 100, 65535, 65536, 65537, 200000}) {
      INFO("size " << n);
      CheckParts(text.substr(0, n), {}, &out);
      CheckParts(noise.substr(0, n), {}, &out);
    }
  }
  SECTION("parts at and around snappy's 64 KiB blocks") {
    CheckParts(text, {65536, 131072}, &out);
    CheckParts(text, {65535, 65537, 196608}, &out);
    CheckParts(noise, {1, 65536, 65537, 199999}, &out);
  }
  SECTION("empty and tiny parts") {
    CheckParts(text.substr(0, 1000), {0, 0, 10, 10, 11, 999, 1000}, &out);
    std::vector<size_t> cuts;
    for (size_t i = 1; i < 3000; i += 3) cuts.push_back(i);
    CheckParts(text.substr(0, 3000), cuts, &out);
  }
  SECTION("random splits, text and noise mixed") {
    const std::string mixed = text.substr(0, 150000) + noise.substr(0, 90000) +
                              text.substr(150000, 60000);
    std::mt19937_64 rng(7);
    for (int round = 0; round < 20; ++round) {
      std::vector<size_t> cuts;
      const int n = static_cast<int>(rng() % 12);
      for (int i = 0; i < n; ++i) cuts.push_back(rng() % (mixed.size() + 1));
      std::sort(cuts.begin(), cuts.end());
      INFO("round " << round);
      CheckParts(mixed, cuts, &out);
    }
  }
  SECTION("the buffer is reused, replaced, and can be released") {
    CheckParts(text, {100000}, &out);
    const size_t cap = out.capacity();
    CheckParts("tiny", {2}, &out);
    CHECK(out.capacity() == cap);
    out.ShrinkTo(cap);
    CHECK(out.capacity() == cap);
    out.ShrinkTo(cap - 1);
    CHECK(out.capacity() == 0);
    CheckParts("again", {}, &out);
  }
}

TEST_CASE("snappy: elements appended per 64 KiB block equal one block",
          "[snappy]") {
  const std::string text = RandomText(300000, 8);
  const std::string noise = RandomBytes(140000, 9);
  for (const std::string& in : {text, noise, text.substr(0, 65536),
                                text.substr(0, 1000), std::string()}) {
    INFO("size " << in.size());
    ByteBuffer elements;
    for (size_t at = 0; at < in.size(); at += kSnappyBlockSize) {
      SnappyAppendElements(std::string_view(in).substr(at, kSnappyBlockSize),
                           &elements);
    }
    std::string block;
    SnappyFinishBlock(in.size(), elements.view(), &block);
    std::string whole;
    SnappyCompress(in, &whole);
    CHECK(block == whole);  // byte for byte what one call makes
    std::string back;
    REQUIRE(SnappyDecompress(block, in.size(), &back).ok());
    CHECK(back == in);
  }
}

TEST_CASE("ByteBuffer::AppendRoom keeps what was written", "[snappy]") {
  ByteBuffer b;
  std::string want;
  for (int i = 0; i < 200; ++i) {
    const std::string piece(static_cast<size_t>(i * 37 % 1000 + 1),
                            static_cast<char>('a' + i % 26));
    std::memcpy(b.AppendRoom(piece.size() + 100), piece.data(), piece.size());
    b.Commit(piece.size());
    want += piece;
  }
  CHECK(b.view() == want);
  b.clear();
  CHECK(b.size() == 0);
}

// Element stream writers for hand-built blocks (the formats snappy's own
// compressor rarely or never emits: long literal lengths, 4-byte offsets,
// overlapping copies, offset 0).
std::string Preamble(uint32_t n) {
  std::string s;
  while (n >= 0x80) {
    s.push_back(static_cast<char>(n | 0x80));
    n >>= 7;
  }
  s.push_back(static_cast<char>(n));
  return s;
}
std::string Literal(std::string_view bytes, int extra_length_bytes) {
  std::string s;
  const size_t m = bytes.size() - 1;
  if (extra_length_bytes == 0) {
    s.push_back(static_cast<char>(m << 2));
  } else {
    s.push_back(static_cast<char>((59 + extra_length_bytes) << 2));
    for (int i = 0; i < extra_length_bytes; ++i) {
      s.push_back(static_cast<char>(m >> (8 * i)));
    }
  }
  return s + std::string(bytes);
}
std::string Copy(size_t length, size_t offset, int offset_bytes) {
  std::string s;
  if (offset_bytes == 1) {
    s.push_back(static_cast<char>(1 | (length - 4) << 2 | (offset >> 8) << 5));
    s.push_back(static_cast<char>(offset));
  } else {
    s.push_back(
        static_cast<char>((offset_bytes == 2 ? 2 : 3) | (length - 1) << 2));
    for (int i = 0; i < offset_bytes; ++i) {
      s.push_back(static_cast<char>(offset >> (8 * i)));
    }
  }
  return s;
}

// Ours (both output kinds) against libsnappy on the same bytes: the same
// verdict, and the same output when valid.
void CheckAgainstReference(std::string_view block) {
  ExactBuffer exact(block);
  std::string ref;
  const bool ref_ok =
      snappy::Uncompress(exact.view().data(), exact.view().size(), &ref);
  std::string ours;
  absl::Status st = SnappyDecompress(exact.view(), 1 << 24, &ours);
  ByteBuffer buf;
  absl::Status st_buf = SnappyDecompress(exact.view(), 1 << 24, &buf);
  CHECK(st.ok() == ref_ok);
  CHECK(st_buf.ok() == ref_ok);
  if (ref_ok && st.ok() && st_buf.ok()) {
    CHECK(ours == ref);
    CHECK(buf.view() == ref);
  }
  if (!st.ok()) CHECK(ours.empty());
  if (!st_buf.ok()) CHECK(buf.size() == 0);
}

// Inputs that reach every path of the compressor: label-like text, bytes
// with nothing to find, and short periods (overlapping, very long copies).
std::vector<std::string> CompressorInputs() {
  std::mt19937_64 rng(41);
  const std::string runs = PeriodicRuns(150000, 20, 400, rng);
  // Label sets: a small vocabulary in records of varying shape, as in a
  // remote-write body (the compressor's real input).
  const char* names[] = {"job", "instance", "pod",    "namespace", "container",
                         "le",  "code",     "method", "project_id"};
  std::string labels;
  while (labels.size() < 200000) {
    labels += "\x0a\x08__name__\x12";
    labels += "metric_" + std::to_string(rng() % 40);
    for (const char* name : names) {
      if (rng() % 3 == 0) continue;
      labels += std::string("\x0a") + name + "\x12" +
                std::to_string(rng() % 5000) + "-" + name;
    }
    labels += RandomBytes(9, rng());  // a sample's value and timestamp
  }
  return {RandomText(200000, 42), RandomBytes(150000, 43), runs,
          std::string(300000, '\0'), labels};
}

// Compresses `in` into a buffer of exactly the room the compressor asks
// for (so a sanitizer build catches a write past it), then decodes it with
// libsnappy and with ours.
void CheckCompressed(std::string_view in) {
  ByteBuffer elements;
  SnappyAppendElements(in, &elements);
  std::string block;
  SnappyFinishBlock(in.size(), elements.view(), &block);
  std::string ref;
  REQUIRE(snappy::IsValidCompressedBuffer(block.data(), block.size()));
  REQUIRE(snappy::Uncompress(block.data(), block.size(), &ref));
  CHECK(ref == in);
  std::string ours;
  REQUIRE(SnappyDecompress(block, in.size(), &ours).ok());
  CHECK(ours == in);
}

TEST_CASE("snappy compressor: libsnappy decodes what it makes", "[snappy]") {
  const std::vector<std::string> inputs = CompressorInputs();
  SECTION("every size up to 300 bytes") {
    for (const std::string& src : inputs) {
      for (size_t n = 0; n <= 300; ++n) {
        INFO("size " << n);
        CheckCompressed(std::string_view(src).substr(0, n));
      }
    }
  }
  SECTION("sizes around the 64 KiB blocks and the table sizes") {
    for (const std::string& src : inputs) {
      for (size_t n : {255, 256, 257, 4095, 4096, 4097, 8191, 8192, 8193, 65535,
                       65536, 65537, 131072, 131087, 150000}) {
        INFO("size " << n << " of " << src.size());
        CheckCompressed(std::string_view(src).substr(0, n));
      }
    }
  }
  SECTION("random slices") {
    std::mt19937_64 rng(44);
    for (int i = 0; i < 200; ++i) {
      const std::string& src = inputs[rng() % inputs.size()];
      const size_t at = rng() % src.size();
      const size_t n = rng() % std::min<size_t>(src.size() - at, 70000);
      INFO("slice " << at << "+" << n);
      CheckCompressed(std::string_view(src).substr(at, n));
    }
  }
}

TEST_CASE("snappy compressor: about as small as libsnappy", "[snappy]") {
  const std::vector<std::string> inputs = CompressorInputs();
  for (size_t i = 0; i < inputs.size(); ++i) {
    INFO("input " << i);
    std::string ours, ref;
    SnappyCompress(inputs[i], &ours);
    snappy::Compress(inputs[i].data(), inputs[i].size(), &ref);
    // Incompressible input stays within snappy's worst case; the rest
    // within 2 % of the reference (a broken match search would not be).
    CHECK(ours.size() <= snappy::MaxCompressedLength(inputs[i].size()));
    CHECK(ours.size() <= ref.size() + ref.size() / 50 + 16);
  }
}

TEST_CASE("the declared length is read from the preamble alone", "[snappy]") {
  for (size_t n : {0, 1, 127, 128, 16384, 70000}) {
    std::string block;
    SnappyCompress(RandomText(n, 31), &block);
    CHECK(SnappyDeclaredLength(block) == n);
    CHECK(SnappyDeclaredLength(Preamble(static_cast<uint32_t>(n))) == n);
  }
  CHECK(SnappyDeclaredLength("") == 0);
  CHECK(SnappyDeclaredLength("\xff\xff\xff\xff\xff\xff") == 0);  // no end
  CHECK(SnappyDeclaredLength("\xff\xff\xff\xff\x10") == 0);      // over 32 bits
  CHECK(SnappyDeclaredLength("\xff\xff\xff\xff\x0f") == 0xffffffffu);
}

TEST_CASE("snappy decoder agrees with libsnappy", "[snappy]") {
  SECTION("what libsnappy compresses, every size class and pattern") {
    std::mt19937_64 rng(21);
    const std::string text = RandomText(200000, 22);
    const std::string noise = RandomBytes(100000, 23);
    const std::string runs = PeriodicRuns(100000, 20, 200, rng);
    for (const std::string* src :
         std::initializer_list<const std::string*>{&text, &noise, &runs}) {
      for (size_t n : {0, 1, 15, 16, 17, 63, 64, 65, 68, 69, 70, 127, 1000,
                       65535, 65536, 65537, 100000}) {
        const std::string in = src->substr(0, n);
        std::string compressed;
        snappy::Compress(in.data(), in.size(), &compressed);
        INFO("size " << n);
        CheckAgainstReference(compressed);
      }
    }
  }
  SECTION("hand-built elements") {
    const std::string a60(60, 'a'), b61 = RandomBytes(61, 24),
                                    c300 = RandomBytes(300, 25),
                                    d70000 = RandomText(70000, 26);
    const std::string long_literals = Literal(b61, 1) + Literal(c300, 2) +
                                      Literal(d70000, 3) + Literal("xyz", 4);
    CheckAgainstReference(Preamble(61 + 300 + 70000 + 3) + long_literals);
    // Copies of every offset width, overlapping (offset < length) or not,
    // with and without room for the fast path after them.
    for (size_t pad : {0, 100}) {
      const std::string head = RandomBytes(3000, 27);
      std::string e =
          Literal(head.substr(0, 60), 0) + Literal(head.substr(60), 2);
      size_t n = head.size();
      for (size_t offset : {1, 2, 7, 15, 16, 17, 63, 64, 65, 2047, 2999}) {
        for (size_t length : {4, 11}) {
          e += Copy(length, offset, 1 + (offset >= 2048));
          n += length;
        }
        for (size_t length : {1, 16, 17, 64}) {
          e += Copy(length, offset, 2);
          e += Copy(length, offset, 4);
          n += 2 * length;
        }
      }
      e += Literal(std::string(pad == 0 ? 1 : pad, 'z'), pad == 0 ? 0 : 1);
      n += pad == 0 ? 1 : pad;
      CheckAgainstReference(Preamble(static_cast<uint32_t>(n)) + e);
    }
    // Invalid: offset 0; reaching before the start; one byte more or less
    // than declared; a literal longer than the input; a copy whose offset
    // bytes are missing.
    CheckAgainstReference(Preamble(8) + Literal("abcd", 0) + Copy(4, 0, 2));
    CheckAgainstReference(Preamble(8) + Literal("abcd", 0) + Copy(4, 5, 2));
    CheckAgainstReference(Preamble(8) + Literal("abcd", 0) + Copy(4, 4, 4));
    CheckAgainstReference(Preamble(9) + Literal("abcd", 0) + Copy(4, 4, 2));
    CheckAgainstReference(Preamble(7) + Literal("abcd", 0) + Copy(4, 4, 2));
    CheckAgainstReference(Preamble(100) +
                          Literal(std::string(100, 'q'), 1).substr(0, 50));
    CheckAgainstReference(Preamble(8) + Literal("abcd", 0) +
                          Copy(4, 4, 4).substr(0, 3));
    CheckAgainstReference(Preamble(3000) + Literal(a60, 0) +
                          Copy(64, 60, 2).substr(0, 1));
  }
  SECTION("mutated blocks: the same verdict and bytes, never a crash") {
    std::mt19937_64 rng(28);
    const std::string runs = PeriodicRuns(20000, 12, 50, rng);
    const std::string sources[] = {RandomText(20000, 29), runs,
                                   RandomText(300, 30)};
    for (const std::string& in : sources) {
      std::string compressed;
      snappy::Compress(in.data(), in.size(), &compressed);
      for (int i = 0; i < 1500; ++i) {
        std::string m = compressed;
        const int flips = 1 + static_cast<int>(rng() % 3);
        for (int f = 0; f < flips; ++f) {
          m[rng() % m.size()] = static_cast<char>(rng());
        }
        if (rng() % 4 == 0) m.resize(rng() % (m.size() + 1));
        CheckAgainstReference(m);
      }
    }
  }
}

}  // namespace
}  // namespace promrelay::wire
