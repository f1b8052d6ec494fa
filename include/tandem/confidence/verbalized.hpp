// tandem: parser for confidence a model states in words ("Confidence: 85%", "0.85",
// "I am about 70% sure", "confidence level: high"). It reads a value only where the text
// ties it to a confidence word (or where the whole text is the value) and otherwise
// reports that none was found, rather than guessing from a stray number.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "tandem/core/config.hpp"

namespace tandem::inline v0 {

/// How a stated confidence was written.
enum class stated_form : std::uint8_t {
  percent,   ///< "85%", "85 percent", or a bare number in (1, 100] after a confidence word
  fraction,  ///< a bare number in [0, 1]: "0.85"
  ratio,     ///< "8/10", "8 out of 10"
  level,     ///< a word: very low, low, medium/moderate, high, very high
};

/// A confidence found in text.
struct stated_confidence {
  double value = 0.0;  ///< in [0, 1]
  /// How the text stated it.
  stated_form form = stated_form::percent;
  std::size_t position = 0;  ///< byte offset of the value in the text
};

/// Probabilities assigned to the level words.
struct confidence_levels {
  double very_low = 0.1;    ///< "very low"
  double low = 0.25;        ///< "low"
  double medium = 0.5;      ///< "medium" and "moderate"
  double high = 0.8;        ///< "high"
  double very_high = 0.95;  ///< "very high"
};

namespace detail::conf {
struct vtoken {
  enum kind_t : std::uint8_t { word, number, punct } kind;
  std::size_t begin, end;  // byte range in the text
  double value;            // numbers only
};

inline bool vequals(std::string_view text, const vtoken& t, std::string_view lower_word) noexcept {
  if (t.kind != vtoken::word || t.end - t.begin != lower_word.size()) return false;
  for (std::size_t i = 0; i < lower_word.size(); ++i) {
    char c = text[t.begin + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_word[i]) return false;
  }
  return true;
}

inline bool vis_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool vis_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// Splits text into words, unsigned decimal numbers and single punctuation characters
/// (newlines included; other whitespace dropped). Numbers longer than 12 digits become
/// punctuation-like tokens of NaN value, so they never parse as confidences.
inline void vtokenize(std::string_view s, std::vector<vtoken>& out) {
  out.clear();
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      ++i;
    } else if (vis_alpha(c)) {
      const std::size_t b = i;
      while (i < s.size() &&
             (vis_alpha(s[i]) || (s[i] == '\'' && i + 1 < s.size() && vis_alpha(s[i + 1]))))
        ++i;
      out.push_back({vtoken::word, b, i, 0.0});
    } else if (vis_digit(c) || (c == '.' && i + 1 < s.size() && vis_digit(s[i + 1]))) {
      const std::size_t b = i;
      double v = 0.0, scale = 1.0;
      std::size_t digits = 0;
      bool dot = false;
      while (i < s.size()) {
        if (vis_digit(s[i])) {
          ++digits;
          if (dot) {
            scale /= 10.0;
            v += (s[i] - '0') * scale;
          } else {
            v = v * 10.0 + (s[i] - '0');
          }
          ++i;
        } else if (s[i] == '.' && !dot && i + 1 < s.size() && vis_digit(s[i + 1])) {
          dot = true;
          ++i;
        } else {
          break;
        }
      }
      out.push_back({digits > 12 ? vtoken::punct : vtoken::number, b, i, digits > 12 ? -1.0 : v});
    } else {
      out.push_back({vtoken::punct, i, i + 1, 0.0});
      ++i;
    }
  }
}

inline bool vpunct(std::string_view s, const vtoken& t, char c) noexcept {
  return t.kind == vtoken::punct && s[t.begin] == c;
}

/// Reads a value (number with its unit, or a level word) starting at token j.
inline std::optional<stated_confidence> vvalue_at(std::string_view s, const std::vector<vtoken>& t,
                                                  std::size_t j, const confidence_levels& lv) {
  if (j >= t.size()) return std::nullopt;
  const vtoken& a = t[j];
  if (a.kind == vtoken::word) {
    auto level = [&](std::size_t k, bool very) -> std::optional<double> {
      if (k >= t.size()) return std::nullopt;
      if (vequals(s, t[k], "high")) return very ? lv.very_high : lv.high;
      if (vequals(s, t[k], "low")) return very ? lv.very_low : lv.low;
      if (!very && (vequals(s, t[k], "medium") || vequals(s, t[k], "moderate"))) return lv.medium;
      return std::nullopt;
    };
    const bool very = vequals(s, a, "very");
    if (auto v = level(very ? j + 1 : j, very))
      return stated_confidence{*v, stated_form::level, a.begin};
    return std::nullopt;
  }
  if (a.kind != vtoken::number) return std::nullopt;
  // A sign, a letter or a digit glued to the number makes it something else ("-5", "3rd").
  if (a.begin > 0 && (s[a.begin - 1] == '-' || s[a.begin - 1] == '+' || vis_alpha(s[a.begin - 1])))
    return std::nullopt;
  if (a.end < s.size() && vis_alpha(s[a.end]) &&
      !(j + 1 < t.size() && vequals(s, t[j + 1], "percent")))
    return std::nullopt;
  if (j > 0 && vequals(s, t[j - 1], "not")) return std::nullopt;
  const double x = a.value;
  if (j + 1 < t.size() && (vpunct(s, t[j + 1], '%') || vequals(s, t[j + 1], "percent"))) {
    if (x > 100.0) return std::nullopt;
    return stated_confidence{x / 100.0, stated_form::percent, a.begin};
  }
  std::size_t den = 0;
  if (j + 2 < t.size() && vpunct(s, t[j + 1], '/')) den = j + 2;
  if (j + 3 < t.size() && vequals(s, t[j + 1], "out") && vequals(s, t[j + 2], "of")) den = j + 3;
  if (den != 0) {
    if (t[den].kind != vtoken::number || t[den].value <= 0.0 || x > t[den].value)
      return std::nullopt;
    return stated_confidence{x / t[den].value, stated_form::ratio, a.begin};
  }
  if (j + 1 < t.size() && vpunct(s, t[j + 1], '/')) return std::nullopt;
  if (x <= 1.0) return stated_confidence{x, stated_form::fraction, a.begin};
  if (x <= 100.0) return stated_confidence{x / 100.0, stated_form::percent, a.begin};
  return std::nullopt;
}

inline bool vfiller(std::string_view s, const vtoken& t) noexcept {
  if (t.kind == vtoken::punct) {
    const char c = s[t.begin];
    return c == ':' || c == '=' || c == '-' || c == '(' || c == '*' || c == '~' || c == '[' ||
           c == '"' || c == '\'' || c == '_' || c == '#' || c == '>';
  }
  static constexpr std::array<std::string_view, 17> words = {
      "level",   "score",    "is",       "of", "about", "around", "approximately",
      "roughly", "estimate", "rating",   "at", "would", "be",     "say",
      "i",       "my",       "estimated"};
  for (auto w : words)
    if (vequals(s, t, w)) return true;
  return false;
}
}  // namespace detail::conf

/// Finds the confidence stated in `text`. A value counts when it follows a confidence
/// word ("confidence", "certainty", "probability", "likelihood", "chance", "confident",
/// "sure", "certain"), possibly after separators and filler words ("Confidence level:
/// 85%", "probability: 0.9", "confidence = 8/10"), when a percentage or a level word
/// directly precedes one ("70% sure", "high confidence"), or when the whole text is the
/// value ("0.85", "85%", "high"). When several are stated the last one wins. Bare numbers
/// in [0, 1] are fractions and in (1, 100] percentages; anything else, a negated value
/// ("not 100% sure") or a number glued to letters is not a confidence. Returns
/// std::nullopt when nothing qualifies. Never fails on any byte sequence; reads `text`
/// only.
[[nodiscard]] inline std::optional<stated_confidence> parse_verbalized_confidence(
    std::string_view text, const confidence_levels& levels = {}) {
  using detail::conf::vequals;
  std::vector<detail::conf::vtoken> t;
  detail::conf::vtokenize(text, t);
  // The whole text is the value (trailing sentence punctuation allowed).
  std::size_t n = t.size();
  while (n > 0 &&
         (detail::conf::vpunct(text, t[n - 1], '.') || detail::conf::vpunct(text, t[n - 1], '\n')))
    --n;
  if (n > 0 && n <= 3) {
    if (auto v = detail::conf::vvalue_at(text, t, 0, levels)) {
      std::size_t used = 1;
      if (t[0].kind == detail::conf::vtoken::word && vequals(text, t[0], "very")) used = 2;
      if (t[0].kind == detail::conf::vtoken::number && n > 1)
        used = v->form == stated_form::ratio ? n : 2;
      if (used == n) return v;
    }
  }
  static constexpr std::array<std::string_view, 5> nouns = {"confidence", "certainty",
                                                            "probability", "likelihood", "chance"};
  static constexpr std::array<std::string_view, 3> adjectives = {"confident", "sure", "certain"};
  std::optional<stated_confidence> found;
  for (std::size_t k = 0; k < t.size(); ++k) {
    bool noun = false, adjective = false;
    for (auto w : nouns) noun = noun || vequals(text, t[k], w);
    for (auto w : adjectives) adjective = adjective || vequals(text, t[k], w);
    if (!noun && !adjective) continue;
    std::optional<stated_confidence> after, before;
    std::size_t j = k + 1;
    for (std::size_t skipped = 0; j < t.size() && skipped < 6 && detail::conf::vfiller(text, t[j]);
         ++j)
      ++skipped;
    after = detail::conf::vvalue_at(text, t, j, levels);
    if (k >= 2 &&
        (detail::conf::vpunct(text, t[k - 1], '%') || vequals(text, t[k - 1], "percent")) &&
        t[k - 2].kind == detail::conf::vtoken::number) {
      before = detail::conf::vvalue_at(text, t, k - 2, levels);
    } else if (k >= 1 && noun && t[k - 1].kind == detail::conf::vtoken::word) {
      const std::size_t start = k >= 2 && vequals(text, t[k - 2], "very") ? k - 2 : k - 1;
      before = detail::conf::vvalue_at(text, t, start, levels);
    }
    auto pick = noun ? (after ? after : before) : (before ? before : after);
    if (pick) found = pick;
  }
  return found;
}

}  // namespace tandem::inline v0
