// Test helper shared by the speculative tests (decoder, drafter, draft_length): sampler
// chains and the successor tables that drive the mock models.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/catch.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/core/types.hpp"

namespace tandem_test {

using tandem::errc;
using tandem::token_id;

/// A sampler chain that picks the most likely token.
inline tandem::sampler_chain greedy_chain() {
  tandem::sampler_chain c(0);
  REQUIRE(c.add(tandem::sampling::greedy{}) == errc::ok);
  return c;
}

/// A sampler chain drawing at temperature `t` with its own rng seeded `seed`.
inline tandem::sampler_chain temperature_chain(float t, std::uint64_t seed) {
  tandem::sampler_chain c(seed);
  REQUIRE(c.add(tandem::sampling::temperature{t}) == errc::ok);
  REQUIRE(c.add(tandem::sampling::dist{}) == errc::ok);
  return c;
}

/// A successor table over `vocab` tokens: t -> (t * mul + add) % vocab.
inline std::vector<token_id> successors(std::size_t vocab, std::size_t mul, std::size_t add) {
  std::vector<token_id> s(vocab);
  for (std::size_t t = 0; t < vocab; ++t) s[t] = static_cast<token_id>((t * mul + add) % vocab);
  return s;
}

/// A draft table that agrees with `target` except where (t % every == 0).
inline std::vector<token_id> partly_agreeing(const std::vector<token_id>& target,
                                             std::size_t every) {
  std::vector<token_id> s = target;
  for (std::size_t t = 0; t < s.size(); t += every)
    s[t] = static_cast<token_id>((static_cast<std::size_t>(s[t]) + 3) % s.size());
  return s;
}

}  // namespace tandem_test
