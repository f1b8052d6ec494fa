// Tests of the logit arithmetic kernels: hand-computed distributions for each formula,
// masks, parameter validation and bad input.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "common/catch.hpp"
#include "tandem/contrastive/combine.hpp"
#include "tandem/core/logits.hpp"

namespace {

using tandem::errc;
constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();

std::vector<float> logs(std::initializer_list<double> p, double shift) {
  std::vector<float> out;
  for (double x : p) out.push_back(static_cast<float>(std::log(x) + shift));
  return out;
}

std::size_t argmax(const std::vector<float>& v) { return *tandem::kernels::argmax(v); }

}  // namespace

TEST_CASE("contrastive: Li et al. scores are log p_E - log p_A on the plausibility head",
          "[contrastive][combine]") {
  // p_E = (.5, .3, .15, .05), p_A = (.6, .1, .2, .1); alpha = 0.2 keeps p_E >= 0.1.
  // The logits carry arbitrary shifts: only the normalised distributions matter.
  const auto e = logs({0.5, 0.3, 0.15, 0.05}, 3.0);
  const auto a = logs({0.6, 0.1, 0.2, 0.1}, -1.0);
  std::vector<float> out(4);
  tandem::contrastive_options p;
  p.alpha = 0.2f;
  REQUIRE(tandem::contrastive_scores(e, a, p, out) == errc::ok);
  CHECK(out[0] == Approx(std::log(0.5 / 0.6)).margin(1e-5));
  CHECK(out[1] == Approx(std::log(0.3 / 0.1)).margin(1e-5));
  CHECK(out[2] == Approx(std::log(0.15 / 0.2)).margin(1e-5));
  CHECK(out[3] == -inf);
  CHECK(argmax(out) == 1);  // the expert's greedy choice would be 0
}

TEST_CASE("contrastive: Li et al. amateur temperature sharpens the amateur before the contrast",
          "[contrastive][combine]") {
  const auto e = logs({0.5, 0.3, 0.15, 0.05}, 0.0);
  const auto a = logs({0.6, 0.1, 0.2, 0.1}, 0.0);
  std::vector<float> out(4);
  tandem::contrastive_options p;
  p.alpha = 0.2f;
  p.amateur_temperature = 0.5f;
  // p_A at tau = 0.5 is proportional to p_A^2: (.36, .01, .04, .01) / .42.
  REQUIRE(tandem::contrastive_scores(e, a, p, out) == errc::ok);
  CHECK(out[0] == Approx(std::log(0.5 / (0.36 / 0.42))).margin(1e-5));
  CHECK(out[1] == Approx(std::log(0.3 / (0.01 / 0.42))).margin(1e-5));
  CHECK(out[2] == Approx(std::log(0.15 / (0.04 / 0.42))).margin(1e-5));
  CHECK(out[3] == -inf);
}

TEST_CASE("contrastive: O'Brien and Lewis scores are (1 + beta) s_E - beta s_A on the alpha mask",
          "[contrastive][combine]") {
  const std::vector<float> e{2.0f, 1.0f, 0.0f, -3.0f};
  const std::vector<float> a{1.0f, -1.0f, 0.5f, 0.0f};
  std::vector<float> out(4);
  tandem::contrastive_options p;
  p.form = tandem::contrastive_form::obrien2023;
  // Defaults alpha = 0.1, beta = 0.5: the mask keeps s_E >= 2 + log 0.1 = -0.303.
  REQUIRE(tandem::contrastive_scores(e, a, p, out) == errc::ok);
  CHECK(out[0] == Approx(2.5f));
  CHECK(out[1] == Approx(2.0f));
  CHECK(out[2] == Approx(-0.25f));
  CHECK(out[3] == -inf);
  CHECK(argmax(out) == 0);
  p.beta = 2.0f;
  REQUIRE(tandem::contrastive_scores(e, a, p, out) == errc::ok);
  CHECK(out[0] == Approx(4.0f));
  CHECK(out[1] == Approx(5.0f));
  CHECK(argmax(out) == 1);
}

TEST_CASE("contrastive: beta = 0 ranks exactly as the expert", "[contrastive][combine]") {
  std::mt19937 gen(7);
  std::normal_distribution<float> d(0.0f, 3.0f);
  tandem::contrastive_options p;
  p.form = tandem::contrastive_form::obrien2023;
  p.beta = 0.0f;
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> e(1003), a(1003), out(1003);
    for (auto& x : e) x = d(gen);
    for (auto& x : a) x = d(gen);
    REQUIRE(tandem::contrastive_scores(e, a, p, out) == errc::ok);
    CHECK(argmax(out) == argmax(e));
    for (std::size_t i = 0; i < e.size(); ++i)
      if (out[i] != -inf) CHECK(out[i] == e[i]);
  }
}

TEST_CASE("contrastive: the mask never keeps a token outside V_head", "[contrastive][combine]") {
  std::mt19937 gen(11);
  std::normal_distribution<float> d(0.0f, 2.0f);
  for (const auto form : {tandem::contrastive_form::li2022, tandem::contrastive_form::obrien2023}) {
    for (const float alpha : {1.0f, 0.5f, 0.1f, 1e-3f}) {
      tandem::contrastive_options p;
      p.form = form;
      p.alpha = alpha;
      for (int trial = 0; trial < 20; ++trial) {
        const std::size_t n = 1 + static_cast<std::size_t>(gen() % 300);  // odd sizes: SIMD tails
        std::vector<float> e(n), a(n), out(n), pe(n);
        for (auto& x : e) x = d(gen);
        for (auto& x : a) x = d(gen);
        REQUIRE(tandem::kernels::softmax(e, pe) == errc::ok);
        const float pmax = *std::max_element(pe.begin(), pe.end());
        REQUIRE(tandem::contrastive_scores(e, a, p, out) == errc::ok);
        for (std::size_t i = 0; i < n; ++i) {
          // Allow float rounding right at the boundary.
          if (pe[i] < alpha * pmax * (1 - 1e-5f)) CHECK(out[i] == -inf);
          if (pe[i] > alpha * pmax * (1 + 1e-5f)) CHECK(out[i] != -inf);
        }
        const std::size_t pick = argmax(out);
        CHECK(pe[pick] >= alpha * pmax * (1 - 1e-5f));
      }
    }
  }
}

TEST_CASE("contrastive: an entry either model masks is masked, never NaN",
          "[contrastive][combine]") {
  const std::vector<float> e{1.0f, 0.9f, -inf, 0.8f, 0.7f};
  const std::vector<float> a{0.0f, -inf, -inf, 0.1f, 0.0f};
  std::vector<float> out(5);
  for (const auto form : {tandem::contrastive_form::li2022, tandem::contrastive_form::obrien2023}) {
    tandem::contrastive_options p;
    p.form = form;
    REQUIRE(tandem::contrastive_scores(e, a, p, out) == errc::ok);
    CHECK(out[1] == -inf);
    CHECK(out[2] == -inf);
    for (float x : out) CHECK(!std::isnan(x));
    // The expert's favourites masked by the amateur: the head is taken over what both
    // can produce.
    const std::vector<float> a2{-inf, -inf, 0.0f, 0.0f, 0.5f};
    const std::vector<float> e2{1.0f, 1.0f, -inf, -9.0f, -9.0f};
    REQUIRE(tandem::contrastive_scores(e2, a2, p, out) == errc::ok);
    CHECK(out[0] == -inf);
    CHECK(out[1] == -inf);
    CHECK(out[2] == -inf);
    CHECK(out[3] > out[4]);
    // No token both can produce: nothing left.
    const std::vector<float> a3{-inf, -inf, 0.0f, -inf, -inf};
    CHECK(tandem::contrastive_scores(e2, a3, p, out) == errc::no_candidates);
  }
}

TEST_CASE("contrastive: bad parameters give named errors", "[contrastive][combine]") {
  const std::vector<float> e{1.0f, 0.0f}, a{0.0f, 1.0f};
  std::vector<float> out(2);
  auto run = [&](tandem::contrastive_options p) { return tandem::contrastive_scores(e, a, p, out); };
  tandem::contrastive_options p;
  for (const float alpha : {0.0f, -0.1f, 1.0001f, qnan, inf}) {
    p.alpha = alpha;
    CHECK(run(p) == errc::invalid_argument);
  }
  p.alpha = 1.0f;
  CHECK(run(p) == errc::ok);
  for (const float tau : {0.0f, -1.0f, qnan, inf}) {
    p.amateur_temperature = tau;
    CHECK(run(p) == errc::invalid_temperature);
    CHECK(tandem::validate(p) == errc::invalid_temperature);
  }
  p = {};
  p.form = tandem::contrastive_form::obrien2023;
  for (const float beta : {-0.5f, -1e-9f, qnan, inf}) {
    p.beta = beta;
    CHECK(run(p) == errc::invalid_argument);
  }
  tandem::proxy_tuning_options pt;
  pt.weight = qnan;
  CHECK(tandem::validate(pt) == errc::invalid_argument);
}

TEST_CASE("contrastive: bad logits give named errors", "[contrastive][combine]") {
  std::vector<float> out(3);
  const tandem::contrastive_options p;
  const std::vector<float> good{0.0f, 1.0f, 2.0f};
  CHECK(tandem::contrastive_scores(std::vector<float>{0.0f, qnan, 1.0f}, good, p, out) ==
        errc::non_finite);
  CHECK(tandem::contrastive_scores(good, std::vector<float>{0.0f, inf, 1.0f}, p, out) ==
        errc::non_finite);
  CHECK(tandem::contrastive_scores(std::vector<float>(3, -inf), good, p, out) ==
        errc::no_candidates);
  CHECK(tandem::contrastive_scores(good, std::vector<float>{0.0f, 1.0f}, p, out) ==
        errc::size_mismatch);
  CHECK(tandem::contrastive_scores(std::vector<float>{}, std::vector<float>{}, p, out) ==
        errc::empty_input);
}

TEST_CASE("proxy tuning: large + w (tuned - base), masked where any part is masked",
          "[contrastive][combine]") {
  const std::vector<float> large{1.0f, 2.0f, 3.0f, 0.0f};
  const std::vector<float> tuned{0.0f, 1.0f, -inf, 0.0f};
  const std::vector<float> base{1.0f, 0.0f, 0.0f, -inf};
  std::vector<float> out(4);
  REQUIRE(tandem::proxy_tuning_scores(large, tuned, base, {}, out) == errc::ok);
  CHECK(out[0] == 0.0f);
  CHECK(out[1] == 3.0f);
  CHECK(out[2] == -inf);
  CHECK(out[3] == -inf);
  REQUIRE(tandem::proxy_tuning_scores(large, tuned, base, {0.5f}, out) == errc::ok);
  CHECK(out[0] == 0.5f);
  CHECK(out[1] == 2.5f);
  // tuned == base leaves the large model's logits exactly.
  REQUIRE(tandem::proxy_tuning_scores(large, large, large, {1.0f}, out) == errc::ok);
  CHECK(out == large);
  CHECK(tandem::proxy_tuning_scores(large, tuned, base, {inf}, out) == errc::invalid_argument);
}

TEST_CASE("log-linear ensemble: the weighted sum of logits, a part of weight 0 ignored",
          "[contrastive][combine]") {
  const std::vector<float> x{1.0f, 2.0f, 3.0f};
  const std::vector<float> y{3.0f, 0.0f, -inf};
  const std::vector<float> z{qnan, qnan, qnan};
  std::vector<float> out(3);
  const std::span<const float> parts[] = {x, y, z};
  const float w[] = {0.5f, 2.0f, 0.0f};
  REQUIRE(tandem::log_linear_scores(parts, w, out) == errc::ok);
  CHECK(out[0] == 6.5f);
  CHECK(out[1] == 1.0f);
  CHECK(out[2] == -inf);
  const float negative[] = {0.5f, -1.0f, 0.0f};
  CHECK(tandem::log_linear_scores(parts, negative, out) == errc::invalid_argument);
  const float zeros[] = {0.0f, 0.0f, 0.0f};
  CHECK(tandem::log_linear_scores(parts, zeros, out) == errc::invalid_argument);
  const float with_nan[] = {0.5f, 1.0f, 1.0f};
  CHECK(tandem::log_linear_scores(parts, with_nan, out) == errc::non_finite);
}
