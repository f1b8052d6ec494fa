// k samples from one prefill: each sample equals a lone generate() with its sampler
// (fork equals recompute), the prompt is computed once, and the consistency estimators'
// sample_answers runs on a multi-sequence model.
#include "tandem/batch/sample_k.hpp"

#include <string>
#include <vector>

#include "batch/scheduler_property.hpp"
#include "common/catch.hpp"
#include "common/mock_model.hpp"
#include "tandem/confidence/consistency.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

namespace {

using tandem::completion;
using tandem::errc;
using tandem::token_id;
using tandem_test::mock_model;
using tandem_test::mock_multi_model;
using tokens = std::vector<token_id>;

}  // namespace

TEST_CASE("sample_k: each sample equals a lone run with its sampler, the prompt computed once",
          "[batch][sample_k]") {
  mock_multi_model inner({.max_sequences = 6});
  tandem_test::counting_multi<mock_multi_model> m(inner);
  const tokens prompt = {3, 1, 4, 1, 5, 9, 2, 6};
  tandem::generation_options o;
  o.max_tokens = 12;
  std::vector<completion> out(5);
  auto make = [](std::size_t i) { return tandem::categorical_sampler(1.5f, 100 + i); };
  REQUIRE(tandem::sample_k(m, prompt, make, o, std::span<completion>(out)) == errc::ok);
  // One prefill of the prompt, then one token per sample per step.
  CHECK(m.tokens == prompt.size() + 5 * 11);
  CHECK(m.passes == 1 + 11);
  CHECK(inner.is_open(0) == false);
  std::size_t distinct = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    mock_model lone;
    auto s = make(i);
    completion want;
    REQUIRE(tandem::generate(lone, s, prompt, o, want) == errc::ok);
    CHECK(out[i].tokens == want.tokens);
    CHECK(out[i].logprobs == want.logprobs);
    distinct += i > 0 && out[i].tokens != out[0].tokens ? 1 : 0;
  }
  CHECK(distinct > 0);  // the samplers differ, so the samples do
}

TEST_CASE("sample_k: with fewer sequences than samples, later samples wait and still match",
          "[batch][sample_k]") {
  mock_multi_model m({.max_sequences = 2});
  const tokens prompt = {7, 8};
  tandem::generation_options o;
  o.max_tokens = 4;
  std::vector<completion> out(3);
  auto make = [](std::size_t) { return tandem::greedy_sampler{}; };
  REQUIRE(tandem::sample_k(m, prompt, make, o, std::span<completion>(out)) == errc::ok);
  mock_model lone;
  tandem::greedy_sampler g;
  completion want;
  REQUIRE(tandem::generate(lone, g, prompt, o, want) == errc::ok);
  for (const completion& c : out) CHECK(c.tokens == want.tokens);
}

TEST_CASE("sample_k: bad arguments are rejected with named errors", "[batch][sample_k]") {
  mock_multi_model m;
  auto make = [](std::size_t) { return tandem::greedy_sampler{}; };
  std::vector<completion> none, two(2);
  const tokens prompt = {1};
  CHECK(tandem::sample_k(m, prompt, make, {}, std::span<completion>(none)) ==
        errc::invalid_argument);
  CHECK(tandem::sample_k(m, tokens{}, make, {}, std::span<completion>(two)) == errc::empty_input);
  CHECK(tandem::sample_k(m, tokens{1, 40}, make, {}, std::span<completion>(two)) ==
        errc::invalid_token);
  for (tandem::seq_id s = 0; s < 4; ++s) CHECK(!m.is_open(s));
}

TEST_CASE("sample_answers: k texts from one prefill of a multi-sequence model",
          "[batch][sample_k][confidence]") {
  mock_multi_model m({.max_sequences = 5});
  const tandem_test::mock_tokenizer tok;
  const tokens prompt = {10, 3};
  tandem::generation_options o;
  o.max_tokens = 6;
  tandem::sampling_options s;
  s.temperature = 2.0f;
  s.seed = 9;
  std::vector<std::string> answers;
  REQUIRE(tandem::sample_answers(m, tok, prompt, 4, o, s, answers) == errc::ok);
  REQUIRE(answers.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    mock_model lone;
    tandem::sampling_options si = s;
    si.seed = s.seed + i;
    auto chain = tandem::make_sampler(si, 16);
    completion want;
    REQUIRE(tandem::generate(lone, tok, *chain, prompt, o, want) == errc::ok);
    CHECK(answers[i] == want.text);
  }
  const auto vote =
      tandem::majority_vote(std::span<const std::string>(answers), tandem::normalize_answer);
  REQUIRE(vote);
  CHECK(vote->count >= 1);
  s.temperature = 0.0f;
  CHECK(tandem::sample_answers(m, tok, prompt, 4, o, s, answers) == errc::invalid_temperature);
  s.temperature = 1.0f;
  CHECK(tandem::sample_answers(m, tok, prompt, 0, o, s, answers) == errc::invalid_argument);
}
