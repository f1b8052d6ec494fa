// Test helper: the ".expected" files beside the format fixtures in tests/data/formats
// (one probe per line, tab-separated fields, doubles as exact hex floats).
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "common/catch.hpp"
#include "tandem/core/detail/bytes.hpp"

namespace tandem_test {

/// `v` as a C99 hex float ("%a"): exact, so two renderings are equal iff the doubles are.
inline std::string hex(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

/// Writes `text` to `path` (fails the test on error).
inline void write_text(const std::string& path, const std::string& text) {
  REQUIRE(tandem::detail::write_file(path, std::string_view(text)) == tandem::errc::ok);
}

/// The lines of `path`, each split at tabs (fails the test when it cannot be read).
inline std::vector<std::vector<std::string>> expected_lines(const std::string& path) {
  auto text = tandem::detail::read_text_file(path);
  REQUIRE(text);
  std::vector<std::vector<std::string>> out;
  std::size_t at = 0;
  while (at < text->size()) {
    const std::size_t nl = text->find('\n', at);
    const std::string line = text->substr(at, nl - at);
    at = nl == std::string::npos ? text->size() : nl + 1;
    std::vector<std::string> fields;
    for (std::size_t f = 0;;) {
      const std::size_t tab = line.find('\t', f);
      fields.push_back(line.substr(f, tab - f));
      if (tab == std::string::npos) break;
      f = tab + 1;
    }
    out.push_back(std::move(fields));
  }
  return out;
}

}  // namespace tandem_test
