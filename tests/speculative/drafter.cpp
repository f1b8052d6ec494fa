// Tests of the drafters on their own: prompt lookup's matching, the model drafter's p_min
// (whole vocabulary and top k), fallback chains.
#include "tandem/speculative/drafter.hpp"

#include <array>
#include <cstddef>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include "common/catch.hpp"
#include "common/mock_model.hpp"
#include "speculative/helpers.hpp"

namespace {

using tandem::errc;
using tandem::token_id;
using tandem_test::greedy_chain;
using tandem_test::mock_model;
using tandem_test::mock_options;

TEST_CASE("speculative: prompt lookup copies what followed the latest longest match",
          "[speculative][drafter]") {
  tandem::prompt_lookup_drafter pl(16, {1, 3});
  std::array<token_id, 4> out{};
  const std::vector<token_id> h = {5, 6, 7, 1, 5, 6, 9, 2, 5, 6};
  auto r = pl.draft({h, 4, out, {}});
  REQUIRE(r.has_value());
  CHECK(r->count == 4);  // "5 6" last seen before "9 2 5 6"
  CHECK(out == std::array<token_id, 4>{9, 2, 5, 6});
  CHECK_FALSE(r->has_probabilities);
  const std::vector<token_id> none = {1, 2, 3};
  r = pl.draft({none, 4, out, {}});
  REQUIRE(r.has_value());
  CHECK(r->count == 0);
}

TEST_CASE("speculative: p_min stops the model drafter on an unsure draft",
          "[speculative][drafter]") {
  mock_model dm(mock_options{16});  // top probability about 0.85
  tandem::model_drafter drafter(dm, greedy_chain(), {0.9f});
  std::array<token_id, 4> out{};
  const std::vector<token_id> h = {1};
  auto r = drafter.draft({h, 4, out, {}});
  REQUIRE(r.has_value());
  CHECK(r->count == 0);
  REQUIRE(drafter.set_p_min(0.5f) == errc::ok);
  r = drafter.draft({h, 4, out, {}});
  REQUIRE(r.has_value());
  CHECK(r->count == 4);
  CHECK(drafter.set_p_min(1.5f) == errc::invalid_argument);
}

TEST_CASE(
    "speculative: a draft model the caller rewound between generations is fed again, "
    "and drafts as a fresh drafter would",
    "[speculative][drafter]") {
  mock_model dm(mock_options{16});
  tandem::model_drafter drafter(dm, greedy_chain());
  std::array<token_id, 4> out{};
  const std::vector<token_id> first = {1, 2, 3};
  REQUIRE(drafter.draft({first, 4, out, {}}).has_value());
  REQUIRE(dm.rewind(dm.size()) == errc::ok);  // behind the drafter's back
  const std::vector<token_id> second = {4, 5};
  auto r = drafter.draft({second, 4, out, {}});
  REQUIRE(r.has_value());
  mock_model fresh_model(mock_options{16});
  tandem::model_drafter fresh(fresh_model, greedy_chain());
  std::array<token_id, 4> expected{};
  auto f = fresh.draft({second, 4, expected, {}});
  REQUIRE(f.has_value());
  CHECK(r->count == f->count);
  CHECK(out == expected);
}

TEST_CASE("speculative: p_min over the top k tokens renormalises among them, as llama.cpp's draft",
          "[speculative][drafter]") {
  // Logits 3, -0.25, -0.5, ...: the top probability is about 0.85 over the 16 tokens and
  // about 0.96 over the best 2 (the best of 1 is always 1).
  mock_model dm(mock_options{16});
  std::array<token_id, 4> out{};
  const std::vector<token_id> h = {1};
  for (const auto& [k, drafted] :
       {std::pair<std::size_t, std::size_t>{0, 0}, {2, 4}, {16, 0}, {1, 4}}) {
    mock_model m(mock_options{16});
    tandem::model_drafter drafter(m, greedy_chain(), {0.9f, k});
    const auto r = drafter.draft({h, 4, out, {}});
    REQUIRE(r.has_value());
    CHECK(r->count == drafted);
  }
  tandem::model_drafter strict(dm, greedy_chain(), {0.97f, 2});
  const auto r = strict.draft({h, 4, out, {}});
  REQUIRE(r.has_value());
  CHECK(r->count == 0);
}

TEST_CASE("speculative: drafter options out of range are invalid_argument, never an abort",
          "[speculative][drafter][errors]") {
  std::array<token_id, 4> out{};
  const std::vector<token_id> h = {1, 2, 1};
  for (const tandem::model_drafter_options& o :
       {tandem::model_drafter_options{-0.1f, 0}, tandem::model_drafter_options{1.5f, 0},
        tandem::model_drafter_options{std::numeric_limits<float>::quiet_NaN(), 0},
        tandem::model_drafter_options{0.5f, 65}}) {
    INFO("p_min " << o.p_min << " top k " << o.p_min_top_k);
    CHECK(tandem::validate(o) == errc::invalid_argument);
    mock_model dm(mock_options{16});
    tandem::error_info info;
    const auto made = tandem::model_drafter<mock_model, tandem::sampler_chain>::create(
        dm, greedy_chain(), o, &info);
    REQUIRE_FALSE(made.has_value());
    CHECK(made.error() == errc::invalid_argument);
    CHECK(info.context().find("model_drafter") != std::string_view::npos);
    // Made anyway: it says so, and drafting fails without touching the model.
    tandem::model_drafter drafter(dm, greedy_chain(), o);
    CHECK(drafter.validate() == errc::invalid_argument);
    CHECK(drafter.draft({h, 4, out, {}}).error() == errc::invalid_argument);
    CHECK(dm.size() == 0);
    CHECK(dm.counters().append_calls == 0);
  }
  mock_model dm(mock_options{16});
  auto good = tandem::model_drafter<mock_model, tandem::sampler_chain>::create(dm, greedy_chain(),
                                                                               {0.5f, 10});
  REQUIRE(good.has_value());
  CHECK(good->validate() == errc::ok);
  const auto r = good->draft({h, 4, out, {}});
  REQUIRE(r.has_value());
  CHECK(r->count == 4);

  for (const tandem::prompt_lookup_options& o :
       {tandem::prompt_lookup_options{0, 4}, tandem::prompt_lookup_options{3, 2}}) {
    INFO("min_ngram " << o.min_ngram << " max_ngram " << o.max_ngram);
    CHECK(tandem::validate(o) == errc::invalid_argument);
    tandem::error_info info;
    const auto made = tandem::prompt_lookup_drafter::create(16, o, &info);
    REQUIRE_FALSE(made.has_value());
    CHECK(made.error() == errc::invalid_argument);
    CHECK(info.context().find("min_ngram") != std::string_view::npos);
    const tandem::prompt_lookup_drafter pl(16, o);
    CHECK(pl.validate() == errc::invalid_argument);
    CHECK(pl.draft({h, 4, out, {}}).error() == errc::invalid_argument);
    // A chain is as valid as its links.
    tandem::prompt_lookup_drafter fine(16);
    const tandem::fallback_drafter chain(fine, pl);
    CHECK(chain.validate() == errc::invalid_argument);
  }
  const auto pl = tandem::prompt_lookup_drafter::create(16, {1, 2});
  REQUIRE(pl.has_value());
  CHECK(pl->validate() == errc::ok);
  const auto r2 = pl->draft({h, 4, out, {}});
  REQUIRE(r2.has_value());
  CHECK(r2->count == 2);  // "1" last seen at the start: "2 1" followed it
}

}  // namespace
