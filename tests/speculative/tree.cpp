// Tests of token-tree speculation (tandem/speculative/tree.hpp): the TreeScoring contract on
// the n-gram model and on the several-pass fallback, greedy output equal to target-only
// greedy decoding for several tree shapes, sampled output following the target's
// distribution (chi-square, and exact enumeration of one node's verification), the theory's
// expected accepted length, the cost model's degenerate choices, and allocation.
#include "tandem/speculative/tree.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "common/mock_model.hpp"
#include "speculative/chi_square.hpp"
#include "speculative/helpers.hpp"
#include "speculative/tree_reference.hpp"
#include "tandem/backends/ngram_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

namespace {

using tandem::completion;
using tandem::errc;
using tandem::generation_options;
using tandem::token_id;
using tandem_test::greedy_chain;
using tandem_test::mock_model;
using tandem_test::mock_options;
using tandem_test::partly_agreeing;
using tandem_test::successors;
using tandem_test::temperature_chain;

// An n-gram model of `order` over `vocab` tokens trained on `sentences` pseudo-random
// sentences (seeded), whose tokens mostly follow t -> (3 t + 1) % vocab.
tandem::ngram_model train_ngram(std::size_t order, std::size_t vocab, std::size_t sentences,
                                std::uint32_t seed) {
  auto b = tandem::ngram_builder::create({.order = order, .vocab_size = vocab});
  REQUIRE(b);
  std::mt19937 g(seed);
  for (std::size_t s = 0; s < sentences; ++s) {
    std::vector<token_id> sent;
    token_id t = static_cast<token_id>(g() % vocab);
    for (std::size_t i = 0; i < 12; ++i) {
      sent.push_back(t);
      t = g() % 4 == 0 ? static_cast<token_id>(g() % vocab)
                       : static_cast<token_id>((3 * static_cast<std::size_t>(t) + 1) % vocab);
    }
    REQUIRE(b->add_sentence(sent) == errc::ok);
  }
  auto m = b->build();
  REQUIRE(m);
  return std::move(*m);
}

// A tree in the parents-first form: tokens and parents.
struct small_tree {
  std::vector<token_id> tokens;
  std::vector<std::int32_t> parents;
};

// A random tree of n nodes over `vocab` tokens.
small_tree random_tree(std::size_t n, std::size_t vocab, std::mt19937& g) {
  small_tree t;
  for (std::size_t i = 0; i < n; ++i) {
    t.tokens.push_back(static_cast<token_id>(g() % vocab));
    t.parents.push_back(i == 0 ? -1 : static_cast<std::int32_t>(g() % (i + 1)) - 1);
  }
  return t;
}

// The path root..i of tree t, as tokens.
std::vector<token_id> path_tokens(const small_tree& t, std::size_t i) {
  std::vector<token_id> p;
  for (std::int32_t j = static_cast<std::int32_t>(i); j >= 0;
       j = t.parents[static_cast<std::size_t>(j)])
    p.insert(p.begin(), t.tokens[static_cast<std::size_t>(j)]);
  return p;
}

// Checks the TreeScoring contract on model `m` (holding `held` tokens) against a fresh
// pathwise reference `ref` (a Rewindable + Scoring model of the same kind fed the same).
template <class M, class Ref>
void check_tree_contract(M& m, Ref& ref, std::size_t vocab) {
  std::mt19937 g(5);
  const std::size_t held = m.size();
  for (int trial = 0; trial < 5; ++trial) {
    const small_tree t = random_tree(3 + static_cast<std::size_t>(trial) * 2, vocab, g);
    const std::size_t n = t.tokens.size();
    std::vector<float> rows(n * vocab);
    REQUIRE(m.score_tree(t.tokens, t.parents, rows) == errc::ok);
    CHECK(m.size() == held);
    for (std::size_t i = 0; i < n; ++i) {
      const auto p = path_tokens(t, i);
      REQUIRE(ref.append(p) == errc::ok);
      const auto want = ref.logits();
      for (std::size_t j = 0; j < vocab; ++j) CHECK(rows[i * vocab + j] == want[j]);
      REQUIRE(ref.rewind(p.size()) == errc::ok);
    }
    // A path that is not a chain is refused and the tree stays pending.
    std::size_t leaf = n - 1;
    std::vector<std::int32_t> path;
    for (std::int32_t j = static_cast<std::int32_t>(leaf); j >= 0;
         j = t.parents[static_cast<std::size_t>(j)])
      path.insert(path.begin(), j);
    if (path.size() > 1) {
      std::vector<std::int32_t> bad(path.rbegin(), path.rend());
      CHECK(m.commit_tree(bad) == errc::invalid_argument);
    }
    const std::vector<std::int32_t> out_of_range = {static_cast<std::int32_t>(n)};
    CHECK(m.commit_tree(out_of_range) == errc::invalid_argument);
    REQUIRE(m.commit_tree(path) == errc::ok);
    CHECK(m.size() == held + path.size());
    for (std::size_t j = 0; j < vocab; ++j) CHECK(m.logits()[j] == rows[leaf * vocab + j]);
    CHECK(m.commit_tree(path) == errc::invalid_argument);  // nothing pending any more
    REQUIRE(m.rewind(path.size()) == errc::ok);
  }
  // Errors leave the model as it was and nothing pending.
  const std::vector<token_id> tok = {1, 2};
  const std::vector<std::int32_t> par = {-1, 0}, bad_par = {-1, 1}, short_par = {-1};
  std::vector<float> rows(2 * vocab), short_rows(vocab);
  CHECK(m.score_tree(tok, short_par, rows) == errc::size_mismatch);
  CHECK(m.score_tree(tok, par, short_rows) == errc::size_mismatch);
  CHECK(m.score_tree({}, {}, {}) == errc::empty_input);
  CHECK(m.score_tree(tok, bad_par, rows) == errc::invalid_argument);
  const std::vector<token_id> bad_tok = {1, static_cast<token_id>(vocab)};
  CHECK(m.score_tree(bad_tok, par, rows) == errc::invalid_token);
  CHECK(m.size() == held);
  const std::vector<std::int32_t> root = {0};
  CHECK(m.commit_tree(root) == errc::invalid_argument);
  // Another mutating call drops a pending tree.
  REQUIRE(m.score_tree(tok, par, rows) == errc::ok);
  REQUIRE(m.append(tok) == errc::ok);
  CHECK(m.commit_tree(root) == errc::invalid_argument);
  CHECK(m.size() == held + 2);
  REQUIRE(m.rewind(2) == errc::ok);
}

TEST_CASE("tree: the n-gram session scores a tree as each path scored alone", "[tree]") {
  const auto model = train_ngram(3, 12, 40, 1);
  tandem::ngram_session s(model), ref(model);
  const std::vector<token_id> prompt = {1, 4, 2};
  REQUIRE(s.append(prompt) == errc::ok);
  REQUIRE(ref.append(prompt) == errc::ok);
  check_tree_contract(s, ref, model.vocab_size());
}

TEST_CASE("tree: a tree that overflows the n-gram context is refused", "[tree]") {
  const auto model = train_ngram(2, 8, 10, 2);
  tandem::ngram_session s(model, 4);
  const std::vector<token_id> prompt = {1, 2, 3};
  REQUIRE(s.append(prompt) == errc::ok);
  const std::vector<token_id> tok = {1, 2};
  const std::vector<std::int32_t> par = {-1, -1};
  std::vector<float> rows(2 * model.vocab_size());
  CHECK(s.score_tree(tok, par, rows) == errc::context_overflow);
  CHECK(s.size() == 3);
}

TEST_CASE("tree: the fallback adapter scores a tree as each path scored alone", "[tree]") {
  const std::size_t vocab = 9;
  mock_model m(mock_options{vocab, {}, successors(vocab, 2, 5)});
  mock_model ref(mock_options{vocab, {}, successors(vocab, 2, 5)});
  const std::vector<token_id> prompt = {3, 1};
  REQUIRE(m.append(prompt) == errc::ok);
  REQUIRE(ref.append(prompt) == errc::ok);
  tandem::tree_scoring_adapter a(m);
  static_assert(tandem::TreeScoring<decltype(a)>);
  check_tree_contract(a, ref, vocab);

  const auto model = train_ngram(3, 12, 40, 3);
  tandem::ngram_session s(model), sref(model);
  REQUIRE(s.append(prompt) == errc::ok);
  REQUIRE(sref.append(prompt) == errc::ok);
  tandem::tree_scoring_adapter sa(s);
  check_tree_contract(sa, sref, model.vocab_size());
}

TEST_CASE("tree: a target error in the fallback leaves the model as it was", "[tree]") {
  const std::size_t vocab = 6;
  mock_options o{vocab, {}, {}};
  o.context_length = 5;
  mock_model m(o);
  const std::vector<token_id> prompt = {1, 2, 3};
  REQUIRE(m.append(prompt) == errc::ok);
  tandem::tree_scoring_adapter a(m);
  const std::vector<token_id> tok = {1, 2, 3};
  const std::vector<std::int32_t> par = {-1, 0, 1};
  std::vector<float> rows(3 * vocab);
  CHECK(a.score_tree(tok, par, rows) == errc::context_overflow);
  CHECK(m.size() == 3);
  CHECK(m.tokens()[2] == 3);
}

// Target-only greedy output of `target_opts` after `prompt`.
std::vector<token_id> target_greedy(const mock_options& target_opts,
                                    const std::vector<token_id>& prompt, std::size_t n) {
  mock_model t(target_opts);
  auto s = greedy_chain();
  generation_options g;
  g.max_tokens = n;
  completion c;
  REQUIRE(tandem::generate(t, s, prompt, g, c) == errc::ok);
  return c.tokens;
}

// The mock target most tests use (vocab 16, t -> 5 t + 3) and its prompt.
struct mock_setup {
  static constexpr std::size_t vocab = 16;
  std::vector<token_id> succ = successors(vocab, 5, 3);
  mock_options to{vocab, {}, succ};
  std::vector<token_id> prompt = {1, 2};
};

TEST_CASE("tree: greedy output equals target-only greedy for every tree shape", "[tree]") {
  const mock_setup m;
  const std::size_t vocab = m.vocab;
  const auto& succ = m.succ;
  const auto& to = m.to;
  const auto& prompt = m.prompt;
  const auto want = target_greedy(to, prompt, 60);
  const tandem::fixed_tree shapes[] = {
      {1, 1, 1, 1}, {6, 6, 1, 1}, {8, 3, 3, 3}, {24, 6, 4, 4}, {64, 16, 8, 8}};
  for (const std::size_t every : {2u, 3u, 7u}) {
    for (const auto& shape : shapes) {
      for (const bool sampled : {false, true}) {
        mock_model target(to);
        mock_model dm(mock_options{vocab, {}, partly_agreeing(succ, every)});
        tandem::tree_speculative_decoder dec(
            target, dm, shape, tandem::tree_options{.seed = 3, .sample_children = sampled});
        auto s = greedy_chain();
        generation_options g;
        g.max_tokens = 60;
        completion c;
        REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
        CHECK(c.tokens == want);
        CHECK(target.size() == prompt.size() + want.size() - 1);
        if (shape.nodes > 1) CHECK(dec.stats().accepted > 0);
        CHECK(dec.stats().generated == want.size());
      }
    }
  }
}

// Greedy generation of `n` tokens after `prompt` with decoder `dec`, which must succeed.
template <class Dec>
completion greedy_run(Dec& dec, const std::vector<token_id>& prompt, std::size_t n) {
  auto s = greedy_chain();
  generation_options g;
  g.max_tokens = n;
  completion c;
  REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
  return c;
}

// A policy with a fixed plan of `children` children per node (out of range on purpose)
// that records the highest sibling rank it was told about.
struct wide_policy {
  std::size_t children = 16;
  std::size_t top_rank = 0;
  tandem::tree_plan plan() const noexcept { return {16, 4, children, 4, 0.0, false}; }
  double acceptance(std::size_t, std::size_t, double q) const noexcept { return q; }
  std::size_t choose(std::span<const double> v, std::size_t) noexcept { return v.size(); }
  void update(const tandem::tree_round& r) noexcept {
    for (const std::uint8_t k : r.rank) top_rank = std::max<std::size_t>(top_rank, k);
  }
};

TEST_CASE("tree: a plan with too many or no children per node is clamped to the buffers",
          "[tree]") {
  const mock_setup m;
  const auto want = target_greedy(m.to, m.prompt, 30);
  for (const std::size_t children : {std::size_t{0}, std::size_t{16}, std::size_t{1000}}) {
    mock_model target(m.to);
    mock_model dm(mock_options{m.vocab, {}, partly_agreeing(m.succ, 3)});
    tandem::tree_speculative_decoder<mock_model, mock_model, wide_policy> dec(
        target, dm, wide_policy{children});
    const completion c = greedy_run(dec, m.prompt, 30);
    CHECK(c.tokens == want);
    CHECK(dec.policy().top_rank < tandem::max_tree_children);
    CHECK(dec.stats().drafted > 0);
  }
}

// A tree-scoring mock whose tree pass takes at most `cap` nodes (as llama_session's
// batch_size), refusing more with capacity_exceeded; records the largest pass.
struct capped_model {
  explicit capped_model(const mock_options& o, std::size_t c) : m(o), cap(c) {}
  mock_model m;
  tandem::tree_scoring_adapter<mock_model> a{m};
  std::size_t cap = 0, largest = 0;
  std::size_t max_tree_nodes() const noexcept { return cap; }
  std::size_t vocab_size() const noexcept { return m.vocab_size(); }
  std::size_t size() const noexcept { return m.size(); }
  std::size_t context_length() const noexcept { return m.context_length(); }
  std::span<const float> logits() const noexcept { return m.logits(); }
  errc append(std::span<const token_id> t) { return a.append(t); }
  errc rewind(std::size_t n) { return a.rewind(n); }
  errc score(std::span<const token_id> t, std::span<float> r) { return a.score(t, r); }
  errc score_tree(std::span<const token_id> t, std::span<const std::int32_t> p,
                  std::span<float> r) {
    largest = std::max(largest, t.size());
    if (t.size() > cap) return errc::capacity_exceeded;
    return a.score_tree(t, p, r);
  }
  errc commit_tree(std::span<const std::int32_t> path) { return a.commit_tree(path); }
};

TEST_CASE("tree: the tree stays within the models' max_tree_nodes", "[tree]") {
  const mock_setup m;
  const auto want = target_greedy(m.to, m.prompt, 40);
  for (const bool sampled : {false, true}) {
    capped_model target(m.to, 6);
    capped_model dm(mock_options{m.vocab, {}, partly_agreeing(m.succ, 5)}, 3);
    static_assert(tandem::TreeScoring<capped_model>);
    tandem::tree_speculative_decoder dec(target, dm, tandem::fixed_tree{24, 6, 4, 4},
                                         tandem::tree_options{.sample_children = sampled});
    const completion c = greedy_run(dec, m.prompt, 40);
    CHECK(c.tokens == want);
    CHECK(target.largest == 6);
    CHECK(dm.largest <= 3);
    CHECK(dm.largest > 0);
    CHECK(dec.stats().max_tree == 5);
  }
}

// A mock draft whose rewind fails on the `fail_in`-th call from now (0: the next; -1:
// never), leaving its tokens as they were.
struct flaky_draft {
  mock_model m;
  int fail_in = -1;
  std::size_t vocab_size() const noexcept { return m.vocab_size(); }
  std::size_t size() const noexcept { return m.size(); }
  std::size_t context_length() const noexcept { return m.context_length(); }
  std::span<const float> logits() const noexcept { return m.logits(); }
  errc append(std::span<const token_id> t) { return m.append(t); }
  errc score(std::span<const token_id> t, std::span<float> r) { return m.score(t, r); }
  errc rewind(std::size_t n) {
    if (fail_in >= 0 && fail_in-- == 0) return errc::rewind_failed;
    return m.rewind(n);
  }
};

TEST_CASE("tree: after a failed draft rewind the next generation resyncs the draft", "[tree]") {
  const mock_setup m;
  const auto want = target_greedy(m.to, m.prompt, 20);
  for (const int fail_in : {0, 1, 2}) {
    mock_model target(m.to);
    flaky_draft draft{mock_model(mock_options{m.vocab, {}, partly_agreeing(m.succ, 4)})};
    tandem::tree_speculative_decoder dec(target, draft, tandem::fixed_tree{8, 3, 2, 2});
    (void)greedy_run(dec, m.prompt, 20);
    const std::size_t after_first = draft.size();
    REQUIRE(target.rewind(target.size()) == errc::ok);
    draft.fail_in = fail_in;
    auto s = greedy_chain();
    generation_options g;
    g.max_tokens = 20;
    completion c2;
    (void)dec.generate(s, m.prompt, g, c2);  // fails or not, depending on where
    REQUIRE(target.rewind(target.size()) == errc::ok);
    const completion c3 = greedy_run(dec, m.prompt, 20);
    CHECK(c3.tokens == want);
    // The draft holds the history as after the first generation, not old tokens beneath it.
    CHECK(draft.size() <= m.prompt.size() + c3.tokens.size());
    CHECK(draft.size() == after_first);
  }
}

TEST_CASE("tree: greedy output on an n-gram pair equals target-only greedy", "[tree]") {
  const std::size_t vocab = 24;
  const auto tm = train_ngram(3, vocab, 200, 11);
  const auto dmodel = train_ngram(2, vocab, 30, 12);
  const std::vector<token_id> prompt = {5, 16};
  tandem::ngram_session ref(tm);
  auto s0 = greedy_chain();
  generation_options g;
  g.max_tokens = 80;
  completion want;
  REQUIRE(tandem::generate(ref, s0, prompt, g, want) == errc::ok);
  for (const tandem::fixed_tree shape :
       {tandem::fixed_tree{4, 4, 1, 1}, tandem::fixed_tree{16, 5, 4, 4}}) {
    tandem::ngram_session target(tm), draft(dmodel);
    tandem::tree_speculative_decoder dec(target, draft, shape);
    auto s = greedy_chain();
    completion c;
    REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
    CHECK(c.tokens == want.tokens);
    CHECK(dec.stats().accepted > 0);
  }
  // With the cost model (it may settle anywhere from no speculation to a bushy tree).
  tandem::ngram_session target(tm), draft(dmodel);
  tandem::tree_speculative_decoder dec(target, draft);
  auto s = greedy_chain();
  completion c;
  REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
  CHECK(c.tokens == want.tokens);
}

TEST_CASE("tree: stop tokens and the token budget end a tree round mid-path", "[tree]") {
  const mock_setup m;
  const auto& to = m.to;
  const auto& prompt = m.prompt;
  const auto full = target_greedy(to, prompt, 30);
  for (std::size_t n : {1u, 2u, 5u, 13u}) {
    mock_model target(to), dm(to);  // the draft agrees: whole paths are accepted
    tandem::tree_speculative_decoder dec(target, dm, tandem::fixed_tree{12, 8, 2, 2});
    auto s = greedy_chain();
    generation_options g;
    g.max_tokens = n;
    completion c;
    REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
    CHECK(c.finish == tandem::finish_reason::length);
    CHECK(c.tokens ==
          std::vector<token_id>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
    CHECK(target.size() == prompt.size() + n - 1);
  }
  mock_model target(to), dm(to);
  tandem::tree_speculative_decoder dec(target, dm, tandem::fixed_tree{12, 8, 2, 2});
  auto s = greedy_chain();
  generation_options g;
  g.max_tokens = 30;
  const std::vector<token_id> stops = {full[6]};
  g.stop_tokens = stops;
  completion c;
  REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
  CHECK(c.finish == tandem::finish_reason::stop_token);
  CHECK(c.tokens == std::vector<token_id>(full.begin(), full.begin() + 6));
  CHECK(target.size() == prompt.size() + 6 - 1);
}

TEST_CASE(
    "tree: a constraint is refused as unsupported, a draft of another vocabulary as a mismatch",
    "[tree]") {
  mock_model target(mock_options{8}), dm(mock_options{8}), other(mock_options{9});
  auto s = greedy_chain();
  const std::vector<token_id> prompt = {1};
  tandem_test::trie_constraint con(8, {{1, 2}});
  generation_options g;
  g.constraint = con;
  completion c;
  tandem::tree_speculative_decoder dec(target, dm);
  CHECK(dec.generate(s, prompt, g, c) == errc::unsupported);
  CHECK(dec.last_error().code == errc::unsupported);
  CHECK(target.size() == 0);
  tandem::tree_speculative_decoder dec2(target, other);
  CHECK(dec2.generate(s, prompt, generation_options{}, c) == errc::vocab_mismatch);
  CHECK(c.finish == tandem::finish_reason::error);
}

// Chi-square statistic of the first two tokens over `runs` tree generations (vocab 4, the
// target t -> t + 1, the draft t -> t + `draft_add`, both at temperature 2) against the
// target's exact joint distribution.
template <class Policy>
double tree_chi_square(const Policy& shape, bool sampled, std::size_t runs, std::size_t draft_add) {
  const std::size_t vocab = 4;
  const float temp = 2.0f;
  const mock_options to{vocab, {}, successors(vocab, 1, 1)};
  const mock_options dopt{vocab, {}, successors(vocab, 1, draft_add)};
  const std::vector<token_id> prompt = {0, 1};
  mock_model ref(to);
  const auto p1 = tandem_test::mock_probs(ref, prompt.size(), prompt.back(), temp);
  std::vector<double> expected(vocab * vocab);
  for (std::size_t a = 0; a < vocab; ++a) {
    const auto p2 = tandem_test::mock_probs(ref, prompt.size() + 1, static_cast<token_id>(a), temp);
    for (std::size_t b = 0; b < vocab; ++b)
      expected[a * vocab + b] = p1[a] * p2[b] * static_cast<double>(runs);
  }
  std::vector<double> seen(vocab * vocab, 0.0);
  mock_model target(to), dm(dopt);
  tandem::tree_speculative_decoder dec(
      target, dm, shape,
      tandem::tree_options{.seed = 17, .sample_children = sampled, .draft_temperature = temp});
  auto s = temperature_chain(temp, 5);
  for (std::size_t i = 0; i < runs; ++i) {
    REQUIRE(target.rewind(target.size()) == errc::ok);
    generation_options g;
    g.max_tokens = 2;
    completion out;
    REQUIRE(dec.generate(s, prompt, g, out) == errc::ok);
    REQUIRE(out.tokens.size() == 2);
    seen[static_cast<std::size_t>(out.tokens[0]) * vocab +
         static_cast<std::size_t>(out.tokens[1])] += 1;
  }
  CHECK(dec.stats().accepted > 0);
  double chi = 0;
  for (std::size_t i = 0; i < seen.size(); ++i)
    chi += (seen[i] - expected[i]) * (seen[i] - expected[i]) / expected[i];
  return chi;
}

// 15 degrees of freedom: P(chi-square > 37.70) = 0.001.
constexpr double chi_square_15_at_0_001 = 37.70;

TEST_CASE("tree: sampled output follows the target's distribution with multi-child trees",
          "[tree][chi]") {
  // Draft pairs: the draft favours t + 2 (disagrees), t + 1 (the target's own table), t + 3.
  for (const std::size_t draft_add : {2u, 1u, 3u})
    for (const bool sampled : {false, true})
      for (const tandem::fixed_tree shape :
           {tandem::fixed_tree{6, 2, 3, 3}, tandem::fixed_tree{12, 3, 4, 4}}) {
        const double chi = tree_chi_square(shape, sampled, 4000, draft_add);
        INFO("draft t + " << draft_add << ", sampled children " << sampled << ", nodes "
                          << shape.nodes << ": chi-square " << chi);
        CHECK(chi < chi_square_15_at_0_001);
      }
  // The cost model's shapes (its choices vary with measured times), both child modes.
  for (const bool sampled : {false, true}) {
    const double chi = tree_chi_square(tandem::tree_cost_model{}, sampled, 4000, 2);
    INFO("cost model, sampled children " << sampled << ": chi-square " << chi);
    CHECK(chi < chi_square_15_at_0_001);
  }
}

TEST_CASE("tree: one node's verification emits exactly the target's distribution (enumeration)",
          "[tree]") {
  std::mt19937 g(42);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t v = 3 + static_cast<std::size_t>(trial % 3);
    std::vector<double> p(v), q(v);
    double zp = 0, zq = 0;
    for (std::size_t j = 0; j < v; ++j) {
      p[j] = trial % 5 == 0 && j == 0 ? 0.0 : u(g);
      q[j] = trial % 7 == 0 && j == 1 ? 0.0 : u(g);
      zp += p[j];
      zq += q[j];
    }
    for (std::size_t j = 0; j < v; ++j) {
      p[j] /= zp;
      q[j] /= zq;
    }
    for (std::size_t k = 1; k <= v; ++k) {
      std::vector<double> out(v, 0.0);
      tandem_test::sampled_outcomes(out, p, q, k, 1.0);
      CHECK(tandem_test::max_difference(out, p) < 1e-12);
    }
    std::vector<token_id> children;
    for (std::size_t j = 0; j < v; j += 2) children.push_back(static_cast<token_id>(j));
    CHECK(tandem_test::max_difference(tandem_test::fixed_outcomes(p, children), p) < 1e-12);
  }
  // The check can fail: children drawn without replacement but verified against the
  // unchanged q (residual p updated, q not) is not exact.
  const std::vector<double> p = {0.4, 0.35, 0.25}, q = {0.2, 0.3, 0.5};
  std::vector<double> out(3, 0.0);
  for (std::size_t a = 0; a < 3; ++a)
    for (std::size_t b = 0; b < 3; ++b) {
      if (b == a) continue;
      const double w = q[a] * q[b] / (1.0 - q[a]);
      std::vector<double> pp = p, qq = q, keep_q = q;
      const double a1 = tandem::detail::accept_chance(pp, qq, static_cast<token_id>(a));
      out[a] += w * a1;
      tandem::detail::reject_child(pp, qq, static_cast<token_id>(a));
      const double a2 = tandem::detail::accept_chance(pp, keep_q, static_cast<token_id>(b));
      out[b] += w * (1 - a1) * a2;
      tandem::detail::reject_child(pp, keep_q, static_cast<token_id>(b));
      tandem_test::add_final_draw(out, pp, w * (1 - a1) * (1 - a2));
    }
  CHECK(tandem_test::max_difference(out, p) > 1e-3);
}

TEST_CASE("tree: the expected accepted length of a chain is Leviathan's formula", "[tree]") {
  for (const double a : {0.2, 0.6, 0.9}) {
    for (std::size_t g = 0; g <= 8; ++g) {
      std::vector<std::int32_t> parents;
      std::vector<double> acc;
      for (std::size_t i = 0; i < g; ++i) {
        parents.push_back(static_cast<std::int32_t>(i) - 1);
        acc.push_back(a);
      }
      const double want = (1 - std::pow(a, static_cast<double>(g + 1))) / (1 - a);
      CHECK(tandem::expected_accepted_tokens(parents, acc) == Approx(want).epsilon(1e-12));
    }
  }
  // A star: 1 + the sum of its children's chances; a child under each adds the product.
  const std::vector<std::int32_t> star = {-1, -1, -1, 0, 1};
  const std::vector<double> acc = {0.5, 0.3, 0.1, 0.4, 0.2};
  CHECK(tandem::expected_accepted_tokens(star, acc) ==
        Approx(1 + 0.5 + 0.3 + 0.1 + 0.5 * 0.4 + 0.3 * 0.2).epsilon(1e-12));
  const std::vector<std::int32_t> bad = {0};
  CHECK(tandem::expected_accepted_tokens(bad, std::vector<double>{0.5}) == 0.0);
}

TEST_CASE("tree: the achieved tokens per round match the theory on a deterministic pair",
          "[tree]") {
  // Draft and target agree except after tokens t with t % 3 == 0: with greedy decoding every
  // node's acceptance is 0 or 1, so the theory's E is the walk's kept tokens exactly.
  const mock_setup m;
  const auto& succ = m.succ;
  const auto& prompt = m.prompt;
  const auto dsucc = partly_agreeing(succ, 3);
  mock_model target(m.to), dm(mock_options{m.vocab, {}, dsucc});
  tandem::tree_speculative_decoder dec(target, dm, tandem::fixed_tree{1, 1, 1, 1});
  auto s = greedy_chain();
  generation_options g;
  g.max_tokens = 40;
  completion c;
  REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
  // One-node chains: a round accepts its node when the draft agrees after the last token.
  std::size_t agree = 0, rounds = 0;
  token_id last = prompt.back();
  for (std::size_t i = 0; i < c.tokens.size();) {
    const bool ok = dsucc[static_cast<std::size_t>(last)] == succ[static_cast<std::size_t>(last)];
    const std::size_t kept = std::min<std::size_t>(ok ? 2 : 1, c.tokens.size() - i);
    if (ok && kept == 2) ++agree;
    i += kept;
    last = c.tokens[i - 1];
    ++rounds;
  }
  CHECK(dec.stats().rounds == rounds);
  CHECK(dec.stats().accepted == agree);
}

TEST_CASE("tree: the cost model turns speculation off against a draft that never agrees",
          "[tree]") {
  const mock_setup m;
  std::vector<token_id> wrong(m.vocab);
  for (std::size_t t = 0; t < m.vocab; ++t)
    wrong[t] = static_cast<token_id>((static_cast<std::size_t>(m.succ[t]) + 7) % m.vocab);
  mock_model target(m.to), dm(mock_options{m.vocab, {}, wrong});
  tandem::tree_speculative_decoder dec(target, dm, tandem::tree_cost_model{});
  auto s = greedy_chain();
  generation_options g;
  g.max_tokens = 200;
  completion c;
  REQUIRE(dec.generate(s, m.prompt, g, c) == errc::ok);
  CHECK(c.tokens == target_greedy(m.to, m.prompt, 200));
  CHECK(dec.stats().accepted == 0);
  CHECK(dec.policy().off());
  CHECK(dec.stats().drafting_rounds < dec.stats().rounds / 4);
}

TEST_CASE("tree: the cost model's choice degenerates to a chain or to nothing", "[tree]") {
  tandem::tree_cost_model m;
  // Before any timing, choose() ranks by tokens alone: every valuable node is kept.
  const std::vector<double> values = {0.9, 0.8, 0.7, 0.1};
  CHECK(m.choose(values, 1) == 4);
  // Options out of range are refused.
  tandem::tree_cost_options o;
  o.max_children = 0;
  CHECK(tandem::validate(o) == errc::invalid_argument);
  CHECK(tandem::tree_cost_model(o).validate() == errc::invalid_argument);
  // With one child per node, the plan is a chain.
  tandem::tree_cost_options chain;
  chain.max_children = 1;
  tandem::tree_cost_model cm(chain);
  tandem::tree_round r{};
  r.target_batch = 1;
  r.target_seconds = 1.0;
  cm.update(r);
  CHECK(cm.plan().max_children == 1);
  CHECK(cm.plan().max_nodes == chain.max_nodes);
  // A pass whose cost grows with every token and a draft acceptance of 0.1: no speculation.
  for (std::size_t b = 1; b <= 8; ++b) {
    tandem::tree_round t{};
    t.target_batch = b;
    t.target_seconds = static_cast<double>(b);
    cm.update(t);
  }
  const std::vector<double> poor = {0.1, 0.01, 0.001};
  CHECK(cm.choose(poor, 1) == 0);
}

namespace {

// Seconds on a test clock that the shaped models below advance: a target pass over b
// tokens costs 1 + 0.3 (b - 1), a draft pass 0.02 (so trees pay only for likely nodes).
double fake_seconds = 0.0;
double fake_clock() noexcept { return fake_seconds; }

// A model over 16 tokens whose favourite after n tokens is (7 n + 3) % 16. As the target,
// its favourite has logit 5. As a draft, `sure`: the same favourite, logit 9 (q near 1);
// unsure: another token first (logit 1) and the target's favourite second (logit 0.8), so
// q is about 0.2 for both and only a second child is ever accepted.
class shaped_model {
 public:
  shaped_model(bool draft, bool sure) : draft_(draft), sure_(sure), logits_(16, 0.0f) {
    fill(logits_, 0);
  }
  std::size_t vocab_size() const noexcept { return 16; }
  std::size_t size() const noexcept { return ctx_.size(); }
  std::span<const float> logits() const noexcept { return logits_; }
  errc rewind(std::size_t n) {
    ctx_.resize(ctx_.size() - n);
    fill(logits_, ctx_.size());
    return errc::ok;
  }
  errc append(std::span<const token_id> t) { return score(t, {}); }
  // One pass over `t` (rows, when given, after each of its tokens).
  errc score(std::span<const token_id> t, std::span<float> rows) {
    fake_seconds += draft_ ? 0.02 : 1.0 + 0.3 * static_cast<double>(t.size() - 1);
    for (std::size_t i = 0; i < t.size() && !rows.empty(); ++i)
      fill(rows.subspan(i * 16, 16), ctx_.size() + i + 1);
    ctx_.insert(ctx_.end(), t.begin(), t.end());
    fill(logits_, ctx_.size());
    return errc::ok;
  }

 private:
  void fill(std::span<float> out, std::size_t n) const {
    std::fill(out.begin(), out.end(), 0.0f);
    const std::size_t fav = (7 * n + 3) % 16;
    if (!draft_) {
      out[fav] = 5.0f;
    } else if (sure_) {
      out[fav] = 9.0f;
    } else {
      out[(fav + 5) % 16] = 1.0f;
      out[fav] = 0.8f;
    }
  }
  bool draft_, sure_;
  std::vector<token_id> ctx_;
  std::vector<float> logits_;
};

// tree_cost_model, recording the most children any node had, and the largest sibling rank
// of a node (0: the draft's first choice), in the trees verified after the start-up probes.
struct shape_recorder {
  tandem::tree_cost_model p{tandem::tree_cost_options{}};
  std::size_t rounds = 0, max_children = 0, max_rank = 0;
  tandem::tree_plan plan() { return p.plan(); }
  double acceptance(std::size_t d, std::size_t r, double q) const { return p.acceptance(d, r, q); }
  std::size_t choose(std::span<const double> v, std::size_t levels) { return p.choose(v, levels); }
  void update(const tandem::tree_round& r) {
    if (r.nodes > 0 && ++rounds > 4) {  // each node's children, and the root's (parent -1)
      for (std::int32_t i = -1; i < static_cast<std::int32_t>(r.nodes); ++i)
        max_children =
            std::max(max_children,
                     static_cast<std::size_t>(std::count(r.parents.begin(), r.parents.end(), i)));
      for (const std::uint8_t k : r.rank) max_rank = std::max<std::size_t>(max_rank, k);
    }
    p.update(r);
  }
};

// Greedy generation of `n` tokens on the shaped pair; the policy's record.
shape_recorder shaped_run(bool sure, std::size_t n, tandem::tree_stats& stats,
                          std::vector<token_id>& tokens) {
  shaped_model target(false, false), draft(true, sure);
  tandem::tree_options o;
  o.clock = fake_clock;
  tandem::tree_speculative_decoder dec(target, draft, shape_recorder{}, o);
  auto s = greedy_chain();
  generation_options g;
  g.max_tokens = n;
  completion c;
  REQUIRE(dec.generate(s, std::vector<token_id>{1, 2}, g, c) == errc::ok);
  stats = dec.stats();
  tokens = c.tokens;
  return dec.policy();
}

}  // namespace

TEST_CASE(
    "tree: the cost model drafts the draft's chain when it is sure, its second choices "
    "when those pass",
    "[tree]") {
  std::vector<token_id> want;  // the target's favourites after the 2-token prompt
  for (std::size_t n = 2; want.size() < 120; ++n)
    want.push_back(static_cast<token_id>((7 * n + 3) % 16));
  tandem::tree_stats st;
  std::vector<token_id> got;
  // Sure and right: the draft's chain (one first choice per node), several tokens
  // accepted per round.
  const shape_recorder sure = shaped_run(true, 120, st, got);
  CHECK(got == want);
  CHECK(sure.rounds > 4);
  CHECK(sure.max_children == 1);
  CHECK(sure.max_rank == 0);
  CHECK(st.mean_accepted_length() > 2.0);
  // Unsure, the target's token second: first children never pass, so the draft's chain
  // would accept nothing; the tree takes second children (probes learn that they pass) and
  // accepts more than one per round.
  const shape_recorder unsure = shaped_run(false, 120, st, got);
  CHECK(got == want);
  CHECK(unsure.rounds > 4);
  CHECK(unsure.max_rank >= 1);
  CHECK(st.mean_accepted_length() > 1.0);
}

TEST_CASE("tree: a warm tree decoder allocates nothing per token", "[tree][alloc]") {
  const std::size_t vocab = 16;
  const auto succ = successors(vocab, 5, 3);
  for (const bool sampled : {false, true}) {
    mock_model target(mock_options{vocab, {}, succ});
    mock_model dm(mock_options{vocab, {}, partly_agreeing(succ, 3)});
    tandem::tree_speculative_decoder dec(
        target, dm, tandem::fixed_tree{12, 4, 3, 3},
        tandem::tree_options{.seed = 1, .sample_children = sampled});
    dec.reserve(256);
    auto s = sampled ? temperature_chain(1.0f, 3) : greedy_chain();
    generation_options g;
    g.max_tokens = 100;
    completion c;
    const std::vector<token_id> prompt = {1, 2};
    REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
    REQUIRE(target.rewind(target.size()) == errc::ok);
    dec.reseed(1);
    tandem_test::allocation_scope scope;
    REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
    CHECK(scope.allocations() == 0);
    CHECK(c.tokens.size() == 100);
  }
}

}  // namespace
