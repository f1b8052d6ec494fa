// tandem: a regular expression (tandem's dialect, docs/constraints.md) compiled into a
// constraint over a vocabulary.
#pragma once

#include <cstddef>
#include <string_view>

#include "tandem/constrain/compiled.hpp"
#include "tandem/constrain/detail/regex_parser.hpp"
#include "tandem/constrain/vocabulary.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// Compiles `pattern` (tandem's regex dialect: the whole output must match; see
/// docs/constraints.md) against `vocab`: parse, Thompson NFA over UTF-8 bytes, subset
/// construction, minimisation, then the token index (one walk of the vocabulary's byte trie
/// per automaton state).
///
/// Errors (details and the 1-based column of the pattern in `*info`): `parse_error`
/// (syntax), `unsupported` (a feature outside the dialect: backreferences, lookaround,
/// named groups, `\b`, possessive quantifiers, flags, anchors inside the pattern),
/// `constraint_too_large` (a repetition count over `options.max_repeat`, or more automaton
/// states than `options.max_nfa_states` / `options.max_states`), `invalid_argument` (the
/// pattern matches nothing, or nothing this vocabulary's tokens can spell).
[[nodiscard]] inline result<compiled_constraint> compile_regex(
    std::string_view pattern, const token_vocabulary& vocab, const constraint_options& options = {},
    error_info* info = nullptr) {
  detail::re_parser parser(pattern, options.max_repeat, info);
  const std::int32_t root = parser.parse();
  if (root < 0) return parser.error();
  detail::byte_nfa nfa;
  nfa.limit = options.max_nfa_states;
  const auto [start, end] = detail::emit_nfa(parser.nodes(), root, nfa);
  if (nfa.too_large)
    return detail::fail(info, errc::constraint_too_large,
                        "the pattern's automaton exceeds max_nfa_states %zu",
                        options.max_nfa_states);
  detail::byte_dfa dfa;
  // Minimisation often shrinks the subset automaton a lot; allow it room first.
  const std::size_t room = options.max_states > SIZE_MAX / 4 ? SIZE_MAX : options.max_states * 4;
  if (!detail::nfa_to_dfa(nfa, start, end, room, dfa))
    return detail::fail(info, errc::constraint_too_large,
                        "over %zu automaton states before minimisation (max_states %zu)", room,
                        options.max_states);
  return detail::compile_dfa(std::move(dfa), vocab, options, info);
}

}  // namespace tandem::inline v0
