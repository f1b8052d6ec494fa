// tandem (private): the one bytes-and-files layer under every file format of the library.
//
// Conventions (one for the whole library):
// - bytes are `std::byte`: owned as `std::vector<std::byte>`, viewed as
//   `std::span<const std::byte>`; text files are read as `std::string`;
// - a path is a `std::string_view` (any string converts to it);
// - integers and floating-point values are stored little-endian on every platform;
// - every binary format is a frame: 8-byte magic | u32 version | u64 payload size |
//   payload | u64 FNV-1a-64 of the payload;
// - failures are named (file_not_found, not_a_file as invalid_argument, io_error,
//   corrupt_file, unsupported_version) and their details go to an `error_info*`.
#pragma once

#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0::detail {

// ---------------------------------------------------------------------------------------
// FNV-1a (64-bit)

inline constexpr std::uint64_t fnv1a64_offset = 0xcbf29ce484222325ULL;
inline constexpr std::uint64_t fnv1a64_prime = 0x100000001b3ULL;

/// FNV-1a-64 of `bytes`, continuing from `h`.
[[nodiscard]] constexpr std::uint64_t fnv1a64(std::string_view bytes,
                                              std::uint64_t h = fnv1a64_offset) noexcept {
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= fnv1a64_prime;
  }
  return h;
}

/// FNV-1a-64 of `bytes`, continuing from `h`.
[[nodiscard]] inline std::uint64_t fnv1a64(std::span<const std::byte> bytes,
                                           std::uint64_t h = fnv1a64_offset) noexcept {
  for (const std::byte b : bytes) {
    h ^= static_cast<unsigned char>(b);
    h *= fnv1a64_prime;
  }
  return h;
}

/// FNV-1a-64 of the object representation of a trivially copyable value (used by the
/// hashed featurizers over integer ids), continuing from `h`.
template <class T>
[[nodiscard]] constexpr std::uint64_t fnv1a64_value(T v,
                                                    std::uint64_t h = fnv1a64_offset) noexcept {
  static_assert(std::is_integral_v<T>);
  using U = std::make_unsigned_t<T>;
  U u = static_cast<U>(v);
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    h ^= static_cast<unsigned char>(u & 0xffu);
    h *= fnv1a64_prime;
    if constexpr (sizeof(T) > 1) u = static_cast<U>(u >> 8);
  }
  return h;
}

// ---------------------------------------------------------------------------------------
// Little-endian writer and reader

/// Appends little-endian values to a byte buffer it owns.
class byte_writer {
 public:
  void u8(std::uint8_t v) { buf_.push_back(static_cast<std::byte>(v)); }
  void u32(std::uint32_t v) { put(v); }
  void u64(std::uint64_t v) { put(v); }
  void i32(std::int32_t v) { put(static_cast<std::uint32_t>(v)); }
  void i64(std::int64_t v) { put(static_cast<std::uint64_t>(v)); }
  void f32(float v) { put(std::bit_cast<std::uint32_t>(v)); }
  void f64(double v) { put(std::bit_cast<std::uint64_t>(v)); }
  /// Raw bytes, without a length.
  void raw(std::span<const std::byte> b) { buf_.insert(buf_.end(), b.begin(), b.end()); }
  void raw(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    buf_.insert(buf_.end(), p, p + s.size());
  }
  /// A u64 length, then the bytes of `s`.
  void str(std::string_view s) {
    u64(s.size());
    raw(s);
  }
  /// A u64 count, then each element little-endian (T: a 1-, 4- or 8-byte arithmetic type).
  template <class T>
  void array(std::span<const T> values) {
    u64(values.size());
    elements(values);
  }
  template <class T>
  void array(const std::vector<T>& values) {
    array(std::span<const T>(values));
  }
  /// Each element little-endian, without a count (for formats that store counts apart).
  template <class T>
  void elements(std::span<const T> values) {
    if constexpr (std::endian::native == std::endian::little || sizeof(T) == 1) {
      const auto b = std::as_bytes(values);
      buf_.insert(buf_.end(), b.begin(), b.end());
    } else {
      for (const T& v : values) put(std::bit_cast<unsigned_of<T>>(v));
    }
  }
  template <class T>
  void elements(const std::vector<T>& values) {
    elements(std::span<const T>(values));
  }
  /// Reserves room for `n` more bytes.
  void reserve(std::size_t n) { buf_.reserve(buf_.size() + n); }
  [[nodiscard]] std::size_t size() const noexcept { return buf_.size(); }
  [[nodiscard]] const std::vector<std::byte>& bytes() const& noexcept { return buf_; }
  [[nodiscard]] std::vector<std::byte> take() noexcept { return std::move(buf_); }

  template <class T>
  using unsigned_of = std::conditional_t<
      sizeof(T) == 8, std::uint64_t,
      std::conditional_t<sizeof(T) == 4, std::uint32_t,
                         std::conditional_t<sizeof(T) == 2, std::uint16_t, std::uint8_t>>>;

 private:
  template <class U>
  void put(U v) {
    for (std::size_t i = 0; i < sizeof(U); ++i) {
      buf_.push_back(static_cast<std::byte>(v & 0xffu));
      if constexpr (sizeof(U) > 1) v = static_cast<U>(v >> 8);
    }
  }
  std::vector<std::byte> buf_;
};

/// Reads little-endian values from untrusted bytes. Every read checks the remaining length
/// first and returns false (consuming nothing) when it falls short, so hostile sizes can
/// neither overrun the buffer nor allocate more than the bytes that back them.
class byte_reader {
 public:
  explicit byte_reader(std::span<const std::byte> b) noexcept : b_(b) {}

  [[nodiscard]] bool u8(std::uint8_t& v) noexcept {
    if (left() < 1) return false;
    v = static_cast<std::uint8_t>(b_[pos_++]);
    return true;
  }
  [[nodiscard]] bool u32(std::uint32_t& v) noexcept { return get(v); }
  [[nodiscard]] bool u64(std::uint64_t& v) noexcept { return get(v); }
  [[nodiscard]] bool i32(std::int32_t& v) noexcept {
    std::uint32_t u = 0;
    if (!get(u)) return false;
    v = static_cast<std::int32_t>(u);
    return true;
  }
  [[nodiscard]] bool i64(std::int64_t& v) noexcept {
    std::uint64_t u = 0;
    if (!get(u)) return false;
    v = static_cast<std::int64_t>(u);
    return true;
  }
  [[nodiscard]] bool f32(float& v) noexcept {
    std::uint32_t u = 0;
    if (!get(u)) return false;
    v = std::bit_cast<float>(u);
    return true;
  }
  [[nodiscard]] bool f64(double& v) noexcept {
    std::uint64_t u = 0;
    if (!get(u)) return false;
    v = std::bit_cast<double>(u);
    return true;
  }
  /// Reads a u64 length and that many bytes into `s`.
  [[nodiscard]] bool str(std::string& s) {
    const std::size_t save = pos_;
    std::uint64_t n = 0;
    if (!get(n) || n > left()) {
      pos_ = save;
      return false;
    }
    s.assign(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return true;
  }
  /// Reads `n` raw bytes as a view into the input.
  [[nodiscard]] bool raw(std::size_t n, std::span<const std::byte>& out) noexcept {
    if (n > left()) return false;
    out = b_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  /// Reads a u64 count and that many elements; the count is checked against the bytes
  /// left before anything is allocated. `max_count` bounds it further.
  template <class T>
  [[nodiscard]] bool array(std::vector<T>& out, std::uint64_t max_count = ~std::uint64_t{0}) {
    const std::size_t save = pos_;
    std::uint64_t n = 0;
    if (!get(n) || n > max_count || !elements(out, n)) {
      pos_ = save;
      return false;
    }
    return true;
  }
  /// Reads `n` elements (no count in the input: formats that store counts apart) into
  /// `out`, resized to `n`; false (nothing consumed) when fewer than n * sizeof(T) bytes
  /// are left, checked before anything is allocated.
  template <class T>
  [[nodiscard]] bool elements(std::vector<T>& out, std::uint64_t n) {
    if (n > left() / sizeof(T)) return false;
    out.resize(static_cast<std::size_t>(n));
    const std::byte* src = b_.data() + pos_;
    if constexpr (std::endian::native == std::endian::little || sizeof(T) == 1) {
      if (n != 0) std::memcpy(out.data(), src, static_cast<std::size_t>(n) * sizeof(T));
      pos_ += static_cast<std::size_t>(n) * sizeof(T);
    } else {
      for (T& v : out) {
        byte_writer::unsigned_of<T> u{};
        (void)get(u);
        v = std::bit_cast<T>(u);
      }
    }
    return true;
  }
  [[nodiscard]] std::size_t left() const noexcept { return b_.size() - pos_; }
  [[nodiscard]] bool at_end() const noexcept { return pos_ == b_.size(); }
  [[nodiscard]] std::size_t position() const noexcept { return pos_; }

 private:
  template <class U>
  [[nodiscard]] bool get(U& v) noexcept {
    if (left() < sizeof(U)) return false;
    U u = 0;
    for (std::size_t i = sizeof(U); i-- > 0;)
      u = static_cast<U>((sizeof(U) > 1 ? (u << 8) : 0) |
                         static_cast<U>(static_cast<unsigned char>(b_[pos_ + i])));
    v = u;
    pos_ += sizeof(U);
    return true;
  }
  std::span<const std::byte> b_;
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------
// The frame every binary format shares

/// Bytes of a frame around its payload: magic (8) + version (4) + size (8) + checksum (8).
inline constexpr std::size_t frame_overhead = 28;

/// Starts a frame at the end of `w`: magic (exactly 8 bytes), version and the size of the
/// payload to come. The caller then writes exactly `payload_size` bytes and calls
/// end_frame() with the returned offset, so that a large payload is written once, in place.
[[nodiscard]] inline std::size_t begin_frame(byte_writer& w, std::string_view magic,
                                             std::uint32_t version, std::uint64_t payload_size) {
  TANDEM_ASSERT(magic.size() == 8, "frame: the magic must be 8 bytes");
  w.raw(magic);
  w.u32(version);
  w.u64(payload_size);
  return w.size();
}

/// Ends the frame whose payload starts at `payload_start` (from begin_frame()) by appending
/// the payload's checksum. Precondition (TANDEM_ASSERT): the payload has the size declared.
inline void end_frame(byte_writer& w, std::size_t payload_start) {
  const auto payload = std::span<const std::byte>(w.bytes()).subspan(payload_start);
  [[maybe_unused]] std::uint64_t size = 0;
  [[maybe_unused]] const bool read =
      byte_reader(std::span<const std::byte>(w.bytes()).subspan(payload_start - 8, 8)).u64(size);
  TANDEM_ASSERT(read && size == payload.size(),
                "end_frame: the payload is not the size begin_frame declared");
  w.u64(fnv1a64(payload));
}

/// Wraps `payload` in a frame with `magic` (exactly 8 bytes) and `version`.
[[nodiscard]] inline std::vector<std::byte> frame(std::string_view magic, std::uint32_t version,
                                                  std::span<const std::byte> payload) {
  byte_writer w;
  w.reserve(payload.size() + frame_overhead);
  const std::size_t start = begin_frame(w, magic, version, payload.size());
  w.raw(payload);
  end_frame(w, start);
  return w.take();
}

/// Checks a frame written by frame() and returns a view of its payload (into `bytes`).
/// `format` names the format in error details ("router", "n-gram model").
/// Errors: `corrupt_file` (not this format's magic, truncation, a size or checksum
/// mismatch, trailing bytes), `unsupported_version` (another version; the details state
/// both versions).
[[nodiscard]] inline result<std::span<const std::byte>> unframe(std::span<const std::byte> bytes,
                                                                std::string_view magic,
                                                                std::uint32_t version,
                                                                const char* format,
                                                                error_info* info) noexcept {
  TANDEM_ASSERT(magic.size() == 8, "unframe: the magic must be 8 bytes");
  if (bytes.size() < 8 || std::memcmp(bytes.data(), magic.data(), 8) != 0)
    return fail(info, errc::corrupt_file, "not a %s file (bad magic)", format);
  byte_reader r(bytes.subspan(8));
  std::uint32_t v = 0;
  std::uint64_t size = 0;
  if (!r.u32(v)) return fail(info, errc::corrupt_file, "%s file truncated in its header", format);
  if (v != version)
    return fail(info, errc::unsupported_version,
                "%s file of format version %u; this build reads version %u", format,
                static_cast<unsigned>(v), static_cast<unsigned>(version));
  if (!r.u64(size) || bytes.size() < frame_overhead)
    return fail(info, errc::corrupt_file, "%s file truncated in its header", format);
  if (size != bytes.size() - frame_overhead)
    return fail(info, errc::corrupt_file,
                "%s file: payload size %llu does not match the %llu bytes present", format,
                static_cast<unsigned long long>(size),
                static_cast<unsigned long long>(bytes.size() - frame_overhead));
  const auto payload = bytes.subspan(20, static_cast<std::size_t>(size));
  byte_reader tail(bytes.subspan(20 + static_cast<std::size_t>(size)));
  std::uint64_t sum = 0;
  if (!tail.u64(sum) || sum != fnv1a64(payload))
    return fail(info, errc::corrupt_file, "%s file: checksum mismatch", format);
  return payload;
}

// ---------------------------------------------------------------------------------------
// Whole files

namespace files {

// Reads the file at `path` into `out`, at most `limit` bytes.
template <class Container>
[[nodiscard]] inline errc read_into(std::string_view path, Container& out, error_info* info,
                                    std::size_t limit = ~std::size_t{0}) {
  const std::string name(path);
  std::FILE* f = std::fopen(name.c_str(), "rb");
  if (f == nullptr) return fail(info, errc::file_not_found, "%s: cannot open", name.c_str());
  out.clear();
  constexpr std::size_t chunk = std::size_t{1} << 16;
  errc e = errc::ok;
  int err = 0;
  for (;;) {
    const std::size_t have = out.size();
    const std::size_t want = limit - have < chunk ? limit - have : chunk;
    out.resize(have + want);
    const std::size_t got = want == 0 ? 0 : std::fread(out.data() + have, 1, want, f);
    out.resize(have + got);
    if (got < chunk) {
      if (std::ferror(f) != 0) {
        err = errno;
        e = errc::io_error;
      }
      break;
    }
  }
  std::fclose(f);
  if (e == errc::ok) return errc::ok;
  out.clear();
#ifdef EISDIR
  if (err == EISDIR)
    return fail(info, errc::invalid_argument, "%s: a directory, not a file", name.c_str());
#endif
  return fail(info, errc::io_error, "%s: read failed (%s)", name.c_str(), std::strerror(err));
}

}  // namespace files

/// Reads a whole binary file. Errors: `file_not_found` (cannot open), `invalid_argument`
/// (a directory), `io_error` (a read failed); the details name the path.
[[nodiscard]] inline result<std::vector<std::byte>> read_file(std::string_view path,
                                                              error_info* info = nullptr) {
  std::vector<std::byte> out;
  if (const errc e = files::read_into(path, out, info); e != errc::ok) return e;
  return out;
}

/// Reads the first `max_bytes` bytes of a file (fewer when it is shorter): a format's magic
/// without reading a large file whole. Errors: as read_file().
[[nodiscard]] inline result<std::vector<std::byte>> read_file_head(std::string_view path,
                                                                   std::size_t max_bytes,
                                                                   error_info* info = nullptr) {
  std::vector<std::byte> out;
  if (const errc e = files::read_into(path, out, info, max_bytes); e != errc::ok) return e;
  return out;
}

/// Reads a whole text file (bytes as they are, no newline translation). Errors: as
/// read_file().
[[nodiscard]] inline result<std::string> read_text_file(std::string_view path,
                                                        error_info* info = nullptr) {
  std::string out;
  if (const errc e = files::read_into(path, out, info); e != errc::ok) return e;
  return out;
}

/// Writes `bytes` to `path`, replacing the file as a whole: the bytes go to "<path>.tmp",
/// which is renamed over `path` only once complete, so a failure leaves any earlier file
/// intact. Errors: `io_error` (cannot create, write, close or rename; the details name the
/// path).
[[nodiscard]] inline errc write_file(std::string_view path, std::span<const std::byte> bytes,
                                     error_info* info = nullptr) {
  const std::string name(path);
  const std::string tmp = name + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr)
    return fail(info, errc::io_error, "%s: cannot create (%s)", tmp.c_str(), std::strerror(errno));
  const bool wrote = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  if (!wrote || !closed) {
    std::remove(tmp.c_str());
    return fail(info, errc::io_error, "%s: write failed", name.c_str());
  }
  if (std::rename(tmp.c_str(), name.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return fail(info, errc::io_error, "%s: cannot replace (%s)", name.c_str(), std::strerror(err));
  }
  return errc::ok;
}

/// Writes text to `path` as write_file() does.
[[nodiscard]] inline errc write_file(std::string_view path, std::string_view text,
                                     error_info* info = nullptr) {
  return write_file(path, std::as_bytes(std::span<const char>(text.data(), text.size())), info);
}

/// A view of text as bytes.
[[nodiscard]] inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

/// A view of bytes as text.
[[nodiscard]] inline std::string_view as_text(std::span<const std::byte> b) noexcept {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

// ---------------------------------------------------------------------------------------
// Loading a format from a file

/// Prepends "<path>: " to the context text in `*info` (when not null), so that an error
/// found in a file's contents names the file. The code, line and column are kept.
inline void prefix_path(error_info* info, std::string_view path) noexcept {
  if (info == nullptr) return;
  char old[error_info::capacity];
  std::memcpy(old, info->text, error_info::capacity);
  old[error_info::capacity - 1] = '\0';
  const int n = std::snprintf(info->text, error_info::capacity, "%.*s: %s",
                              static_cast<int>(path.size()), path.data(), old);
  if (n < 0) std::memcpy(info->text, old, error_info::capacity);
}

/// Reads the file at `path` and returns `parse(bytes, info)` (`parse`: a callable taking
/// `std::span<const std::byte>` and `error_info*`, returning a `result`). Errors: those of
/// read_file() and those of `parse`, whose details are then prefixed with the path.
template <class Parse>
[[nodiscard]] auto parse_file(std::string_view path, error_info* info, Parse&& parse)
    -> decltype(parse(std::span<const std::byte>{}, info)) {
  auto bytes = read_file(path, info);
  if (!bytes) return bytes.error();
  auto r = parse(std::span<const std::byte>(*bytes), info);
  if (!r) prefix_path(info, path);
  return r;
}

}  // namespace tandem::inline v0::detail
