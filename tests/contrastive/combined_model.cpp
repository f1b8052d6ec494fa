// Tests of combined models (contrastive, proxy tuning, log-linear ensembles) as
// LanguageModels: decoding equivalences, lock-step failure handling, the public
// conformance suite (the score/rewind properties that speculative verification relies
// on), and zero allocation once warm.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "contrastive/hash_model.hpp"
#include "tandem/contrastive/combined_model.hpp"
#include "tandem/contrastive/vocab_map.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/testing/catch2.hpp"

namespace {

using tandem::errc;
using tandem::token_id;
using tandem_test::hash_model;
using tandem_test::hash_model_no_rewind;
using tandem_test::hash_options;
constexpr float inf = std::numeric_limits<float>::infinity();

hash_options opts(std::uint64_t seed, std::size_t vocab = 32) {
  hash_options o;
  o.seed = seed;
  o.vocab = vocab;
  return o;
}

template <class M>
std::vector<token_id> greedy_run(M& m, std::span<const token_id> prompt, std::size_t n) {
  tandem::greedy_sampler s;
  tandem::completion out;
  tandem::generation_options g;
  g.max_tokens = n;
  REQUIRE(tandem::generate(m, s, prompt, g, out) == errc::ok);
  return out.tokens;
}

std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }

}  // namespace

static_assert(tandem::LanguageModel<tandem::contrastive_model<hash_model, hash_model>>);
static_assert(tandem::Rewindable<tandem::contrastive_model<hash_model, hash_model>>);
static_assert(tandem::Scoring<tandem::contrastive_model<hash_model, hash_model>>);
static_assert(!tandem::Rewindable<tandem::contrastive_model<hash_model, hash_model_no_rewind>>);
static_assert(
    tandem::LanguageModel<tandem::log_linear_ensemble<hash_model, hash_model, hash_model>>);

TEST_CASE("contrastive model: beta = 0 decodes exactly as the expert alone",
          "[contrastive][model]") {
  hash_model expert(opts(1)), amateur(opts(2)), alone(opts(1));
  tandem::contrastive_options p;
  p.form = tandem::contrastive_form::obrien2023;
  p.beta = 0.0f;
  auto cd = tandem::make_contrastive(expert, amateur, p);
  REQUIRE(cd);
  const token_id prompt[] = {3, 4};
  CHECK(greedy_run(*cd, prompt, 40) == greedy_run(alone, prompt, 40));
  CHECK(expert.size() == amateur.size());
}

TEST_CASE("contrastive model: with beta > 0 the output differs from the expert's",
          "[contrastive][model]") {
  hash_model expert(opts(1)), amateur(opts(2)), alone(opts(1));
  auto cd = tandem::make_contrastive(expert, amateur);  // Li et al., alpha 0.1
  REQUIRE(cd);
  const token_id prompt[] = {3, 4};
  CHECK(greedy_run(*cd, prompt, 40) != greedy_run(alone, prompt, 40));
}

TEST_CASE("contrastive model: sampling draws only from V_head", "[contrastive][model]") {
  hash_model expert(opts(5)), amateur(opts(6));
  tandem::contrastive_options p;
  p.alpha = 0.5f;
  auto cd = tandem::make_contrastive(expert, amateur, p);
  REQUIRE(cd);
  tandem::categorical_sampler s(1.0f, 42);
  const token_id prompt[] = {1};
  REQUIRE(cd->append(prompt) == errc::ok);
  for (int step = 0; step < 200; ++step) {
    const auto e = copy(expert.logits());
    const float m = *std::max_element(e.begin(), e.end());
    const auto t = s.sample(cd->logits());
    REQUIRE(t);
    CHECK(e[static_cast<std::size_t>(*t)] >= m + std::log(0.5f) - 1e-5f);
    const token_id one[] = {*t};
    REQUIRE(cd->append(one) == errc::ok);
  }
}

TEST_CASE("proxy tuning: tuned == base decodes exactly as the large model",
          "[contrastive][model]") {
  hash_model large(opts(1)), tuned(opts(9)), base(opts(9)), alone(opts(1));
  auto pt = tandem::make_proxy_tuning(large, tuned, base);
  REQUIRE(pt);
  const token_id prompt[] = {7};
  REQUIRE(pt->append(prompt) == errc::ok);
  CHECK(copy(pt->logits()) == copy(large.logits()));
  REQUIRE(pt->rewind(1) == errc::ok);
  CHECK(greedy_run(*pt, prompt, 30) == greedy_run(alone, prompt, 30));
}

TEST_CASE("log-linear ensemble: logits are the weighted sum of the parts'",
          "[contrastive][model]") {
  hash_model a(opts(1)), b(opts(2)), c(opts(3));
  auto ens = tandem::make_log_linear_ensemble({0.5f, 0.25f, 0.25f}, a, b, c);
  REQUIRE(ens);
  const token_id prompt[] = {2, 3};
  REQUIRE(ens->append(prompt) == errc::ok);
  for (std::size_t i = 0; i < 32; ++i)
    CHECK(ens->logits()[i] ==
          Approx(0.5f * a.logits()[i] + 0.25f * b.logits()[i] + 0.25f * c.logits()[i]));
  CHECK(tandem::make_log_linear_ensemble({1.0f, -1.0f}, a, b).error() == errc::invalid_argument);
}

TEST_CASE("combined model: create rejects bad parameters and mismatched vocabularies",
          "[contrastive][model]") {
  hash_model e(opts(1)), a(opts(2)), other(opts(2, 40));
  tandem::contrastive_options p;
  p.alpha = 0.0f;
  CHECK(tandem::make_contrastive(e, a, p).error() == errc::invalid_argument);
  p.alpha = 1.5f;
  CHECK(tandem::make_contrastive(e, a, p).error() == errc::invalid_argument);
  p = {};
  p.amateur_temperature = 0.0f;
  CHECK(tandem::make_contrastive(e, a, p).error() == errc::invalid_temperature);
  p = {};
  p.form = tandem::contrastive_form::obrien2023;
  p.beta = -0.1f;
  CHECK(tandem::make_contrastive(e, a, p).error() == errc::invalid_argument);
  tandem::error_info info;
  CHECK(tandem::make_contrastive(e, other, {}, &info).error() == errc::vocab_mismatch);
  CHECK(info.context().starts_with("expert vocabulary " + std::to_string(e.vocab_size()) +
                                   ", amateur vocabulary " + std::to_string(other.vocab_size())));
  const token_id one[] = {1};
  REQUIRE(e.append(one) == errc::ok);
  CHECK(tandem::make_contrastive(e, a).error() == errc::out_of_sync);
}

TEST_CASE("combined model: a three-part ensemble names the mismatching part and sizes",
          "[contrastive][model]") {
  hash_model x(opts(1)), y(opts(2)), other(opts(3, 40));
  tandem::error_info info;
  const std::array<float, 3> w = {1.0f, 1.0f, 1.0f};
  CHECK(tandem::make_log_linear_ensemble(&info, w, x, y, other).error() == errc::vocab_mismatch);
  CHECK(info.context() == "combined model: part 2 has vocabulary " +
                              std::to_string(other.vocab_size()) + ", part 0 has " +
                              std::to_string(x.vocab_size()));
  const token_id one[] = {1};
  REQUIRE(y.append(one) == errc::ok);
  hash_model z(opts(3));
  CHECK(tandem::make_log_linear_ensemble(&info, w, x, y, z).error() == errc::out_of_sync);
  CHECK(info.context() == "combined model: part 1 holds 1 tokens, part 0 holds 0");
  CHECK(tandem::make_log_linear_ensemble(w, x, y, z).error() == errc::out_of_sync);
}

TEST_CASE("combined model: a part failing to append rolls the others back",
          "[contrastive][model]") {
  hash_options bad = opts(2);
  bad.fail_at_append = 1;  // the second call (the first is the prompt)
  hash_model e(opts(1)), a(bad);
  auto cd = tandem::make_contrastive(e, a);
  REQUIRE(cd);
  const token_id prompt[] = {1, 2, 3};
  REQUIRE(cd->append(prompt) == errc::ok);
  const auto before = copy(cd->logits());
  const token_id next[] = {4};
  CHECK(cd->append(next) == errc::decode_failed);
  CHECK(e.size() == 3);
  CHECK(a.size() == 3);
  CHECK(cd->size() == 3);
  CHECK(copy(cd->logits()) == before);
  CHECK(!cd->broken());
  REQUIRE(cd->append(next) == errc::ok);  // the failure was transient
  CHECK(e.size() == 4);
  CHECK(a.size() == 4);
  // Bad ids are caught before any part is touched.
  const token_id out_of_vocab[] = {32};
  CHECK(cd->append(out_of_vocab) == errc::invalid_token);
  CHECK(e.size() == 4);
}

TEST_CASE("combined model: a failure it cannot roll back is reported as out_of_sync",
          "[contrastive][model]") {
  hash_options bad = opts(2);
  bad.fail_at_append = 1;
  hash_model_no_rewind e(opts(1));
  hash_model a(bad);
  auto cd = tandem::make_contrastive(e, a);
  REQUIRE(cd);
  const token_id prompt[] = {1, 2, 3};
  REQUIRE(cd->append(prompt) == errc::ok);
  const token_id next[] = {4};
  CHECK(cd->append(next) == errc::out_of_sync);
  CHECK(cd->broken());
  CHECK(e.size() == 4);  // documented state: the parts stay where they are
  CHECK(a.size() == 3);
  CHECK(cd->append(next) == errc::out_of_sync);
}

TEST_CASE("combined model: a part failing to rewind is restored to the common position",
          "[contrastive][model]") {
  hash_model e(opts(1)), a(opts(2));
  auto cd = tandem::make_contrastive(e, a);
  REQUIRE(cd);
  const token_id prompt[] = {1, 2, 3, 4};
  REQUIRE(cd->append(prompt) == errc::ok);
  a.options().fail_rewind = true;
  CHECK(cd->rewind(2) == errc::rewind_failed);
  CHECK(e.size() == 4);
  CHECK(a.size() == 4);
  CHECK(std::vector<token_id>(e.tokens().begin(), e.tokens().end()) ==
        std::vector<token_id>{1, 2, 3, 4});
  CHECK(!cd->broken());
  CHECK(cd->rewind(5) == errc::rewind_out_of_range);
  a.options().fail_rewind = false;
  CHECK(cd->rewind(2) == errc::ok);
  CHECK(cd->size() == 2);
  CHECK(a.size() == 2);
}

TEST_CASE("combined model: contrastive, proxy-tuned and ensemble models pass the conformance suite",
          "[contrastive][model]") {
  // The parts live in the pool (a deque: they stay in place) for as long as the test;
  // groups lists the parts of each model made.
  std::deque<hash_model> pool;
  std::vector<std::vector<hash_model*>> groups;
  const auto parts = [&](std::initializer_list<std::uint64_t> seeds) {
    std::vector<hash_model*>& g = groups.emplace_back();
    for (const std::uint64_t seed : seeds) g.push_back(&pool.emplace_back(opts(seed)));
    return g;
  };
  const auto exact =
      tandem::conformance_options{.tolerance = tandem::conformance_tolerance::exact()};
  for (const auto form : {tandem::contrastive_form::li2022, tandem::contrastive_form::obrien2023}) {
    tandem::contrastive_options p;
    p.form = form;
    TANDEM_CHECK_CONFORMANCE(tandem::check_language_model(
        [&] {
          const auto g = parts({1, 2});
          return tandem::make_contrastive(*g[0], *g[1], p);
        },
        exact));
  }
  TANDEM_CHECK_CONFORMANCE(tandem::check_language_model(
      [&] {
        const auto g = parts({1, 3, 4});
        return tandem::make_proxy_tuning(*g[0], *g[1], *g[2]);
      },
      exact));
  TANDEM_CHECK_CONFORMANCE(tandem::check_language_model(
      [&] {
        const auto g = parts({5, 6});
        return tandem::make_log_linear_ensemble({0.5f, 0.5f}, *g[0], *g[1]);
      },
      exact));
  // Every call reached the parts in lock-step: each model's parts end at one size.
  CHECK(groups.size() > 4 * 8);
  for (const auto& g : groups)
    for (const hash_model* m : g) CHECK(m->size() == g.front()->size());
}

TEST_CASE("combined model: a failing score leaves every part where it was",
          "[contrastive][model]") {
  hash_options bad = opts(2);
  bad.fail_at_append = 1;
  hash_model e(opts(1)), a(bad);
  auto cd = tandem::make_contrastive(e, a);
  REQUIRE(cd);
  const token_id prompt[] = {1};
  REQUIRE(cd->append(prompt) == errc::ok);
  const token_id t[] = {2, 3};
  std::vector<float> rows(2 * 32);
  CHECK(cd->score(t, rows) == errc::decode_failed);
  CHECK(e.size() == 1);
  CHECK(a.size() == 1);
}

TEST_CASE("combined model: decoding allocates nothing once warm", "[contrastive][model]") {
  hash_model e(opts(1, 1000)), a(opts(2, 1000));
  auto cd = tandem::make_contrastive(e, a);
  REQUIRE(cd);
  cd->reserve(512, 8);
  const token_id prompt[] = {1, 2};
  REQUIRE(cd->append(prompt) == errc::ok);
  std::vector<float> rows(4 * 1000);
  tandem::greedy_sampler s;
  tandem_test::allocation_scope scope;
  for (int i = 0; i < 50; ++i) {
    const auto t = s.sample(cd->logits());
    REQUIRE(t);
    const token_id one[] = {*t};
    REQUIRE(cd->append(one) == errc::ok);
  }
  const token_id four[] = {1, 2, 3, 4};
  REQUIRE(cd->score(four, rows) == errc::ok);
  REQUIRE(cd->rewind(4) == errc::ok);
  CHECK(scope.allocations() == 0);
}

TEST_CASE("mapped model: presents a model in another vocabulary", "[contrastive][model]") {
  // Vocabulary A has 6 tokens, B (the model's) 5; A's token 5 has no counterpart.
  const char* a_pieces[] = {"<s>", "a", "b", "c", "d", "zz"};
  const char* b_pieces[] = {"d", "c", "b", "a", "<s>"};
  auto src = [](const char* const* p) {
    return [p](token_id id) -> tandem::result<tandem::token_piece> {
      const std::string_view s = p[id];
      return tandem::token_piece{
          s, s == "<s>" ? tandem::piece_kind::special : tandem::piece_kind::text};
    };
  };
  auto map = tandem::vocab_map::build(6, src(a_pieces), tandem::piece_style::plain, 5,
                                      src(b_pieces), tandem::piece_style::plain);
  REQUIRE(map);
  hash_model inner(opts(3, 5));
  auto mm = tandem::mapped_model<hash_model>::create(inner, *map);
  REQUIRE(mm);
  CHECK(mm->vocab_size() == 6);
  const token_id prompt[] = {0, 1};  // "<s>" "a" -> 4, 3
  REQUIRE(mm->append(prompt) == errc::ok);
  CHECK(std::vector<token_id>(inner.tokens().begin(), inner.tokens().end()) ==
        std::vector<token_id>{4, 3});
  CHECK(mm->logits()[1] == inner.logits()[3]);
  CHECK(mm->logits()[4] == inner.logits()[0]);
  CHECK(mm->logits()[5] == -inf);
  const token_id unmapped[] = {5};
  {
    // Refused when asked to; by default skipped ("zz" has no spelling in B), the model
    // untouched while the presented context counts it.
    hash_model strict_inner(opts(3, 5));
    auto strict = tandem::mapped_model<hash_model>::create(
        strict_inner, *map, tandem::mapped_model_options{tandem::unmapped_token::fail});
    REQUIRE(strict);
    REQUIRE(strict->append(prompt) == errc::ok);
    CHECK(strict->append(unmapped) == errc::vocab_mismatch);
    CHECK(strict->last_error().context() ==
          "token 5 of vocabulary 6 has no counterpart in the wrapped model's vocabulary 5");
    CHECK(strict_inner.size() == 2);
    CHECK(strict->size() == 2);
    REQUIRE(strict->rewind(2) == errc::ok);
    CHECK(strict->append(unmapped) == errc::vocab_mismatch);  // nothing to feed an empty model
  }
  REQUIRE(mm->append(unmapped) == errc::ok);
  CHECK(inner.size() == 2);
  CHECK(mm->size() == 3);
  REQUIRE(mm->rewind(1) == errc::ok);
  CHECK(inner.size() == 2);
  tandem::error_info info;
  hash_model wrong(opts(3, 7));
  CHECK(tandem::mapped_model<hash_model>::create(wrong, *map, &info).error() ==
        errc::vocab_mismatch);
  CHECK(info.context() == "map's target vocabulary 5, model vocabulary 7");
  // As the amateur of a contrastive model over vocabulary A.
  hash_model expert(opts(4, 6));
  CHECK(tandem::make_contrastive(expert, *mm).error() == errc::out_of_sync);  // 0 vs 2 tokens
  REQUIRE(mm->rewind(2) == errc::ok);
  auto cd2 = tandem::make_contrastive(expert, *mm);
  REQUIRE(cd2);
  REQUIRE(cd2->append(prompt) == errc::ok);
  CHECK(cd2->logits()[5] == -inf);  // never picks a token the amateur cannot take
  // Warm decoding through the map allocates nothing.
  cd2->reserve(64);
  mm->reserve(4, 64);
  tandem::greedy_sampler s;
  tandem_test::allocation_scope scope;
  for (int i = 0; i < 20; ++i) {
    const auto t = s.sample(cd2->logits());
    REQUIRE(t);
    const token_id one[] = {*t};
    REQUIRE(cd2->append(one) == errc::ok);
  }
  CHECK(scope.allocations() == 0);
}
