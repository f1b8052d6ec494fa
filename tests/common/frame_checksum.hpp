// Test helper: recomputes the checksum of a file after an edit, so that tests and fuzzers
// reach the structural checks behind it (a frame of core/detail/bytes.hpp, or the header
// of a version 1 n-gram model file).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tandem/core/detail/bytes.hpp"

namespace tandem_test {

/// `bytes` with the FNV-1a-64 of its frame's payload rewritten in its last 8 bytes.
inline std::vector<std::byte> with_frame_checksum(std::vector<std::byte> bytes) {
  constexpr std::size_t header = 20;  // magic, version, payload size
  if (bytes.size() < tandem::detail::frame_overhead) return bytes;
  const std::uint64_t h =
      tandem::detail::fnv1a64(std::span<const std::byte>(bytes).subspan(header, bytes.size() - 28));
  for (std::size_t i = 0; i < 8; ++i)
    bytes[bytes.size() - 8 + i] = static_cast<std::byte>((h >> (8 * i)) & 0xffu);
  return bytes;
}

/// `bytes` (a version 1 n-gram model file) with bytes 16..23 set to the FNV-1a-64 of every
/// byte after them.
inline std::vector<std::byte> with_ngram_v1_checksum(std::vector<std::byte> bytes) {
  constexpr std::size_t checksum_at = 16, body_at = 24;
  if (bytes.size() < body_at) return bytes;
  const std::uint64_t h =
      tandem::detail::fnv1a64(std::span<const std::byte>(bytes).subspan(body_at));
  for (std::size_t i = 0; i < 8; ++i)
    bytes[checksum_at + i] = static_cast<std::byte>((h >> (8 * i)) & 0xffu);
  return bytes;
}

}  // namespace tandem_test
