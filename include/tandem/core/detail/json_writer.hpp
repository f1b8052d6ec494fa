// tandem: a small JSON writer, the counterpart of the reader in core/detail/json.hpp.
/// \file
/// `detail::json::writer` appends one JSON text to a std::string: objects, arrays,
/// strings (escaped), numbers and booleans, with no whitespace. It writes what it is told
/// in the order it is told (a caller that wants sorted keys writes them sorted); it checks
/// nothing about nesting, which is a programming matter.
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tandem/core/config.hpp"
#include "tandem/core/stream_decoder.hpp"

namespace tandem::inline v0::detail::json {

/// Appends `s` to `out` as a JSON string, quotes included. `"` and `\` are escaped; control
/// characters below U+0020 become `\b`, `\f`, `\n`, `\r`, `\t` or `\u00XX` (lower-case
/// hex); other characters, valid UTF-8 included, pass through unchanged. Each byte that
/// does not start a well-formed UTF-8 character is replaced with U+FFFD (as nlohmann-json's
/// `error_handler_t::replace` does), so the output is always valid UTF-8.
inline void write_string(std::string& out, std::string_view s) {
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const int n = utf8_char_length(s.substr(i));
      if (n > 0) {
        out.append(s.substr(i, static_cast<std::size_t>(n)));
        i += static_cast<std::size_t>(n);
      } else {
        out.append(utf8_replacement);
        ++i;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20) {
          constexpr char hex[] = "0123456789abcdef";
          out.append("\\u00");
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

/// Appends `v` to `out`: the shortest text that reads back as the same double, with ".0"
/// added to an integral value written without an exponent ("1.0", "0.7", "1e-05");
/// NaN and infinities, which JSON cannot hold, are written as `null`.
inline void write_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  const std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  out.append(text);
  if (text.find_first_of(".e") == std::string_view::npos) out.append(".0");
}

/// Appends the integer `v` to `out`.
inline void write_integer(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

/// Appends the unsigned integer `v` to `out`.
inline void write_unsigned(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

/// Writes one JSON text into a string it does not own, inserting the commas between
/// members and elements. Usage: `writer w(s); w.begin_object(); w.key("a"); w.value(1);
/// w.end_object();`. Only appends to the string (no other state besides a comma flag).
class writer {
 public:
  /// Writes into `out`, after what it already holds.
  explicit writer(std::string& out) noexcept : out_(&out) {}

  /// `{`
  void begin_object() {
    comma();
    out_->push_back('{');
    first_ = true;
  }
  /// `}`
  void end_object() {
    out_->push_back('}');
    first_ = false;
  }
  /// `[`
  void begin_array() {
    comma();
    out_->push_back('[');
    first_ = true;
  }
  /// `]`
  void end_array() {
    out_->push_back(']');
    first_ = false;
  }
  /// An object member's key and its `:`; the value follows.
  void key(std::string_view k) {
    comma();
    write_string(*out_, k);
    out_->push_back(':');
    first_ = true;  // no comma before the value
  }
  /// A string value (see write_string()).
  void value(std::string_view s) {
    comma();
    write_string(*out_, s);
  }
  /// A string value from a C string (not a boolean).
  void value(const char* s) { value(std::string_view(s)); }
  /// `true` or `false`.
  void value(bool b) {
    comma();
    out_->append(b ? "true" : "false");
  }
  /// A number (see write_number()); a float is widened to double first.
  void value(double v) {
    comma();
    write_number(*out_, v);
  }
  /// A number from a float (widened to double, as nlohmann-json stores it).
  void value(float v) { value(static_cast<double>(v)); }
  /// An integer.
  void value(std::int64_t v) {
    comma();
    write_integer(*out_, v);
  }
  /// An unsigned integer.
  void value(std::uint64_t v) {
    comma();
    write_unsigned(*out_, v);
  }
  /// An int.
  void value(int v) { value(static_cast<std::int64_t>(v)); }
  /// An unsigned int.
  void value(unsigned v) { value(static_cast<std::uint64_t>(v)); }

 private:
  void comma() {
    if (!first_) out_->push_back(',');
    first_ = false;
  }

  std::string* out_;
  bool first_ = true;
};

}  // namespace tandem::inline v0::detail::json
