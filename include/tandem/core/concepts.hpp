// tandem: the concepts every block is written against, and detection of optional
// capabilities of a user's model type.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// A decoding session over one growing token sequence (one KV cache): it reports its
/// vocabulary size and context size, accepts tokens, and exposes next-token logits.
///
/// Contract: `append(t)` feeds `t` after the current context and returns `errc::ok`, or an
/// error (`invalid_token`, `context_overflow`, `decode_failed`, ...) leaving the context
/// as it was before the call. `logits()` is valid after a successful append of at least
/// one token and has `vocab_size()` entries; it stays valid until the next mutating call.
template <class M>
concept LanguageModel = requires(M& m, const M& cm, std::span<const token_id> t) {
  { cm.vocab_size() } -> std::convertible_to<std::size_t>;
  { cm.size() } -> std::convertible_to<std::size_t>;
  { m.append(t) } -> std::same_as<errc>;
  { cm.logits() } -> std::same_as<std::span<const float>>;
};

/// Optional capability: `rewind(n)` drops the last `n` tokens of the context. Returns
/// `rewind_out_of_range` when n > size() and `rewind_failed` when the backend cannot
/// (the context is then unchanged). After a successful rewind, `logits()` is unspecified
/// until the next append.
template <class M>
concept Rewindable = LanguageModel<M> && requires(M& m, std::size_t n) {
  { m.rewind(n) } -> std::same_as<errc>;
};

/// Optional capability: `score(t, rows)` appends `t` and writes, for every position i of
/// `t`, the next-token logits after `t[0..i]` into `rows[i * vocab_size(), ...)` in one
/// call (a batched forward pass; speculative verification uses it). `rows.size()` must
/// be `t.size() * vocab_size()` (else `size_mismatch`). On error the context is as
/// before the call.
template <class M>
concept Scoring = LanguageModel<M> &&
    requires(M& m, std::span<const token_id> t, std::span<float> rows) {
  { m.score(t, rows) } -> std::same_as<errc>;
};

/// Optional capability of a LanguageModel: score a token tree hung after the held tokens
/// in one pass, then keep one root-to-node path of it.
/// score_tree(tokens, parents, rows): node i holds tokens[i]; parents[i] == -1 makes it a
/// child of the last held token (a root), else 0 <= parents[i] < i (nodes come parents
/// first). Writes rows[i*V .. (i+1)*V), V = vocab_size(): the next-token logits after the
/// held tokens followed by the path root..i. Afterwards a tree is *pending*: size() and
/// the held tokens are unchanged. commit_tree(path): `path` lists node indices of the
/// pending tree forming a chain (path[0] a root, parents[path[j]] == path[j-1]), possibly
/// empty; the model then holds the old tokens followed by those nodes' tokens (size()
/// grows by path.size()), logits() equals row path.back() (unspecified for an empty
/// path), and the other nodes are gone (a KV-cache backend drops their cells). Any other
/// mutating call (append, score, rewind, score_tree) while a tree is pending first drops
/// it, as commit_tree({}) would.
/// Errors of score_tree (the model and any pending tree unchanged... a pending tree is
/// dropped first): size_mismatch (parents.size() != tokens.size() or rows.size() !=
/// tokens.size() * V), empty_input (no tokens), invalid_argument (a parent out of order),
/// invalid_token, context_overflow (size() + tokens.size() > context length), decode_failed.
/// Errors of commit_tree: invalid_argument (no pending tree, or `path` not a chain of it;
/// the pending tree stays pending).
template <class M>
concept TreeScoring = LanguageModel<M> &&
    requires(M& m, std::span<const token_id> tokens, std::span<const std::int32_t> parents,
             std::span<float> rows, std::span<const std::int32_t> path) {
  { m.score_tree(tokens, parents, rows) } -> std::same_as<errc>;
  { m.commit_tree(path) } -> std::same_as<errc>;
};

/// Optional capability: the maximum number of tokens the context can hold.
template <class M>
concept HasContextLength = requires(const M& cm) {
  { cm.context_length() } -> std::convertible_to<std::size_t>;
};

///@{
/// Detected capabilities as constants, for `if constexpr`: Rewindable, Scoring,
/// TreeScoring and HasContextLength.
template <class M>
inline constexpr bool can_rewind_v = Rewindable<M>;
template <class M>
inline constexpr bool can_score_v = Scoring<M>;
template <class M>
inline constexpr bool can_score_tree_v = TreeScoring<M>;
template <class M>
inline constexpr bool has_context_length_v = HasContextLength<M>;
///@}

/// Context length of `m` (a LanguageModel, or a multi-sequence model's per-sequence
/// length), or SIZE_MAX when the model does not report one.
template <class M>
[[nodiscard]] constexpr std::size_t context_length_of(const M& m) noexcept {
  if constexpr (HasContextLength<M>)
    return static_cast<std::size_t>(m.context_length());
  else
    return static_cast<std::size_t>(-1);
}

/// Text <-> token ids. `encode` and `decode` append to their output and return
/// `errc::ok` or an error (`invalid_token` for an id outside the vocabulary) leaving the
/// output as it was. `piece` appends the raw text of one token, which may be part of a
/// multi-byte UTF-8 character; streaming decoders buffer such fragments.
template <class T>
concept Tokenizer = requires(const T& t, std::string_view text, std::vector<token_id>& ids,
                             std::span<const token_id> span, std::string& out, token_id id) {
  { t.vocab_size() } -> std::convertible_to<std::size_t>;
  { t.encode(text, ids) } -> std::same_as<errc>;
  { t.decode(span, out) } -> std::same_as<errc>;
  { t.piece(id, out) } -> std::same_as<errc>;
};

/// Picks the next token from next-token logits. `sample` returns the token or an error
/// (`non_finite`, `no_candidates`, `empty_input`); `accept` records a token that became
/// part of the context (for penalties); `reset` forgets that history.
template <class S>
concept Sampler = requires(S& s, std::span<const float> logits, token_id t) {
  { s.sample(logits) } -> std::same_as<result<token_id>>;
  s.accept(t);
  s.reset();
};

}  // namespace tandem::inline v0
