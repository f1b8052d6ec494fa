// Many sequences in one model: sequence<M> runs every LanguageModel block unchanged, and
// sequence_pool drives single-sequence sessions through the MultiSequenceModel interface
// with all-or-nothing batches.
#include "tandem/core/multi_sequence.hpp"

#include <vector>

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "common/mock_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/core/sequence_pool.hpp"
#include "tandem/speculative.hpp"

namespace {

using tandem::completion;
using tandem::errc;
using tandem::generation_options;
using tandem::seq_id;
using tandem::seq_tokens;
using tandem::sequence;
using tandem::token_id;
using tandem_test::mock_model;
using tandem_test::mock_multi_model;
using tandem_test::mock_options;
using tokens = std::vector<token_id>;

struct mock_factory {
  mock_options options;
  mock_model operator()() const { return mock_model(options); }
};
using mock_pool = tandem::sequence_pool<mock_factory>;

static_assert(tandem::MultiSequenceModel<mock_pool> && tandem::MultiSequenceScoring<mock_pool>);
static_assert(tandem::LanguageModel<sequence<mock_multi_model>> &&
              tandem::Rewindable<sequence<mock_multi_model>> &&
              tandem::Scoring<sequence<mock_multi_model>> &&
              tandem::HasContextLength<sequence<mock_multi_model>>);
static_assert(!tandem::MultiSequenceModel<mock_model>);

}  // namespace

TEST_CASE("multi_sequence: generate() on two sequences equals generate() on lone sessions",
          "[core][multi_sequence]") {
  mock_multi_model m;
  const seq_id a = *m.open(), b = *m.open();
  sequence<mock_multi_model> sa(m, a), sb(m, b);
  generation_options o;
  o.max_tokens = 6;
  completion ga, gb, la, lb;
  tandem::greedy_sampler s;
  REQUIRE(tandem::generate(sa, s, tokens{3}, o, ga) == errc::ok);
  REQUIRE(tandem::generate(sb, s, tokens{9, 1}, o, gb) == errc::ok);
  mock_model lone_a, lone_b;
  REQUIRE(tandem::generate(lone_a, s, tokens{3}, o, la) == errc::ok);
  REQUIRE(tandem::generate(lone_b, s, tokens{9, 1}, o, lb) == errc::ok);
  CHECK(ga.tokens == la.tokens);
  CHECK(gb.tokens == lb.tokens);
  CHECK(ga.tokens != gb.tokens);
}

TEST_CASE("multi_sequence: the speculative decoder runs on sequences of one model",
          "[core][multi_sequence]") {
  // Target and draft are two sequences of one multi-sequence model over the same table,
  // so every draft token is accepted and the output equals target-only greedy decoding.
  mock_multi_model m;
  const seq_id t = *m.open(), d = *m.open();
  sequence<mock_multi_model> target(m, t), draft(m, d);
  tandem::model_drafter drafter(draft, tandem::greedy_sampler{});
  tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{3});
  generation_options o;
  o.max_tokens = 10;
  completion got, want;
  tandem::greedy_sampler s;
  REQUIRE(dec.generate(s, tokens{2, 5}, o, got) == errc::ok);
  mock_model lone;
  REQUIRE(tandem::generate(lone, s, tokens{2, 5}, o, want) == errc::ok);
  CHECK(got.tokens == want.tokens);
  CHECK(dec.stats().accepted > 0);
}

TEST_CASE("multi_sequence: a handle names its sequence and reports invalid_sequence once closed",
          "[core][multi_sequence]") {
  mock_multi_model m;
  const seq_id a = *m.open();
  sequence<mock_multi_model> h(m, a);
  CHECK(h.id() == a);
  CHECK(h == sequence<mock_multi_model>(m, a));
  REQUIRE(h.append(tokens{1, 2}) == errc::ok);
  CHECK(h.size() == 2);
  REQUIRE(m.close(a) == errc::ok);
  CHECK(h.size() == 0);
  CHECK(h.append(tokens{1}) == errc::invalid_sequence);
  CHECK(h.rewind(0) == errc::invalid_sequence);
}

TEST_CASE("sequence_pool: a failed entry rolls back the earlier ones, tokens and logits",
          "[core][multi_sequence]") {
  // Sessions fail their second append: the first batch (one token each) succeeds, then
  // a batch over all three fails at its first entry whose session is on its second call.
  mock_options mo;
  mo.fail_at_append = 1;
  auto pool = mock_pool::create(mock_factory{mo}, 3);
  REQUIRE(pool);
  const seq_id a = *pool->open(), b = *pool->open();
  REQUIRE(pool->fork(a).has_value() == true);  // a fork of an empty sequence, unused
  const token_id t4[1] = {4}, t6[1] = {6}, t78[2] = {7, 8}, t5[1] = {5};
  const seq_tokens first[2] = {{a, t4}, {b, t6}};
  REQUIRE(pool->append(first) == errc::ok);
  const std::vector<float> la(pool->logits(a).begin(), pool->logits(a).end());
  const std::vector<float> lb(pool->logits(b).begin(), pool->logits(b).end());
  const seq_tokens second[2] = {{b, t78}, {a, t5}};
  CHECK(pool->append(second) == errc::decode_failed);
  CHECK(pool->last_error().code == errc::decode_failed);
  CHECK(pool->size(a) == 1);
  CHECK(pool->size(b) == 1);
  CHECK(std::vector<float>(pool->logits(a).begin(), pool->logits(a).end()) == la);
  CHECK(std::vector<float>(pool->logits(b).begin(), pool->logits(b).end()) == lb);
}

TEST_CASE("sequence_pool: fork recomputes the parent's tokens and close leaves the others",
          "[core][multi_sequence]") {
  auto pool = mock_pool::create(mock_factory{}, 2);
  REQUIRE(pool);
  const seq_id a = *pool->open();
  const token_id t123[3] = {1, 2, 3};
  const seq_tokens one{a, t123};
  REQUIRE(pool->append(std::span(&one, 1)) == errc::ok);
  const seq_id f = *pool->fork(a);
  CHECK(pool->fork(a).error() == errc::no_free_sequence);
  CHECK(pool->tokens(f).size() == 3);
  CHECK(std::vector<float>(pool->logits(f).begin(), pool->logits(f).end()) ==
        std::vector<float>(pool->logits(a).begin(), pool->logits(a).end()));
  const std::vector<float> before(pool->logits(f).begin(), pool->logits(f).end());
  REQUIRE(pool->close(a) == errc::ok);
  CHECK(std::vector<float>(pool->logits(f).begin(), pool->logits(f).end()) == before);
  CHECK(pool->close(a) == errc::invalid_sequence);
}

TEST_CASE("multi_sequence: a warm multi-sequence mock allocates nothing per step",
          "[core][multi_sequence]") {
  mock_multi_model m;
  const seq_id a = *m.open(), b = *m.open();
  sequence<mock_multi_model> sa(m, a);
  const token_id ta[1] = {1}, tb[1] = {2};
  tandem_test::allocation_scope scope;
  for (int i = 0; i < 50; ++i) {
    const seq_tokens batch[2] = {{a, ta}, {b, tb}};
    REQUIRE(m.append(batch) == errc::ok);
    REQUIRE(sa.append(ta) == errc::ok);
    REQUIRE(sa.rewind(1) == errc::ok);
  }
  CHECK(scope.allocations() == 0);
}
