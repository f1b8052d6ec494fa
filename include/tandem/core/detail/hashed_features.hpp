// tandem (private): the pieces of the hashed text featurizers shared by the confidence
// block (the learned evaluator) and the router block (the TF-IDF featurizer): what a word
// is, ASCII lower-casing, word splitting, the 64-bit mixers that spread FNV-1a hashes
// (detail::fnv1a64, bytes.hpp) over the buckets, and sparse rows merged by index.
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/core/config.hpp"

namespace tandem::inline v0::detail {

/// `c` lower-cased if it is an ASCII capital, else unchanged.
[[nodiscard]] inline constexpr char lower_ascii(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// True for the bytes words are made of: ASCII letters and digits, and every non-ASCII
/// byte (so UTF-8 letters stay inside words).
[[nodiscard]] inline constexpr bool is_word_byte(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || u >= 0x80;
}

/// Splits `text` into lower-cased words (maximal runs of word bytes); `out` is cleared
/// first.
template <int = 0>
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

/// SplitMix64's finaliser: a bijective mix of all 64 bits (the router's n-gram hashes).
[[nodiscard]] inline constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// The bucket in [0, 2^bits) of a 64-bit hash after a short xor-shift-multiply mix (the
/// learned evaluator's n-gram hashes). Precondition: bits < 64.
[[nodiscard]] inline constexpr std::uint32_t hash_bucket(std::uint64_t h, unsigned bits) noexcept {
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 32;
  return static_cast<std::uint32_t>(h & ((std::uint64_t{1} << bits) - 1));
}

/// One entry of a hashed sparse row.
struct hashed_entry {
  std::uint32_t index;  ///< bucket
  double value;         ///< weight
};

/// Sorts `row` by index and merges entries of one index by adding their values.
template <int = 0>
inline void sort_and_merge(std::vector<hashed_entry>& row) {
  std::sort(row.begin(), row.end(),
            [](const hashed_entry& x, const hashed_entry& y) { return x.index < y.index; });
  std::size_t w = 0;
  for (std::size_t r = 0; r < row.size(); ++r) {
    if (w > 0 && row[w - 1].index == row[r].index)
      row[w - 1].value += row[r].value;
    else
      row[w++] = row[r];
  }
  row.resize(w);
}

}  // namespace tandem::inline v0::detail
