// Tests of generate() with an output constraint: masked sampling, forced tokens kept without
// the sampler or the model, stop tokens only where the constraint may end, completion,
// errors from the constraint, stop strings, continuation and no allocation per token.
#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "tandem/core/generate.hpp"
#include "tandem/core/generator.hpp"
#include "tandem/core/sampler.hpp"

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "common/mock_model.hpp"
#include "common/test_constraint.hpp"

namespace {
using tandem::completion;
using tandem::errc;
using tandem::finish_reason;
using tandem::generation_options;
using tandem::token_id;
using tandem_test::mock_model;
using tandem_test::mock_options;
using tandem_test::token_set_constraint;
using tandem_test::trie_constraint;

using tokens = std::vector<token_id>;

// Always proposes the same token, whatever the logits (a sampler that ignores masks).
struct fixed_sampler {
  token_id token = 1;
  tandem::result<token_id> sample(std::span<const float>) const noexcept { return token; }
  errc accept(token_id) noexcept { return errc::ok; }
  void reset() noexcept {}
};
}  // namespace

TEST_CASE(
    "generate: a constraint masks the logits and forced tokens skip the sampler and the model",
    "[core][generate][constraint]") {
  mock_model m;  // after token t it prefers t + 1, then t + 2, ...
  trie_constraint c(16, {{5, 9, 2}, {5, 9, 7, 1}, {6}});
  tandem_test::counting_greedy_sampler s;
  generation_options o;
  o.constraint = c;
  completion out;
  const tokens prompt{3};
  REQUIRE(tandem::generate(m, s, prompt, o, out) == errc::ok);
  // 4 is not allowed; of 5 and 6 the model prefers 5; 9 is forced; of 2 and 7 it prefers 2.
  CHECK(out.tokens == tokens{5, 9, 2});
  CHECK(out.finish == finish_reason::constraint_complete);
  CHECK(out.forced_tokens == 1);
  CHECK(c.position() == 3);
  CHECK(s.accepted == 3);  // the sampler accepts every kept token, the forced one too
  // The forced 9 was fed together with 5 in one append: prompt, {5, 9}; 2 is never fed.
  CHECK(m.counters().append_calls == 2);
  CHECK(m.size() == 3);
  REQUIRE(out.logprobs.size() == 3);
  CHECK(out.logprobs[1] == 0.0f);
  CHECK(out.entropies[1] == 0.0f);
  CHECK(out.logprobs[0] < 0.0f);  // the masked distribution over {5, 6}

  // Without the constraint the same model goes 4, 5, 6.
  REQUIRE(m.rewind(m.size()) == errc::ok);
  o.constraint = {};
  o.max_tokens = 3;
  REQUIRE(tandem::generate(m, s, prompt, o, out) == errc::ok);
  CHECK(out.tokens == tokens{4, 5, 6});
  CHECK(out.forced_tokens == 0);
}

TEST_CASE("generate: a stop token is allowed exactly when the constraint can end",
          "[core][generate][constraint]") {
  const token_id eos = 0;
  const token_id stops[] = {eos};
  generation_options o;
  o.stop_tokens = stops;
  completion out;
  tandem_test::counting_greedy_sampler s;
  const tokens prompt{3};

  // The model wants to stop at once: unconstrained it does.
  mock_model m(mock_options{.script = {0, eos, eos, eos, eos}});
  REQUIRE(tandem::generate(m, s, prompt, o, out) == errc::ok);
  CHECK(out.tokens.empty());
  CHECK(out.finish == finish_reason::stop_token);

  // The constraint cannot end at its start: eos is masked, the best allowed token wins.
  REQUIRE(m.rewind(m.size()) == errc::ok);
  trie_constraint c(16, {{4, 9}, {5, 6}});
  o.constraint = c;
  REQUIRE(tandem::generate(m, s, prompt, o, out) == errc::ok);
  CHECK(out.tokens == tokens{4, 9});
  CHECK(out.finish == finish_reason::constraint_complete);

  // After {5, 6} it may end (though {5, 6, 7, 8} could go on): the model's eos is taken.
  REQUIRE(m.rewind(m.size()) == errc::ok);
  trie_constraint d(16, {{5, 6}, {5, 6, 7, 8}});
  o.constraint = d;
  REQUIRE(tandem::generate(m, s, prompt, o, out) == errc::ok);
  CHECK(out.tokens == tokens{5, 6});
  CHECK(out.forced_tokens == 2);
  CHECK(out.finish == finish_reason::stop_token);
  CHECK(d.position() == 2);
}

TEST_CASE("generate: a constraint not at its start or of a larger vocabulary is refused up front",
          "[core][generate][constraint]") {
  mock_model m;
  tandem_test::counting_greedy_sampler s;
  completion out;
  const tokens prompt{3};
  generation_options o;

  trie_constraint moved(16, {{5, 9}});
  REQUIRE(moved.advance(5) == errc::ok);
  o.constraint = moved;
  CHECK(tandem::generate(m, s, prompt, o, out) == errc::invalid_argument);
  CHECK(out.error == errc::invalid_argument);
  CHECK(m.size() == 0);

  token_set_constraint wide(17, {1, 2});
  o.constraint = wide;
  CHECK(tandem::generate(m, s, prompt, o, out) == errc::vocab_mismatch);
  CHECK(m.size() == 0);
}

TEST_CASE("generate: a constraint's error surfaces as the generation's error",
          "[core][generate][constraint]") {
  mock_model m;
  token_set_constraint c(16, {2, 4});
  fixed_sampler s{1};  // ignores the mask: 1 is not allowed
  generation_options o;
  o.constraint = c;
  completion out;
  const tokens prompt{3};
  CHECK(tandem::generate(m, s, prompt, o, out) == errc::constraint_violation);
  CHECK(out.finish == finish_reason::error);
  CHECK(out.error == errc::constraint_violation);
  CHECK(out.tokens.empty());
  CHECK(c.position() == 0);
}

TEST_CASE("generate: sampling with a constraint only ever draws allowed tokens",
          "[core][generate][constraint]") {
  const tokens allowed{1, 7, 12};
  token_set_constraint c(16, allowed);
  tandem::categorical_sampler s(1.5f, 11);
  generation_options o;
  o.max_tokens = 200;
  o.constraint = c;
  mock_model m;
  completion out;
  REQUIRE(tandem::generate(m, s, tokens{3}, o, out) == errc::ok);
  REQUIRE(out.tokens.size() == 200);
  std::size_t seen[3] = {};
  for (const token_id t : out.tokens) {
    const auto it = std::find(allowed.begin(), allowed.end(), t);
    REQUIRE(it != allowed.end());
    ++seen[it - allowed.begin()];
  }
  for (const std::size_t n : seen) CHECK(n > 0);  // not just one of them
  CHECK(c.position() == 200);
}

TEST_CASE("generate: stop strings still cut the text of a constrained output",
          "[core][generate][constraint]") {
  mock_model m;
  tandem_test::mock_tokenizer tok;
  tandem_test::counting_greedy_sampler s;
  // "a" "S" "TOP" "b": every token forced, the text reaches "STOP".
  trie_constraint c(16, {{1, 4, 5, 2}});
  const std::string_view stops[] = {"STOP"};
  generation_options o;
  o.stop_strings = stops;
  o.constraint = c;
  completion out;
  REQUIRE(tandem::generate(m, tok, s, tokens{3}, o, out) == errc::ok);
  CHECK(out.finish == finish_reason::stop_string);
  CHECK(out.text == "a");
  CHECK(out.tokens == tokens{1, 4, 5});
  CHECK(out.forced_tokens == 3);
  CHECK(m.counters().append_calls == 1);  // only the prompt: no logits were needed
}

TEST_CASE("continue_generation: a constraint goes on from its position",
          "[core][generate][constraint]") {
  mock_model m;
  tandem_test::counting_greedy_sampler s;
  trie_constraint c(16, {{5, 9, 2}, {5, 9, 7, 1}, {6}});
  generation_options o;
  o.constraint = c;
  o.max_tokens = 1;
  completion out;
  REQUIRE(tandem::generate(m, s, tokens{3}, o, out) == errc::ok);
  REQUIRE(out.tokens == tokens{5});
  REQUIRE(m.size() == 1);  // 5 was not fed
  o.max_tokens = 8;
  REQUIRE(tandem::continue_generation(m, s, tokens{5}, o, out) == errc::ok);
  CHECK(out.tokens == tokens{9, 2});
  CHECK(out.finish == finish_reason::constraint_complete);
  CHECK(c.position() == 3);
}

TEST_CASE("generate: with a constraint a warm loop allocates nothing per token",
          "[core][generate][constraint]") {
  mock_model m;
  token_set_constraint c(16, {2, 4, 6, 8, 10});
  auto s = tandem::make_sampler(tandem::sampling_options{.temperature = 0.8f, .seed = 3}, 16);
  REQUIRE(s);
  generation_options o;
  o.constraint = c;
  completion out;
  const tokens prompt{3};
  auto run = [&](std::size_t n) {
    REQUIRE(m.rewind(m.size()) == errc::ok);
    c.reset();
    o.max_tokens = n;
    tandem_test::allocation_scope scope;
    REQUIRE(tandem::generate(m, *s, prompt, o, out) == errc::ok);
    REQUIRE(out.tokens.size() == n);
    return scope.allocations();
  };
  (void)run(64);  // warms the completion
  const std::size_t short_run = run(4);
  const std::size_t long_run = run(64);
  CHECK(long_run == short_run);  // nothing per token
  CHECK(long_run <= 1);          // at most the per-call buffer of masked logits
}

TEST_CASE("model_generator: each request starts its constraint afresh",
          "[core][generate][constraint]") {
  tandem::model_generator<mock_model, tandem_test::mock_tokenizer> gen(
      mock_model{}, tandem_test::mock_tokenizer{});
  // "a" then "b" or "hello": the mock prefers "b" (2) after "a" (1).
  trie_constraint c(16, {{1, 2}, {1, 10}});
  tandem::generate_request req;
  req.prompt = "S";
  req.options.constraint = c;
  auto first = gen.generate(req);
  REQUIRE(first);
  CHECK(first->tokens == tokens{1, 2});
  CHECK(first->text == "ab");
  CHECK(first->finish == finish_reason::constraint_complete);
  auto second = gen.generate(req);  // the same state, now at position 2: reset, not refused
  REQUIRE(second);
  CHECK(second->tokens == first->tokens);
  CHECK(c.position() == 2);
}
