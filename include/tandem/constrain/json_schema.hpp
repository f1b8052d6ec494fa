// tandem: JSON Schema (a documented subset) to tandem's regex dialect, and to a constraint.
/// \file
/// `json_schema_to_regex` turns a JSON Schema into a pattern of tandem's regex dialect
/// (docs/constraints.md) whose language is the set of compact JSON texts (optionally with
/// bounded whitespace) that the schema accepts; `compile_json_schema` compiles that pattern
/// against a vocabulary. The subset is documented in docs/constraints.md, "JSON Schema";
/// anything outside it is `errc::unsupported`, naming the keyword: a constraint never
/// allows more than the schema does (it may allow less, e.g. a bounded string length, one
/// spelling per character, no exponents in bounded numbers, schema property order).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/constrain/detail/json.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

#include "tandem/constrain/regex.hpp"

namespace tandem::inline v0 {

/// Options of json_schema_to_regex() and compile_json_schema(). Object members are always
/// written in schema order: there is no option for any order, which would need a pattern
/// for each permutation.
struct json_schema_options {
  /// JSON whitespace (space, tab, line feed, carriage return) allowed around each
  /// structural token (`{ } [ ] : ,`), at most this many characters per run. 0 (the
  /// default) is compact JSON: no optional whitespace, the shortest outputs and the
  /// smallest automaton.
  std::size_t max_whitespace = 0;
  /// The longest string (in characters, i.e. code points of the decoded value) allowed
  /// where a string schema has no `maxLength` (and no `pattern`, `format`, `enum` or
  /// `const`), so that a model cannot run on forever inside a string. 0: unbounded.
  /// Each allowed character costs about ten automaton states (one per UTF-8 lead byte and
  /// escape prefix), so large values make large automata: an unbounded-length string with
  /// the default 128 costs about 1,300 states against `constraint_options::max_states`.
  std::size_t max_string_length = 128;
  /// Deepest nesting of subschemas (properties, items, anyOf branches and `$ref`
  /// expansions each count one level); deeper is `constraint_too_large`.
  std::size_t max_nesting = 32;
  /// Largest regex produced, in bytes; larger is `constraint_too_large` (a schema whose
  /// `$ref`s or nested arrays expand exponentially stops here).
  std::size_t max_regex_size = std::size_t{1} << 20;
};

/// \cond TANDEM_INTERNAL
namespace detail::schema {

using json_value = json::value;
using json_kind = json::kind;

/// Closed code-point ranges, sorted and disjoint after normalize().
using cp_set = std::vector<std::pair<std::uint32_t, std::uint32_t>>;

inline constexpr std::uint32_t max_cp = 0x10FFFF;

inline void normalize(cp_set& s) {
  std::sort(s.begin(), s.end());
  cp_set out;
  for (const auto& r : s) {
    if (!out.empty() && r.first <= out.back().second + 1) {
      if (r.second > out.back().second) out.back().second = r.second;
    } else {
      out.push_back(r);
    }
  }
  s = std::move(out);
}

/// The complement of a normalized set within the Unicode scalar values.
inline cp_set complement(const cp_set& s) {
  cp_set out;
  std::uint32_t next = 0;
  for (const auto& r : s) {
    if (r.first > next) out.emplace_back(next, r.first - 1);
    next = r.second + 1;
  }
  if (next <= max_cp) out.emplace_back(next, max_cp);
  return out;
}

/// Removes the surrogates (never characters of UTF-8 text) from a normalized set.
inline cp_set without_surrogates(const cp_set& s) {
  cp_set out;
  for (const auto& r : s) {
    if (r.second < 0xD800 || r.first > 0xDFFF) {
      out.push_back(r);
      continue;
    }
    if (r.first < 0xD800) out.emplace_back(r.first, 0xD7FF);
    if (r.second > 0xDFFF) out.emplace_back(0xE000, r.second);
  }
  return out;
}

inline bool contains(const cp_set& s, std::uint32_t c) {
  for (const auto& r : s)
    if (c >= r.first && c <= r.second) return true;
  return false;
}

inline void append_hex2(std::string& out, std::uint32_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  out += digits[(v >> 4) & 15];
  out += digits[v & 15];
}

/// Appends code point `c` as a regex literal outside a bracket class.
inline void literal(std::string& out, std::uint32_t c) {
  if (c < 0x20 || c == 0x7F) {
    out += "\\x";
    append_hex2(out, c);
  } else if (c < 0x80) {
    if (std::string_view("\\.*+?()[]{}|^$/").find(static_cast<char>(c)) != std::string_view::npos)
      out += '\\';
    out += static_cast<char>(c);
  } else {
    json::append_utf8(out, c);
  }
}

/// Appends code point `c` as an endpoint inside a bracket class.
inline void class_char(std::string& out, std::uint32_t c) {
  const bool plain = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  if (c >= 0x80) {
    json::append_utf8(out, c);
  } else if (plain) {
    out += static_cast<char>(c);
  } else {
    out += "\\x";
    append_hex2(out, c);
  }
}

inline void class_ranges(std::string& out, const cp_set& s) {
  for (const auto& r : s) {
    class_char(out, r.first);
    if (r.second != r.first) {
      if (r.second != r.first + 1) out += '-';
      class_char(out, r.second);
    }
  }
}

/// A regex fragment and whether it is one atom (a quantifier may follow it directly).
struct frag {
  std::string re;
  bool atom = true;
};

inline frag alternation(std::vector<std::string> alts) {
  if (alts.size() == 1) return {std::move(alts[0]), false};
  frag f{"(?:", true};
  for (std::size_t i = 0; i < alts.size(); ++i) {
    if (i) f.re += '|';
    f.re += alts[i];
  }
  f.re += ')';
  return f;
}

inline std::string as_atom(const frag& f) { return f.atom ? f.re : "(?:" + f.re + ")"; }

/// The regex matching the JSON string encoding (inside the quotes) of one character of
/// `set`, with exactly one spelling per character: `"` and `\` escaped, `\b \f \n \r \t`
/// for those controls, `\u00xx` (lower-case hex) for the other controls, every other
/// character as its UTF-8 bytes. Empty `set`: an empty fragment.
inline frag encoded_chars(cp_set set) {
  normalize(set);
  set = without_surrogates(set);
  std::vector<std::string> alts;
  cp_set raw;
  for (const auto& r : set) {
    std::uint32_t a = r.first < 0x20 ? 0x20 : r.first;
    for (std::uint32_t c = a; c <= r.second;) {
      if (c == '"' || c == '\\') {
        ++c;
        continue;
      }
      std::uint32_t e = r.second;
      if (c < '"' && e >= '"')
        e = '"' - 1;
      else if (c < '\\' && e >= '\\')
        e = '\\' - 1;
      raw.emplace_back(c, e);
      c = e + 1;
    }
  }
  if (raw.size() == 1 && raw[0].first == raw[0].second) {
    std::string s;
    literal(s, raw[0].first);
    alts.push_back(std::move(s));
  } else if (!raw.empty()) {
    std::string s = "[";
    if (raw.back().second == max_cp) {
      s += '^';
      cp_set c = without_surrogates(complement(raw));
      class_ranges(s, c);
    } else {
      class_ranges(s, raw);
    }
    s += ']';
    alts.push_back(std::move(s));
  }
  if (contains(set, '"')) alts.emplace_back("\\\\\"");
  if (contains(set, '\\')) alts.emplace_back("\\\\\\\\");
  static constexpr std::pair<char, char> shorts[] = {
      {'\b', 'b'}, {'\f', 'f'}, {'\n', 'n'}, {'\r', 'r'}, {'\t', 't'}};
  std::string short_class;
  for (const auto& [c, name] : shorts)
    if (contains(set, static_cast<unsigned char>(c))) short_class += name;
  if (short_class.size() == 1) alts.push_back("\\\\" + short_class);
  if (short_class.size() > 1) alts.push_back("\\\\[" + short_class + "]");
  std::string low[2];
  for (std::uint32_t c = 0; c < 0x20; ++c) {
    if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t' || !contains(set, c))
      continue;
    class_char(low[c >> 4], "0123456789abcdef"[c & 15]);
  }
  std::vector<std::string> u;
  for (int h = 0; h < 2; ++h)
    if (!low[h].empty())
      u.push_back(std::string(1, static_cast<char>('0' + h)) +
                  (low[h].size() == 1 ? low[h] : "[" + low[h] + "]"));
  if (!u.empty()) alts.push_back("\\\\u00" + as_atom(alternation(std::move(u))));
  if (alts.empty()) return {"", false};
  if (alts.size() == 1) {
    // One bracket class or one ASCII literal is an atom; anything longer is grouped.
    const std::string& a = alts[0];
    const bool atom = a[0] == '[' || a.size() == 1 ||
                      (a.size() == 2 && a[0] == '\\' && a[1] != 'x') ||
                      (a.size() == 4 && a[0] == '\\' && a[1] == 'x');
    return {a, atom};
  }
  return alternation(std::move(alts));
}

/// A quantifier suffix for a count in [lo, hi]; hi == npos: unbounded.
inline std::string quantifier(std::size_t lo, std::size_t hi) {
  constexpr std::size_t inf = static_cast<std::size_t>(-1);
  if (lo == 1 && hi == 1) return "";
  if (lo == 0 && hi == inf) return "*";
  if (lo == 1 && hi == inf) return "+";
  if (lo == 0 && hi == 1) return "?";
  if (hi == inf) return "{" + std::to_string(lo) + ",}";
  if (lo == hi) return "{" + std::to_string(lo) + "}";
  return "{" + std::to_string(lo) + "," + std::to_string(hi) + "}";
}

// ---------------------------------------------------------------------------------------
// A pattern (tandem's regex dialect, read with JSON Schema's ECMA-262 meaning) over the
// decoded string value, rewritten to match the value's JSON string encoding.

/// ECMA-262's \s: WhiteSpace and LineTerminator.
inline cp_set ecma_space() {
  return {{0x09, 0x0D},     {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
          {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
}

class pattern_translator {
 public:
  pattern_translator(std::string_view p, error_info* info) noexcept : p_(p), info_(info) {}

  /// The fragment matching the encoding of every string value that the (unanchored,
  /// ECMA-262 search semantics) pattern matches somewhere.
  errc run(std::string& out) {
    std::vector<std::string> branches;
    for (;;) {
      bool start_anchor = false, end_anchor = false;
      if (peek('^')) {
        ++i_;
        start_anchor = true;
      }
      std::string seq;
      TANDEM_TRY(parse_seq(seq, true, end_anchor));
      const std::string any = as_atom(encoded_chars({{0, max_cp}})) + "*";
      branches.push_back((start_anchor ? "" : any) + seq + (end_anchor ? "" : any));
      if (i_ == p_.size()) break;
      if (p_[i_] == '|') {
        ++i_;
        continue;
      }
      return bad(errc::parse_error, "unbalanced ')'");
    }
    out += as_atom(alternation(std::move(branches)));
    return errc::ok;
  }

 private:
  errc bad(errc e, const char* what) noexcept {
    return fail(info_, e, "pattern \"%.*s\", column %zu: %s",
                static_cast<int>(p_.size() > 80 ? 80 : p_.size()), p_.data(), i_ + 1, what);
  }
  bool peek(char c) const noexcept { return i_ < p_.size() && p_[i_] == c; }

  errc parse_alt(std::string& out) {
    std::vector<std::string> alts;
    for (;;) {
      std::string seq;
      bool dummy = false;
      TANDEM_TRY(parse_seq(seq, false, dummy));
      alts.push_back(std::move(seq));
      if (!peek('|')) break;
      ++i_;
    }
    out += as_atom(alternation(std::move(alts)));
    return errc::ok;
  }

  // A sequence up to '|', ')' or the end; at the top level a '$' just before those ends
  // the branch (sets end_anchor).
  errc parse_seq(std::string& out, bool top, bool& end_anchor) {
    while (i_ < p_.size() && p_[i_] != '|' && p_[i_] != ')') {
      const char c = p_[i_];
      if (c == '$') {
        ++i_;
        if (top && (i_ == p_.size() || p_[i_] == '|')) {
          end_anchor = true;
          return errc::ok;
        }
        return bad(errc::unsupported, "'$' is supported only at the end of the pattern");
      }
      if (c == '^')
        return bad(errc::unsupported, "'^' is supported only at the start of the pattern");
      frag atom;
      TANDEM_TRY(parse_atom(atom));
      TANDEM_TRY(parse_quantifier(atom, out));
    }
    if (top && peek(')')) return bad(errc::parse_error, "unbalanced ')'");
    return errc::ok;
  }

  errc parse_quantifier(const frag& atom, std::string& out) {
    constexpr std::size_t inf = static_cast<std::size_t>(-1);
    std::size_t lo = 1, hi = 1;
    if (i_ < p_.size()) {
      const char c = p_[i_];
      if (c == '*' || c == '+' || c == '?') {
        ++i_;
        lo = c == '+' ? 1 : 0;
        hi = c == '?' ? 1 : inf;
      } else if (c == '{') {
        ++i_;
        if (!number(lo)) return bad(errc::parse_error, "a count was expected after '{'");
        hi = lo;
        if (peek(',')) {
          ++i_;
          hi = inf;
          if (!peek('}') && !number(hi)) return bad(errc::parse_error, "a count was expected");
        }
        if (!peek('}')) return bad(errc::parse_error, "'}' was expected");
        ++i_;
        if (hi < lo) return bad(errc::parse_error, "a repetition {n,m} with m < n");
      }
      if (lo != 1 || hi != 1) {
        if (peek('?'))
          ++i_;  // lazy: the same language
        else if (peek('+'))
          return bad(errc::unsupported, "possessive quantifiers");
      }
    }
    if (lo == 1 && hi == 1) {
      out += atom.re.empty() || atom.atom ? atom.re : "(?:" + atom.re + ")";
      return errc::ok;
    }
    if (atom.re.empty()) return errc::ok;  // an empty atom repeated is still empty
    out += as_atom(atom) + quantifier(lo, hi);
    return errc::ok;
  }

  bool number(std::size_t& n) noexcept {
    const std::size_t start = i_;
    n = 0;
    while (i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '9' && i_ - start < 9)
      n = n * 10 + static_cast<std::size_t>(p_[i_++] - '0');
    return i_ != start;
  }

  errc parse_atom(frag& out) {
    const char c = p_[i_];
    if (c == '(') {
      ++i_;
      if (peek('?')) {
        if (i_ + 1 < p_.size() && p_[i_ + 1] == ':') {
          i_ += 2;
        } else {
          return bad(errc::unsupported, "lookaround, named groups and flags");
        }
      }
      // Groups recurse; a hostile pattern must not exhaust the stack.
      if (++depth_ > max_group_depth)
        return bad(errc::constraint_too_large, "groups nested too deep");
      std::string inner;
      TANDEM_TRY(parse_alt(inner));
      --depth_;
      if (!peek(')')) return bad(errc::parse_error, "')' was expected");
      ++i_;
      out = {inner, true};
      if (inner.empty()) out.atom = false;
      return errc::ok;
    }
    if (c == '*' || c == '+' || c == '?' || c == '{')
      return bad(errc::parse_error, "a quantifier without an atom");
    cp_set set;
    if (c == '[') {
      TANDEM_TRY(parse_class(set));
    } else if (c == '.') {
      ++i_;
      // ECMA-262: any character but the line terminators.
      set = complement({{0x0A, 0x0A}, {0x0D, 0x0D}, {0x2028, 0x2029}});
    } else if (c == '\\') {
      TANDEM_TRY(parse_escape(set, false));
    } else if (c == ']' || c == '}') {
      return bad(errc::parse_error, "an unescaped ']' or '}'");
    } else {
      std::uint32_t cp = 0;
      TANDEM_TRY(utf8(cp));
      set = {{cp, cp}};
    }
    out = encoded_chars(std::move(set));
    if (out.re.empty()) return bad(errc::unsupported, "a class that matches no character");
    return errc::ok;
  }

  errc utf8(std::uint32_t& cp) {
    const std::size_t n = json::decode_utf8(p_.substr(i_), cp);
    if (n == 0) return bad(errc::parse_error, "invalid UTF-8");
    i_ += n;
    return errc::ok;
  }

  int hex(std::size_t digits) noexcept {
    if (p_.size() - i_ < digits) return -1;
    const int v = detail::hex_value(p_.substr(i_, digits));
    if (v >= 0) i_ += digits;
    return v;
  }

  // An escape at p_[i_] == '\\' into a set.
  errc parse_escape(cp_set& set, bool in_class) {
    ++i_;
    if (i_ >= p_.size()) return bad(errc::parse_error, "a pattern ending in '\\'");
    const char e = p_[i_++];
    const cp_set digit = {{'0', '9'}};
    const cp_set word = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
    switch (e) {
      case 'd':
        set = digit;
        return errc::ok;
      case 'D':
        set = complement(digit);
        return errc::ok;
      case 'w':
        set = word;
        return errc::ok;
      case 'W':
        set = complement(word);
        return errc::ok;
      case 's':
        set = ecma_space();
        return errc::ok;
      case 'S':
        set = complement(ecma_space());
        return errc::ok;
      case 'n':
        set = {{'\n', '\n'}};
        return errc::ok;
      case 'r':
        set = {{'\r', '\r'}};
        return errc::ok;
      case 't':
        set = {{'\t', '\t'}};
        return errc::ok;
      case 'f':
        set = {{'\f', '\f'}};
        return errc::ok;
      case 'v':
        set = {{'\v', '\v'}};
        return errc::ok;
      case '0':
        if (i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '9')
          return bad(errc::unsupported, "octal escapes");
        set = {{0, 0}};
        return errc::ok;
      case 'x': {
        const int v = hex(2);
        if (v < 0) return bad(errc::parse_error, "two hex digits were expected after \\x");
        set = {{static_cast<std::uint32_t>(v), static_cast<std::uint32_t>(v)}};
        return errc::ok;
      }
      case 'u': {
        int v = hex(4);
        if (v < 0) return bad(errc::parse_error, "four hex digits were expected after \\u");
        if (v >= 0xD800 && v <= 0xDBFF && p_.substr(i_, 2) == "\\u") {
          i_ += 2;
          const int lo = hex(4);
          if (lo < 0xDC00 || lo > 0xDFFF) return bad(errc::parse_error, "a lone surrogate");
          v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        } else if (v >= 0xD800 && v <= 0xDFFF) {
          return bad(errc::parse_error, "a lone surrogate");
        }
        set = {{static_cast<std::uint32_t>(v), static_cast<std::uint32_t>(v)}};
        return errc::ok;
      }
      default:
        break;
    }
    if (std::string_view("\\.*+?()[]{}|^$/-\"").find(e) != std::string_view::npos) {
      const auto c = static_cast<std::uint32_t>(static_cast<unsigned char>(e));
      set = {{c, c}};
      return errc::ok;
    }
    --i_;
    if (e == 'b' && in_class) return bad(errc::unsupported, "\\b in a class");
    if (e == 'b' || e == 'B') return bad(errc::unsupported, "word boundaries (\\b, \\B)");
    if (e >= '1' && e <= '9') return bad(errc::unsupported, "backreferences");
    return bad(errc::unsupported, "an escape outside the dialect");
  }

  // A bracket class at p_[i_] == '['.
  errc parse_class(cp_set& out) {
    ++i_;
    bool negated = false;
    if (peek('^')) {
      ++i_;
      negated = true;
    }
    cp_set set;
    while (true) {
      if (i_ >= p_.size()) return bad(errc::parse_error, "an unterminated class");
      if (p_[i_] == ']') break;
      cp_set item;
      bool single = false;
      std::uint32_t lo = 0;
      TANDEM_TRY(class_atom(item, single, lo));
      if (single && peek('-') && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
        ++i_;
        cp_set item2;
        bool single2 = false;
        std::uint32_t hi = 0;
        TANDEM_TRY(class_atom(item2, single2, hi));
        if (!single2) return bad(errc::parse_error, "a class range ending in a class");
        if (hi < lo) return bad(errc::parse_error, "a class range out of order");
        set.emplace_back(lo, hi);
        continue;
      }
      set.insert(set.end(), item.begin(), item.end());
    }
    ++i_;
    normalize(set);
    out = negated ? complement(set) : set;
    return errc::ok;
  }

  errc class_atom(cp_set& item, bool& single, std::uint32_t& cp) {
    if (p_[i_] == '\\') {
      TANDEM_TRY(parse_escape(item, true));
    } else if (p_[i_] == '[') {
      return bad(errc::unsupported, "nested classes and POSIX classes");
    } else {
      std::uint32_t c = 0;
      TANDEM_TRY(utf8(c));
      item = {{c, c}};
    }
    single = item.size() == 1 && item[0].first == item[0].second;
    cp = item[0].first;
    return errc::ok;
  }

  std::string_view p_;
  error_info* info_;
  std::size_t i_ = 0;
  std::size_t depth_ = 0;
  static constexpr std::size_t max_group_depth = 256;
};

// ---------------------------------------------------------------------------------------
// Integer and number ranges as digit patterns.

inline std::string digits_of(std::uint64_t v) { return std::to_string(v); }

inline std::uint64_t pow10(std::size_t n) {
  std::uint64_t p = 1;
  while (n--) p *= 10;
  return p;
}

// Same-length decimal strings a <= b.
inline std::string same_length_range(const std::string& a, const std::string& b) {
  const std::size_t n = a.size();
  if (n == 0) return "";
  if (a == b) return a;
  const std::string rest_a = a.substr(1), rest_b = b.substr(1);
  auto digit_class = [](char x, char y) {
    if (x == y) return std::string(1, x);
    return std::string("[") + x + '-' + y + ']';
  };
  const bool a_zeros = rest_a.find_first_not_of('0') == std::string::npos;
  const bool b_nines = rest_b.find_first_not_of('9') == std::string::npos;
  if (a_zeros && b_nines)
    return digit_class(a[0], b[0]) + (n > 1 ? "[0-9]" + quantifier(n - 1, n - 1) : "");
  if (a[0] == b[0]) return std::string(1, a[0]) + same_length_range(rest_a, rest_b);
  std::vector<std::string> alts;
  alts.push_back(std::string(1, a[0]) + same_length_range(rest_a, std::string(n - 1, '9')));
  if (a[0] + 1 <= b[0] - 1)
    alts.push_back(digit_class(static_cast<char>(a[0] + 1), static_cast<char>(b[0] - 1)) + "[0-9]" +
                   quantifier(n - 1, n - 1));
  alts.push_back(std::string(1, b[0]) + same_length_range(std::string(n - 1, '0'), rest_b));
  return as_atom(alternation(std::move(alts)));
}

/// Decimal spellings (no leading zeros) of the integers in [a, b], 0 <= a <= b.
inline std::string uint_range(std::uint64_t a, std::uint64_t b) {
  std::vector<std::string> alts;
  std::size_t da = digits_of(a).size();
  const std::size_t db = digits_of(b).size();
  while (da < db) {
    const std::uint64_t top = pow10(da) - 1;
    alts.push_back(same_length_range(digits_of(a), digits_of(top)));
    a = top + 1;
    ++da;
  }
  alts.push_back(same_length_range(digits_of(a), digits_of(b)));
  return as_atom(alternation(std::move(alts)));
}

/// Decimal spellings of the integers >= a.
inline std::string uint_at_least(std::uint64_t a) {
  const std::size_t d = digits_of(a).size();
  std::vector<std::string> alts;
  alts.push_back(uint_range(a, pow10(d) - 1));
  alts.push_back("[1-9][0-9]" + quantifier(d, static_cast<std::size_t>(-1)));
  return as_atom(alternation(std::move(alts)));
}

/// An optional integer bound.
struct bound {
  bool set = false;
  std::int64_t v = 0;
  bool exclusive = false;
};

/// Integers in [lo, hi] (each side optional), e.g. "-?..." as one atom.
inline std::string int_range(bound lo, bound hi) {
  std::vector<std::string> alts;
  if (!lo.set || lo.v < 0) {
    const std::uint64_t m1 = hi.set && hi.v < 0 ? static_cast<std::uint64_t>(-hi.v) : 1;
    alts.push_back(
        "-" + (lo.set ? uint_range(m1, static_cast<std::uint64_t>(-lo.v)) : uint_at_least(m1)));
  }
  if (!hi.set || hi.v >= 0) {
    const std::uint64_t a = lo.set && lo.v > 0 ? static_cast<std::uint64_t>(lo.v) : 0;
    alts.insert(alts.begin(),
                hi.set ? uint_range(a, static_cast<std::uint64_t>(hi.v)) : uint_at_least(a));
  }
  return as_atom(alternation(std::move(alts)));
}

/// Magnitudes m = I[.F] (no exponent) with c <(=) m <(=) d, c and d integers; d unset:
/// unbounded. Empty when no magnitude qualifies.
inline std::string magnitude_range(std::uint64_t c, bool c_excl, bool d_set, std::uint64_t d,
                                   bool d_excl) {
  if (d_set && c > d) return "";
  const std::string any_frac = "(?:\\.[0-9]+)?", zero_frac = "(?:\\.0+)?";
  std::vector<std::string> alts;
  if (d_set && c == d) {
    if (!c_excl && !d_excl) alts.push_back(digits_of(c) + zero_frac);
  } else {
    alts.push_back(digits_of(c) + (c_excl ? "\\.[0-9]*[1-9]" : any_frac));
    if (!d_set)
      alts.push_back(uint_at_least(c + 1) + any_frac);
    else if (c + 1 <= d - 1)
      alts.push_back(uint_range(c + 1, d - 1) + any_frac);
    if (d_set && !d_excl) alts.push_back(digits_of(d) + zero_frac);
  }
  if (alts.empty()) return "";
  return as_atom(alternation(std::move(alts)));
}

/// Numbers in the range given by lo and hi (each optional, integer-valued), without
/// exponents. Empty when none qualifies.
inline std::string number_range(bound lo, bound hi) {
  std::vector<std::string> alts;
  if (!hi.set || hi.v >= 0) {
    const bool lo_nonneg = lo.set && lo.v >= 0;
    const std::string m =
        magnitude_range(lo_nonneg ? static_cast<std::uint64_t>(lo.v) : 0, lo_nonneg && lo.exclusive,
                        hi.set, hi.set ? static_cast<std::uint64_t>(hi.v) : 0, hi.exclusive);
    if (!m.empty()) alts.push_back(m);
  }
  if (!lo.set || lo.v < 0) {
    const bool hi_nonpos = hi.set && hi.v <= 0;
    const std::string m = magnitude_range(
        hi_nonpos ? static_cast<std::uint64_t>(-hi.v) : 0, hi_nonpos && hi.exclusive, lo.set,
        lo.set ? static_cast<std::uint64_t>(-lo.v) : 0, lo.exclusive);
    if (!m.empty()) alts.push_back("-" + m);
  }
  if (alts.empty()) return "";
  return as_atom(alternation(std::move(alts)));
}

// ---------------------------------------------------------------------------------------
// The schema walk.

inline constexpr std::string_view annotation_keywords[] = {
    "$schema",  "$id",        "$comment", "title",     "description", "default",
    "examples", "deprecated", "readOnly", "writeOnly", "$defs",       "definitions"};

inline bool is_annotation(std::string_view k) {
  for (std::string_view a : annotation_keywords)
    if (a == k) return true;
  return false;
}

inline constexpr std::string_view handled_keywords[] = {"type",
                                                        "properties",
                                                        "required",
                                                        "additionalProperties",
                                                        "items",
                                                        "minItems",
                                                        "maxItems",
                                                        "enum",
                                                        "const",
                                                        "minLength",
                                                        "maxLength",
                                                        "pattern",
                                                        "format",
                                                        "minimum",
                                                        "maximum",
                                                        "exclusiveMinimum",
                                                        "exclusiveMaximum",
                                                        "anyOf",
                                                        "$ref"};

inline bool is_handled(std::string_view k) {
  for (std::string_view a : handled_keywords)
    if (a == k) return true;
  return false;
}

class compiler {
 public:
  compiler(const json_value& root, const json_schema_options& o, error_info* info)
      : root_(root), o_(o), info_(info) {
    if (o_.max_whitespace > 0) ws_ = "[ \\t\\n\\r]" + quantifier(0, o_.max_whitespace);
  }

  errc run(std::string& out) { return schema(root_, 0, out); }

 private:
#if defined(__GNUC__) || defined(__clang__)
  __attribute__((format(printf, 4, 5)))
#endif
  errc
  bad(errc e, const json_value& at, const char* fmt, ...) noexcept {
    if (info_ != nullptr) {
      std::va_list args;
      va_start(args, fmt);
      record(*info_, e, at.line, at.column, fmt, args);
      va_end(args);
    }
    return e;
  }
  errc unsupported_kw(const json_value& at, std::string_view kw) {
    return bad(errc::unsupported, at, "unsupported keyword \"%.*s\"",
               static_cast<int>(kw.size() > 64 ? 64 : kw.size()), kw.data());
  }

  // The only non-annotation keyword allowed beside `kw` are those in `also`.
  errc only(const json_value& s, std::string_view kw,
            std::initializer_list<std::string_view> also) {
    for (const auto& m : s.members) {
      if (m.key == kw || is_annotation(m.key)) continue;
      bool ok = false;
      for (std::string_view a : also) ok = ok || a == m.key;
      if (!ok)
        return bad(errc::unsupported, m.val, "unsupported keyword \"%.*s\" beside \"%.*s\"",
                   static_cast<int>(m.key.size() > 64 ? 64 : m.key.size()), m.key.data(),
                   static_cast<int>(kw.size()), kw.data());
    }
    return errc::ok;
  }

  errc schema(const json_value& s, std::size_t depth, std::string& out) {
    if (depth > o_.max_nesting)
      return bad(errc::constraint_too_large, s, "schema nesting deeper than max_nesting (%zu)",
                 o_.max_nesting);
    if (s.type == json_kind::boolean)
      return bad(errc::unsupported, s, "unsupported boolean schema %s (%s)",
                 s.boolean ? "true" : "false", s.boolean ? "any value" : "no value");
    if (s.type != json_kind::object)
      return bad(errc::invalid_argument, s, "a schema must be an object");
    for (const auto& m : s.members)
      if (!is_annotation(m.key) && !is_handled(m.key)) return unsupported_kw(m.val, m.key);
    errc e = errc::ok;
    if (const json_value* r = s.find("$ref")) {
      TANDEM_TRY(only(s, "$ref", {}));
      e = ref(*r, depth, out);
    } else if (const json_value* a = s.find("anyOf")) {
      TANDEM_TRY(only(s, "anyOf", {}));
      e = any_of(*a, depth, out);
    } else if (s.find("enum") != nullptr || s.find("const") != nullptr) {
      e = enumeration(s, out);
    } else {
      e = typed(s, depth, out);
    }
    TANDEM_TRY(e);
    if (out.size() > o_.max_regex_size)
      return bad(errc::constraint_too_large, s, "regex longer than max_regex_size (%zu bytes)",
                 o_.max_regex_size);
    return errc::ok;
  }

  errc ref(const json_value& r, std::size_t depth, std::string& out) {
    if (r.type != json_kind::string)
      return bad(errc::invalid_argument, r, "\"$ref\" must be a string");
    const std::string& p = r.text;
    if (p.empty() || p[0] != '#')
      return bad(errc::unsupported, r,
                 "unsupported \"$ref\" %.*s (only local references \"#/...\")",
                 static_cast<int>(p.size() > 80 ? 80 : p.size()), p.data());
    const json_value* target = &root_;
    std::size_t i = 1;
    while (i < p.size()) {
      if (p[i] != '/')
        return bad(errc::unsupported, r, "unsupported \"$ref\" (not a JSON pointer)");
      const std::size_t j = std::min(p.find('/', i + 1), p.size());
      std::string token;
      for (std::size_t k = i + 1; k < j; ++k) {
        if (p[k] == '~' && k + 1 < j && (p[k + 1] == '0' || p[k + 1] == '1')) {
          token += p[k + 1] == '0' ? '~' : '/';
          ++k;
        } else {
          token += p[k];
        }
      }
      const json_value* next = nullptr;
      if (target->type == json_kind::object) next = target->find(token);
      if (next == nullptr)
        return bad(errc::invalid_argument, r, "\"$ref\" %.*s names nothing in the schema",
                   static_cast<int>(p.size() > 80 ? 80 : p.size()), p.data());
      target = next;
      i = j;
    }
    for (const json_value* s : active_refs_)
      if (s == target)
        return bad(errc::unsupported, r, "unsupported recursive \"$ref\" %.*s",
                   static_cast<int>(p.size() > 80 ? 80 : p.size()), p.data());
    active_refs_.push_back(target);
    const errc e = schema(*target, depth + 1, out);
    active_refs_.pop_back();
    return e;
  }

  errc any_of(const json_value& a, std::size_t depth, std::string& out) {
    if (a.type != json_kind::array || a.items.empty())
      return bad(errc::invalid_argument, a, "\"anyOf\" must be a non-empty array");
    std::vector<std::string> alts;
    for (const json_value& b : a.items) {
      std::string s;
      TANDEM_TRY(schema(b, depth + 1, s));
      alts.push_back(std::move(s));
    }
    out += as_atom(alternation(std::move(alts)));
    return errc::ok;
  }

  static bool has_type(const json_value& v, std::string_view t) {
    switch (v.type) {
      case json_kind::null:
        return t == "null";
      case json_kind::boolean:
        return t == "boolean";
      case json_kind::number:
        return t == "number" ||
               (t == "integer" && std::floor(v.number) == v.number && std::isfinite(v.number));
      case json_kind::string:
        return t == "string";
      case json_kind::array:
        return t == "array";
      case json_kind::object:
        return t == "object";
    }
    return false;
  }

  errc enumeration(const json_value& s, std::string& out) {
    TANDEM_TRY(only(s, s.find("enum") ? "enum" : "const", {"type", "enum", "const"}));
    if (s.find("enum") && s.find("const"))
      return bad(errc::unsupported, *s.find("const"), "unsupported \"const\" beside \"enum\"");
    std::vector<const json_value*> values;
    if (const json_value* e = s.find("enum")) {
      if (e->type != json_kind::array || e->items.empty())
        return bad(errc::invalid_argument, *e, "\"enum\" must be a non-empty array");
      for (const json_value& v : e->items) values.push_back(&v);
    } else {
      values.push_back(s.find("const"));
    }
    std::vector<std::string> types;
    if (const json_value* t = s.find("type")) TANDEM_TRY(type_list(*t, types));
    std::vector<std::string> alts;
    for (const json_value* v : values) {
      bool ok = types.empty();
      for (const std::string& t : types) ok = ok || has_type(*v, t);
      if (!ok) continue;
      std::string re;
      value_literal(*v, re);
      alts.push_back(std::move(re));
    }
    if (alts.empty())
      return bad(errc::invalid_argument, s, "no value of \"enum\" or \"const\" has the \"type\"");
    out += as_atom(alternation(std::move(alts)));
    return errc::ok;
  }

  // The regex of one JSON value written compactly (whitespace as the options allow).
  void value_literal(const json_value& v, std::string& out) {
    switch (v.type) {
      case json_kind::null:
        out += "null";
        return;
      case json_kind::boolean:
        out += v.boolean ? "true" : "false";
        return;
      case json_kind::number:
        for (char c : v.text) literal(out, static_cast<unsigned char>(c));
        return;
      case json_kind::string:
        string_literal(v.text, out);
        return;
      case json_kind::array:
        out += "\\[" + ws_;
        for (std::size_t i = 0; i < v.items.size(); ++i) {
          if (i) out += ws_ + "," + ws_;
          value_literal(v.items[i], out);
        }
        out += ws_ + "\\]";
        return;
      case json_kind::object:
        out += "\\{" + ws_;
        for (std::size_t i = 0; i < v.members.size(); ++i) {
          if (i) out += ws_ + "," + ws_;
          string_literal(v.members[i].key, out);
          out += ws_ + ":" + ws_;
          value_literal(v.members[i].val, out);
        }
        out += ws_ + "\\}";
        return;
    }
  }

  // The regex of a string's JSON encoding (its UTF-8 already validated by the reader).
  static void string_literal(std::string_view s, std::string& out) {
    out += '"';
    for (std::size_t i = 0; i < s.size();) {
      std::uint32_t cp = 0;
      const std::size_t n = json::decode_utf8(s.substr(i), cp);
      TANDEM_ASSERT(n != 0, "strings from the JSON reader are valid UTF-8");
      out += encoded_chars({{cp, cp}}).re;
      i += n == 0 ? 1 : n;
    }
    out += '"';
  }

  errc type_list(const json_value& t, std::vector<std::string>& types) {
    static constexpr std::string_view known[] = {"object", "array",   "string", "integer",
                                                 "number", "boolean", "null"};
    auto add = [&](const json_value& v) -> errc {
      if (v.type != json_kind::string)
        return bad(errc::invalid_argument, v, "\"type\" must be a string or an array of strings");
      for (std::string_view k : known)
        if (k == v.text) {
          types.push_back(v.text);
          return errc::ok;
        }
      return bad(errc::invalid_argument, v, "unknown type \"%.*s\"",
                 static_cast<int>(v.text.size() > 64 ? 64 : v.text.size()), v.text.data());
    };
    if (t.type == json_kind::array) {
      if (t.items.empty()) return bad(errc::invalid_argument, t, "\"type\" is an empty array");
      for (const json_value& v : t.items) TANDEM_TRY(add(v));
      return errc::ok;
    }
    return add(t);
  }

  errc typed(const json_value& s, std::size_t depth, std::string& out) {
    const json_value* t = s.find("type");
    if (t == nullptr)
      return bad(errc::unsupported, s,
                 "unsupported schema without \"type\", \"enum\", \"const\", \"anyOf\" or \"$ref\" "
                 "(it allows any value)");
    std::vector<std::string> types;
    TANDEM_TRY(type_list(*t, types));
    std::vector<std::string> alts;
    for (const std::string& ty : types) {
      std::string re;
      if (ty == "object") TANDEM_TRY(object(s, depth, re));
      if (ty == "array") TANDEM_TRY(array(s, depth, re));
      if (ty == "string") TANDEM_TRY(string(s, re));
      if (ty == "integer") TANDEM_TRY(integer(s, re));
      if (ty == "number") TANDEM_TRY(number(s, re));
      if (ty == "boolean") re = "(?:true|false)";
      if (ty == "null") re = "null";
      alts.push_back(std::move(re));
    }
    out += alts.size() == 1 ? alts[0] : as_atom(alternation(std::move(alts)));
    return errc::ok;
  }

  errc count(const json_value& s, const char* kw, std::size_t& v, bool& present) {
    present = false;
    const json_value* c = s.find(kw);
    if (c == nullptr) return errc::ok;
    if (c->type != json_kind::number || c->number < 0 || std::floor(c->number) != c->number ||
        c->number > 1e9)
      return bad(errc::invalid_argument, *c, "\"%s\" must be a non-negative integer", kw);
    v = static_cast<std::size_t>(c->number);
    present = true;
    return errc::ok;
  }

  errc object(const json_value& s, std::size_t depth, std::string& out) {
    if (const json_value* a = s.find("additionalProperties")) {
      if (a->type != json_kind::boolean || a->boolean)
        return bad(errc::unsupported, *a,
                   "unsupported \"additionalProperties\" other than false (false is implied)");
    }
    struct prop {
      const json::member* m;
      bool required;
    };
    std::vector<prop> props;
    if (const json_value* p = s.find("properties")) {
      if (p->type != json_kind::object)
        return bad(errc::invalid_argument, *p, "\"properties\" must be an object");
      for (const json::member& m : p->members) props.push_back({&m, false});
    }
    if (const json_value* r = s.find("required")) {
      if (r->type != json_kind::array)
        return bad(errc::invalid_argument, *r, "\"required\" must be an array of strings");
      for (const json_value& k : r->items) {
        bool found = false;
        for (prop& q : props)
          if (k.type == json_kind::string && q.m->key == k.text) q.required = found = true;
        if (!found)
          return bad(errc::unsupported, k,
                     "a required property that \"properties\" does not define (only defined "
                     "properties are allowed)");
      }
    }
    std::vector<std::string> parts;
    for (const prop& q : props) {
      std::string re;
      string_literal(q.m->key, re);
      re += ws_ + ":" + ws_;
      TANDEM_TRY(schema(q.m->val, depth + 1, re));
      parts.push_back(std::move(re));
    }
    const std::string sep = ws_ + "," + ws_;
    // after[i]: the members from i on, once some member was written (each begins with a
    // separator); first[i]: the members from i on, none written yet.
    std::vector<std::string> after(props.size() + 1), first(props.size() + 1);
    for (std::size_t i = props.size(); i-- > 0;) {
      after[i] =
          (props[i].required ? sep + parts[i] : "(?:" + sep + parts[i] + ")?") + after[i + 1];
      if (props[i].required)
        first[i] = parts[i] + after[i + 1];
      else if (first[i + 1].empty() && i + 1 == props.size())
        first[i] = "(?:" + parts[i] + ")?";
      else
        first[i] = "(?:" + parts[i] + after[i + 1] + "|" + first[i + 1] + ")";
      if (first[i].size() > o_.max_regex_size)
        return bad(errc::constraint_too_large, s, "regex longer than max_regex_size (%zu bytes)",
                   o_.max_regex_size);
    }
    out += "\\{" + ws_ + (props.empty() ? "" : first[0]) + ws_ + "\\}";
    return errc::ok;
  }

  errc array(const json_value& s, std::size_t depth, std::string& out) {
    const json_value* items = s.find("items");
    if (items == nullptr)
      return bad(errc::unsupported, s, "unsupported array without \"items\" (any value)");
    if (items->type == json_kind::array)
      return bad(errc::unsupported, *items, "unsupported \"items\" array (tuples)");
    std::size_t lo = 0, hi = static_cast<std::size_t>(-1);
    bool has_lo = false, has_hi = false;
    TANDEM_TRY(count(s, "minItems", lo, has_lo));
    TANDEM_TRY(count(s, "maxItems", hi, has_hi));
    if (!has_hi) hi = static_cast<std::size_t>(-1);
    if (lo > hi)
      return bad(errc::invalid_argument, s, "\"minItems\" above \"maxItems\" allows nothing");
    out += "\\[" + ws_;
    if (hi > 0) {
      std::string item;
      TANDEM_TRY(schema(*items, depth + 1, item));
      const std::size_t inf = static_cast<std::size_t>(-1);
      const std::string rest = "(?:" + ws_ + "," + ws_ + item + ")" +
                               quantifier(lo > 0 ? lo - 1 : 0, hi == inf ? inf : hi - 1);
      out += lo == 0 ? "(?:" + item + (hi == 1 ? "" : rest) + ")?" : item + (hi == 1 ? "" : rest);
    }
    out += ws_ + "\\]";
    return errc::ok;
  }

  errc string(const json_value& s, std::string& out) {
    std::size_t lo = 0, hi = 0;
    bool has_lo = false, has_hi = false;
    TANDEM_TRY(count(s, "minLength", lo, has_lo));
    TANDEM_TRY(count(s, "maxLength", hi, has_hi));
    const json_value* pattern = s.find("pattern");
    const json_value* format = s.find("format");
    if (pattern != nullptr && (has_lo || has_hi || format != nullptr))
      return bad(errc::unsupported, *pattern,
                 "unsupported \"pattern\" beside \"minLength\", \"maxLength\" or \"format\"");
    if (format != nullptr) {
      const bool uuid = format->type == json_kind::string && format->text == "uuid";
      const bool date = format->type == json_kind::string && format->text == "date";
      if (!uuid && !date)
        return bad(errc::unsupported, *format,
                   "unsupported \"format\" (only \"uuid\" and \"date\")");
      if (has_lo || has_hi)
        return bad(errc::unsupported, *format, "unsupported \"format\" beside a length");
      if (uuid)
        out += "\"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\"";
      if (date) {
        // RFC 3339 full-date, exactly: the days of each month, February 29 in leap years
        // only (divisible by 4, and by 400 when by 100).
        out +=
            "\"(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|"
            "(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|"
            "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
            "-02-29)\"";
      }
      return errc::ok;
    }
    if (pattern != nullptr) {
      if (pattern->type != json_kind::string)
        return bad(errc::invalid_argument, *pattern, "\"pattern\" must be a string");
      out += '"';
      pattern_translator tr(pattern->text, info_);
      const errc e = tr.run(out);
      if (e != errc::ok) {
        if (info_ != nullptr) {
          info_->line = pattern->line;
          info_->column = pattern->column;
        }
        return e;
      }
      out += '"';
      return errc::ok;
    }
    constexpr std::size_t inf = static_cast<std::size_t>(-1);
    if (!has_hi) hi = o_.max_string_length == 0 ? inf : std::max(lo, o_.max_string_length);
    if (lo > hi)
      return bad(errc::invalid_argument, s, "\"minLength\" above \"maxLength\" allows nothing");
    out += '"';
    // Any character but the controls that only a \u00xx escape can write: a model has no
    // use for them, and leaving them out saves automaton states on every character.
    if (hi > 0)
      out +=
          as_atom(encoded_chars({{'\b', '\n'}, {'\f', '\r'}, {0x20, max_cp}})) + quantifier(lo, hi);
    out += '"';
    return errc::ok;
  }

  // Reads minimum/maximum/exclusive* into integer bounds. `integral`: bounds are rounded
  // inward to integers (integer schemas); otherwise a non-integer bound is unsupported.
  errc bounds(const json_value& s, bool integral, bound& lo, bound& hi) {
    constexpr double limit = 9007199254740992.0;  // 2^53
    struct kw {
      const char* name;
      bool lower, exclusive;
    };
    static constexpr kw kws[] = {{"minimum", true, false},
                                 {"exclusiveMinimum", true, true},
                                 {"maximum", false, false},
                                 {"exclusiveMaximum", false, true}};
    for (const kw& k : kws) {
      const json_value* v = s.find(k.name);
      if (v == nullptr) continue;
      if (v->type == json_kind::boolean)
        return bad(errc::unsupported, *v, "unsupported boolean \"%s\" (draft 4)", k.name);
      if (v->type != json_kind::number)
        return bad(errc::invalid_argument, *v, "\"%s\" must be a number", k.name);
      const double x = v->number;
      if (!(std::fabs(x) <= limit))
        return bad(errc::unsupported, *v, "unsupported \"%s\" beyond 2^53 in magnitude", k.name);
      bound b;
      b.set = true;
      if (integral) {
        // The tightest inclusive integer bound.
        double r = k.lower ? std::ceil(x) : std::floor(x);
        if (k.exclusive && r == x) r += k.lower ? 1 : -1;
        b.v = static_cast<std::int64_t>(r);
      } else {
        if (std::floor(x) != x)
          return bad(errc::unsupported, *v,
                     "unsupported non-integer \"%s\" on a number (only integer bounds are exact)",
                     k.name);
        b.v = static_cast<std::int64_t>(x);
        b.exclusive = k.exclusive;
      }
      bound& slot = k.lower ? lo : hi;
      const bool tighter =
          !slot.set || (k.lower ? b.v > slot.v : b.v < slot.v) || (b.v == slot.v && b.exclusive);
      if (tighter) slot = b;
    }
    return errc::ok;
  }

  errc integer(const json_value& s, std::string& out) {
    bound lo, hi;
    TANDEM_TRY(bounds(s, true, lo, hi));
    if (lo.set && hi.set && lo.v > hi.v)
      return bad(errc::invalid_argument, s, "integer bounds that allow no value");
    out += int_range(lo, hi);
    return errc::ok;
  }

  errc number(const json_value& s, std::string& out) {
    bound lo, hi;
    TANDEM_TRY(bounds(s, false, lo, hi));
    if (!lo.set && !hi.set) {
      out += "-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+\\-]?[0-9]+)?";
      return errc::ok;
    }
    const std::string re = number_range(lo, hi);
    if (re.empty()) return bad(errc::invalid_argument, s, "number bounds that allow no value");
    out += re;
    return errc::ok;
  }

  const json_value& root_;
  json_schema_options o_;
  error_info* info_;
  std::string ws_;
  std::vector<const json_value*> active_refs_;
};

}  // namespace detail::schema
/// \endcond

/// Translates a JSON Schema (the subset in docs/constraints.md, "JSON Schema") into a
/// pattern of tandem's regex dialect matching exactly the JSON texts that the schema
/// accepts, written compactly (or with whitespace as `o.max_whitespace` allows), object
/// members in schema order, one spelling per string character; or a subset of them where
/// the documentation says so (a default maximum string length, no exponents in bounded
/// numbers). Never a superset.
///
/// Errors (details, with the line and column of the offending part of the schema text, in
/// `info`): `parse_error` (the text is not JSON, or a `pattern` is malformed);
/// `unsupported` (a keyword or form outside the subset, named); `invalid_argument` (a
/// malformed schema: a keyword of the wrong type, an unknown type name, a `$ref` naming
/// nothing, bounds that allow no value); `constraint_too_large` (nesting deeper than
/// `o.max_nesting`, a regex longer than `o.max_regex_size`, a `pattern` with groups nested
/// deeper than 256).
[[nodiscard]] inline result<std::string> json_schema_to_regex(std::string_view schema_json,
                                                              const json_schema_options& o = {},
                                                              error_info* info = nullptr) {
  detail::json::parse_options po;
  po.max_depth = o.max_nesting * 4 + 16;  // deeper than any schema max_nesting allows
  auto doc = detail::json::parse(schema_json, po, info);
  if (!doc) return doc.error();
  std::string out;
  detail::schema::compiler c(*doc, o, info);
  TANDEM_TRY(c.run(out));
  return out;
}

/// Compiles a JSON Schema into a constraint over `vocab`: json_schema_to_regex() then
/// compile_regex() with `co`.
///
/// Errors: those of json_schema_to_regex() and compile_regex() (`constraint_too_large`
/// when the automaton exceeds `co.max_states`, or a count exceeds `co.max_repeat`: e.g. a
/// `maxLength` above it).
[[nodiscard]] inline result<compiled_constraint> compile_json_schema(std::string_view schema_json,
                                                                     const token_vocabulary& vocab,
                                                                     const json_schema_options& o,
                                                                     const constraint_options& co,
                                                                     error_info* info = nullptr) {
  auto re = json_schema_to_regex(schema_json, o, info);
  if (!re) return re.error();
  return compile_regex(*re, vocab, co, info);
}

/// compile_json_schema() with the default constraint_options.
[[nodiscard]] inline result<compiled_constraint> compile_json_schema(
    std::string_view schema_json, const token_vocabulary& vocab, const json_schema_options& o = {},
    error_info* info = nullptr) {
  return compile_json_schema(schema_json, vocab, o, constraint_options{}, info);
}

}  // namespace tandem::inline v0
