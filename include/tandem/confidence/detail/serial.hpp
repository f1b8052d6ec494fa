// tandem (private): the framed binary format of the confidence block's files, and FNV-1a.
// Frame: 8-byte magic | u32 version | u64 payload size | payload | u64 FNV-1a of payload.
// Integers and doubles are stored little-endian on every platform.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/file_io.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0::detail::conf {

inline constexpr std::uint64_t fnv1a64_offset = 0xcbf29ce484222325ULL;

/// FNV-1a (64-bit) of `bytes`, continuing from `h`.
[[nodiscard]] constexpr std::uint64_t fnv1a64(std::string_view bytes,
                                              std::uint64_t h = fnv1a64_offset) noexcept {
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// Appends little-endian values to a byte string.
class byte_writer {
 public:
  void u8(std::uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
  }
  void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
  [[nodiscard]] const std::string& bytes() const noexcept { return buf_; }

 private:
  std::string buf_;
};

/// Reads little-endian values; every read fails (returns false) past the end.
class byte_reader {
 public:
  explicit byte_reader(std::string_view s) noexcept : s_(s) {}
  [[nodiscard]] bool u8(std::uint8_t& v) noexcept {
    if (s_.size() - pos_ < 1) return false;
    v = static_cast<std::uint8_t>(s_[pos_++]);
    return true;
  }
  [[nodiscard]] bool u32(std::uint32_t& v) noexcept {
    if (s_.size() - pos_ < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(s_[pos_++])) << (8 * i);
    return true;
  }
  [[nodiscard]] bool u64(std::uint64_t& v) noexcept {
    if (s_.size() - pos_ < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(s_[pos_++])) << (8 * i);
    return true;
  }
  [[nodiscard]] bool f64(double& v) noexcept {
    std::uint64_t u = 0;
    if (!u64(u)) return false;
    v = std::bit_cast<double>(u);
    return true;
  }
  [[nodiscard]] std::size_t remaining() const noexcept { return s_.size() - pos_; }
  [[nodiscard]] bool at_end() const noexcept { return pos_ == s_.size(); }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

/// Wraps `payload` in a frame with `magic` (exactly 8 bytes) and `version`.
[[nodiscard]] inline std::string frame(std::string_view magic, std::uint32_t version,
                                       std::string_view payload) {
  TANDEM_ASSERT(magic.size() == 8, "frame: magic must be 8 bytes");
  byte_writer w;
  w.u32(version);
  w.u64(payload.size());
  std::string out(magic);
  out += w.bytes();
  out.append(payload);
  byte_writer c;
  c.u64(fnv1a64(payload));
  out += c.bytes();
  return out;
}

/// Checks a frame and returns a view of its payload (into `bytes`). Errors:
/// `corrupt_file` (bad magic, size or checksum, truncation, trailing bytes),
/// `unsupported_version` (a version other than `version`).
[[nodiscard]] inline result<std::string_view> unframe(std::string_view bytes,
                                                      std::string_view magic,
                                                      std::uint32_t version) noexcept {
  if (bytes.size() < 8 + 4 + 8 + 8 || bytes.substr(0, 8) != magic) return errc::corrupt_file;
  byte_reader r(bytes.substr(8));
  std::uint32_t v = 0;
  std::uint64_t size = 0;
  if (!r.u32(v) || !r.u64(size)) return errc::corrupt_file;
  if (v != version) return errc::unsupported_version;
  if (size != bytes.size() - 28) return errc::corrupt_file;
  const std::string_view payload = bytes.substr(20, static_cast<std::size_t>(size));
  byte_reader tail(bytes.substr(20 + static_cast<std::size_t>(size)));
  std::uint64_t sum = 0;
  if (!tail.u64(sum) || sum != fnv1a64(payload)) return errc::corrupt_file;
  return payload;
}

// write_file (errors: io_error) and read_file (errors: file_not_found, io_error) live in
// core/detail/file_io.hpp, shared with the CSV reader.
using detail::read_file;
using detail::write_file;

}  // namespace tandem::inline v0::detail::conf
