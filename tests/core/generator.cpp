// Tests of the text-level generators: model_generator (prompt caching), any_generator
// (owning type erasure without RTTI) and generator_ref.
#include "tandem/core/generator.hpp"

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "common/mock_model.hpp"

namespace {
using tandem::any_generator;
using tandem::completion;
using tandem::errc;
using tandem::finish_reason;
using tandem::generate_request;
using tandem::generator_ref;
using tandem::model_generator;
using tandem::token_id;
using tandem_test::mock_model;
using tandem_test::mock_options;
using tandem_test::mock_tokenizer;

using tokens = std::vector<token_id>;

template <class M>
concept wrappable = requires {
  typename model_generator<M, mock_tokenizer>;
};

generate_request request(std::string_view prompt, std::size_t max_tokens) {
  generate_request r;
  r.prompt = prompt;
  r.options.max_tokens = max_tokens;
  return r;
}
}  // namespace

static_assert(tandem::Generator<model_generator<mock_model, mock_tokenizer>>);
static_assert(tandem::Generator<model_generator<mock_model&, const mock_tokenizer&>>);
static_assert(tandem::Generator<any_generator> && tandem::Generator<generator_ref>);
static_assert(!std::is_copy_constructible_v<any_generator> &&
              std::is_nothrow_move_constructible_v<any_generator>);
static_assert(std::is_trivially_copyable_v<generator_ref>);
static_assert(wrappable<mock_model> && !wrappable<tandem_test::mock_model_no_rewind>);

TEST_CASE("model_generator: refers to lvalues and owns rvalues", "[core][generator]") {
  mock_model m;
  mock_tokenizer tok;
  static_assert(std::is_same_v<decltype(model_generator(m, tok)),
                               model_generator<mock_model&, mock_tokenizer&>>);
  static_assert(std::is_same_v<decltype(model_generator(mock_model{}, mock_tokenizer{})),
                               model_generator<mock_model, mock_tokenizer>>);
  model_generator g(m, tok);
  CHECK(&g.model() == &m);
}

TEST_CASE("model_generator: generates text for a text prompt", "[core][generator]") {
  mock_model m;
  mock_tokenizer tok;
  model_generator g(m, tok);
  auto r = g.generate(request("hello", 3));  // 10 -> 11 "\n" -> 12 "ST" -> 13 "OP"
  REQUIRE(r);
  CHECK(r->tokens == tokens{11, 12, 13});
  CHECK(r->text == "\nSTOP");
  CHECK(r->finish == finish_reason::length);
  CHECK(r->prompt_tokens == 1);
  CHECK(r->logprobs.size() == 3);
}

TEST_CASE("model_generator: reuses the common prefix and rewinds only the divergent tail",
          "[core][generator]") {
  mock_model m;
  mock_tokenizer tok;
  model_generator g(m, tok);

  // "hello a b" = 10 3 1 3 2; three tokens are generated, two of them fed.
  auto r1 = g.generate(request("hello a b", 3));
  REQUIRE(r1);
  CHECK(m.counters().appended_tokens == 5 + 2);
  CHECK(m.size() == 7);
  CHECK(g.cached_tokens().size() == 7);

  // "hello a a" = 10 3 1 3 1 shares four tokens: rewind three, feed one.
  m.reset_counters();
  auto r2 = g.generate(request("hello a a", 3));
  REQUIRE(r2);
  CHECK(m.counters().rewound_tokens == 3);
  CHECK(m.counters().appended_tokens == 1 + 2);
  CHECK(r2->prompt_tokens == 5);
  CHECK(r2->tokens == tokens{2, 3, 4});

  // The same answer as a fresh model gives.
  mock_model fresh;
  model_generator g2(fresh, tok);
  auto r3 = g2.generate(request("hello a a", 3));
  REQUIRE(r3);
  CHECK(r3->tokens == r2->tokens);
  CHECK(r3->text == r2->text);
}

TEST_CASE("model_generator: a repeated prompt feeds only its last token", "[core][generator]") {
  mock_model m;
  mock_tokenizer tok;
  model_generator g(m, tok);
  auto r1 = g.generate(request("a b a", 4));
  REQUIRE(r1);
  m.reset_counters();
  auto r2 = g.generate(request("a b a", 4));
  REQUIRE(r2);
  // The 3 fed generated tokens and the last prompt token are rewound; one token re-fed.
  CHECK(m.counters().rewound_tokens == 4);
  CHECK(m.counters().appended_tokens == 1 + 3);
  CHECK(r2->tokens == r1->tokens);
  CHECK(r2->text == r1->text);
}

TEST_CASE("model_generator: a continuation of the previous exchange feeds only the new part",
          "[core][generator]") {
  mock_options mo;
  mo.successor.assign(16, 3);  // the model always says " "
  mock_model m(mo);
  mock_tokenizer tok;
  model_generator g(m, tok);
  auto r1 = g.generate(request("a b", 2));  // "  " (two spaces), one fed
  REQUIRE(r1);
  CHECK(r1->text == "  ");
  m.reset_counters();
  auto r2 = g.generate(request("a b  a", 1));  // prompt + output + "a"
  REQUIRE(r2);
  CHECK(m.counters().rewound_tokens == 0);
  CHECK(m.counters().appended_tokens == 2);  // the unfed output token and "a"
}

TEST_CASE("model_generator: a model used elsewhere is rewound completely", "[core][generator]") {
  mock_model m;
  mock_tokenizer tok;
  model_generator g(m, tok);
  REQUIRE(g.generate(request("a b", 2)));
  const token_id extra[] = {5};
  REQUIRE(m.append(extra) == errc::ok);
  const std::size_t size = m.size();
  m.reset_counters();
  auto r = g.generate(request("a b", 2));
  REQUIRE(r);
  CHECK(m.counters().rewound_tokens == size);
  CHECK(m.counters().appended_tokens == 3 + 1);

  m.reset_counters();
  g.forget_cache();
  REQUIRE(g.generate(request("a b", 2)));
  CHECK(m.counters().rewound_tokens == m.counters().appended_tokens);
}

TEST_CASE("model_generator: streams through the request's callback", "[core][generator]") {
  mock_model m;
  mock_tokenizer tok;
  model_generator g(m, tok);
  std::string streamed;
  auto cb = [&](const tandem::token_event& ev) {
    streamed += ev.piece;
    return ev.index == 1 ? tandem::control::stop : tandem::control::proceed;
  };
  generate_request req = request("hello", 10);
  req.on_token = tandem::token_callback(cb);
  auto r = g.generate(req);
  REQUIRE(r);
  CHECK(r->finish == finish_reason::cancelled);
  CHECK(r->tokens.size() == 2);
  CHECK(streamed == r->text);
}

TEST_CASE("model_generator: errors before any token are returned as errors", "[core][generator]") {
  mock_model m;
  mock_tokenizer tok;
  model_generator g(m, tok);
  CHECK(g.generate(request("", 3)).error() == errc::empty_input);
  CHECK(g.generate(request("xyz", 3)).error() == errc::invalid_argument);  // not encodable
  generate_request hot = request("a", 3);
  hot.sampling.temperature = -1.0f;
  CHECK(g.generate(hot).error() == errc::invalid_temperature);
  const std::string_view empty_stop[] = {""};
  generate_request bad_stop = request("a", 3);
  bad_stop.options.stop_strings = empty_stop;
  CHECK(g.generate(bad_stop).error() == errc::invalid_argument);
  CHECK(m.counters().append_calls == 0);

  mock_options small;
  small.vocab = 8;
  mock_model m8(small);
  model_generator g8(m8, tok);
  CHECK(g8.generate(request("a", 3)).error() == errc::vocab_mismatch);
  CHECK(g8.last_error().code == errc::vocab_mismatch);
  CHECK(g8.last_error().context() ==
        "tokenizer vocabulary " + std::to_string(tok.vocab_size()) + ", model vocabulary 8");
}

TEST_CASE("model_generator: a failure mid-run returns the partial completion",
          "[core][generator]") {
  mock_options mo;
  mo.fail_at_append = 2;
  mock_model m(mo);
  mock_tokenizer tok;
  model_generator g(m, tok);
  auto r = g.generate(request("a", 10));  // "b", " " then the append of " " fails
  REQUIRE(r);
  CHECK(r->finish == finish_reason::error);
  CHECK(r->error == errc::decode_failed);
  CHECK(r->text == "b ");
  // The cache still describes the model: the next request reuses it.
  CHECK(g.cached_tokens().size() == m.size());
}

TEST_CASE("model_generator: a repeated seeded request gives the same text and allocates nothing",
          "[core][generator][alloc]") {
  mock_model m;
  mock_tokenizer tok;
  model_generator g(m, tok);
  generate_request req = request("hello a", 20);
  req.sampling.temperature = 0.9f;
  req.sampling.seed = 7;
  completion first, out;
  REQUIRE(g.generate(req, first) == errc::ok);
  REQUIRE(g.generate(req, out) == errc::ok);  // warms `out`

  tandem_test::allocation_scope scope;
  REQUIRE(g.generate(req, out) == errc::ok);
  CHECK(scope.allocations() == 0);
  CHECK(out.tokens == first.tokens);
  CHECK(out.text == first.text);

  req.sampling.seed = 8;
  REQUIRE(g.generate(req, out) == errc::ok);
  CHECK(out.tokens != first.tokens);
}

namespace {
// A generator that counts calls and destructions, to observe ownership.
struct probe {
  int* destroyed;
  int calls = 0;
  explicit probe(int* d) : destroyed(d) {}
  probe(probe&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)), calls(o.calls) {}
  probe(const probe&) = delete;
  ~probe() {
    if (destroyed != nullptr) ++*destroyed;
  }
  tandem::result<completion> generate(const generate_request& req) {
    ++calls;
    if (req.prompt.empty()) return errc::empty_input;
    completion c;
    c.text = std::string(req.prompt) + "!";
    return c;
  }
};
}  // namespace

TEST_CASE("any_generator: owns and forwards to any generator", "[core][generator]") {
  int destroyed = 0;
  {
    std::vector<any_generator> stages;
    stages.emplace_back(probe(&destroyed));
    stages.emplace_back(model_generator(mock_model{}, mock_tokenizer{}));
    CHECK(destroyed == 0);

    auto a = stages[0].generate(request("hi", 1));
    REQUIRE(a);
    CHECK(a->text == "hi!");
    CHECK(stages[0].generate(request("", 1)).error() == errc::empty_input);
    auto b = stages[1].generate(request("hello", 1));
    REQUIRE(b);
    CHECK(b->text == "\n");

    any_generator moved = std::move(stages[0]);
    CHECK_FALSE(stages[0].has_value());
    CHECK(stages[0].generate(request("hi", 1)).error() == errc::invalid_argument);
    CHECK(moved.generate(request("x", 1))->text == "x!");
    moved.reset();
    CHECK(destroyed == 1);
    CHECK_FALSE(moved);
  }
  CHECK(destroyed == 1);
}

TEST_CASE("any_generator: an empty one reports invalid_argument", "[core][generator]") {
  any_generator g;
  CHECK_FALSE(g.has_value());
  CHECK(g.generate(request("hi", 1)).error() == errc::invalid_argument);
}

TEST_CASE("generator_ref: refers to a generator without owning it", "[core][generator]") {
  int destroyed = 0;
  probe p(&destroyed);
  {
    generator_ref r(p);
    generator_ref copy = r;
    CHECK(copy.generate(request("a", 1))->text == "a!");
    CHECK(r.generate(request("b", 1))->text == "b!");
    any_generator owner_of_ref(r);  // erasing a reference still refers to p
    CHECK(owner_of_ref.generate(request("c", 1))->text == "c!");
  }
  CHECK(p.calls == 3);
  CHECK(destroyed == 0);
}
