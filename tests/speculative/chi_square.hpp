// Test helper shared by the speculative decoder's sampling tests (decoder.cpp, constraint.cpp):
// the mock model's exact probabilities, drafters with fixed or dishonest proposals, a sampling
// model drafter, and the chi-square statistic of the first two sampled tokens against the
// target's exact (optionally constrained) joint distribution.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "common/catch.hpp"
#include "common/mock_model.hpp"
#include "common/test_constraint.hpp"
#include "speculative/helpers.hpp"
#include "tandem/core/completion.hpp"
#include "tandem/speculative.hpp"

namespace tandem_test {

/// The exact probabilities of the mock model at temperature t after (n, last); with
/// `allowed` non-empty, renormalised over those tokens (0 elsewhere).
inline std::vector<double> mock_probs(const mock_model& m, std::size_t n, token_id last, float t,
                                      const std::vector<token_id>& allowed = {}) {
  std::vector<float> l(m.vocab_size());
  m.fill(l, n, last);
  std::vector<double> p(l.size(), 0.0);
  double z = 0;
  for (std::size_t i = 0; i < l.size(); ++i) {
    if (!allowed.empty() &&
        std::find(allowed.begin(), allowed.end(), static_cast<token_id>(i)) == allowed.end())
      continue;
    z += p[i] = std::exp(static_cast<double>(l[i]) / t);
  }
  for (double& x : p) x /= z;
  return p;
}

/// A drafter that always proposes the same tokens, without probabilities (ignoring any
/// constraint), and counts its calls.
struct fixed_drafter {
  std::size_t vocab;
  std::vector<token_id> proposal;
  mutable std::size_t calls = 0;
  std::size_t vocab_size() const noexcept { return vocab; }
  tandem::result<tandem::draft_result> draft(const tandem::draft_request& r) const {
    ++calls;
    const std::size_t n = std::min(r.max_tokens, proposal.size());
    std::copy_n(proposal.begin(), n, r.tokens.begin());
    return tandem::draft_result{n, false};
  }
};
static_assert(tandem::Drafter<fixed_drafter>);

/// A drafter that proposes `token` every time and claims to have drawn it from a
/// distribution that almost never gives it (q(token) = 1e-6): verification, trusting q,
/// accepts every such draft, so the output no longer follows the target.
struct lying_drafter {
  std::size_t vocab;
  token_id token;
  std::size_t vocab_size() const noexcept { return vocab; }
  tandem::result<tandem::draft_result> draft(const tandem::draft_request& r) const {
    REQUIRE(r.probabilities.size() == r.max_tokens * vocab);
    const float rest = (1.0f - 1e-6f) / static_cast<float>(vocab - 1);
    for (std::size_t i = 0; i < r.max_tokens; ++i) {
      r.tokens[i] = token;
      for (std::size_t j = 0; j < vocab; ++j)
        r.probabilities[i * vocab + j] = j == static_cast<std::size_t>(token) ? 1e-6f : rest;
    }
    return tandem::draft_result{r.max_tokens, true};
  }
};

/// A model_drafter over a 4-token mock that favours another successor than the chi-square
/// target (t -> t + 2), sampling at the target's temperature 2 with its own seed.
struct sampling_model_drafter {
  mock_model model;
  tandem::model_drafter<mock_model> drafter;
  explicit sampling_model_drafter(std::size_t seed)
      : model(mock_options{4, {}, successors(4, 1, 2)}),
        drafter(model, temperature_chain(2.0f, 99 + seed)) {}
  std::size_t vocab_size() const { return drafter.vocab_size(); }
  tandem::result<tandem::draft_result> draft(const tandem::draft_request& r) {
    return drafter.draft(r);
  }
};

/// Chi-square statistic of the first two tokens' joint counts, over `runs` speculative
/// generations (draft-length policy `policy`, by default fixed length 3, drafters from
/// `make_drafter(run)`) against the 4-token
/// target's exact joint distribution at temperature 2. With `first` and `second` non-empty,
/// each run is constrained to those first and second tokens (a trie over the pairs) and the
/// expected distribution is the constrained one; a pair the constraint forbids is never
/// expected, and seeing one gives +Inf.
template <class MakeDrafter, class Policy = tandem::fixed_draft>
double first_two_chi_square(MakeDrafter make_drafter, std::size_t runs,
                            const std::vector<token_id>& first = {},
                            const std::vector<token_id>& second = {},
                            Policy policy = tandem::fixed_draft{3}) {
  const std::size_t vocab = 4;
  const float temp = 2.0f;
  const mock_options to{vocab, {}, successors(vocab, 1, 1)};
  const std::vector<token_id> prompt = {0, 1};
  std::vector<std::vector<token_id>> pairs;
  for (const token_id a : first)
    for (const token_id b : second) pairs.push_back({a, b});
  mock_model ref(to);
  const auto p1 = mock_probs(ref, prompt.size(), prompt.back(), temp, first);
  std::vector<double> expected(vocab * vocab);
  for (std::size_t a = 0; a < vocab; ++a) {
    const auto p2 = mock_probs(ref, prompt.size() + 1, static_cast<token_id>(a), temp, second);
    for (std::size_t b = 0; b < vocab; ++b)
      expected[a * vocab + b] = p1[a] * p2[b] * static_cast<double>(runs);
  }
  std::vector<double> seen(vocab * vocab, 0.0);
  for (std::size_t i = 0; i < runs; ++i) {
    mock_model target(to);
    auto drafter = make_drafter(i);
    tandem::speculative_decoder dec(target, drafter, policy, tandem::speculative_options{1000 + i});
    trie_constraint c(vocab, pairs);
    tandem::generation_options g;
    g.max_tokens = 2;
    if (!pairs.empty()) g.constraint = c;
    auto s = temperature_chain(temp, 7 * i + 1);
    tandem::completion out;
    REQUIRE(dec.generate(s, prompt, g, out) == errc::ok);
    REQUIRE(out.tokens.size() == 2);
    seen[static_cast<std::size_t>(out.tokens[0]) * vocab +
         static_cast<std::size_t>(out.tokens[1])] += 1;
  }
  double chi = 0;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (expected[i] == 0.0) {
      if (seen[i] > 0) return std::numeric_limits<double>::infinity();
      continue;
    }
    chi += (seen[i] - expected[i]) * (seen[i] - expected[i]) / expected[i];
  }
  return chi;
}

}  // namespace tandem_test
