// tandem: a choice among strings compiled into a constraint over a vocabulary.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "tandem/constrain/compiled.hpp"
#include "tandem/constrain/detail/dfa.hpp"
#include "tandem/constrain/vocabulary.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// Compiles "the output is exactly one of `choices`" (byte strings, compared exactly; an
/// empty string allows an empty output) against `vocab`. The automaton is the choices' trie,
/// minimised (shared suffixes merge). Errors: `empty_input` (no choices),
/// `constraint_too_large` (more than `options.max_states` states after minimisation),
/// `invalid_argument` (no choice can be spelled with this vocabulary's tokens); details in
/// `*info`.
[[nodiscard]] inline result<compiled_constraint> compile_choice(
    std::span<const std::string> choices, const token_vocabulary& vocab,
    const constraint_options& options = {}, error_info* info = nullptr) {
  if (choices.empty()) return detail::fail(info, errc::empty_input, "no choices");
  std::size_t bytes = 0;
  for (const std::string& c : choices) bytes += c.size();
  // The trie has at most one state per byte plus the root; minimisation needs it whole.
  const std::size_t room = options.max_states > SIZE_MAX / 4 ? SIZE_MAX : options.max_states * 4;
  if (bytes + 1 > room)
    return detail::fail(info, errc::constraint_too_large,
                        "%zu bytes of choices: over %zu trie states (max_states %zu)", bytes, room,
                        options.max_states);
  detail::byte_dfa dfa;
  dfa.add_state(false);
  for (const std::string& c : choices) {
    std::int32_t s = 0;
    for (const char ch : c) {
      const std::size_t at = static_cast<std::size_t>(s) * 256 + static_cast<unsigned char>(ch);
      if (dfa.next[at] < 0) {
        const std::int32_t t = dfa.add_state(false);
        dfa.next[at] = t;
      }
      s = dfa.next[at];
    }
    dfa.accepting[static_cast<std::size_t>(s)] = 1;
  }
  return detail::compile_dfa(std::move(dfa), vocab, options, info);
}

}  // namespace tandem::inline v0
