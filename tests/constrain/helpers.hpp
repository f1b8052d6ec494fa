// Test helpers for tandem/constrain: a synthetic vocabulary, a brute-force token index
// (every token's bytes walked through the automaton, independent of the trie walk) and
// random tokenizations.
#pragma once

#include <tandem/constrain.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/catch.hpp"

namespace tandem_test {

/// A synthetic vocabulary: 256 byte-fallback tokens (ids 0..255, one byte each), the
/// special tokens <s> (256, no bytes) and </s> (257, no bytes, the end token), then
/// multi-byte tokens: words, digits, punctuation runs, whole and partial UTF-8 characters,
/// and a duplicate of an earlier string.
inline std::vector<std::string> synthetic_strings() {
  std::vector<std::string> v;
  for (int b = 0; b < 256; ++b) v.emplace_back(1, static_cast<char>(b));
  v.emplace_back();  // <s>
  v.emplace_back();  // </s>
  for (const char* s : {"ab",
                        "abc",
                        "bc",
                        "ca",
                        "aa",
                        "bb",
                        "cab",
                        "true",
                        "false",
                        "null",
                        "tr",
                        "ue",
                        "fa",
                        "lse",
                        "nu",
                        "ll",
                        "12",
                        "10",
                        "01",
                        "00",
                        "123",
                        "0.",
                        ".5",
                        "-1",
                        "\"a",
                        "a\"",
                        "\"\"",
                        "\\\"",
                        "\\\\",
                        " a",
                        "  ",
                        " \"",
                        "\":",
                        ",\"",
                        "{\"",
                        "\"}",
                        "ab@",
                        "@a",
                        ".com",
                        "com",
                        "co",
                        "m",
                        "\xC3\xA9",
                        "\xE6\x97\xA5",
                        "\xE6\x97",
                        "\xA5",
                        "\xE6\x97\xA5\xE6\x9C\xAC",
                        "a\xC3\xA9",
                        "\xF0\x9F\x98\x80",
                        "dd",
                        "cd",
                        "abcd",
                        "xyz",
                        "hello",
                        "hel",
                        "lo",
                        "yes",
                        "no",
                        "ab"})
    v.emplace_back(s);
  return v;
}

inline constexpr tandem::token_id synthetic_bos = 256;
inline constexpr tandem::token_id synthetic_eos = 257;

inline tandem::token_vocabulary synthetic_vocabulary() {
  auto r = tandem::token_vocabulary::from_bytes(synthetic_strings(), {synthetic_eos});
  REQUIRE(r.has_value());
  return std::move(r).value();
}

/// Runs `bytes` through the compiled automaton from state `q`; -1 when a byte has no
/// transition.
inline std::int32_t walk(const tandem::detail::compiled_data& c, std::int32_t q,
                         std::string_view bytes) {
  for (const char ch : bytes) {
    if (q < 0) return -1;
    q = c.next[static_cast<std::size_t>(q) * 256 + static_cast<unsigned char>(ch)];
  }
  return q;
}

/// The allowed tokens of every state, found by brute force: a state is live when an
/// accepting state is reachable from it through tokens (each token's bytes walked
/// through the automaton); a token is allowed when it leads to a live state, or is an end
/// token and the state accepts. Row `state_count()` is the state after an end token.
inline std::vector<std::vector<bool>> brute_force_index(const tandem::compiled_constraint& cc,
                                                        const tandem::token_vocabulary& vocab) {
  const auto& c = *cc.data();
  const std::size_t n = c.states, v = vocab.size();
  std::vector<std::vector<std::int32_t>> next(n, std::vector<std::int32_t>(v, -1));
  for (std::size_t s = 0; s < n; ++s)
    for (std::size_t t = 0; t < v; ++t) {
      const auto id = static_cast<tandem::token_id>(t);
      if (vocab.is_end(id) || vocab.bytes(id).empty()) continue;
      next[s][t] = walk(c, static_cast<std::int32_t>(s), vocab.bytes(id));
    }
  std::vector<bool> live(n, false);
  for (std::size_t s = 0; s < n; ++s) live[s] = c.accepting[s] != 0;
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t s = 0; s < n; ++s)
      for (std::size_t t = 0; t < v && !live[s]; ++t)
        if (next[s][t] >= 0 && live[static_cast<std::size_t>(next[s][t])]) live[s] = changed = true;
  }
  std::vector<std::vector<bool>> allowed(n + 1, std::vector<bool>(v, false));
  for (std::size_t s = 0; s < n; ++s) {
    if (!live[s]) continue;
    for (std::size_t t = 0; t < v; ++t) {
      const auto id = static_cast<tandem::token_id>(t);
      allowed[s][t] = vocab.is_end(id)
                          ? c.accepting[s] != 0
                          : next[s][t] >= 0 && live[static_cast<std::size_t>(next[s][t])];
    }
  }
  return allowed;
}

/// Checks allows(), mask() and forced() of `st` against one brute-force row.
inline void check_against(tandem::constraint_state& st, const std::vector<bool>& row,
                          std::mt19937& rng) {
  const std::size_t v = st.vocab_size();
  std::uniform_real_distribution<float> u(-5.0f, 5.0f);
  std::vector<float> logits(v + 13);  // a model's padded logits
  for (float& x : logits) x = u(rng);
  const std::vector<float> before = logits;
  REQUIRE(st.mask(logits) == tandem::errc::ok);
  std::size_t count = 0;
  tandem::token_id only = tandem::no_token;
  for (std::size_t t = 0; t < v; ++t) {
    const auto id = static_cast<tandem::token_id>(t);
    INFO("token " << t);
    REQUIRE(st.allows(id) == row[t]);
    if (row[t]) {
      REQUIRE(logits[t] == before[t]);
      ++count;
      only = id;
    } else {
      REQUIRE(std::isinf(logits[t]));
      REQUIRE(logits[t] < 0);
    }
  }
  for (std::size_t t = v; t < logits.size(); ++t) REQUIRE((std::isinf(logits[t]) && logits[t] < 0));
  REQUIRE(st.forced() == (count == 1 ? only : tandem::no_token));
}

/// Random walks through `cc` from the start: at each step a uniformly chosen allowed token
/// (found by brute force), checking the state against the brute-force row first.
inline void check_random_states(const tandem::compiled_constraint& cc,
                                const tandem::token_vocabulary& vocab, std::uint32_t seed,
                                int walks, int max_steps) {
  const auto rows = brute_force_index(cc, vocab);
  std::mt19937 rng(seed);
  tandem::constraint_state st(cc);
  std::vector<tandem::token_id> allowed;
  for (int w = 0; w < walks; ++w) {
    st.reset();
    for (int step = 0; step < max_steps; ++step) {
      const auto& row = rows[st.automaton_state()];
      check_against(st, row, rng);
      allowed.clear();
      for (std::size_t t = 0; t < row.size(); ++t)
        if (row[t]) allowed.push_back(static_cast<tandem::token_id>(t));
      if (allowed.empty()) break;
      const tandem::token_id t =
          allowed[std::uniform_int_distribution<std::size_t>(0, allowed.size() - 1)(rng)];
      REQUIRE(st.advance(t) == tandem::errc::ok);
    }
  }
}

/// A random tokenization of `text` over `vocab`: at each point, a uniformly chosen token
/// among those (not end tokens) whose bytes start the rest. Empty when `text` cannot be
/// tokenized from some point (never with byte tokens).
inline std::vector<tandem::token_id> random_tokens(const tandem::token_vocabulary& vocab,
                                                   std::string_view text, std::mt19937& rng) {
  std::vector<tandem::token_id> out;
  std::vector<tandem::token_id> fits;
  std::size_t at = 0;
  while (at < text.size()) {
    fits.clear();
    for (std::size_t t = 0; t < vocab.size(); ++t) {
      const auto id = static_cast<tandem::token_id>(t);
      const std::string_view b = vocab.bytes(id);
      if (!vocab.is_end(id) && !b.empty() && text.substr(at).starts_with(b)) fits.push_back(id);
    }
    if (fits.empty()) return {};
    const tandem::token_id t =
        fits[std::uniform_int_distribution<std::size_t>(0, fits.size() - 1)(rng)];
    out.push_back(t);
    at += vocab.bytes(t).size();
  }
  return out;
}

/// Compiles `pattern` over `vocab`, requiring success.
inline tandem::compiled_constraint must_compile(std::string_view pattern,
                                                const tandem::token_vocabulary& vocab,
                                                const tandem::constraint_options& o = {}) {
  tandem::error_info info;
  auto r = tandem::compile_regex(pattern, vocab, o, &info);
  INFO("pattern " << pattern << ": " << info.context() << " col " << info.column);
  REQUIRE(r.has_value());
  return std::move(r).value();
}

}  // namespace tandem_test
