// tandem (private): the string-based framing the learned evaluator (confidence/learned.hpp)
// still uses, forwarded onto core/detail/bytes.hpp (the one bytes-and-files layer). Delete
// this file once learned.hpp uses bytes.hpp directly; nothing else may include it.
// Frame: 8-byte magic | u32 version | u64 payload size | payload | u64 FNV-1a of payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0::detail::conf {

using detail::fnv1a64;
using detail::fnv1a64_offset;

/// Appends little-endian values; the bytes are viewed as a string.
class byte_writer {
 public:
  void u8(std::uint8_t v) { w_.u8(v); }
  void u32(std::uint32_t v) { w_.u32(v); }
  void u64(std::uint64_t v) { w_.u64(v); }
  void f64(double v) { w_.f64(v); }
  [[nodiscard]] std::string_view bytes() const noexcept { return as_text(w_.bytes()); }

 private:
  detail::byte_writer w_;
};

/// Reads little-endian values from a string; every read fails (returns false) past the end.
class byte_reader {
 public:
  explicit byte_reader(std::string_view s) noexcept : r_(as_bytes(s)) {}
  [[nodiscard]] bool u8(std::uint8_t& v) noexcept { return r_.u8(v); }
  [[nodiscard]] bool u32(std::uint32_t& v) noexcept { return r_.u32(v); }
  [[nodiscard]] bool u64(std::uint64_t& v) noexcept { return r_.u64(v); }
  [[nodiscard]] bool f64(double& v) noexcept { return r_.f64(v); }
  [[nodiscard]] std::size_t remaining() const noexcept { return r_.left(); }
  [[nodiscard]] bool at_end() const noexcept { return r_.at_end(); }

 private:
  detail::byte_reader r_;
};

/// Wraps `payload` in a frame with `magic` (exactly 8 bytes) and `version`.
[[nodiscard]] inline std::string frame(std::string_view magic, std::uint32_t version,
                                       std::string_view payload) {
  return std::string(as_text(detail::frame(magic, version, as_bytes(payload))));
}

/// Checks a frame and returns a view of its payload (into `bytes`). Errors: those of
/// detail::unframe().
[[nodiscard]] inline result<std::string_view> unframe(std::string_view bytes,
                                                      std::string_view magic,
                                                      std::uint32_t version) noexcept {
  auto payload = detail::unframe(as_bytes(bytes), magic, version, "learned evaluator", nullptr);
  if (!payload) return payload.error();
  return as_text(*payload);
}

/// Writes `bytes` to `path`, replacing the file as a whole. Errors: `io_error`.
[[nodiscard]] inline errc write_file(std::string_view path, std::string_view bytes) {
  return detail::write_file(path, bytes, nullptr);
}

/// Reads a whole file. Errors: `file_not_found`, `invalid_argument` (a directory),
/// `io_error`.
[[nodiscard]] inline result<std::string> read_file(std::string_view path) {
  return detail::read_text_file(path, nullptr);
}

}  // namespace tandem::inline v0::detail::conf
