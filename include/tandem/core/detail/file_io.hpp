// tandem (private): reading and writing whole files, shared by the blocks that load and
// save their own files (confidence evaluators and calibrators, CSV tables).
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0::detail {

/// Writes `bytes` to `path`, replacing the file. Errors: `io_error` (cannot open, write
/// or close; a partial file may remain).
[[nodiscard]] inline errc write_file(const char* path, std::string_view bytes) noexcept {
  std::FILE* f = std::fopen(path, "wb");
  if (f == nullptr) return errc::io_error;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  return ok && closed ? errc::ok : errc::io_error;
}

/// Reads a whole file into a string the caller owns. Errors: `file_not_found` (cannot
/// open), `io_error` (a read failed).
[[nodiscard]] inline result<std::string> read_file(const char* path) {
  std::FILE* f = std::fopen(path, "rb");
  if (f == nullptr) return errc::file_not_found;
  std::string out;
  char buf[1 << 14];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return errc::io_error;
  return out;
}

}  // namespace tandem::inline v0::detail
