// Tests of the speculative decoder with an output constraint: greedy output identical to
// constrained target-only generate(), sampled output in the constrained target distribution
// (chi-square), forced runs drafted without the drafter and counted, the policy seeing only
// the drafter's tokens, drafts cut at disallowed tokens, and no allocation per token.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative.hpp"

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "common/mock_model.hpp"
#include "common/test_constraint.hpp"
#include "speculative/chi_square.hpp"
#include "speculative/helpers.hpp"

namespace {

using tandem::completion;
using tandem::errc;
using tandem::finish_reason;
using tandem::generation_options;
using tandem::token_id;
using tandem_test::first_two_chi_square;
using tandem_test::fixed_drafter;
using tandem_test::greedy_chain;
using tandem_test::lying_drafter;
using tandem_test::mock_model;
using tandem_test::mock_options;
using tandem_test::partly_agreeing;
using tandem_test::successors;
using tandem_test::token_set_constraint;
using tandem_test::trie_constraint;

using tokens = std::vector<token_id>;

// A 16-token target (t -> 5t + 3) and a greedy model drafter over a draft model that
// disagrees with it after every third token.
struct mock_pair {
  mock_model target{mock_options{16, {}, successors(16, 5, 3)}};
  mock_model draft_model{mock_options{16, {}, partly_agreeing(successors(16, 5, 3), 3)}};
  tandem::model_drafter<mock_model> drafter{draft_model, greedy_chain()};
};

// A fixed-length policy that records what each round told it.
struct recording_policy {
  std::size_t length;
  std::vector<tandem::draft_round>* rounds;
  std::size_t next() const noexcept { return length; }
  void update(const tandem::draft_round& r) { rounds->push_back(r); }
};
static_assert(tandem::DraftLengthPolicy<recording_policy>);

// Several allowed outputs over 16 tokens, with forced runs between free choices.
std::vector<tokens> trie_outputs() {
  return {{3, 8, 13, 2, 7, 12, 1},
          {3, 8, 13, 2, 9, 9, 9, 9, 4},
          {3, 8, 5},
          {6, 11, 0, 5, 10, 15, 4, 9},
          {6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2}};
}

completion constrained_target_only(const mock_options& o, std::span<const token_id> prompt,
                                   generation_options g, tandem::constraint_ref c) {
  mock_model m(o);
  auto s = greedy_chain();
  g.constraint = c;
  completion out;
  REQUIRE(tandem::generate(m, s, prompt, g, out) == errc::ok);
  return out;
}

}  // namespace

TEST_CASE("speculative: constrained greedy output equals constrained target-only generate()",
          "[speculative][constraint]") {
  const std::size_t vocab = 16;
  const auto target_succ = successors(vocab, 5, 3);
  const std::vector<tokens> drafts = {target_succ, partly_agreeing(target_succ, 2),
                                      successors(vocab, 3, 1)};
  const std::vector<tokens> prompts = {{1}, {4, 2}, {7, 7, 7, 9}};
  const token_id stops[] = {0};
  generation_options g;
  g.max_tokens = 30;
  std::size_t compared = 0, forced_seen = 0;
  for (const bool use_trie : {true, false}) {
    for (const bool with_stop : {false, true}) {
      g.stop_tokens = with_stop ? std::span<const token_id>(stops) : std::span<const token_id>{};
      for (const auto& dsucc : drafts) {
        for (const auto& prompt : prompts) {
          const mock_options to{vocab, {}, target_succ};
          trie_constraint want_trie(vocab, trie_outputs());
          token_set_constraint want_set(vocab, {0, 1, 2, 4, 8, 9, 11, 14});
          const completion want = use_trie ? constrained_target_only(to, prompt, g, want_trie)
                                           : constrained_target_only(to, prompt, g, want_set);
          for (std::size_t len : {0u, 1u, 3u, 8u}) {
            mock_model target(to);
            mock_model draft_model(mock_options{vocab, {}, dsucc});
            tandem::model_drafter drafter(draft_model, greedy_chain());
            tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{len});
            trie_constraint trie(vocab, trie_outputs());
            token_set_constraint set(vocab, {0, 1, 2, 4, 8, 9, 11, 14});
            generation_options gc = g;
            if (use_trie)
              gc.constraint = trie;
            else
              gc.constraint = set;
            auto s = greedy_chain();
            completion got;
            REQUIRE(dec.generate(s, prompt, gc, got) == errc::ok);
            CHECK(got.tokens == want.tokens);
            CHECK(got.finish == want.finish);
            CHECK(got.forced_tokens == want.forced_tokens);
            CHECK(got.logprobs == want.logprobs);
            CHECK(gc.constraint.position() == got.tokens.size());
            forced_seen += dec.stats().forced_drafts;
            ++compared;
          }
        }
      }
    }
  }
  CHECK(compared == 2 * 2 * 3 * 3 * 4);
  CHECK(forced_seen > 0);
}

TEST_CASE(
    "speculative: a drafter that ignores the constraint has its draft cut and the output stays "
    "exact",
    "[speculative][constraint]") {
  const std::size_t vocab = 16;
  const mock_options to{vocab, {}, successors(vocab, 5, 3)};
  const tokens prompt{4, 2};
  generation_options g;
  g.max_tokens = 30;
  token_set_constraint want_set(vocab, {1, 3, 5, 7, 9, 11, 13, 15});
  const completion want = constrained_target_only(to, prompt, g, want_set);

  // Prompt lookup and a fixed proposal both propose tokens the constraint forbids.
  mock_model t1(to);
  tandem::prompt_lookup_drafter pl(vocab);
  tandem::speculative_decoder d1(t1, pl, tandem::fixed_draft{6});
  token_set_constraint c1(vocab, {1, 3, 5, 7, 9, 11, 13, 15});
  generation_options g1 = g;
  g1.constraint = c1;
  auto s = greedy_chain();
  completion got;
  REQUIRE(d1.generate(s, prompt, g1, got) == errc::ok);
  CHECK(got.tokens == want.tokens);

  mock_model t2(to);
  fixed_drafter fd{vocab, {3, 4, 5, 6}};  // 4 is not allowed: only 3 can be verified
  tandem::speculative_decoder d2(t2, fd, tandem::fixed_draft{4});
  token_set_constraint c2(vocab, {1, 3, 5, 7, 9, 11, 13, 15});
  generation_options g2 = g;
  g2.constraint = c2;
  REQUIRE(d2.generate(s, prompt, g2, got) == errc::ok);
  CHECK(got.tokens == want.tokens);
  CHECK(d2.stats().drafted == d2.stats().drafting_rounds);  // one token per drafting round
  CHECK(c2.position() == got.tokens.size());
}

TEST_CASE("speculative: a forced run is drafted without the drafter and counted",
          "[speculative][constraint]") {
  const std::size_t vocab = 16;
  const mock_options to{vocab, {}, successors(vocab, 5, 3)};
  const tokens prompt{4, 2};
  const tokens only{9, 9, 1, 14, 0, 3, 3, 3, 12, 7, 6, 5};  // against the target's wishes
  generation_options g;
  g.max_tokens = 40;

  mock_model target(to);
  fixed_drafter fd{vocab, {1, 2, 3}};
  tandem::speculative_decoder dec(target, fd, tandem::fixed_draft{3});
  trie_constraint c(vocab, {only});
  g.constraint = c;
  auto s = greedy_chain();
  completion got;
  REQUIRE(dec.generate(s, prompt, g, got) == errc::ok);
  CHECK(got.tokens == only);
  CHECK(got.finish == finish_reason::constraint_complete);
  CHECK(got.forced_tokens == only.size());
  CHECK(fd.calls == 0);
  CHECK(dec.stats().draft_calls == 0);
  CHECK(dec.stats().forced_drafts == only.size());
  CHECK(dec.stats().drafted == 0);
  CHECK(dec.stats().rounds == 1);  // one target pass verified the whole run
  CHECK(target.counters().score_calls == 1);

  // A short budget bounds the forced run like any draft.
  REQUIRE(target.rewind(target.size()) == errc::ok);
  c.reset();
  dec.reset_stats();
  g.max_tokens = 5;
  REQUIRE(dec.generate(s, prompt, g, got) == errc::ok);
  CHECK(got.tokens == tokens(only.begin(), only.begin() + 5));
  CHECK(got.finish == finish_reason::length);
  CHECK(dec.stats().forced_drafts == 4);  // the fifth token is the round's own
}

TEST_CASE("speculative: the policy sees only the drafter's tokens and forced ones are free",
          "[speculative][constraint][policy]") {
  const std::size_t vocab = 16;
  mock_pair pair;
  mock_model& target = pair.target;
  auto& drafter = pair.drafter;
  std::vector<tandem::draft_round> rounds;
  tandem::speculative_decoder dec(target, drafter, recording_policy{2, &rounds});
  // A free first token, then a forced run of six or seven tokens either way.
  trie_constraint c(vocab, {{3, 8, 13, 2, 7, 12, 1}, {6, 1, 1, 1, 1, 1, 1, 1, 2}});
  generation_options g;
  g.max_tokens = 30;
  g.constraint = c;
  auto s = greedy_chain();
  completion got;
  REQUIRE(dec.generate(s, tokens{1}, g, got) == errc::ok);
  REQUIRE(rounds.size() == dec.stats().rounds);
  std::size_t forced = 0, drafted = 0;
  for (const auto& r : rounds) {
    CHECK(r.requested <= 2);
    CHECK(r.drafted <= r.requested);
    CHECK(r.tokens.size() == r.drafted);
    CHECK(r.verdicts.size() <= r.drafted);
    CHECK(r.target_batch == r.forced + r.drafted + 1);
    forced += r.forced;
    drafted += r.drafted;
  }
  CHECK(forced == dec.stats().forced_drafts);
  CHECK(forced > 2);  // runs longer than the policy's length are drafted whole
  CHECK(drafted == dec.stats().drafted);
}

namespace {
// 5 degrees of freedom (six allowed pairs): P(chi-square > 20.52) = 0.001.
constexpr double chi_square_5_at_0_001 = 20.52;
// The constraint of the chi-square runs: the first token among {0, 2, 3}, the second among
// {1, 2}.
const tokens first_allowed = {0, 2, 3}, second_allowed = {1, 2};
}  // namespace

TEST_CASE("speculative: sampled constrained output follows the constrained target distribution",
          "[speculative][constraint][sampling]") {
  // With a masked draft model (q from the masked logits) ...
  CHECK(first_two_chi_square([](std::size_t i) { return tandem_test::sampling_model_drafter(i); },
                             10000, first_allowed, second_allowed) < chi_square_5_at_0_001);
  // ... and with one-hot drafts the constraint partly forbids.
  CHECK(first_two_chi_square(
            [](std::size_t) {
              return fixed_drafter{4, {2, 3, 0}};
            },
            10000, first_allowed, second_allowed) < chi_square_5_at_0_001);
}

TEST_CASE(
    "speculative: the constrained chi-square check detects a verifier that accepts every draft",
    "[speculative][constraint][sampling]") {
  CHECK(first_two_chi_square(
            [](std::size_t) {
              return lying_drafter{4, 3};
            },
            2000, first_allowed, second_allowed) > chi_square_5_at_0_001);
}

TEST_CASE("speculative: a constraint not at its start is refused before the target is touched",
          "[speculative][constraint]") {
  const std::size_t vocab = 16;
  mock_model target(mock_options{vocab, {}, successors(vocab, 5, 3)});
  fixed_drafter fd{vocab, {1}};
  tandem::speculative_decoder dec(target, fd, tandem::fixed_draft{2});
  trie_constraint c(vocab, trie_outputs());
  REQUIRE(c.advance(3) == errc::ok);
  generation_options g;
  g.constraint = c;
  auto s = greedy_chain();
  completion out;
  CHECK(dec.generate(s, tokens{1, 2}, g, out) == errc::invalid_argument);
  CHECK(out.error == errc::invalid_argument);
  CHECK(target.size() == 0);
  CHECK(c.position() == 1);
}

TEST_CASE("speculative: a warm constrained decoder allocates nothing per token",
          "[speculative][constraint][alloc]") {
  const std::size_t vocab = 16;
  mock_pair pair;
  mock_model& target = pair.target;
  auto& drafter = pair.drafter;
  drafter.reserve(256);
  tandem::speculative_decoder dec(target, drafter, tandem::adaptive_draft{});
  dec.reserve(256);
  auto s = greedy_chain();
  token_set_constraint c(vocab, {0, 1, 2, 4, 8, 9, 11, 14});
  generation_options g;
  g.max_tokens = 100;
  g.constraint = c;
  completion out;
  const tokens prompt = {1, 2};
  REQUIRE(dec.generate(s, prompt, g, out) == errc::ok);
  REQUIRE(target.rewind(target.size()) == errc::ok);
  c.reset();
  tandem_test::allocation_scope scope;
  REQUIRE(dec.generate(s, prompt, g, out) == errc::ok);
  CHECK(scope.allocations() == 0);
  CHECK(out.tokens.size() == 100);
}

namespace {

// A 3-token target with equal logits that scores any draft.
struct flat_target3 {
  std::size_t n = 0;
  std::vector<float> l = std::vector<float>(3, 0.0f);
  std::size_t vocab_size() const { return 3; }
  std::size_t size() const { return n; }
  errc append(std::span<const token_id> t) {
    n += t.size();
    return errc::ok;
  }
  std::span<const float> logits() const { return l; }
  errc rewind(std::size_t k) {
    if (k > n) return errc::rewind_out_of_range;
    n -= k;
    return errc::ok;
  }
  errc score(std::span<const token_id> t, std::span<float> rows) {
    if (rows.size() != t.size() * 3) return errc::size_mismatch;
    std::fill(rows.begin(), rows.end(), 0.0f);
    n += t.size();
    return errc::ok;
  }
};

// A drafter that ignores the constraint (the concept allows it): q = (0.5, 0, 0.5), and it
// draws token 0 or 2 from it.
struct unconstrained_drafter3 {
  std::uint64_t s;
  std::size_t vocab_size() const { return 3; }
  tandem::result<tandem::draft_result> draft(const tandem::draft_request& req) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    req.tokens[0] = ((s >> 33) & 1) != 0 ? 2 : 0;
    if (!req.probabilities.empty()) {
      req.probabilities[0] = 0.5f;
      req.probabilities[1] = 0.0f;
      req.probabilities[2] = 0.5f;
    }
    return tandem::draft_result{1, !req.probabilities.empty()};
  }
};

struct one_token_drafts {
  std::size_t next() const { return 1; }
  void update(const tandem::draft_round&) {}
};

}  // namespace

TEST_CASE("speculative: a draft token the constraint cuts is rejected, not replaced by a draw "
          "from the target (sampling stays exact)",
          "[speculative][constraint][exact]") {
  // Target uniform over {0, 1, 2}, constraint {0, 1}: the constrained target is (1/2, 1/2).
  // The drafter proposes 0 or 2 with q = (1/2, 0, 1/2). Drawing the token after a cut 2 from
  // p instead of the residual max(0, p - q) would give token 0 three times in four.
  const int runs = 4000;
  int count[3] = {0, 0, 0};
  for (int i = 0; i < runs; ++i) {
    flat_target3 t;
    unconstrained_drafter3 d{static_cast<std::uint64_t>(i) * 7919 + 1};
    token_set_constraint c(3, {0, 1});
    tandem::speculative_options so;
    so.seed = 1000 + static_cast<std::uint64_t>(i);
    tandem::speculative_decoder<flat_target3, unconstrained_drafter3, one_token_drafts> dec(
        t, d, one_token_drafts{}, so);
    tandem::categorical_sampler smp(1.0f, 5000 + static_cast<std::uint64_t>(i));
    generation_options g;
    g.max_tokens = 1;
    g.constraint = c;
    completion out;
    const token_id prompt[] = {0};
    REQUIRE(dec.generate(smp, prompt, g, out) == errc::ok);
    REQUIRE(out.tokens.size() == 1);
    ++count[out.tokens[0]];
  }
  CHECK(count[2] == 0);
  // Binomial(4000, 1/2): standard deviation 0.0079; the biased draw sits at 0.75.
  CHECK(std::abs(count[0] / static_cast<double>(runs) - 0.5) < 0.04);
}
