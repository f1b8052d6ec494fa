// tandem (private): word splitting shared by the confidence block's text features.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/core/config.hpp"

namespace tandem::inline v0 {

namespace detail::conf {
inline constexpr char lower_ascii(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
inline constexpr bool is_word_byte(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || u >= 0x80;
}
/// Splits `text` into lower-cased words (runs of ASCII letters/digits and non-ASCII
/// bytes); `out` is cleared first.
inline void split_words(std::string_view text, std::vector<std::string>& out) {
  out.clear();
  for (std::size_t i = 0; i < text.size();) {
    if (!is_word_byte(text[i])) {
      ++i;
      continue;
    }
    std::string w;
    while (i < text.size() && is_word_byte(text[i])) w.push_back(lower_ascii(text[i++]));
    out.push_back(std::move(w));
  }
}
}  // namespace detail::conf

}  // namespace tandem::inline v0
