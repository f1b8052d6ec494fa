// tandem: error_info, the one way to read what went wrong beyond the errc.
/// \file
/// `error_info`: the details of a failure (context text, position), and the convention
/// every block follows to hand them out.
///
/// The convention (docs/core.md, "Errors"):
/// - What failed is always the returned `errc` (or the error of a `result<T>`).
/// - Where there is more to say (the path of a file, the line and column of a parse
///   error, the two mismatching sizes), it is an `error_info`:
///   - an object whose calls can fail that way (a generator, a session, a decoder) keeps
///     the details of its last failed call and returns them from `last_error()`;
///   - a function that makes an object or a value from a file, bytes or text (`load`,
///     `from_bytes`, `parse_*`, `read_*`, `create`) takes a trailing `error_info*`
///     (null: no details wanted) and fills it when it fails.
/// - A completion record's `error` field is data (why that generation ended), not a
///   channel for details: they are in the generator's `last_error()`.
/// Filling an `error_info` never allocates, so the per-token path can report too.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"

namespace tandem::inline v0 {

/// The details of a failure: the error value, an optional position in a text input, and
/// a short context text ("model.gguf: not a regular file", "draft vocabulary 4000,
/// target 32000"). A plain value: copyable, no allocation, `code == errc::ok` when there
/// was no failure.
struct error_info {
  /// Capacity of the context text, including its terminating NUL; longer text is cut.
  static constexpr std::size_t capacity = 240;

  errc code = errc::ok;      ///< the error returned with these details; ok: none
  std::uint64_t line = 0;    ///< 1-based line or row of a text input; 0 when not positional
  std::uint64_t column = 0;  ///< 1-based column (byte or field) in that line; 0 when unknown
  char text[capacity] = {};  ///< NUL-terminated context text; empty when none

  /// The context text (a view into this object).
  [[nodiscard]] std::string_view context() const noexcept { return std::string_view(text); }
  /// True when a failure is recorded.
  explicit operator bool() const noexcept { return code != errc::ok; }
  /// Forgets the recorded failure.
  void clear() noexcept {
    code = errc::ok;
    line = column = 0;
    text[0] = '\0';
  }
};

/// Writes a one-line description of `e` into `out` (at most `size` bytes, NUL-terminated):
/// "corrupt_file: model.bin: checksum mismatch (line 3, column 7)". Returns the number of
/// characters written, excluding the NUL; `size` 0 writes nothing.
inline std::size_t format_error(const error_info& e, char* out, std::size_t size) noexcept {
  if (size == 0) return 0;
  const std::string_view name = to_string(e.code);
  int n = 0;
  if (e.text[0] != '\0' && e.line != 0)
    n = std::snprintf(out, size, "%.*s: %s (line %llu, column %llu)", static_cast<int>(name.size()),
                      name.data(), e.text, static_cast<unsigned long long>(e.line),
                      static_cast<unsigned long long>(e.column));
  else if (e.text[0] != '\0')
    n = std::snprintf(out, size, "%.*s: %s", static_cast<int>(name.size()), name.data(), e.text);
  else if (e.line != 0)
    n = std::snprintf(out, size, "%.*s (line %llu, column %llu)", static_cast<int>(name.size()),
                      name.data(), static_cast<unsigned long long>(e.line),
                      static_cast<unsigned long long>(e.column));
  else
    n = std::snprintf(out, size, "%.*s", static_cast<int>(name.size()), name.data());
  if (n < 0) {
    out[0] = '\0';
    return 0;
  }
  return static_cast<std::size_t>(n) < size ? static_cast<std::size_t>(n) : size - 1;
}

namespace detail {

/// \cond TANDEM_INTERNAL
#if defined(__GNUC__) || defined(__clang__)
#define TANDEM_DETAIL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define TANDEM_DETAIL_PRINTF(fmt, args)
#endif
/// \endcond

/// Records `code`, a position and a printf-formatted context in `*info`.
inline void record(error_info& info, errc code, std::uint64_t line, std::uint64_t column,
                   const char* format, std::va_list args) noexcept {
  info.code = code;
  info.line = line;
  info.column = column;
  if (std::vsnprintf(info.text, error_info::capacity, format, args) < 0) info.text[0] = '\0';
}

/// Records `code` and a printf-formatted context in `*info` (when not null) and returns
/// `code`, so a failing function can write `return fail(info, errc::x, "...", ...)`.
TANDEM_DETAIL_PRINTF(3, 4)
inline errc fail(error_info* info, errc code, const char* format, ...) noexcept {
  if (info != nullptr) {
    std::va_list args;
    va_start(args, format);
    record(*info, code, 0, 0, format, args);
    va_end(args);
  }
  return code;
}

/// As fail(), with a 1-based position in a text input.
TANDEM_DETAIL_PRINTF(5, 6)
inline errc fail_at(error_info* info, errc code, std::uint64_t line, std::uint64_t column,
                    const char* format, ...) noexcept {
  if (info != nullptr) {
    std::va_list args;
    va_start(args, format);
    record(*info, code, line, column, format, args);
    va_end(args);
  }
  return code;
}

/// Records `code` without context text (when `info` is not null) and returns it.
inline errc fail(error_info* info, errc code) noexcept {
  if (info != nullptr) {
    info->clear();
    info->code = code;
  }
  return code;
}

#undef TANDEM_DETAIL_PRINTF

}  // namespace detail
}  // namespace tandem::inline v0
