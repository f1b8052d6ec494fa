// tandem: private helpers of the n-gram model's binary file format (little-endian byte
// order, FNV-1a checksum, bounds-checked reading).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "tandem/core/config.hpp"

namespace tandem::inline v0::detail {

/// 64-bit FNV-1a over a byte stream, fed incrementally.
struct fnv1a64 {
  std::uint64_t hash = 0xcbf29ce484222325ULL;

  void update(const void* data, std::size_t n) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint64_t h = hash;
    for (std::size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 0x100000001b3ULL;
    }
    hash = h;
  }
};

/// The unsigned integer type of the same size as T (T is a 4- or 8-byte scalar).
template <class T>
using ngram_uint_of = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;

/// Writes `v` at `out` in little-endian byte order.
template <class T>
inline void store_le(unsigned char* out, T v) noexcept {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  auto u = std::bit_cast<ngram_uint_of<T>>(v);
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out[i] = static_cast<unsigned char>(u & 0xffu);
    u >>= 8;
  }
}

/// Reads a little-endian T from `in`.
template <class T>
[[nodiscard]] inline T load_le(const unsigned char* in) noexcept {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  ngram_uint_of<T> u = 0;
  for (std::size_t i = sizeof(T); i-- > 0;) u = (u << 8) | in[i];
  return std::bit_cast<T>(u);
}

/// Passes the little-endian bytes of `values` to `sink(const void*, size_t)`: the raw
/// memory on little-endian hosts, converted in small chunks elsewhere.
template <class T, class Sink>
inline void emit_le_array(std::span<const T> values, Sink& sink) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  if constexpr (std::endian::native == std::endian::little) {
    if (!values.empty()) sink(values.data(), values.size_bytes());
  } else {
    std::array<unsigned char, 4096> buf{};
    std::size_t fill = 0;
    for (const T& v : values) {
      store_le(buf.data() + fill, v);
      fill += sizeof(T);
      if (fill == buf.size()) {
        sink(buf.data(), fill);
        fill = 0;
      }
    }
    if (fill != 0) sink(buf.data(), fill);
  }
}

/// Bounds-checked little-endian reader over an untrusted byte buffer. Every read checks
/// the remaining length first, so hostile sizes can neither overrun the buffer nor make
/// an array larger than the bytes that back it.
class ngram_reader {
 public:
  explicit ngram_reader(std::span<const unsigned char> bytes) noexcept : bytes_(bytes) {}

  [[nodiscard]] std::size_t remaining() const noexcept { return bytes_.size() - pos_; }

  /// Reads one scalar; false (nothing consumed) when too few bytes remain.
  template <class T>
  [[nodiscard]] bool read(T& out) noexcept {
    if (remaining() < sizeof(T)) return false;
    out = load_le<T>(bytes_.data() + pos_);
    pos_ += sizeof(T);
    return true;
  }

  /// Reads `n` scalars into `out` (resized to n); false when fewer than n * sizeof(T)
  /// bytes remain, checked before any allocation.
  template <class T>
  [[nodiscard]] bool read_array(std::vector<T>& out, std::uint64_t n) {
    if (n > remaining() / sizeof(T)) return false;
    out.resize(static_cast<std::size_t>(n));
    const unsigned char* src = bytes_.data() + pos_;
    if constexpr (std::endian::native == std::endian::little) {
      if (n != 0) std::memcpy(out.data(), src, static_cast<std::size_t>(n) * sizeof(T));
    } else {
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = load_le<T>(src + i * sizeof(T));
    }
    pos_ += static_cast<std::size_t>(n) * sizeof(T);
    return true;
  }

 private:
  std::span<const unsigned char> bytes_;
  std::size_t pos_ = 0;
};

}  // namespace tandem::inline v0::detail
