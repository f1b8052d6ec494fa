// Contrastive and proxy-tuned models take an output constraint like any model: generate()
// with a constraint over them keeps, at every step, the best token the constraint allows
// under the combined logits (replayed step by step on a second, identical combined model).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "common/catch.hpp"
#include "common/test_constraint.hpp"
#include "contrastive/hash_model.hpp"
#include "tandem/contrastive/combined_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

namespace {

using tandem::errc;
using tandem::token_id;
using tandem_test::hash_model;
using tandem_test::hash_options;
using tandem_test::token_set_constraint;
using tandem_test::trie_constraint;

hash_options opts(std::uint64_t seed) {
  hash_options o;
  o.seed = seed;
  o.vocab = 32;
  return o;
}

// Replays `out` on `m` (fresh) with a fresh constraint `c`: every token must be the argmax of
// m's logits among the tokens c allows at that point.
template <class M, class C>
void check_constrained_argmax(M& m, C& c, std::span<const token_id> prompt,
                              const std::vector<token_id>& out) {
  REQUIRE(m.append(prompt) == errc::ok);
  for (const token_id t : out) {
    const std::span<const float> l = m.logits();
    token_id best = -1;
    float best_logit = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < l.size(); ++j) {
      const auto x = static_cast<token_id>(j);
      if (c.allows(x) && l[j] > best_logit) {
        best = x;
        best_logit = l[j];
      }
    }
    CHECK(t == best);
    REQUIRE(c.advance(t) == errc::ok);
    const token_id one[] = {t};
    REQUIRE(m.append(one) == errc::ok);
  }
}

}  // namespace

TEST_CASE("contrastive model: generate() with a constraint keeps the best allowed token",
          "[contrastive][model][constraint]") {
  tandem::contrastive_options p;
  p.alpha = 1e-30f;  // a wide plausibility head, so that it meets the allowed set
  hash_model expert(opts(1)), amateur(opts(2));
  auto cd = tandem::make_contrastive(expert, amateur, p);
  REQUIRE(cd);
  const std::vector<token_id> allowed = {2, 5, 7, 11, 13, 17, 19, 23, 29, 31};
  token_set_constraint c(32, allowed);
  tandem::greedy_sampler s;
  tandem::generation_options g;
  g.max_tokens = 30;
  g.constraint = c;
  tandem::completion out;
  const token_id prompt[] = {3, 4};
  REQUIRE(tandem::generate(*cd, s, prompt, g, out) == errc::ok);
  REQUIRE(out.tokens.size() == 30);

  hash_model expert2(opts(1)), amateur2(opts(2));
  auto replay = tandem::make_contrastive(expert2, amateur2, p);
  REQUIRE(replay);
  token_set_constraint c2(32, allowed);
  check_constrained_argmax(*replay, c2, prompt, out.tokens);
}

TEST_CASE("proxy tuning: generate() with a constraint keeps the best allowed token",
          "[contrastive][model][constraint]") {
  hash_model large(opts(1)), tuned(opts(8)), base(opts(9));
  auto pt = tandem::make_proxy_tuning(large, tuned, base);
  REQUIRE(pt);
  const std::vector<std::vector<token_id>> outputs = {
      {4, 9, 9, 9, 1}, {4, 20, 21, 22, 23, 24}, {6, 1, 2}, {30}, {12, 12}};
  trie_constraint c(32, outputs);
  tandem::greedy_sampler s;
  tandem::generation_options g;
  g.constraint = c;
  tandem::completion out;
  const token_id prompt[] = {7};
  REQUIRE(tandem::generate(*pt, s, prompt, g, out) == errc::ok);
  CHECK(out.finish == tandem::finish_reason::constraint_complete);
  CHECK(c.can_end());

  hash_model large2(opts(1)), tuned2(opts(8)), base2(opts(9));
  auto replay = tandem::make_proxy_tuning(large2, tuned2, base2);
  REQUIRE(replay);
  trie_constraint c2(32, outputs);
  check_constrained_argmax(*replay, c2, prompt, out.tokens);
}
