// Tests of the generation loop: every stop rule, errors with partial output, streaming
// text (UTF-8 and stop strings), per-token statistics and zero allocation once warm.
#include "tandem/core/generate.hpp"

#include <chrono>
#include <cmath>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tandem/core/sampler.hpp"

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "common/mock_model.hpp"

namespace {
using tandem::completion;
using tandem::control;
using tandem::errc;
using tandem::finish_reason;
using tandem::generation_options;
using tandem::token_event;
using tandem::token_id;
using tandem_test::mock_model;
using tandem_test::mock_options;
using tandem_test::mock_tokenizer;
using namespace std::chrono_literals;

using tokens = std::vector<token_id>;

// A mock model whose greedy continuation after a prompt of `prompt_len` tokens is
// `continuation`.
mock_model scripted(std::size_t prompt_len, const tokens& continuation, mock_options o = {}) {
  o.script.assign(prompt_len, 0);
  o.script.insert(o.script.end(), continuation.begin(), continuation.end());
  return mock_model(std::move(o));
}

tokens as_vector(std::span<const token_id> s) { return tokens(s.begin(), s.end()); }

// Records every event of a run.
struct recorder {
  std::vector<token_event> events;
  std::string streamed;
  std::vector<std::string> pieces;
  std::size_t stop_at = static_cast<std::size_t>(-1);
  control operator()(const token_event& ev) {
    events.push_back(ev);
    pieces.emplace_back(ev.piece);
    streamed += ev.piece;
    return ev.index == stop_at && ev.token != tandem::flush_event_token ? control::stop
                                                                        : control::proceed;
  }
};

// True when `s` is well-formed UTF-8 made of complete characters.
bool complete_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// log p(favourite) and entropy of the mock's distribution, computed independently.
void mock_stats(std::size_t vocab, double& logprob, double& entropy) {
  std::vector<double> l(vocab);
  l[0] = 3.0;
  for (std::size_t k = 1; k < vocab; ++k) l[k] = -0.25 * static_cast<double>(k);
  double z = 0;
  for (double x : l) z += std::exp(x);
  logprob = 3.0 - std::log(z);
  entropy = 0;
  for (double x : l) entropy -= std::exp(x) / z * (x - std::log(z));
}
}  // namespace

namespace {
struct returns_void {
  void operator()(const token_event&) const {}
};
struct returns_int {
  int operator()(const token_event&) const { return 1; }
};
struct takes_int {
  control operator()(int) const { return control::stop; }
};
}  // namespace
static_assert(tandem::TokenCallback<tandem::no_callback>);
static_assert(tandem::TokenCallback<returns_void&>);
static_assert(tandem::TokenCallback<const returns_void&>);
static_assert(tandem::TokenCallback<tandem::token_callback>);
static_assert(!tandem::TokenCallback<returns_int>);
static_assert(!tandem::TokenCallback<takes_int>);

TEST_CASE("generate: stops after max_tokens with finish length", "[core][generate]") {
  mock_model m;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1};
  generation_options o;
  o.max_tokens = 4;
  REQUIRE(tandem::generate(m, s, prompt, o, out) == errc::ok);
  CHECK(out.finish == finish_reason::length);
  CHECK(out.tokens == tokens{2, 3, 4, 5});
  CHECK(out.prompt_tokens == 1);
  CHECK(out.error == errc::ok);
  CHECK(out.text.empty());
  // The last token's logits were never needed, so it is not fed.
  CHECK(as_vector(m.tokens()) == tokens{1, 2, 3, 4});
}

TEST_CASE("generate: max_tokens 0 gives finish length and no tokens", "[core][generate]") {
  mock_model m;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1, 2};
  generation_options o;
  o.max_tokens = 0;
  REQUIRE(tandem::generate(m, s, prompt, o, out) == errc::ok);
  CHECK(out.finish == finish_reason::length);
  CHECK(out.tokens.empty());
  CHECK(m.size() == 2);
}

TEST_CASE("generate: records the model's log-probability and entropy per token",
          "[core][generate]") {
  mock_model m;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1};
  generation_options o;
  o.max_tokens = 3;
  recorder rec;
  REQUIRE(tandem::generate(m, s, prompt, o, out, rec) == errc::ok);
  double lp = 0, h = 0;
  mock_stats(16, lp, h);
  REQUIRE(out.logprobs.size() == 3);
  REQUIRE(out.entropies.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(out.logprobs[i] == Approx(lp).epsilon(1e-5));
    CHECK(out.entropies[i] == Approx(h).epsilon(1e-5));
    CHECK(rec.events[i].logprob == out.logprobs[i]);
    CHECK(rec.events[i].entropy == out.entropies[i]);
    CHECK(rec.events[i].token == out.tokens[i]);
    CHECK(rec.events[i].index == i);
  }

  o.record_logprobs = false;
  rec = {};
  REQUIRE(m.rewind(m.size()) == errc::ok);
  REQUIRE(tandem::generate(m, s, prompt, o, out, rec) == errc::ok);
  CHECK(out.tokens.size() == 3);
  CHECK(out.logprobs.empty());
  CHECK(out.entropies.empty());
  CHECK(std::isnan(rec.events[0].logprob));
}

TEST_CASE("generate: a stop token ends the generation and is not kept", "[core][generate]") {
  mock_model m;  // successor chain 13 -> 14 -> 15 -> 0
  tandem_test::counting_greedy_sampler s;
  s.history.reserve(16);
  completion out;
  const tokens prompt{13};
  const token_id stops[] = {tandem_test::mock_eos};
  generation_options o;
  o.stop_tokens = stops;
  REQUIRE(tandem::generate(m, s, prompt, o, out) == errc::ok);
  CHECK(out.finish == finish_reason::stop_token);
  CHECK(out.tokens == tokens{14, 15});
  CHECK(out.logprobs.size() == 2);
  // Every kept token was accepted by the sampler; the stop token was not.
  CHECK(s.accepted == 2);
  CHECK(s.history == tokens{14, 15});
  CHECK(as_vector(m.tokens()) == tokens{13, 14, 15});
}

TEST_CASE("generate: a stop string spanning two tokens cuts the text before it",
          "[core][generate]") {
  // "hello" then "a", "ST", "OP", "b".
  mock_model m = scripted(1, {1, 12, 13, 2});
  mock_tokenizer tok;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{10};
  const std::string_view stops[] = {"STOP"};
  generation_options o;
  o.stop_strings = stops;
  recorder rec;
  REQUIRE(tandem::generate(m, tok, s, prompt, o, out, rec) == errc::ok);
  CHECK(out.finish == finish_reason::stop_string);
  CHECK(out.text == "a");
  // The tokens that spelled the stop string stay: they are the model's output.
  CHECK(out.tokens == tokens{1, 12, 13});
  CHECK(rec.pieces == std::vector<std::string>{"a", "", ""});
  CHECK(rec.streamed == out.text);
}

TEST_CASE("generate: text held as a possible stop string is streamed once it cannot match",
          "[core][generate]") {
  mock_model m = scripted(1, {1, 12, 2, 15});  // "a", "ST", "b", "."
  mock_tokenizer tok;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{10};
  const std::string_view stops[] = {"STOP"};
  generation_options o;
  o.stop_strings = stops;
  o.max_tokens = 4;
  recorder rec;
  REQUIRE(tandem::generate(m, tok, s, prompt, o, out, rec) == errc::ok);
  CHECK(out.finish == finish_reason::length);
  CHECK(out.text == "aSTb.");
  CHECK(rec.pieces == std::vector<std::string>{"a", "", "STb", "."});
}

TEST_CASE("generate: text still held at a stop token arrives in a closing event",
          "[core][generate]") {
  mock_model m = scripted(1, {1, 12, 0});  // "a", "ST", eos
  mock_tokenizer tok;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{10};
  const std::string_view stops[] = {"STOP"};
  const token_id stop_tokens[] = {tandem_test::mock_eos};
  generation_options o;
  o.stop_strings = stops;
  o.stop_tokens = stop_tokens;
  recorder rec;
  REQUIRE(tandem::generate(m, tok, s, prompt, o, out, rec) == errc::ok);
  CHECK(out.finish == finish_reason::stop_token);
  CHECK(out.text == "aST");
  CHECK(out.tokens == tokens{1, 12});
  REQUIRE(rec.events.size() == 3);
  CHECK(rec.events[2].token == tandem::flush_event_token);
  CHECK(rec.events[2].index == 2);
  CHECK(rec.pieces == std::vector<std::string>{"a", "", "ST"});
  CHECK(rec.streamed == out.text);
}

TEST_CASE("generate: the stream never splits a UTF-8 character and equals the text",
          "[core][generate]") {
  // "é" in two tokens, "a", an emoji in two tokens, "é" in one token.
  mock_model m = scripted(1, {6, 7, 1, 8, 9, 14});
  mock_tokenizer tok;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{10};
  generation_options o;
  o.max_tokens = 6;
  recorder rec;
  REQUIRE(tandem::generate(m, tok, s, prompt, o, out, rec) == errc::ok);
  CHECK(out.text ==
        "\xC3\xA9"
        "a\xF0\x9F\x98\x80\xC3\xA9");
  CHECK(rec.streamed == out.text);
  CHECK(rec.pieces ==
        std::vector<std::string>{"", "\xC3\xA9", "a", "", "\xF0\x9F\x98\x80", "\xC3\xA9"});
  for (const auto& p : rec.pieces) CHECK(complete_utf8(p));
}

TEST_CASE("generate: a generation cut off inside a character streams the final bytes",
          "[core][generate]") {
  mock_model m = scripted(1, {1, 6, 7});
  mock_tokenizer tok;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{10};
  generation_options o;
  o.max_tokens = 2;
  recorder rec;
  REQUIRE(tandem::generate(m, tok, s, prompt, o, out, rec) == errc::ok);
  CHECK(out.text == "a\xC3");
  // The text is final, so the last token's event carries the lone byte.
  CHECK(rec.pieces == std::vector<std::string>{"a", "\xC3"});
}

TEST_CASE("generate: a deadline already passed gives no tokens", "[core][generate]") {
  mock_model m;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1};
  generation_options o;
  o.deadline = std::chrono::steady_clock::now() - 1s;
  REQUIRE(tandem::generate(m, s, prompt, o, out) == errc::ok);
  CHECK(out.finish == finish_reason::deadline);
  CHECK(out.tokens.empty());
}

TEST_CASE("generate: a deadline passing mid-run keeps the tokens made before it",
          "[core][generate]") {
  mock_model m;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1};
  generation_options o;
  o.deadline = std::chrono::steady_clock::now() + 200ms;
  // The third token's callback waits until the deadline has passed.
  auto slow = [&](const token_event& ev) {
    if (ev.index == 2) std::this_thread::sleep_until(*o.deadline + 1ms);
  };
  REQUIRE(tandem::generate(m, s, prompt, o, out, slow) == errc::ok);
  CHECK(out.finish == finish_reason::deadline);
  CHECK(out.tokens == tokens{2, 3, 4});
}

TEST_CASE("generate: a callback returning stop cancels and keeps its token", "[core][generate]") {
  mock_model m;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1};
  recorder rec;
  rec.stop_at = 2;
  REQUIRE(tandem::generate(m, s, prompt, generation_options{}, out, rec) == errc::ok);
  CHECK(out.finish == finish_reason::cancelled);
  CHECK(out.tokens == tokens{2, 3, 4});
  CHECK(rec.events.size() == 3);
}

TEST_CASE("generate: the context filling up ends the generation", "[core][generate]") {
  mock_options mo;
  mo.context_length = 6;
  mock_model m(mo);
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1, 2, 3};
  REQUIRE(tandem::generate(m, s, prompt, generation_options{}, out) == errc::ok);
  CHECK(out.finish == finish_reason::context_full);
  // Three tokens fill the context; a fourth is sampled from the full context.
  CHECK(out.tokens == tokens{4, 5, 6, 7});
  CHECK(m.size() == 6);
}

namespace {
// A model that refuses appends past its capacity but does not report a context length.
struct unreported_length {
  mock_model m;
  std::size_t vocab_size() const { return m.vocab_size(); }
  std::size_t size() const { return m.size(); }
  errc append(std::span<const token_id> t) { return m.append(t); }
  std::span<const float> logits() const { return m.logits(); }
};
}  // namespace

TEST_CASE("generate: context_overflow from a model without a reported length is context_full",
          "[core][generate]") {
  static_assert(!tandem::HasContextLength<unreported_length>);
  mock_options mo;
  mo.context_length = 6;
  unreported_length u{mock_model(mo)};
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1, 2, 3};
  REQUIRE(tandem::generate(u, s, prompt, generation_options{}, out) == errc::ok);
  CHECK(out.finish == finish_reason::context_full);
  CHECK(out.tokens == tokens{4, 5, 6, 7});
}

TEST_CASE("generate: a prompt longer than the context is rejected before the model runs",
          "[core][generate]") {
  mock_options mo;
  mo.context_length = 2;
  mock_model m(mo);
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1, 2, 3};
  CHECK(tandem::generate(m, s, prompt, generation_options{}, out) == errc::context_overflow);
  CHECK(out.finish == finish_reason::error);
  CHECK(m.counters().append_calls == 0);
}

TEST_CASE("generate: a model failure at step k keeps the partial output", "[core][generate]") {
  mock_options mo;
  mo.fail_at_append = 3;  // call 0 is the prompt; call 3 feeds the third generated token
  mock_model m(mo);
  mock_tokenizer tok;
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1};  // continues "b", " ", "S", ...
  recorder rec;
  CHECK(tandem::generate(m, tok, s, prompt, generation_options{}, out, rec) == errc::decode_failed);
  CHECK(out.finish == finish_reason::error);
  CHECK(out.error == errc::decode_failed);
  CHECK(out.tokens == tokens{2, 3, 4});
  CHECK(out.text == "b S");
  CHECK(rec.streamed == out.text);
  // The failed append left the context as it was.
  CHECK(as_vector(m.tokens()) == tokens{1, 2, 3});
}

TEST_CASE("generate: a failure while feeding the prompt leaves the model unchanged",
          "[core][generate]") {
  mock_options mo;
  mo.fail_at_append = 0;
  mock_model m(mo);
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1, 2};
  CHECK(tandem::generate(m, s, prompt, generation_options{}, out) == errc::decode_failed);
  CHECK(out.finish == finish_reason::error);
  CHECK(out.tokens.empty());
  CHECK(m.size() == 0);
}

TEST_CASE("generate: non-finite logits mid-run stop with the sampler's error", "[core][generate]") {
  mock_options mo;
  mo.non_finite_at = 3;
  mock_model m(mo);
  tandem::greedy_sampler s;
  completion out;
  const tokens prompt{1};
  CHECK(tandem::generate(m, s, prompt, generation_options{}, out) == errc::non_finite);
  CHECK(out.error == errc::non_finite);
  CHECK(out.tokens == tokens{2, 3});
}

TEST_CASE("generate: bad input gives named errors without calling the model", "[core][generate]") {
  mock_model m;
  mock_tokenizer tok;
  tandem::greedy_sampler s;
  completion out;
  generation_options o;

  CHECK(tandem::generate(m, s, tokens{}, o, out) == errc::empty_input);
  CHECK(out.error == errc::empty_input);
  CHECK(tandem::generate(m, s, tokens{1, 16}, o, out) == errc::invalid_token);
  CHECK(out.finish == finish_reason::error);
  CHECK(tandem::generate(m, s, tokens{-1}, o, out) == errc::invalid_token);

  const token_id bad_stop[] = {99};
  o.stop_tokens = bad_stop;
  CHECK(tandem::generate(m, s, tokens{1}, o, out) == errc::invalid_token);
  o.stop_tokens = {};

  const std::string_view stops[] = {"x"};
  o.stop_strings = stops;
  CHECK(tandem::generate(m, s, tokens{1}, o, out) == errc::invalid_argument);
  const std::string_view empty_stop[] = {""};
  o.stop_strings = empty_stop;
  CHECK(tandem::generate(m, tok, s, tokens{1}, o, out) == errc::invalid_argument);
  o.stop_strings = {};

  mock_options small;
  small.vocab = 8;
  mock_model m8(small);
  CHECK(tandem::generate(m8, tok, s, tokens{1}, o, out) == errc::vocab_mismatch);

  CHECK(m.counters().append_calls == 0);
  CHECK(m8.counters().append_calls == 0);
}

namespace {
// A sampler that returns an id outside the vocabulary.
struct broken_sampler {
  tandem::result<token_id> sample(std::span<const float>) { return token_id{16}; }
  void accept(token_id) {}
  void reset() {}
};
}  // namespace

TEST_CASE("generate: a sampler returning an id outside the vocabulary is an error",
          "[core][generate]") {
  mock_model m;
  broken_sampler s;
  completion out;
  CHECK(tandem::generate(m, s, tokens{1}, generation_options{}, out) == errc::invalid_token);
  CHECK(out.tokens.empty());
}

TEST_CASE("generate: the same seed gives the same tokens", "[core][generate]") {
  tandem::sampling_options p;
  p.temperature = 1.5f;
  p.seed = 42;
  completion a, b;
  for (completion* out : {&a, &b}) {
    mock_model m;
    auto s = tandem::make_sampler(p, 16);
    REQUIRE(s);
    generation_options o;
    o.max_tokens = 32;
    REQUIRE(tandem::generate(m, *s, tokens{1}, o, *out) == errc::ok);
  }
  CHECK(a.tokens == b.tokens);
  CHECK(a.logprobs == b.logprobs);
}

TEST_CASE("generate: a warm loop allocates nothing", "[core][generate][alloc]") {
  mock_model m;
  mock_tokenizer tok;
  tandem::sampling_options p;
  p.temperature = 0.8f;
  p.top_k = 8;
  p.top_p = 0.95f;
  auto s = tandem::make_sampler(p, 16);
  REQUIRE(s);
  const tokens prompt{10, 3, 1};
  const std::string_view stops[] = {"STOP", "\n\n"};
  generation_options o;
  o.max_tokens = 64;
  o.stop_strings = stops;
  std::size_t events = 0;
  auto count = [&events](const token_event&) { ++events; };

  completion out;
  tandem_test::allocation_scope first;
  REQUIRE(tandem::generate(m, tok, *s, prompt, o, out, count) == errc::ok);
  CHECK(first.allocations() > 0);  // the fresh completion reserved its buffers
  const std::size_t generated = out.tokens.size();
  REQUIRE(generated > 0);

  REQUIRE(m.rewind(m.size()) == errc::ok);
  s->reseed(0);
  events = 0;
  tandem_test::allocation_scope second;
  REQUIRE(tandem::generate(m, tok, *s, prompt, o, out, count) == errc::ok);
  CHECK(second.allocations() == 0);
  CHECK(out.tokens.size() == generated);
  CHECK(events >= generated);

  // The token-level overload too.
  REQUIRE(m.rewind(m.size()) == errc::ok);
  o.stop_strings = {};
  REQUIRE(tandem::generate(m, *s, prompt, o, out) == errc::ok);
  REQUIRE(m.rewind(m.size()) == errc::ok);
  second.restart();
  REQUIRE(tandem::generate(m, *s, prompt, o, out) == errc::ok);
  CHECK(second.allocations() == 0);
}

TEST_CASE("generate: a model that already holds tokens is context_not_empty and left untouched",
          "[core][generate]") {
  mock_model m;
  tandem::greedy_sampler s;
  completion first, again;
  const tokens prompt{1};
  generation_options o;
  o.max_tokens = 3;
  REQUIRE(tandem::generate(m, s, prompt, o, first) == errc::ok);
  const auto held = m.size();
  REQUIRE(held > 0);

  CHECK(tandem::generate(m, s, prompt, o, again) == errc::context_not_empty);
  CHECK(again.finish == tandem::finish_reason::error);
  CHECK(again.error == errc::context_not_empty);
  CHECK(m.size() == held);

  // Rewound to the start, the same prompt gives the same tokens again.
  REQUIRE(m.rewind(m.size()) == errc::ok);
  REQUIRE(tandem::generate(m, s, prompt, o, again) == errc::ok);
  CHECK(again.tokens == first.tokens);
}

TEST_CASE("generate: continue_generation appends the prompt to the context the model holds",
          "[core][generate]") {
  mock_model m, fresh;
  tandem::greedy_sampler s;
  completion turn1, turn2, whole;
  generation_options o;
  o.max_tokens = 2;
  const tokens first{1}, second{5};
  REQUIRE(tandem::generate(m, s, first, o, turn1) == errc::ok);
  const auto held = static_cast<std::size_t>(m.size());
  REQUIRE(tandem::continue_generation(m, s, second, o, turn2) == errc::ok);
  CHECK(static_cast<std::size_t>(m.size()) >= held + second.size());
  CHECK(turn2.prompt_tokens == second.size());

  // The same tokens fed at once to a fresh model: continuing is feeding the whole history.
  tokens history(first);
  history.insert(history.end(), turn1.tokens.begin(), turn1.tokens.begin() + (held - first.size()));
  history.insert(history.end(), second.begin(), second.end());
  REQUIRE(tandem::generate(fresh, s, history, o, whole) == errc::ok);
  CHECK(whole.tokens == turn2.tokens);

  // On an empty model continue_generation is generate.
  mock_model empty;
  completion a;
  REQUIRE(tandem::continue_generation(empty, s, first, o, a) == errc::ok);
  CHECK(a.tokens == turn1.tokens);
}
