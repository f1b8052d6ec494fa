// Test helper: the file-format fixtures of tests/data/formats/ (see its README.md) and
// their ".expected" companions, split into whitespace-separated fields per line.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#ifndef TANDEM_FORMATS_DIR
#error "TANDEM_FORMATS_DIR must name tests/data/formats"
#endif

namespace tandem_test {

/// The path of fixture `name` in tests/data/formats.
inline std::string format_fixture(const std::string& name) {
  return std::string(TANDEM_FORMATS_DIR) + "/" + name;
}

/// The bytes of fixture `name` (empty when it cannot be read).
inline std::vector<std::byte> format_fixture_bytes(const std::string& name) {
  std::ifstream in(format_fixture(name), std::ios::binary);
  const std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
  return out;
}

/// The lines of fixture `name` (a ".expected" file), each split at whitespace.
inline std::vector<std::vector<std::string>> format_fixture_lines(const std::string& name) {
  std::ifstream in(format_fixture(name));
  std::vector<std::vector<std::string>> lines;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (!f.empty()) lines.push_back(std::move(f));
  }
  return lines;
}

/// A number written with "%a" (or "inf"/"-inf") by the fixture generator.
inline double hex_double(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

}  // namespace tandem_test
