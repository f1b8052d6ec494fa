// tandem (private): the regex dialect's parser (to a syntax tree over code-point sets) and
// the Thompson construction of a byte-level NFA from that tree (code-point sets become
// UTF-8 byte-range sequences), then the subset construction of a DFA.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tandem/constrain/detail/dfa.hpp"
#include "tandem/constrain/detail/hex.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"

namespace tandem::inline v0::detail {

/// A closed range of code points.
struct cp_range {
  std::uint32_t lo, hi;
};

inline constexpr std::uint32_t max_code_point = 0x10FFFF;

/// Sorts and merges ranges.
inline void normalize(std::vector<cp_range>& r) {
  std::sort(r.begin(), r.end(), [](cp_range a, cp_range b) { return a.lo < b.lo; });
  std::size_t out = 0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (out > 0 && r[i].lo <= r[out - 1].hi + 1)
      r[out - 1].hi = std::max(r[out - 1].hi, r[i].hi);
    else
      r[out++] = r[i];
  }
  r.resize(out);
}

/// The code points (surrogates excluded: they are not UTF-8) outside normalized `r`.
inline std::vector<cp_range> complement(const std::vector<cp_range>& r) {
  std::vector<cp_range> out;
  std::uint32_t next = 0;
  for (const cp_range x : r) {
    if (x.lo > next) out.push_back({next, x.lo - 1});
    next = x.hi + 1;
  }
  if (next <= max_code_point) out.push_back({next, max_code_point});
  // Remove the surrogates D800-DFFF.
  std::vector<cp_range> clean;
  for (const cp_range x : out) {
    if (x.hi < 0xD800 || x.lo > 0xDFFF) {
      clean.push_back(x);
      continue;
    }
    if (x.lo < 0xD800) clean.push_back({x.lo, 0xD7FF});
    if (x.hi > 0xDFFF) clean.push_back({0xE000, x.hi});
  }
  return clean;
}

/// Deepest nesting of groups a pattern may have (`constraint_too_large` beyond it).
inline constexpr std::size_t max_group_depth = 256;

/// A syntax tree node. Leaves are code-point sets; inner nodes concatenate, alternate or
/// repeat their children (max = -1: unbounded).
struct re_node {
  enum class kind : std::uint8_t { set, concat, alt, repeat } k = kind::concat;
  std::vector<cp_range> set;
  std::vector<std::int32_t> children;
  std::uint32_t min = 0;
  std::int64_t max = 0;
};

/// Parses the dialect documented in docs/constraints.md. Errors (with the 1-based column in
/// `*info`): `parse_error`, `unsupported`, `constraint_too_large` (a count over max_repeat).
class re_parser {
 public:
  re_parser(std::string_view p, std::size_t max_repeat, error_info* info)
      : p_(p), max_repeat_(max_repeat), info_(info) {}

  /// Parses the whole pattern; the root node's index, or -1 on error (see error()).
  std::int32_t parse() {
    if (!p_.empty() && p_[0] == '^') pos_ = 1;
    std::size_t end = p_.size();
    // A final unescaped '$' (an even number of backslashes before it) is an anchor.
    if (end > pos_ && p_[end - 1] == '$') {
      std::size_t bs = 0;
      while (end - 1 - bs > pos_ && p_[end - 2 - bs] == '\\') ++bs;
      if (bs % 2 == 0) --end;
    }
    p_ = p_.substr(0, end);
    const std::int32_t root = alternation();
    if (err_ != errc::ok) return -1;
    if (pos_ < p_.size()) {
      // Only an unmatched ')' stops alternation() early.
      fail(errc::parse_error, pos_, "unmatched ')'");
      return -1;
    }
    return root;
  }

  [[nodiscard]] errc error() const noexcept { return err_; }
  [[nodiscard]] std::vector<re_node>& nodes() noexcept { return nodes_; }

 private:
  std::int32_t add(re_node n) {
    nodes_.push_back(std::move(n));
    return static_cast<std::int32_t>(nodes_.size() - 1);
  }
  std::int32_t add_set(std::vector<cp_range> s) {
    re_node n;
    n.k = re_node::kind::set;
    n.set = std::move(s);
    return add(std::move(n));
  }

  template <class... A>
  void fail(errc e, std::size_t at, const char* fmt, A... args) {
    if (err_ != errc::ok) return;
    err_ = e;
    if constexpr (sizeof...(A) == 0)
      (void)detail::fail_at(info_, e, 1, at + 1, "%s", fmt);
    else
      (void)detail::fail_at(info_, e, 1, at + 1, fmt, args...);
  }

  [[nodiscard]] bool done() const noexcept { return pos_ >= p_.size() || err_ != errc::ok; }
  [[nodiscard]] char peek() const noexcept { return p_[pos_]; }

  std::int32_t alternation() {
    std::vector<std::int32_t> alts{concatenation()};
    while (!done() && peek() == '|') {
      ++pos_;
      alts.push_back(concatenation());
    }
    if (alts.size() == 1) return alts[0];
    re_node n;
    n.k = re_node::kind::alt;
    n.children = std::move(alts);
    return add(std::move(n));
  }

  std::int32_t concatenation() {
    re_node n;
    n.k = re_node::kind::concat;
    while (!done() && peek() != '|' && peek() != ')') {
      const std::int32_t a = quantified();
      if (err_ != errc::ok) break;
      n.children.push_back(a);
    }
    return add(std::move(n));
  }

  // Reads digits at pos_; -1 when there are none, -2 on overflow.
  std::int64_t number() {
    std::int64_t v = -1;
    while (pos_ < p_.size() && p_[pos_] >= '0' && p_[pos_] <= '9') {
      v = (v < 0 ? 0 : v) * 10 + (p_[pos_] - '0');
      if (v > 1'000'000'000) return -2;
      ++pos_;
    }
    return v;
  }

  // An atom and at most one quantifier after it (a second one is "nothing to repeat").
  std::int32_t quantified() {
    const std::int32_t a = atom();
    if (done()) return a;
    const char c = peek();
    std::int64_t lo = 0, hi = 0;
    const std::size_t q_at = pos_;
    if (c == '*') {
      lo = 0, hi = -1, ++pos_;
    } else if (c == '+') {
      lo = 1, hi = -1, ++pos_;
    } else if (c == '?') {
      lo = 0, hi = 1, ++pos_;
    } else if (c == '{') {
      ++pos_;
      lo = number();
      if (lo == -1)
        return fail(errc::parse_error, q_at, "'{' is not a repetition (escape it: \\{)"), a;
      hi = lo;
      if (!done() && peek() == ',') {
        ++pos_;
        hi = number();
      }
      if (done() || peek() != '}')
        return fail(errc::parse_error, q_at, "unterminated repetition {n,m}"), a;
      ++pos_;
      if (lo == -2 || hi == -2 || static_cast<std::size_t>(lo) > max_repeat_ ||
          (hi >= 0 && static_cast<std::size_t>(hi) > max_repeat_))
        return fail(errc::constraint_too_large, q_at, "repetition count over max_repeat %zu",
                    max_repeat_),
               a;
      if (hi >= 0 && hi < lo)
        return fail(errc::parse_error, q_at, "repetition {%lld,%lld} with max below min",
                    static_cast<long long>(lo), static_cast<long long>(hi)),
               a;
    } else {
      return a;
    }
    if (!done() && peek() == '+') return fail(errc::unsupported, pos_, "possessive quantifier"), a;
    if (!done() && peek() == '?') ++pos_;  // lazy: the same language
    re_node n;
    n.k = re_node::kind::repeat;
    n.children = {a};
    n.min = static_cast<std::uint32_t>(lo);
    n.max = hi;
    return add(std::move(n));
  }

  // Decodes one UTF-8 code point at pos_ (advancing); -1 on malformed UTF-8.
  std::int64_t code_point() {
    const auto b0 = static_cast<unsigned char>(p_[pos_]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (b0 < 0x80) {
      ++pos_;
      return b0;
    }
    if (b0 >= 0xC2 && b0 <= 0xDF)
      len = 2, cp = b0 & 0x1Fu;
    else if (b0 >= 0xE0 && b0 <= 0xEF)
      len = 3, cp = b0 & 0x0Fu;
    else if (b0 >= 0xF0 && b0 <= 0xF4)
      len = 4, cp = b0 & 0x07u;
    else
      return -1;
    if (pos_ + len > p_.size()) return -1;
    for (std::size_t i = 1; i < len; ++i) {
      const auto b = static_cast<unsigned char>(p_[pos_ + i]);
      if ((b & 0xC0u) != 0x80u) return -1;
      cp = (cp << 6) | (b & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > max_code_point)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return -1;
    pos_ += len;
    return cp;
  }

  // Reads n hex digits at pos_; -1 when they are not there.
  std::int64_t hex(std::size_t n) {
    if (pos_ + n > p_.size()) return -1;
    const int v = hex_value(p_.substr(pos_, n));
    if (v < 0) return -1;
    pos_ += n;
    return v;
  }

  static std::vector<cp_range> shorthand(char c) {
    std::vector<cp_range> r;
    switch (c | 0x20) {
      case 'd':
        r = {{'0', '9'}};
        break;
      case 'w':
        r = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
        break;
      default:  // 's'
        r = {{'\t', '\r'}, {' ', ' '}};
        break;
    }
    if (c >= 'A' && c <= 'Z') r = complement(r);
    return r;
  }

  // Parses an escape after the backslash at `at` (pos_ is past it). Fills `set`; returns
  // false on error. `in_class`: inside brackets.
  bool escape(std::size_t at, std::vector<cp_range>& set, bool& is_class) {
    is_class = false;
    if (pos_ >= p_.size()) return fail(errc::parse_error, at, "pattern ends with '\\'"), false;
    const char c = p_[pos_++];
    const auto single = [&](std::uint32_t cp) { set = {{cp, cp}}; };
    switch (c) {
      case 'd':
      case 'D':
      case 'w':
      case 'W':
      case 's':
      case 'S':
        set = shorthand(c);
        is_class = true;
        return true;
      case 'n':
        single('\n');
        return true;
      case 'r':
        single('\r');
        return true;
      case 't':
        single('\t');
        return true;
      case 'f':
        single('\f');
        return true;
      case 'v':
        single('\v');
        return true;
      case '0':
        if (pos_ < p_.size() && p_[pos_] >= '0' && p_[pos_] <= '9')
          return fail(errc::unsupported, at, "octal escape"), false;
        single(0);
        return true;
      case 'x': {
        const std::int64_t v = hex(2);
        if (v < 0) return fail(errc::parse_error, at, "\\x needs two hex digits"), false;
        single(static_cast<std::uint32_t>(v));
        return true;
      }
      case 'u': {
        std::int64_t v = hex(4);
        if (v < 0) return fail(errc::parse_error, at, "\\u needs four hex digits"), false;
        if (v >= 0xD800 && v <= 0xDBFF) {
          std::int64_t lo = -1;
          if (pos_ + 1 < p_.size() && p_[pos_] == '\\' && p_[pos_ + 1] == 'u') {
            pos_ += 2;
            lo = hex(4);
          }
          if (lo < 0xDC00 || lo > 0xDFFF)
            return fail(errc::parse_error, at, "high surrogate without a low surrogate"), false;
          v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        } else if (v >= 0xDC00 && v <= 0xDFFF) {
          return fail(errc::parse_error, at, "lone low surrogate"), false;
        }
        single(static_cast<std::uint32_t>(v));
        return true;
      }
      case 'b':
      case 'B':
        return fail(errc::unsupported, at, "word boundary \\%c", c), false;
      case 'k':
        return fail(errc::unsupported, at, "named backreference \\k"), false;
      case 'p':
      case 'P':
        return fail(errc::unsupported, at, "Unicode property \\%c", c), false;
      case 'A':
      case 'z':
      case 'Z':
      case 'G':
        return fail(errc::unsupported, at, "anchor \\%c", c), false;
      case 'c':
        return fail(errc::unsupported, at, "control escape \\c"), false;
      default:
        break;
    }
    if (c >= '1' && c <= '9') return fail(errc::unsupported, at, "backreference \\%c", c), false;
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) &&
        u > 0x20 && u < 0x7F) {
      single(u);  // any escaped ASCII punctuation is itself
      return true;
    }
    return fail(errc::parse_error, at, "unknown escape \\%c", c), false;
  }

  std::int32_t atom() {
    const std::size_t at = pos_;
    const char c = peek();
    switch (c) {
      case '(': {
        ++pos_;
        if (!done() && peek() == '?') {
          if (pos_ + 1 < p_.size() && p_[pos_ + 1] == ':') {
            pos_ += 2;
          } else {
            const char k = pos_ + 1 < p_.size() ? p_[pos_ + 1] : '?';
            const char* what =
                k == '=' || k == '!' ? "lookahead"
                : k == '<' && pos_ + 2 < p_.size() && (p_[pos_ + 2] == '=' || p_[pos_ + 2] == '!')
                    ? "lookbehind"
                : k == '<' || k == 'P' || k == '\'' ? "named group"
                                                    : "group flags";
            return fail(errc::unsupported, at, "%s '(?%c'", what, k), -1;
          }
        }
        // The parser and the automaton builder recurse once per group level: a cap keeps a
        // hostile pattern from exhausting the stack.
        if (depth_ >= max_group_depth)
          return fail(errc::constraint_too_large, at, "groups nested over %zu deep",
                      max_group_depth),
                 -1;
        ++depth_;
        const std::int32_t inner = alternation();
        --depth_;
        if (err_ != errc::ok) return -1;
        if (done() || peek() != ')') return fail(errc::parse_error, at, "unmatched '('"), -1;
        ++pos_;
        return inner;
      }
      case ')':
        return fail(errc::parse_error, at, "unmatched ')'"), -1;
      case '*':
      case '+':
      case '?':
        return fail(errc::parse_error, at, "nothing to repeat before '%c'", c), -1;
      case '{':
        return fail(errc::parse_error, at, "nothing to repeat before '{' (escape it: \\{)"), -1;
      case '^':
        return fail(errc::unsupported, at, "'^' anchor except at the start"), -1;
      case '$':
        return fail(errc::unsupported, at, "'$' anchor except at the end"), -1;
      case '.':
        ++pos_;
        return add_set(complement({{'\n', '\n'}}));
      case '[':
        return bracket();
      case '\\': {
        ++pos_;
        std::vector<cp_range> set;
        bool is_class = false;
        if (!escape(at, set, is_class)) return -1;
        return add_set(std::move(set));
      }
      default: {
        const std::int64_t cp = code_point();
        if (cp < 0) return fail(errc::parse_error, at, "malformed UTF-8"), -1;
        return add_set({{static_cast<std::uint32_t>(cp), static_cast<std::uint32_t>(cp)}});
      }
    }
  }

  // One class member at pos_ (a code point, an escape or a shorthand); false on error.
  bool class_item(std::vector<cp_range>& set, bool& is_class) {
    const std::size_t at = pos_;
    is_class = false;
    if (p_[pos_] == '\\') {
      ++pos_;
      if (pos_ < p_.size() && p_[pos_] == 'b')
        return fail(errc::unsupported, at, "\\b in a class (write \\x08)"), false;
      return escape(at, set, is_class);
    }
    if (p_[pos_] == '[' && pos_ + 1 < p_.size() &&
        (p_[pos_ + 1] == ':' || p_[pos_ + 1] == '=' || p_[pos_ + 1] == '.'))
      return fail(errc::unsupported, at, "POSIX class '[%c'", p_[pos_ + 1]), false;
    const std::int64_t cp = code_point();
    if (cp < 0) return fail(errc::parse_error, at, "malformed UTF-8"), false;
    set = {{static_cast<std::uint32_t>(cp), static_cast<std::uint32_t>(cp)}};
    return true;
  }

  std::int32_t bracket() {
    const std::size_t at = pos_;
    ++pos_;
    bool negate = false;
    if (pos_ < p_.size() && p_[pos_] == '^') {
      negate = true;
      ++pos_;
    }
    if (pos_ < p_.size() && p_[pos_] == ']')
      return fail(errc::parse_error, at, "empty class (escape a literal ']': \\])"), -1;
    std::vector<cp_range> all;
    for (;;) {
      if (pos_ >= p_.size()) return fail(errc::parse_error, at, "unterminated class '['"), -1;
      if (p_[pos_] == ']') {
        ++pos_;
        break;
      }
      const std::size_t item_at = pos_;
      std::vector<cp_range> lo;
      bool lo_class = false;
      if (!class_item(lo, lo_class)) return -1;
      if (pos_ + 1 < p_.size() && p_[pos_] == '-' && p_[pos_ + 1] != ']') {
        ++pos_;
        std::vector<cp_range> hi;
        bool hi_class = false;
        if (!class_item(hi, hi_class)) return -1;
        if (lo_class || hi_class)
          return fail(errc::parse_error, item_at, "a class shorthand as a range end"), -1;
        if (hi[0].lo < lo[0].lo) return fail(errc::parse_error, item_at, "range out of order"), -1;
        all.push_back({lo[0].lo, hi[0].lo});
      } else {
        all.insert(all.end(), lo.begin(), lo.end());
      }
    }
    normalize(all);
    if (negate) all = complement(all);
    return add_set(std::move(all));
  }

  std::string_view p_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;  // groups open at pos_
  std::size_t max_repeat_;
  error_info* info_;
  errc err_ = errc::ok;
  std::vector<re_node> nodes_;
};

/// A Thompson NFA over bytes: edges on byte ranges, and epsilon edges.
struct byte_nfa {
  struct edge {
    std::uint8_t lo, hi;
    std::int32_t to;
  };
  std::vector<std::vector<edge>> edges;
  std::vector<std::vector<std::int32_t>> eps;
  std::size_t limit = 0;
  bool too_large = false;

  std::int32_t add() {
    if (edges.size() >= limit) {
      too_large = true;
      return 0;
    }
    edges.emplace_back();
    eps.emplace_back();
    return static_cast<std::int32_t>(edges.size() - 1);
  }
  void link(std::int32_t a, std::int32_t b) {
    if (!too_large) eps[static_cast<std::size_t>(a)].push_back(b);
  }
};

/// Appends the UTF-8 encoding of `cp` to `out` (1 to 4 bytes); returns its length.
inline std::size_t utf8_encode(std::uint32_t cp, std::uint8_t out[4]) noexcept {
  if (cp < 0x80) {
    out[0] = static_cast<std::uint8_t>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<std::uint8_t>(0xC0 | (cp >> 6));
    out[1] = static_cast<std::uint8_t>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<std::uint8_t>(0xE0 | (cp >> 12));
    out[1] = static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<std::uint8_t>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<std::uint8_t>(0xF0 | (cp >> 18));
  out[1] = static_cast<std::uint8_t>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<std::uint8_t>(0x80 | (cp & 0x3F));
  return 4;
}

/// Splits code-point range [lo, hi] into sequences of byte ranges, each matching exactly
/// the UTF-8 encodings of a sub-range; `emit(lo_bytes, hi_bytes, len)` per sequence.
template <class F>
void utf8_sequences(std::uint32_t lo, std::uint32_t hi, F&& emit) {
  // Split at the encoding-length boundaries first.
  static constexpr std::uint32_t bounds[] = {0x7F, 0x7FF, 0xFFFF};
  for (const std::uint32_t b : bounds)
    if (lo <= b && hi > b) {
      utf8_sequences(lo, b, emit);
      utf8_sequences(b + 1, hi, emit);
      return;
    }
  // Then until every continuation byte position spans a full or a single prefix.
  for (std::uint32_t i = 1; i < 4; ++i) {
    const std::uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_sequences(lo, lo | m, emit);
        utf8_sequences((lo | m) + 1, hi, emit);
        return;
      }
      if ((hi & m) != m) {
        utf8_sequences(lo, (hi & ~m) - 1, emit);
        utf8_sequences(hi & ~m, hi, emit);
        return;
      }
    }
  }
  std::uint8_t a[4], b[4];
  const std::size_t n = utf8_encode(lo, a);
  utf8_encode(hi, b);
  emit(a, b, n);
}

/// `r` without the surrogates D800-DFFF (not UTF-8): zero, one or two ranges.
inline std::vector<cp_range> without_surrogates(cp_range r) {
  if (r.hi < 0xD800 || r.lo > 0xDFFF) return {r};
  std::vector<cp_range> out;
  if (r.lo < 0xD800) out.push_back({r.lo, 0xD7FF});
  if (r.hi > 0xDFFF) out.push_back({0xE000, r.hi});
  return out;
}

/// Emits the NFA of node `i` between new states; returns (start, end).
inline std::pair<std::int32_t, std::int32_t> emit_nfa(std::vector<re_node>& nodes, std::int32_t i,
                                                      byte_nfa& nfa) {
  if (nfa.too_large) return {0, 0};
  re_node& n = nodes[static_cast<std::size_t>(i)];
  const std::int32_t s = nfa.add(), e = nfa.add();
  if (nfa.too_large) return {0, 0};
  switch (n.k) {
    case re_node::kind::set:
      for (const cp_range whole : n.set)
        for (const cp_range r : without_surrogates(whole))
          utf8_sequences(r.lo, r.hi,
                         [&](const std::uint8_t* a, const std::uint8_t* b, std::size_t len) {
                           std::int32_t from = s;
                           for (std::size_t k = 0; k < len && !nfa.too_large; ++k) {
                             const std::int32_t to = k + 1 == len ? e : nfa.add();
                             if (nfa.too_large) return;
                             nfa.edges[static_cast<std::size_t>(from)].push_back({a[k], b[k], to});
                             from = to;
                           }
                         });
      break;
    case re_node::kind::concat: {
      std::int32_t at = s;
      for (const std::int32_t c : n.children) {
        const auto [cs, ce] = emit_nfa(nodes, c, nfa);
        nfa.link(at, cs);
        at = ce;
      }
      nfa.link(at, e);
      break;
    }
    case re_node::kind::alt:
      for (const std::int32_t c : n.children) {
        const auto [cs, ce] = emit_nfa(nodes, c, nfa);
        nfa.link(s, cs);
        nfa.link(ce, e);
      }
      break;
    case re_node::kind::repeat: {
      const std::int32_t child = n.children[0];
      std::int32_t at = s;
      for (std::uint32_t k = 0; k < n.min && !nfa.too_large; ++k) {
        const auto [cs, ce] = emit_nfa(nodes, child, nfa);
        nfa.link(at, cs);
        at = ce;
      }
      if (n.max < 0) {  // a loop: at -> child -> at
        const auto [cs, ce] = emit_nfa(nodes, child, nfa);
        nfa.link(at, cs);
        nfa.link(ce, at);
        nfa.link(at, e);
      } else {  // max - min optional copies, each may skip to the end
        for (std::int64_t k = n.min; k < n.max && !nfa.too_large; ++k) {
          nfa.link(at, e);
          const auto [cs, ce] = emit_nfa(nodes, child, nfa);
          nfa.link(at, cs);
          at = ce;
        }
        nfa.link(at, e);
      }
      break;
    }
  }
  return {s, e};
}

/// Subset construction from `nfa` (start `start`, accepting `accept`). Returns false when
/// the DFA would exceed `max_states` states (before minimisation; the limit applied here is
/// a multiple of it, since minimisation may shrink it).
inline bool nfa_to_dfa(const byte_nfa& nfa, std::int32_t start, std::int32_t accept,
                       std::size_t max_states, byte_dfa& dfa) {
  // Byte classes over the NFA's edge boundaries.
  std::uint8_t cls[256] = {};
  {
    bool cut[257] = {};
    for (const auto& es : nfa.edges)
      for (const auto& ed : es) {
        cut[ed.lo] = true;
        cut[ed.hi + 1] = true;
      }
    std::uint8_t k = 0;
    for (std::size_t b = 0; b < 256; ++b) {
      if (b > 0 && cut[b]) ++k;
      cls[b] = k;
    }
  }
  std::vector<std::int32_t> first_byte;  // per class
  for (std::size_t b = 0; b < 256; ++b)
    if (b == 0 || cls[b] != cls[b - 1]) first_byte.push_back(static_cast<std::int32_t>(b));

  std::vector<std::uint32_t> mark(nfa.edges.size(), 0);
  std::uint32_t stamp = 0;
  const auto closure = [&](std::vector<std::int32_t>& set) {
    ++stamp;
    std::vector<std::int32_t> work(set);
    for (const std::int32_t x : set) mark[static_cast<std::size_t>(x)] = stamp;
    while (!work.empty()) {
      const std::int32_t x = work.back();
      work.pop_back();
      for (const std::int32_t y : nfa.eps[static_cast<std::size_t>(x)])
        if (mark[static_cast<std::size_t>(y)] != stamp) {
          mark[static_cast<std::size_t>(y)] = stamp;
          set.push_back(y);
          work.push_back(y);
        }
    }
    // Keep only states with byte edges (and the accepting one): equal sets merge more.
    std::erase_if(set, [&](std::int32_t x) {
      return x != accept && nfa.edges[static_cast<std::size_t>(x)].empty();
    });
    std::sort(set.begin(), set.end());
  };
  struct vec_hash {
    std::size_t operator()(const std::vector<std::int32_t>& v) const noexcept {
      std::size_t h = 1469598103934665603ULL;
      for (const std::int32_t x : v) h = (h ^ static_cast<std::uint32_t>(x)) * 1099511628211ULL;
      return h;
    }
  };
  std::unordered_map<std::vector<std::int32_t>, std::int32_t, vec_hash> ids;
  std::vector<std::vector<std::int32_t>> sets;
  const auto intern = [&](std::vector<std::int32_t>&& set) -> std::int32_t {
    if (set.empty()) return -1;
    const auto it = ids.find(set);
    if (it != ids.end()) return it->second;
    const bool acc = std::binary_search(set.begin(), set.end(), accept);
    const std::int32_t id = dfa.add_state(acc);
    ids.emplace(set, id);
    sets.push_back(std::move(set));
    return id;
  };
  std::vector<std::int32_t> init{start};
  closure(init);
  if (intern(std::move(init)) < 0) return true;  // the empty language: no states
  std::vector<std::int32_t> moved;
  for (std::size_t s = 0; s < sets.size(); ++s) {
    if (sets.size() > max_states) return false;
    for (const std::int32_t b : first_byte) {
      moved.clear();
      ++stamp;
      for (const std::int32_t x : sets[s])
        for (const auto& ed : nfa.edges[static_cast<std::size_t>(x)])
          if (b >= ed.lo && b <= ed.hi && mark[static_cast<std::size_t>(ed.to)] != stamp) {
            mark[static_cast<std::size_t>(ed.to)] = stamp;
            moved.push_back(ed.to);
          }
      if (moved.empty()) continue;
      closure(moved);
      const std::int32_t t = intern(std::vector<std::int32_t>(moved));
      for (std::size_t c = static_cast<std::size_t>(b); c < 256 && cls[c] == cls[b]; ++c)
        dfa.next[s * 256 + c] = t;
    }
  }
  return sets.size() <= max_states;
}

}  // namespace tandem::inline v0::detail
