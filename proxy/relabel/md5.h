// MD5 (RFC 1321) for the hashmod action. Self-contained so the hot path
// needs no OpenSSL context allocation per series.
#ifndef PROMRELAY_PROXY_RELABEL_MD5_H_
#define PROMRELAY_PROXY_RELABEL_MD5_H_

#include <array>
#include <cstdint>
#include <string_view>

namespace promrelay::relabel::internal {

std::array<uint8_t, 16> Md5(std::string_view data);

// hashmod's number: digest bytes 8..15 as a big-endian uint64.
uint64_t Md5Low64BigEndian(std::string_view data);

}  // namespace promrelay::relabel::internal

#endif  // PROMRELAY_PROXY_RELABEL_MD5_H_
