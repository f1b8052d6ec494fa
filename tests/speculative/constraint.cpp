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
#include "speculative/helpers.hpp"

namespace {

using tandem::completion;
using tandem::errc;
using tandem::finish_reason;
using tandem::generation_options;
using tandem::token_id;
using tandem_test::greedy_chain;
using tandem_test::mock_model;
using tandem_test::mock_options;
using tandem_test::partly_agreeing;
using tandem_test::successors;
using tandem_test::temperature_chain;
using tandem_test::token_set_constraint;
using tandem_test::trie_constraint;

using tokens = std::vector<token_id>;

// Proposes the same tokens every time, without probabilities, ignoring the constraint; counts
// its calls.
struct fixed_drafter {
  std::size_t vocab;
  tokens proposal;
  std::size_t calls = 0;
  std::size_t vocab_size() const noexcept { return vocab; }
  tandem::result<tandem::draft_result> draft(const tandem::draft_request& r) {
    ++calls;
    const std::size_t n = std::min(r.max_tokens, proposal.size());
    std::copy_n(proposal.begin(), n, r.tokens.begin());
    return tandem::draft_result{n, false};
  }
};
static_assert(tandem::Drafter<fixed_drafter>);

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
  const auto succ = successors(vocab, 5, 3);
  mock_model target(mock_options{vocab, {}, succ});
  mock_model dm(mock_options{vocab, {}, partly_agreeing(succ, 3)});
  tandem::model_drafter drafter(dm, greedy_chain());
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

// Chi-square of the first two tokens' joint counts against the constrained target's exact
// joint distribution: the first token among {0, 2, 3}, the second among {1, 2} (a trie over
// those six outputs). Cells the constraint forbids must never be seen (returns +Inf if one is).
template <class MakeDrafter>
double constrained_chi_square(MakeDrafter make_drafter, std::size_t runs) {
  const std::size_t vocab = 4;
  const float temp = 2.0f;
  const mock_options to{vocab, {}, successors(vocab, 1, 1)};
  const tokens prompt = {0, 1};
  const tokens first = {0, 2, 3}, second = {1, 2};
  std::vector<tokens> outputs;
  for (const token_id a : first)
    for (const token_id b : second) outputs.push_back({a, b});
  mock_model ref(to);
  auto masked_probs = [&](std::size_t n, token_id last, const tokens& allowed) {
    std::vector<float> l(vocab);
    ref.fill(l, n, last);
    std::vector<double> p(vocab, 0.0);
    double z = 0;
    for (const token_id t : allowed)
      z += p[static_cast<std::size_t>(t)] = std::exp(static_cast<double>(l[t]) / temp);
    for (double& x : p) x /= z;
    return p;
  };
  const auto p1 = masked_probs(prompt.size(), prompt.back(), first);
  std::vector<double> expected(vocab * vocab, 0.0);
  for (std::size_t a = 0; a < vocab; ++a) {
    const auto p2 = masked_probs(prompt.size() + 1, static_cast<token_id>(a), second);
    for (std::size_t b = 0; b < vocab; ++b)
      expected[a * vocab + b] = p1[a] * p2[b] * static_cast<double>(runs);
  }
  std::vector<double> seen(vocab * vocab, 0.0);
  generation_options g;
  g.max_tokens = 2;
  for (std::size_t i = 0; i < runs; ++i) {
    mock_model target(to);
    auto drafter = make_drafter(i);
    tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{3},
                                    tandem::speculative_options{1000 + i});
    trie_constraint c(vocab, outputs);
    g.constraint = c;
    auto s = temperature_chain(temp, 7 * i + 1);
    completion out;
    REQUIRE(dec.generate(s, prompt, g, out) == errc::ok);
    REQUIRE(out.tokens.size() == 2);
    seen[static_cast<std::size_t>(out.tokens[0]) * vocab +
         static_cast<std::size_t>(out.tokens[1])] += 1;
  }
  double chi = 0;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (expected[i] == 0.0) {
      if (seen[i] > 0) return INFINITY;
      continue;
    }
    chi += (seen[i] - expected[i]) * (seen[i] - expected[i]) / expected[i];
  }
  return chi;
}

// 5 degrees of freedom (six allowed cells): P(chi-square > 20.52) = 0.001.
constexpr double chi_square_5_at_0_001 = 20.52;

// A model_drafter over a draft model favouring another successor, sampling like the target.
struct model_drafter_holder {
  mock_model model;
  tandem::model_drafter<mock_model> drafter;
  explicit model_drafter_holder(std::size_t i)
      : model(mock_options{4, {}, successors(4, 1, 2)}),
        drafter(model, temperature_chain(2.0f, 99 + i)) {}
  std::size_t vocab_size() const { return drafter.vocab_size(); }
  tandem::result<tandem::draft_result> draft(const tandem::draft_request& r) {
    return drafter.draft(r);
  }
};

}  // namespace

TEST_CASE("speculative: sampled constrained output follows the constrained target distribution",
          "[speculative][constraint][sampling]") {
  // With a masked draft model (q from the masked logits) ...
  CHECK(constrained_chi_square([](std::size_t i) { return model_drafter_holder(i); }, 10000) <
        chi_square_5_at_0_001);
  // ... and with one-hot drafts the constraint partly forbids.
  CHECK(constrained_chi_square(
            [](std::size_t) {
              return fixed_drafter{4, {2, 3, 0}};
            },
            10000) < chi_square_5_at_0_001);
}

// Proposes `token` claiming q(token) = 1e-6, so verification accepts it every time: the
// output no longer follows the target.
struct lying_drafter {
  std::size_t vocab;
  token_id token;
  std::size_t vocab_size() const noexcept { return vocab; }
  tandem::result<tandem::draft_result> draft(const tandem::draft_request& r) const {
    const float rest = (1.0f - 1e-6f) / static_cast<float>(vocab - 1);
    for (std::size_t i = 0; i < r.max_tokens; ++i) {
      r.tokens[i] = token;
      for (std::size_t j = 0; j < vocab; ++j)
        r.probabilities[i * vocab + j] = j == static_cast<std::size_t>(token) ? 1e-6f : rest;
    }
    return tandem::draft_result{r.max_tokens, true};
  }
};

TEST_CASE(
    "speculative: the constrained chi-square check detects a verifier that accepts every draft",
    "[speculative][constraint][sampling]") {
  CHECK(constrained_chi_square(
            [](std::size_t) {
              return lying_drafter{4, 3};
            },
            2000) > chi_square_5_at_0_001);
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
  const auto succ = successors(vocab, 5, 3);
  mock_model target(mock_options{vocab, {}, succ});
  mock_model dm(mock_options{vocab, {}, partly_agreeing(succ, 3)});
  tandem::model_drafter drafter(dm, greedy_chain());
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
