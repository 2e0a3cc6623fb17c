#include "proxy/wire/snappy.h"

#include <snappy.h>

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

}  // namespace promrelay::wire
