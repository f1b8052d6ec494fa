// tandem: a vocabulary as byte strings, what an output constraint compiles against.
//
// A constraint's automaton runs over the bytes of the output; a token stands for the byte
// string it adds to that output. token_vocabulary holds those strings (and a byte trie over
// them, built once, which every compilation walks), plus the end tokens (end of sequence,
// end of turn) that a constraint allows exactly when the output may stop.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// A `Tokenizer` that also gives each token's bytes: `t.token_bytes(id, out)` appends the
/// bytes token `id` adds to a generated text (a byte-fallback token `<0xNN>` is the single
/// byte NN; sentencepiece's U+2581 is a space) and returns `errc::ok`; for a token with no
/// bytes of its own (control tokens such as `<s>`, the unknown token) it appends nothing and
/// returns `ok`: such tokens are never allowed by an automaton. `invalid_token` for an id
/// outside the vocabulary.
template <class T>
concept ByteTokenizer = Tokenizer<T> && requires(const T& t, token_id id, std::string& out) {
  { t.token_bytes(id, out) } -> std::same_as<errc>;
};

namespace detail {

/// The shared, immutable contents of a token_vocabulary.
struct vocab_data {
  std::string bytes;                   ///< every token's bytes, concatenated
  std::vector<std::uint32_t> offsets;  ///< token i is bytes[offsets[i], offsets[i + 1])
  std::vector<token_id> end_tokens;    ///< sorted, distinct
  std::vector<std::uint8_t> is_end;    ///< one flag per token

  // A byte trie over the tokens with bytes (end tokens excluded), nodes in preorder: node
  // 0 is the root (the empty string); node i's subtree is [i, trie_end[i]); its children
  // start at i + 1 and follow one another through trie_end; the tokens whose bytes end at
  // node i are order[trie_tok[i], trie_tok[i + 1]).
  std::vector<std::uint8_t> trie_byte;
  std::vector<std::uint32_t> trie_end;
  std::vector<std::uint32_t> trie_tok;  ///< size nodes + 1
  std::vector<token_id> order;          ///< tokens with bytes, sorted by their bytes

  [[nodiscard]] std::string_view token(std::size_t i) const noexcept {
    return std::string_view(bytes).substr(offsets[i], offsets[i + 1] - offsets[i]);
  }

  // Builds the trie from the token strings (sorted, then one pass: each string shares its
  // longest common prefix with the one before it).
  void build_trie() {
    const std::size_t n = offsets.size() - 1;
    order.clear();
    for (std::size_t i = 0; i < n; ++i)
      if (is_end[i] == 0 && offsets[i + 1] > offsets[i]) order.push_back(static_cast<token_id>(i));
    std::stable_sort(order.begin(), order.end(), [&](token_id a, token_id b) {
      return token(static_cast<std::size_t>(a)) < token(static_cast<std::size_t>(b));
    });
    trie_byte.assign(1, 0);
    trie_end.assign(1, 0);
    std::vector<std::uint32_t> count(1, 0);  // tokens ending at each node
    std::vector<std::uint32_t> path{0};      // path[d]: the open node at depth d
    std::string_view prev;
    for (const token_id t : order) {
      const std::string_view s = token(static_cast<std::size_t>(t));
      std::size_t common = 0;
      while (common < s.size() && common < prev.size() && s[common] == prev[common]) ++common;
      while (path.size() > common + 1) {  // close the previous string's nodes below it
        trie_end[path.back()] = static_cast<std::uint32_t>(trie_byte.size());
        path.pop_back();
      }
      for (std::size_t d = common; d < s.size(); ++d) {
        path.push_back(static_cast<std::uint32_t>(trie_byte.size()));
        trie_byte.push_back(static_cast<std::uint8_t>(s[d]));
        trie_end.push_back(0);
        count.push_back(0);
      }
      ++count[path.back()];
      prev = s;
    }
    while (!path.empty()) {
      trie_end[path.back()] = static_cast<std::uint32_t>(trie_byte.size());
      path.pop_back();
    }
    // Sorted strings visit the nodes in preorder, so each node's tokens are consecutive in
    // `order`, in node order.
    trie_tok.assign(trie_byte.size() + 1, 0);
    for (std::size_t i = 0; i < trie_byte.size(); ++i) trie_tok[i + 1] = trie_tok[i] + count[i];
  }
};

}  // namespace detail

/// A vocabulary as byte strings plus its end tokens: what constraints compile against.
///
/// Each token stands for the bytes it adds to the output; tokens with no bytes (control and
/// unknown tokens) are never allowed by an automaton. End tokens (end of sequence, end of
/// turn) are allowed exactly when the constraint says the output may end (`can_end()`);
/// their own bytes, if any, are ignored. Immutable; copies share the same data (cheap to
/// copy, safe to read from many threads).
class token_vocabulary {
 public:
  /// A vocabulary from each token's bytes (`token_bytes[i]` for token i) and its end tokens
  /// (duplicates ignored). Builds the byte trie that compilation walks (a sort of the
  /// strings: about 0.1 s at 151,936 tokens). Errors: `empty_input` (no tokens),
  /// `capacity_exceeded` (more than INT32_MAX tokens or 4 GiB of bytes), `invalid_token` (an
  /// end token outside the vocabulary); details in `*info`.
  [[nodiscard]] static result<token_vocabulary> from_bytes(std::vector<std::string> token_bytes,
                                                           std::vector<token_id> end_tokens,
                                                           error_info* info = nullptr) {
    const std::size_t n = token_bytes.size();
    if (n == 0) return detail::fail(info, errc::empty_input, "vocabulary without tokens");
    if (n > static_cast<std::size_t>(std::numeric_limits<token_id>::max()))
      return detail::fail(info, errc::capacity_exceeded, "%zu tokens (at most INT32_MAX)", n);
    auto d = std::make_shared<detail::vocab_data>();
    std::size_t total = 0;
    for (const std::string& s : token_bytes) total += s.size();
    if (total > std::numeric_limits<std::uint32_t>::max())
      return detail::fail(info, errc::capacity_exceeded, "%zu bytes of token text (at most 4 GiB)",
                          total);
    d->bytes.reserve(total);
    d->offsets.reserve(n + 1);
    d->offsets.push_back(0);
    for (const std::string& s : token_bytes) {
      d->bytes.append(s);
      d->offsets.push_back(static_cast<std::uint32_t>(d->bytes.size()));
    }
    d->is_end.assign(n, 0);
    for (const token_id t : end_tokens) {
      if (t < 0 || static_cast<std::size_t>(t) >= n)
        return detail::fail(info, errc::invalid_token, "end token %d outside the vocabulary of %zu",
                            static_cast<int>(t), n);
      d->is_end[static_cast<std::size_t>(t)] = 1;
    }
    for (std::size_t i = 0; i < n; ++i)
      if (d->is_end[i] != 0) d->end_tokens.push_back(static_cast<token_id>(i));
    d->build_trie();
    return token_vocabulary(std::move(d));
  }

  /// A vocabulary from a tokenizer's `token_bytes` for every id in [0, vocab_size()), with
  /// `end_tokens` (e.g. the tokenizer's end-of-sequence id). Errors: those of `token_bytes`
  /// (named with the token id in `*info`) and of `from_bytes`.
  template <ByteTokenizer T>
  [[nodiscard]] static result<token_vocabulary> from_tokenizer(const T& tokenizer,
                                                               std::span<const token_id> end_tokens,
                                                               error_info* info = nullptr) {
    const std::size_t n = static_cast<std::size_t>(tokenizer.vocab_size());
    std::vector<std::string> bytes(n);
    for (std::size_t i = 0; i < n; ++i)
      if (const errc e = tokenizer.token_bytes(static_cast<token_id>(i), bytes[i]); e != errc::ok)
        return detail::fail(info, e, "token_bytes failed for token %zu", i);
    return from_bytes(std::move(bytes), std::vector<token_id>(end_tokens.begin(), end_tokens.end()),
                      info);
  }

  /// Number of tokens; valid ids are [0, size()).
  [[nodiscard]] std::size_t size() const noexcept { return data_->offsets.size() - 1; }
  /// The bytes of token `t` (empty for tokens without bytes and for ids outside the
  /// vocabulary). The view lives as long as any copy of this vocabulary.
  [[nodiscard]] std::string_view bytes(token_id t) const noexcept {
    return contains(t) ? data_->token(static_cast<std::size_t>(t)) : std::string_view();
  }
  /// True when `t` is one of the end tokens.
  [[nodiscard]] bool is_end(token_id t) const noexcept {
    return contains(t) && data_->is_end[static_cast<std::size_t>(t)] != 0;
  }
  /// The end tokens, sorted and distinct.
  [[nodiscard]] std::span<const token_id> end_tokens() const noexcept { return data_->end_tokens; }
  /// True when `t` is in [0, size()).
  [[nodiscard]] bool contains(token_id t) const noexcept {
    return t >= 0 && static_cast<std::size_t>(t) < size();
  }

  /// The shared contents (for the constraint compilers).
  [[nodiscard]] const std::shared_ptr<const detail::vocab_data>& data() const noexcept {
    return data_;
  }

 private:
  explicit token_vocabulary(std::shared_ptr<const detail::vocab_data> d) noexcept
      : data_(std::move(d)) {}

  std::shared_ptr<const detail::vocab_data> data_;
};

}  // namespace tandem::inline v0
