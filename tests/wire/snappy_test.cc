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
    CHECK(block == whole);  // byte for byte what libsnappy makes
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

}  // namespace
}  // namespace promrelay::wire
