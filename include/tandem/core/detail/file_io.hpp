// tandem (private): the old whole-file helpers, kept only as forwarders onto
// core/detail/bytes.hpp for the code that still calls them (the SVG chart and prompt-list
// code and their tests, which are moving to tools/). New code uses bytes.hpp; delete this
// file once nothing includes it.
#pragma once

#include <string>
#include <string_view>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0::detail {

/// Writes `bytes` to `path`, replacing the file as a whole (bytes.hpp's write_file).
/// Errors: `io_error`.
[[nodiscard]] inline errc write_file(const char* path, std::string_view bytes) {
  return write_file(std::string_view(path), bytes, nullptr);
}

/// Reads a whole file into a string the caller owns (bytes.hpp's read_text_file). Errors:
/// `file_not_found`, `invalid_argument` (a directory), `io_error`.
[[nodiscard]] inline result<std::string> read_file(const char* path) {
  return read_text_file(path, nullptr);
}

}  // namespace tandem::inline v0::detail
