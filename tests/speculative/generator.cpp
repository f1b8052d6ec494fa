// Tests of speculative_generator: a speculative decoder as a text-level Generator, used as
// a cascade stage; and of the decoder's error details.
#include "tandem/speculative/generator.hpp"

#include <string>
#include <string_view>
#include <utility>

#include "common/catch.hpp"
#include "common/small_ngram.hpp"
#include "tandem/backends/ngram_text.hpp"
#include "tandem/cascade/cascade.hpp"
#include "tandem/core/generator.hpp"
#include "tandem/text.hpp"

using tandem::errc;

namespace {

// A few lines for byte-level n-gram models of two orders.
constexpr std::string_view corpus =
    "in the beginning was the word and the word was with god\n"
    "in the beginning god created the heaven and the earth\n"
    "and the earth was without form and void\n"
    "and god said let there be light and there was light\n";

}  // namespace

TEST_CASE(
    "speculative_generator: a speculative decoder answers as a cascade stage, as the target would",
    "[speculative][generator][cascade]") {
  auto target = tandem::open_ngram_text(corpus, {.order = 5});
  auto draft = tandem::open_ngram_text(corpus, {.order = 2});
  auto alone = tandem::open_ngram_text(corpus, {.order = 5});
  REQUIRE(target);
  REQUIRE(draft);
  REQUIRE(alone);
  tandem::model_drafter drafter(draft->session(), tandem::greedy_sampler{});
  tandem::speculative_decoder decoder(target->session(), drafter);
  tandem::speculative_generator gen(decoder, target->tokenizer());
  static_assert(tandem::Generator<decltype(gen)>);

  int scored = 0;
  auto trust = [&scored](std::string_view, const tandem::completion&) -> tandem::result<double> {
    ++scored;
    return 1.0;
  };
  tandem::cascade c;
  REQUIRE(c.add_stage({tandem::any_generator(gen), 1.0, trust}) == errc::ok);
  REQUIRE(c.add_stage({tandem::any_generator(gen), 20.0, trust}) == errc::ok);
  REQUIRE(c.set_policy(tandem::cascade_policy::chain({0, 1}, 0.5)) == errc::ok);

  tandem::generate_request req{.prompt = "in the beg"};
  req.options.max_tokens = 24;
  auto expected = tandem::complete(*alone, req);
  REQUIRE(expected);
  REQUIRE(!expected->text.empty());
  for (int round = 0; round < 2; ++round) {  // the second request is a fresh prompt too
    auto r = c.run(req);
    REQUIRE(r);
    REQUIRE(r->answer.has_value());
    CHECK(r->answered_by == 0);
    CHECK(r->answer->text == expected->text);
    CHECK(r->trace.size() == 1);
  }
  CHECK(scored == 2);
  CHECK(decoder.stats().acceptance_rate() > 0.0);
}

TEST_CASE("speculative_generator: a prompt that encodes to nothing is empty_input",
          "[speculative][generator]") {
  auto target = tandem::open_ngram_text(corpus);
  REQUIRE(target);
  tandem::model_drafter drafter(target->session(), tandem::greedy_sampler{});
  tandem::speculative_decoder decoder(target->session(), drafter);
  tandem::speculative_generator gen(decoder, target->tokenizer());
  auto r = gen.generate(tandem::generate_request{.prompt = ""});
  REQUIRE(!r);
  CHECK(r.error() == errc::empty_input);
}

TEST_CASE("speculative: a draft of another vocabulary is vocab_mismatch with both sizes",
          "[speculative][errors]") {
  auto target = tandem::open_ngram_text(corpus);
  REQUIRE(target);
  const tandem::ngram_model small = tandem_test::vocab64_ngram();
  tandem::ngram_session draft(small);
  tandem::model_drafter drafter(draft, tandem::greedy_sampler{});
  tandem::speculative_decoder decoder(target->session(), drafter);
  tandem::greedy_sampler greedy;
  tandem::completion out;
  const tandem::token_id prompt[] = {1, 2};
  CHECK(decoder.generate(greedy, prompt, {}, out) == errc::vocab_mismatch);
  CHECK(decoder.last_error().code == errc::vocab_mismatch);
  CHECK(decoder.last_error().context() == "draft vocabulary 64, target vocabulary 256");

  // The one-call path says the same.
  struct small_text {
    tandem::ngram_session* s;
    tandem::ngram_session& session() { return *s; }
    const tandem::byte_tokenizer& tokenizer() const { return tok; }
    tandem::byte_tokenizer tok;
  } d{&draft, {}};
  tandem::error_info info;
  auto r = tandem::complete_speculative(*target, d, {.prompt = "in"}, &info);
  REQUIRE(!r);
  CHECK(r.error() == errc::vocab_mismatch);
  CHECK(info.context() == "draft vocabulary 64, target vocabulary 256");

  // And a successful call clears the decoder's details.
  tandem::model_drafter self(target->session(), tandem::greedy_sampler{});
  tandem::speculative_decoder ok_decoder(target->session(), self);
  REQUIRE(target->session().rewind(target->session().size()) == errc::ok);
  CHECK(ok_decoder.generate(greedy, prompt, {.max_tokens = 2}, out) == errc::ok);
  CHECK(!ok_decoder.last_error());
}
