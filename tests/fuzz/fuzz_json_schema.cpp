// Fuzz target for the JSON reader and the JSON Schema compiler
// (tandem/constrain/json_schema.hpp): any input either fails with one of the documented
// errors, with details filled, or gives a regex that is valid UTF-8 with balanced groups
// and classes; the reader never crashes and reports its error position inside the text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tandem/constrain/json_schema.hpp"

namespace {

// Checks the shape of an emitted regex: valid UTF-8, escapes complete, groups and bracket
// classes balanced (the dialect's parser gets only well-formed input from the compiler).
bool well_formed(std::string_view re) {
  int depth = 0;
  bool in_class = false;
  for (std::size_t i = 0; i < re.size(); ++i) {
    const auto c = static_cast<unsigned char>(re[i]);
    if (c >= 0x80) {
      const std::size_t n = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
      if (n == 0 || i + n >= re.size()) return false;
      for (std::size_t k = 1; k <= n; ++k)
        if ((static_cast<unsigned char>(re[i + k]) & 0xC0) != 0x80) return false;
      i += n;
      continue;
    }
    if (c == '\\') {
      if (++i >= re.size()) return false;
      continue;
    }
    if (in_class) {
      in_class = c != ']';
      continue;
    }
    if (c == '[') in_class = true;
    if (c == '(') ++depth;
    if (c == ')' && --depth < 0) return false;
  }
  return depth == 0 && !in_class;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  tandem::json_schema_options o;
  o.max_whitespace = data[0] & 3;
  o.max_string_length = (data[0] >> 2) & 15;
  o.max_nesting = 1 + ((data[0] >> 6) & 3) * 8;
  o.max_regex_size = 1 << 16;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  tandem::error_info info;
  const auto doc = tandem::detail::json::parse(text, {}, &info);
  if (!doc) {
    if (doc.error() != tandem::errc::parse_error || info.code != tandem::errc::parse_error ||
        info.line == 0 || info.column == 0)
      std::abort();
  }

  info.clear();
  const auto re = tandem::json_schema_to_regex(text, o, &info);
  if (!re) {
    const auto e = re.error();
    if (e != tandem::errc::parse_error && e != tandem::errc::unsupported &&
        e != tandem::errc::invalid_argument && e != tandem::errc::constraint_too_large)
      std::abort();
    if (info.code != e || info.context().empty()) std::abort();
    return 0;
  }
  if (!doc || !well_formed(*re) || re->size() > o.max_regex_size) std::abort();
  return 0;
}
