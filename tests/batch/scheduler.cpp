// The continuous-batching scheduler: requests joining and leaving at random steps give
// exactly the tokens of lone runs (mock and n-gram backends), shared prefixes are
// prefilled once, the batch-token cap chunks long prompts without stalling decoding,
// priorities, every error case, cancellation, and no allocation once warm.
#include "tandem/batch/scheduler.hpp"

#include <limits>
#include <random>
#include <vector>

#include "batch/scheduler_property.hpp"
#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "common/mock_model.hpp"
#include "tandem/backends/ngram_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/tandem.hpp"

namespace {

using tandem::completion;
using tandem::errc;
using tandem::finish_reason;
using tandem::request_state;
using tandem::token_id;
using tandem_test::budget;
using tandem_test::counting_multi;
using tandem_test::mock_model;
using tandem_test::mock_multi_model;
using tandem_test::mock_multi_options;
using tandem_test::random_ngram;
using tandem_test::run;
using tokens = std::vector<token_id>;
using greedy_scheduler = tandem::scheduler<mock_multi_model, tandem::greedy_sampler>;

tokens lone_greedy(const tokens& prompt, std::size_t max_tokens) {
  mock_model m;
  tandem::greedy_sampler s;
  tandem::generation_options o;
  o.max_tokens = max_tokens;
  completion c;
  REQUIRE(tandem::generate(m, s, prompt, o, c) == errc::ok);
  return c.tokens;
}

}  // namespace

TEST_CASE("scheduler: random join, leave and cancel orders give the tokens of lone runs (mock)",
          "[batch][scheduler]") {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    mock_multi_model m({.max_sequences = 3});
    tandem_test::check_scheduler_equals_lone(m, [] { return mock_model(); }, {.seed = seed});
  }
}

TEST_CASE("scheduler: random join, leave and cancel orders give the tokens of lone runs (n-gram)",
          "[batch][scheduler]") {
  const tandem::ngram_model model = random_ngram(11, 40);
  for (std::uint64_t seed = 1; seed <= 25; ++seed) {
    tandem::ngram_multi_session m(model, 4, 128);
    tandem_test::check_scheduler_equals_lone(
        m, [&] { return tandem::ngram_session(model, 128); },
        {.seed = seed, .max_prompt = 30, .max_new = 16, .max_requests = 6});
  }
}

TEST_CASE("scheduler: 16 requests with a common 256-token prefix prefill it once",
          "[batch][scheduler]") {
  const tandem::ngram_model model = random_ngram(3, 40);
  std::mt19937_64 rng(5);
  tokens system(256);
  for (auto& t : system) t = static_cast<token_id>(2 + rng() % 38);
  std::vector<tokens> prompts(16, system);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    prompts[i].push_back(static_cast<token_id>(2 + i));
    prompts[i].push_back(static_cast<token_id>(20 + i));
  }
  auto serve = [&](bool share, std::vector<tokens>& outputs) {
    tandem::ngram_multi_session inner(model, 17, 512);
    counting_multi<tandem::ngram_multi_session> m(inner);
    tandem::scheduler<decltype(m), tandem::greedy_sampler> sch(
        m, {.max_requests = 16, .max_batch_tokens = 512});
    if (share) REQUIRE(sch.add_prefix(system));
    std::vector<tandem::request_id> ids;
    for (const tokens& p : prompts) ids.push_back(*sch.submit({p, {}, budget(8)}));
    run(sch);
    for (auto id : ids) {
      completion c;
      REQUIRE(sch.take(id, c) == errc::ok);
      outputs.push_back(c.tokens);
    }
    // Every prompt token is either computed or shared.
    CHECK(sch.stats().prefill_tokens + sch.stats().shared_tokens == 16 * 258);
    return sch.stats().prefill_tokens + sch.stats().prefix_tokens;
  };
  std::vector<tokens> with, without;
  const std::size_t shared = serve(true, with);
  const std::size_t unshared = serve(false, without);
  CHECK(unshared == 16 * 258);
  CHECK(shared * 8 <= unshared);
  CHECK(with == without);
}

TEST_CASE("scheduler: a long prompt is prefilled in chunks while the others decode every step",
          "[batch][scheduler]") {
  mock_multi_model m({.max_sequences = 4});
  greedy_scheduler sch(m, {.max_requests = 4, .max_batch_tokens = 16});
  std::vector<tandem::request_id> small;
  for (token_id t : {1, 2, 3}) small.push_back(*sch.submit({tokens{t}, {}, budget(40)}));
  REQUIRE(sch.step() == errc::ok);  // the three prompts and their first tokens
  const tokens long_prompt(200, 5);
  const auto big = *sch.submit({long_prompt, {}, budget(3)});
  std::size_t steps = 0;
  while (sch.state(big) != request_state::decoding) {
    std::vector<std::size_t> before;
    for (auto id : small) before.push_back(sch.peek(id)->tokens.size());
    const std::size_t calls = m.append_calls();
    REQUIRE(sch.step() == errc::ok);
    CHECK(m.append_calls() == calls + 1);  // one forward pass per step
    for (std::size_t i = 0; i < small.size(); ++i)
      CHECK(sch.peek(small[i])->tokens.size() == before[i] + 1);
    REQUIRE(++steps < 100);
  }
  CHECK(steps == (200 + 12) / 13);  // 16 - 3 decode tokens left per step for the prefill
  run(sch);
  completion c;
  REQUIRE(sch.take(big, c) == errc::ok);
  CHECK(c.tokens == lone_greedy(long_prompt, 3));
  for (std::size_t i = 0; i < small.size(); ++i) {
    REQUIRE(sch.take(small[i], c) == errc::ok);
    CHECK(c.tokens == lone_greedy(tokens{static_cast<token_id>(i + 1)}, 40));
  }
}

TEST_CASE("scheduler: max_prefill_tokens caps the prompt tokens of a step while others decode",
          "[batch][scheduler]") {
  mock_multi_model m({.max_sequences = 4});
  greedy_scheduler sch(m, {.max_requests = 4, .max_batch_tokens = 16, .max_prefill_tokens = 4});
  const tokens long_prompt(40, 5);
  const auto big = *sch.submit({long_prompt, {}, budget(3)});
  // Nothing decodes in the first step: it may prefill up to max_batch_tokens.
  REQUIRE(sch.step() == errc::ok);
  CHECK(sch.stats().prefill_tokens == 16);
  const auto small = *sch.submit({tokens{1}, {}, budget(40)});
  REQUIRE(sch.step() == errc::ok);  // big's next 16 (it comes first), small's 0
  REQUIRE(sch.step() == errc::ok);  // big's last 8 and small's 1: both decode now
  CHECK(sch.stats().prefill_tokens == 41);
  REQUIRE(sch.state(small) == request_state::decoding);
  const tokens second_prompt(30, 6);
  const auto second = *sch.submit({second_prompt, {}, budget(2)});
  for (int step = 0; step < 3; ++step) {  // some request decodes: 4 prompt tokens a step
    const std::size_t before = sch.stats().prefill_tokens;
    REQUIRE(sch.step() == errc::ok);
    CHECK(sch.stats().prefill_tokens - before == 4);
  }
  REQUIRE(sch.state(big) == request_state::finished);  // its 3 tokens
  sch.set_max_prefill_tokens(0);                       // none while some request decodes
  CHECK(sch.options().max_prefill_tokens == 0);
  std::size_t before = sch.stats().prefill_tokens;
  const std::size_t decoded = sch.stats().decode_tokens;
  REQUIRE(sch.step() == errc::ok);
  CHECK(sch.stats().prefill_tokens == before);
  CHECK(sch.stats().decode_tokens == decoded + 1);  // small's token all the same
  sch.set_max_prefill_tokens(std::numeric_limits<std::size_t>::max());  // the default
  before = sch.stats().prefill_tokens;
  REQUIRE(sch.step() == errc::ok);
  CHECK(sch.stats().prefill_tokens - before == 15);  // beside small's decode token
  run(sch);
  completion c;
  REQUIRE(sch.take(big, c) == errc::ok);
  CHECK(c.tokens == lone_greedy(long_prompt, 3));
  REQUIRE(sch.take(second, c) == errc::ok);
  CHECK(c.tokens == lone_greedy(second_prompt, 2));
  REQUIRE(sch.take(small, c) == errc::ok);
  CHECK(c.tokens == lone_greedy(tokens{1}, 40));
}

TEST_CASE("scheduler: an urgent request is served first when the cap binds", "[batch][scheduler]") {
  mock_multi_model m({.max_sequences = 4});
  greedy_scheduler sch(m, {.max_requests = 4, .max_batch_tokens = 8});
  const tokens p(8, 2);
  const auto calm = *sch.submit({p, {}, budget(4), 0});
  const auto urgent = *sch.submit({p, {}, budget(4), 5});
  REQUIRE(sch.step() == errc::ok);
  CHECK(sch.state(urgent) == request_state::decoding);
  CHECK(sch.peek(urgent)->tokens.size() == 1);
  CHECK(sch.state(calm) == request_state::prefilling);
  CHECK(sch.peek(calm)->tokens.empty());
  run(sch);
  completion a, b;
  REQUIRE(sch.take(calm, a) == errc::ok);
  REQUIRE(sch.take(urgent, b) == errc::ok);
  CHECK(a.tokens == b.tokens);
  CHECK(a.tokens == lone_greedy(p, 4));
}

TEST_CASE("scheduler: cancelling one request leaves the others' outputs unchanged",
          "[batch][scheduler]") {
  auto serve = [](bool cancel_one, std::vector<completion>& out) {
    mock_multi_model m({.max_sequences = 4});
    greedy_scheduler sch(m, {.max_requests = 4, .max_batch_tokens = 6});
    std::vector<tandem::request_id> ids;
    for (token_id t : {1, 4, 7, 10}) ids.push_back(*sch.submit({tokens{t, t, t}, {}, budget(12)}));
    for (int i = 0; i < 4; ++i) REQUIRE(sch.step() == errc::ok);
    if (cancel_one) {
      REQUIRE(sch.cancel(ids[2]) == errc::ok);
      CHECK(sch.state(ids[2]) == request_state::finished);
    }
    run(sch);
    out.resize(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) REQUIRE(sch.take(ids[i], out[i]) == errc::ok);
  };
  std::vector<completion> plain, cancelled;
  serve(false, plain);
  serve(true, cancelled);
  CHECK(cancelled[2].finish == finish_reason::cancelled);
  CHECK(cancelled[2].tokens.size() < plain[2].tokens.size());
  for (std::size_t i : {0u, 1u, 3u}) {
    CHECK(cancelled[i].tokens == plain[i].tokens);
    CHECK(cancelled[i].finish == finish_reason::length);
  }
}

TEST_CASE("scheduler: the streaming callback sees every token and may stop its request",
          "[batch][scheduler]") {
  mock_multi_model m;
  greedy_scheduler sch(m);
  tokens seen;
  auto on_token = [&](const tandem::token_event& ev) {
    seen.push_back(ev.token);
    return seen.size() == 3 ? tandem::control::stop : tandem::control::proceed;
  };
  const auto id = *sch.submit({tokens{2}, {}, budget(10), 0, tandem::token_callback(on_token)});
  const auto other = *sch.submit({tokens{2}, {}, budget(10)});
  run(sch);
  completion c, d;
  REQUIRE(sch.take(id, c) == errc::ok);
  REQUIRE(sch.take(other, d) == errc::ok);
  CHECK(c.finish == finish_reason::cancelled);
  CHECK(c.tokens == seen);
  CHECK(c.tokens == tokens(d.tokens.begin(), d.tokens.begin() + 3));
}

TEST_CASE("scheduler: bad requests and unknown ids are rejected with named errors",
          "[batch][scheduler]") {
  mock_multi_model m({.model = {.context_length = 16}, .max_sequences = 2});
  greedy_scheduler sch(m, {.max_requests = 2, .max_batch_tokens = 8, .max_prefixes = 1});
  const token_id bad_stop = 99;
  tandem::generation_options stops = budget(4);
  stops.stop_tokens = std::span<const token_id>(&bad_stop, 1);
  CHECK(sch.submit({tokens{}, {}, budget(4)}).error() == errc::empty_input);
  CHECK(sch.submit({tokens{1, 16}, {}, budget(4)}).error() == errc::invalid_token);
  CHECK(sch.submit({tokens{1}, {}, stops}).error() == errc::invalid_token);
  CHECK(sch.submit({tokens(17, 1), {}, budget(4)}).error() == errc::context_overflow);
  CHECK(sch.last_error().code == errc::context_overflow);
  CHECK(sch.active() == 0);

  CHECK(sch.add_prefix(tokens{}).error() == errc::empty_input);
  CHECK(sch.add_prefix(tokens{1, 99}).error() == errc::invalid_token);
  CHECK(m.is_open(0) == false);  // the failed prefix's sequence was closed
  const auto p = sch.add_prefix(tokens{1, 2});
  REQUIRE(p);
  CHECK(sch.add_prefix(tokens{3}).error() == errc::capacity_exceeded);
  CHECK(sch.remove_prefix(*p + 1) == errc::not_found);
  REQUIRE(sch.remove_prefix(*p) == errc::ok);
  CHECK(sch.remove_prefix(*p) == errc::not_found);

  const auto a = *sch.submit({tokens{1}, {}, budget(3)});
  const auto b = *sch.submit({tokens{2}, {}, budget(3)});
  CHECK(sch.submit({tokens{3}, {}, budget(3)}).error() == errc::capacity_exceeded);
  completion c;
  CHECK(sch.take(a, c) == errc::invalid_argument);  // not finished
  CHECK(sch.cancel(a ^ (std::uint64_t{1} << 40)) == errc::not_found);
  CHECK(sch.take(12345, c) == errc::not_found);
  run(sch);
  REQUIRE(sch.take(a, c) == errc::ok);
  CHECK(sch.take(a, c) == errc::not_found);  // taken: the id is gone
  CHECK(sch.cancel(a) == errc::not_found);
  REQUIRE(sch.take(b, c) == errc::ok);
  CHECK(c.tokens == lone_greedy(tokens{2}, 3));
}

TEST_CASE("scheduler: a request waits while the model has no free sequence", "[batch][scheduler]") {
  mock_multi_model m({.max_sequences = 2});
  greedy_scheduler sch(m, {.max_requests = 3});
  const auto a = *sch.submit({tokens{1}, {}, budget(2)});
  const auto b = *sch.submit({tokens{2}, {}, budget(5)});
  const auto c = *sch.submit({tokens{3}, {}, budget(2)});
  REQUIRE(sch.step() == errc::ok);
  CHECK(sch.state(c) == request_state::waiting);
  REQUIRE(sch.step() == errc::ok);  // a finishes, freeing its sequence
  CHECK(sch.state(a) == request_state::finished);
  REQUIRE(sch.step() == errc::ok);
  CHECK(sch.state(c) != request_state::waiting);
  run(sch);
  completion out;
  REQUIRE(sch.take(c, out) == errc::ok);
  CHECK(out.tokens == lone_greedy(tokens{3}, 2));
  REQUIRE(sch.take(b, out) == errc::ok);
  CHECK(out.tokens == lone_greedy(tokens{2}, 5));
}

TEST_CASE("scheduler: a failed batch finishes its requests with the error and names them",
          "[batch][scheduler]") {
  // Call 0 feeds both prompts; call 1 fails. The third request waits for a sequence, so
  // it is not in the failed batch and later runs as if nothing happened.
  mock_multi_model m({.model = {.fail_at_append = 1}, .max_sequences = 2});
  greedy_scheduler sch(m, {.max_requests = 3});
  const auto a = *sch.submit({tokens{1}, {}, budget(5)});
  const auto b = *sch.submit({tokens{2}, {}, budget(5)});
  const auto c = *sch.submit({tokens{3}, {}, budget(4)});
  REQUIRE(sch.step() == errc::ok);
  CHECK(sch.step() == errc::decode_failed);
  CHECK(sch.last_error().code == errc::decode_failed);
  CHECK(sch.last_error().context().find("slots 0 1") != std::string_view::npos);
  CHECK(sch.state(a) == request_state::finished);
  CHECK(sch.state(b) == request_state::finished);
  CHECK(sch.state(c) == request_state::waiting);
  CHECK(!m.is_open(0));
  CHECK(!m.is_open(1));
  run(sch);
  completion out;
  REQUIRE(sch.take(a, out) == errc::ok);
  CHECK(out.finish == finish_reason::error);
  CHECK(out.error == errc::decode_failed);
  CHECK(out.tokens.size() == 1);  // kept before the failure
  REQUIRE(sch.take(c, out) == errc::ok);
  CHECK(out.finish == finish_reason::length);
  CHECK(out.tokens == lone_greedy(tokens{3}, 4));
}

TEST_CASE("scheduler: a deadline that has passed finishes a request before any work",
          "[batch][scheduler]") {
  mock_multi_model m;
  greedy_scheduler sch(m);
  tandem::generation_options late = budget(5);
  late.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  const auto id = *sch.submit({tokens{1}, {}, late});
  const auto zero = *sch.submit({tokens{1}, {}, budget(0)});
  REQUIRE(sch.step() == errc::ok);
  CHECK(m.append_calls() == 0);
  completion c;
  REQUIRE(sch.take(id, c) == errc::ok);
  CHECK(c.finish == finish_reason::deadline);
  REQUIRE(sch.take(zero, c) == errc::ok);
  CHECK(c.finish == finish_reason::length);
  CHECK(c.tokens.empty());
}

TEST_CASE("scheduler: step() allocates nothing once warm", "[batch][scheduler]") {
  mock_multi_model m({.max_sequences = 4});
  greedy_scheduler sch(m, {.max_requests = 4, .max_batch_tokens = 8});
  REQUIRE(sch.add_prefix(tokens{3, 4, 5}));
  std::size_t streamed = 0;
  auto on_token = [&](const tandem::token_event&) {
    ++streamed;
    return tandem::control::proceed;
  };
  std::vector<completion> outs(4);
  std::vector<tandem::request_id> ids(4);
  const std::vector<tokens> prompts = {{3, 4, 5, 6}, {1, 2}, {3, 4, 5}, tokens(20, 7)};
  std::size_t allocations = 0;
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < 4; ++i)
      ids[i] = *sch.submit(
          {prompts[i], {}, budget(30), static_cast<int>(i), tandem::token_callback(on_token)});
    tandem_test::allocation_scope scope;
    run(sch);
    allocations = scope.allocations();
    for (std::size_t i = 0; i < 4; ++i) REQUIRE(sch.take(ids[i], outs[i]) == errc::ok);
  }
  CHECK(allocations == 0);
  CHECK(streamed == 3 * 4 * 30);
  CHECK(outs[3].tokens == lone_greedy(prompts[3], 30));
}
