// The scheduler with an output constraint per request: each request's tokens are those of
// a lone constrained generate(), forced runs are fed in one step, a constraint not at its
// start is refused at submit(), and a warm step allocates nothing.
#include <cstddef>
#include <vector>

#include "tandem/batch/scheduler.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "common/mock_model.hpp"
#include "common/test_constraint.hpp"

namespace {

using tandem::completion;
using tandem::errc;
using tandem::finish_reason;
using tandem::token_id;
using tandem_test::mock_model;
using tandem_test::mock_multi_model;
using tandem_test::token_set_constraint;
using tandem_test::trie_constraint;
using tokens = std::vector<token_id>;
using greedy_scheduler = tandem::scheduler<mock_multi_model, tandem::greedy_sampler>;

std::vector<tokens> outputs() {
  return {{5, 9, 2, 2, 2, 2, 2, 2, 7}, {5, 9, 7, 1}, {6, 3, 3, 3, 3, 3, 3}, {4, 8}};
}

completion lone(const tokens& prompt, tandem::generation_options o, tandem::constraint_ref c) {
  mock_model m;
  tandem::greedy_sampler s;
  o.constraint = c;
  completion out;
  REQUIRE(tandem::generate(m, s, prompt, o, out) == errc::ok);
  return out;
}

template <class Sch>
void run(Sch& sch) {
  for (int i = 0; i < 1000 && sch.active() > 0; ++i) REQUIRE(sch.step() == errc::ok);
  REQUIRE(sch.active() == 0);
}

}  // namespace

TEST_CASE("scheduler: each request's constraint gives the tokens of a lone constrained generate()",
          "[batch][scheduler][constraint]") {
  const std::vector<tokens> prompts = {{3}, {1, 2}, {7}, {3}};
  tandem::generation_options o;
  o.max_tokens = 20;
  // The expected outputs, each from its own constraint state.
  trie_constraint w0(16, outputs()), w1(16, outputs());
  token_set_constraint w2(16, {1, 3, 5, 11});
  const completion want[] = {lone(prompts[0], o, w0), lone(prompts[1], o, w1),
                             lone(prompts[2], o, w2), lone(prompts[3], o, {})};

  mock_multi_model m({.max_sequences = 4});
  greedy_scheduler sch(m, {.max_requests = 4, .max_batch_tokens = 8});
  trie_constraint c0(16, outputs()), c1(16, outputs());
  token_set_constraint c2(16, {1, 3, 5, 11});
  const tandem::constraint_ref refs[] = {c0, c1, c2, {}};
  std::vector<tandem::request_id> ids;
  for (std::size_t i = 0; i < 4; ++i) {
    tandem::generation_options oi = o;
    oi.constraint = refs[i];
    auto id = sch.submit({.prompt = prompts[i], .options = oi});
    REQUIRE(id);
    ids.push_back(*id);
  }
  run(sch);
  std::size_t forced = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    completion got;
    REQUIRE(sch.take(ids[i], got) == errc::ok);
    CHECK(got.tokens == want[i].tokens);
    CHECK(got.finish == want[i].finish);
    CHECK(got.forced_tokens == want[i].forced_tokens);
    CHECK(got.logprobs == want[i].logprobs);
    forced += got.forced_tokens;
  }
  CHECK(forced > 0);
  CHECK(c0.position() == want[0].tokens.size());
}

TEST_CASE("scheduler: a forced run is fed in one step", "[batch][scheduler][constraint]") {
  const tokens only{9, 9, 1, 14, 0, 3, 3, 3, 12, 7};
  trie_constraint c(16, {only, {2}});  // a free first token, then (after 9) a forced run
  mock_multi_model m({.max_sequences = 1});
  greedy_scheduler sch(m, {.max_requests = 1, .max_batch_tokens = 64});
  tandem::generation_options o;
  o.max_tokens = 30;
  o.constraint = c;
  auto id = sch.submit({.prompt = tokens{8}, .options = o});  // the model prefers 9 after 8
  REQUIRE(id);
  run(sch);
  completion got;
  REQUIRE(sch.take(*id, got) == errc::ok);
  CHECK(got.tokens == only);
  CHECK(got.finish == finish_reason::constraint_complete);
  CHECK(got.forced_tokens == only.size() - 1);
  // The prompt, then the sampled 9: the forced run needs no logits, so no further pass.
  CHECK(sch.stats().forward_passes == 1);
  CHECK(sch.stats().generated_tokens == only.size());
}

TEST_CASE("scheduler: a constraint not at its start is refused at submit",
          "[batch][scheduler][constraint]") {
  trie_constraint c(16, outputs());
  REQUIRE(c.advance(5) == errc::ok);
  mock_multi_model m;
  greedy_scheduler sch(m);
  tandem::generation_options o;
  o.constraint = c;
  auto id = sch.submit({.prompt = tokens{3}, .options = o});
  REQUIRE_FALSE(id);
  CHECK(id.error() == errc::invalid_argument);
  CHECK(sch.active() == 0);
}

TEST_CASE("scheduler: a warm constrained step allocates nothing",
          "[batch][scheduler][constraint]") {
  mock_multi_model m({.max_sequences = 2});
  greedy_scheduler sch(m, {.max_requests = 2, .max_batch_tokens = 16});
  token_set_constraint c(16, {1, 3, 5, 11});
  tandem::generation_options o;
  o.max_tokens = 40;
  o.constraint = c;
  for (int round = 0; round < 2; ++round) {
    c.reset();
    auto id = sch.submit({.prompt = tokens{3, 4}, .options = o});
    REQUIRE(id);
    REQUIRE(sch.step() == errc::ok);  // the prefill and the first token
    tandem_test::allocation_scope scope;
    run(sch);
    if (round == 1) CHECK(scope.allocations() == 0);
    completion got;
    REQUIRE(sch.take(*id, got) == errc::ok);
    CHECK(got.tokens.size() == 40);
  }
}
