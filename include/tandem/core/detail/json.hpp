// tandem: a small non-throwing JSON reader (RFC 8259).
/// \file
/// `detail::json::parse`: text to a DOM of null, boolean, number, string, array and object
/// values. The library core stays free of third-party JSON libraries; this reader serves
/// the JSON Schema compiler (tandem/constrain/json_schema.hpp) and the HTTP generator
/// (tandem/backends/http.hpp). Its writer is core/detail/json_writer.hpp.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/hex.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/stream_decoder.hpp"

namespace tandem::inline v0::detail::json {

/// The kind of a JSON value.
enum class kind : std::uint8_t { null, boolean, number, string, array, object };

struct member;

/// A JSON value. Object members keep their document order; duplicate keys are rejected by
/// parse(). Each value remembers where it starts (1-based line and byte column).
struct value {
  kind type = kind::null;       ///< which of the fields below is meaningful
  bool boolean = false;         ///< a boolean's value
  double number = 0.0;          ///< a number's value (nearest double)
  std::string text;             ///< a string's decoded UTF-8, or a number's source text
  std::vector<value> items;     ///< an array's elements
  std::vector<member> members;  ///< an object's members, in document order
  std::uint32_t line = 0;       ///< 1-based line of the value's first byte
  std::uint32_t column = 0;     ///< 1-based byte column of the value's first byte

  /// The member named `key` of an object, or null (also when this is not an object).
  [[nodiscard]] const value* find(std::string_view key) const noexcept;
};

/// One member of an object.
struct member {
  std::string key;           ///< the decoded key
  value val;                 ///< its value
  std::uint32_t line = 0;    ///< 1-based line of the key's opening quote
  std::uint32_t column = 0;  ///< 1-based byte column of the key's opening quote
};

inline const value* value::find(std::string_view key) const noexcept {
  for (const member& m : members)
    if (m.key == key) return &m.val;
  return nullptr;
}

/// Options of parse().
struct parse_options {
  /// Deepest nesting of arrays and objects accepted (the top level counts 1); deeper input
  /// is a `parse_error`, so a hostile text cannot exhaust the stack.
  std::size_t max_depth = 64;
};

/// Decodes the well-formed UTF-8 character that starts `s` into `cp` and returns its length
/// in bytes (1 to 4); 0 when `s` is empty or does not start with one (`cp` unchanged).
[[nodiscard]] constexpr std::size_t decode_utf8(std::string_view s, std::uint32_t& cp) noexcept {
  if (s.empty()) return 0;
  const int n = utf8_char_length(s);
  if (n <= 0) return 0;
  constexpr unsigned char lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  std::uint32_t v = static_cast<unsigned char>(s[0]) & lead_mask[n];
  for (int k = 1; k < n; ++k)
    v = (v << 6) | (static_cast<unsigned char>(s[static_cast<std::size_t>(k)]) & 0x3Fu);
  cp = v;
  return static_cast<std::size_t>(n);
}

/// Appends code point `cp` (a Unicode scalar value) to `out` as UTF-8.
inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// \cond TANDEM_INTERNAL
class reader {
 public:
  reader(std::string_view text, const parse_options& o, error_info* info) noexcept
      : s_(text), o_(o), info_(info) {}

  errc run(value& out) {
    skip_ws();
    TANDEM_TRY(parse_value(out, 1));
    skip_ws();
    if (i_ != s_.size()) return fail("unexpected text after the JSON value");
    return errc::ok;
  }

 private:
  errc fail(const char* what) noexcept {
    return fail_at(info_, errc::parse_error, line_, i_ - line_start_ + 1, "JSON: %s", what);
  }
  void skip_ws() noexcept {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '\n') {
        ++i_;
        ++line_;
        line_start_ = i_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++i_;
      } else {
        break;
      }
    }
  }
  bool eat(char c) noexcept {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool eat_word(std::string_view w) noexcept {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }

  errc parse_value(value& v, std::size_t depth) {
    v.line = static_cast<std::uint32_t>(line_);
    v.column = static_cast<std::uint32_t>(i_ - line_start_ + 1);
    if (i_ >= s_.size()) return fail("unexpected end of input, a value was expected");
    const char c = s_[i_];
    if (c == '{' || c == '[') {
      if (depth > o_.max_depth) return fail("nesting deeper than the limit");
      return c == '{' ? parse_object(v, depth) : parse_array(v, depth);
    }
    if (c == '"') {
      v.type = kind::string;
      return parse_string(v.text);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(v);
    if (eat_word("true") || eat_word("false")) {
      v.type = kind::boolean;
      v.boolean = c == 't';
      return errc::ok;
    }
    if (eat_word("null")) {
      v.type = kind::null;
      return errc::ok;
    }
    return fail("unexpected character, a value was expected");
  }

  errc parse_object(value& v, std::size_t depth) {
    v.type = kind::object;
    ++i_;
    skip_ws();
    if (eat('}')) return errc::ok;
    for (;;) {
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != '"') return fail("an object key (a string) was expected");
      member m;
      m.line = static_cast<std::uint32_t>(line_);
      m.column = static_cast<std::uint32_t>(i_ - line_start_ + 1);
      TANDEM_TRY(parse_string(m.key));
      skip_ws();
      if (!eat(':')) return fail("':' was expected after an object key");
      skip_ws();
      TANDEM_TRY(parse_value(m.val, depth + 1));
      v.members.push_back(std::move(m));
      skip_ws();
      if (eat('}')) return check_unique_keys(v);
      if (!eat(',')) return fail("',' or '}' was expected in an object");
    }
  }

  // Sorting, not a search per key, so that a hostile object with many keys stays
  // O(n log n). Reports the first key, in document order, that repeats an earlier one.
  errc check_unique_keys(const value& v) {
    const auto& ms = v.members;
    std::vector<std::size_t> order(ms.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return ms[a].key != ms[b].key ? ms[a].key < ms[b].key : a < b;
    });
    std::size_t dup = ms.size();
    for (std::size_t k = 1; k < order.size(); ++k)
      if (ms[order[k]].key == ms[order[k - 1]].key) dup = std::min(dup, order[k]);
    if (dup == ms.size()) return errc::ok;
    const member& m = ms[dup];
    return fail_at(info_, errc::parse_error, m.line, m.column, "JSON: duplicate key \"%.*s\"",
                   static_cast<int>(m.key.size() > 64 ? 64 : m.key.size()), m.key.data());
  }

  errc parse_array(value& v, std::size_t depth) {
    v.type = kind::array;
    ++i_;
    skip_ws();
    if (eat(']')) return errc::ok;
    for (;;) {
      skip_ws();
      v.items.emplace_back();
      TANDEM_TRY(parse_value(v.items.back(), depth + 1));
      skip_ws();
      if (eat(']')) return errc::ok;
      if (!eat(',')) return fail("',' or ']' was expected in an array");
    }
  }

  errc parse_number(value& v) {
    const std::size_t start = i_;
    eat('-');
    if (eat('0')) {
    } else if (i_ < s_.size() && s_[i_] >= '1' && s_[i_] <= '9') {
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    } else {
      return fail("a digit was expected in a number");
    }
    if (eat('.')) {
      if (!digits()) return fail("a digit was expected after '.' in a number");
    }
    if (eat('e') || eat('E')) {
      if (!eat('+')) eat('-');
      if (!digits()) return fail("a digit was expected in a number's exponent");
    }
    v.type = kind::number;
    v.text.assign(s_.substr(start, i_ - start));
    const auto r = std::from_chars(s_.data() + start, s_.data() + i_, v.number);
    if (r.ec == std::errc::result_out_of_range) return fail("a number outside the range of double");
    return errc::ok;
  }
  bool digits() noexcept {
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ != start;
  }

  int hex4() noexcept {
    if (s_.size() - i_ < 4) return -1;
    const int v = hex_value(s_.substr(i_, 4));
    if (v >= 0) i_ += 4;
    return v;
  }

  errc parse_string(std::string& out) {
    ++i_;  // the opening quote
    out.clear();
    for (;;) {
      if (i_ >= s_.size()) return fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return errc::ok;
      }
      if (c < 0x20) return fail("a control character must be escaped in a string");
      if (c != '\\') {
        TANDEM_TRY(copy_utf8(out));
        continue;
      }
      ++i_;
      if (i_ >= s_.size()) return fail("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          int cp = hex4();
          if (cp < 0) return fail("four hex digits were expected after \\u");
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("a lone low surrogate in \\u escapes");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!eat_word("\\u")) return fail("a high surrogate without its low surrogate");
            const int lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF)
              return fail("a high surrogate without its low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, static_cast<std::uint32_t>(cp));
          break;
        }
        default:
          --i_;
          return fail("an unknown escape in a string");
      }
    }
  }

  // Copies one well-formed UTF-8 character (no overlong forms, surrogates or values above
  // U+10FFFF).
  errc copy_utf8(std::string& out) {
    std::uint32_t cp = 0;
    const std::size_t n = decode_utf8(s_.substr(i_), cp);
    if (n == 0) return fail("invalid UTF-8 in a string");
    out.append(s_.substr(i_, n));
    i_ += n;
    return errc::ok;
  }

 private:
  std::string_view s_;
  parse_options o_;
  error_info* info_;
  std::size_t i_ = 0;
  std::size_t line_ = 1;
  std::size_t line_start_ = 0;
};
/// \endcond

/// Parses one JSON text (RFC 8259: surrounding whitespace allowed, nothing else after the
/// value; strings must be valid UTF-8; `\u` escapes decode to UTF-8, surrogate pairs
/// combined).
///
/// Errors: `parse_error`, with the 1-based line and byte column in `info` (malformed
/// syntax, invalid UTF-8, a lone surrogate, a duplicate object key, nesting deeper than
/// `o.max_depth`, a number outside the range of double, trailing text).
[[nodiscard]] inline result<value> parse(std::string_view text, const parse_options& o = {},
                                         error_info* info = nullptr) {
  value v;
  reader r(text, o, info);
  TANDEM_TRY(r.run(v));
  return v;
}

}  // namespace tandem::inline v0::detail::json
