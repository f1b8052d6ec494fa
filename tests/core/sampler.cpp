#include "tandem/core/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "common/catch.hpp"
#include "common/counting_new.hpp"

namespace {

using tandem::errc;
using tandem::sampler_chain;
using tandem::token_id;
namespace s = tandem::sampling;

constexpr float inf = std::numeric_limits<float>::infinity();

std::vector<float> gaussian_logits(std::size_t n, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  v[n / 3] = 10.0f;
  v[n / 2] = 9.5f;
  return v;
}

std::vector<double> ref_softmax(const std::vector<float>& v, double scale) {
  double m = -INFINITY;
  for (float x : v) m = std::max(m, double(x));
  std::vector<double> p(v.size());
  double z = 0;
  for (std::size_t i = 0; i < v.size(); ++i) z += p[i] = std::exp(scale * (v[i] - m));
  for (auto& x : p) x /= z;
  return p;
}

// Chi-square statistic of observed counts against expected probabilities (cells with
// expected count < 5 pooled into one).
double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int n, int& dof) {
  double chi2 = 0, pooled_o = 0, pooled_e = 0;
  dof = -1;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double e = p[i] * n;
    if (e < 5) {
      pooled_o += counts[i];
      pooled_e += e;
      continue;
    }
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++dof;
  }
  if (pooled_e > 0) {
    chi2 += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
    ++dof;
  }
  return chi2;
}

sampler_chain make_chain(std::uint64_t seed, float t, std::size_t topk, float topp, float minp) {
  sampler_chain c(seed);
  REQUIRE(c.add(s::temperature{t}) == errc::ok);
  if (topk) REQUIRE(c.add(s::top_k{topk}) == errc::ok);
  if (topp < 1) REQUIRE(c.add(s::top_p{topp}) == errc::ok);
  if (minp > 0) REQUIRE(c.add(s::min_p{minp}) == errc::ok);
  REQUIRE(c.add(s::dist{}) == errc::ok);
  return c;
}

}  // namespace

TEST_CASE("sampler: greedy picks the argmax, lowest id on ties", "[core][sampler]") {
  tandem::greedy_sampler g;
  const std::vector<float> v{0.5f, 3.0f, -inf, 3.0f};
  CHECK(g.sample(v).value() == 1);
  sampler_chain c(0);
  REQUIRE(c.add(s::greedy{}) == errc::ok);
  CHECK(c.sample(v).value() == 1);
  std::vector<float> p(4);
  REQUIRE(c.probabilities(v, p) == errc::ok);
  CHECK(p == std::vector<float>{0, 1, 0, 0});
}

TEST_CASE("sampler: categorical draws follow softmax(logits / t) (chi-square)", "[core][sampler]") {
  const std::vector<float> v{1.0f, 2.0f, 0.0f, -1.0f, 2.5f, -inf, 0.5f, 1.5f};
  const float t = 0.8f;
  const auto p = ref_softmax(v, 1.0 / t);
  constexpr int n = 40000;
  tandem::categorical_sampler cat(t, 42);
  sampler_chain chain = make_chain(42, t, 0, 1.0f, 0.0f);
  std::vector<int> c1(v.size()), c2(v.size());
  for (int i = 0; i < n; ++i) {
    ++c1[static_cast<std::size_t>(cat.sample(v).value())];
    ++c2[static_cast<std::size_t>(chain.sample(v).value())];
  }
  CHECK(c1[5] == 0);
  CHECK(c2[5] == 0);
  int dof = 0;
  // 0.999 quantile of chi-square with 6 degrees of freedom is 22.46.
  CHECK(chi_square(c1, p, n, dof) < 22.46);
  CHECK(dof == 6);
  CHECK(chi_square(c2, p, n, dof) < 22.46);
}

TEST_CASE("sampler: top-k + top-p chain draws match its probabilities() (chi-square)",
          "[core][sampler]") {
  const auto v = gaussian_logits(8000, 4);
  sampler_chain c = make_chain(7, 0.8f, 40, 0.95f, 0.0f);
  c.reserve(v.size());
  std::vector<float> q(v.size());
  REQUIRE(c.probabilities(v, q) == errc::ok);
  std::vector<double> p(q.begin(), q.end());
  constexpr int n = 20000;
  std::vector<int> counts(v.size());
  for (int i = 0; i < n; ++i) {
    const auto t = c.sample(v).value();
    REQUIRE(q[static_cast<std::size_t>(t)] > 0.0f);  // never outside the kept set
    ++counts[static_cast<std::size_t>(t)];
  }
  int dof = 0;
  const double chi2 = chi_square(counts, p, n, dof);
  REQUIRE(dof >= 1);
  REQUIRE(dof <= 40);
  // Wilson-Hilferty approximation of the 0.999 quantile.
  const double d = dof, z = 3.09;
  const double q999 = d * std::pow(1 - 2 / (9 * d) + z * std::sqrt(2 / (9 * d)), 3);
  CHECK(chi2 < q999);
}

TEST_CASE("sampler: probabilities() keep exactly the top-k, top-p and min-p sets",
          "[core][sampler]") {
  const auto v = gaussian_logits(1000, 9);
  std::vector<token_id> rank(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) rank[i] = static_cast<token_id>(i);
  std::sort(rank.begin(), rank.end(), [&](token_id a, token_id b) {
    return v[size_t(a)] > v[size_t(b)] || (v[size_t(a)] == v[size_t(b)] && a < b);
  });
  const double scale = 1.0 / 0.7;
  const auto full = ref_softmax(v, scale);
  std::vector<float> out(v.size());
  auto support = [&] {
    std::vector<token_id> ids;
    for (std::size_t i = 0; i < out.size(); ++i)
      if (out[i] > 0) ids.push_back(static_cast<token_id>(i));
    return ids;
  };
  auto sorted = [](std::vector<token_id> x) {
    std::sort(x.begin(), x.end());
    return x;
  };
  SECTION("top-k") {
    auto c = make_chain(1, 0.7f, 25, 1.0f, 0.0f);
    REQUIRE(c.probabilities(v, out) == errc::ok);
    CHECK(support() == sorted({rank.begin(), rank.begin() + 25}));
    double z = 0;
    for (int i = 0; i < 25; ++i) z += full[size_t(rank[size_t(i)])];
    for (int i = 0; i < 25; ++i) {
      const auto id = size_t(rank[size_t(i)]);
      CHECK(out[id] == Approx(full[id] / z).epsilon(1e-5));
    }
  }
  SECTION("top-p") {
    auto c = make_chain(1, 0.7f, 0, 0.9f, 0.0f);
    REQUIRE(c.probabilities(v, out) == errc::ok);
    double cum = 0;
    std::size_t keep = 0;
    while (cum < 0.9) cum += full[size_t(rank[keep++])];
    CHECK(support() == sorted({rank.begin(), rank.begin() + std::ptrdiff_t(keep)}));
  }
  SECTION("min-p") {
    auto c = make_chain(1, 0.7f, 0, 1.0f, 0.05f);
    REQUIRE(c.probabilities(v, out) == errc::ok);
    std::vector<token_id> want;
    const double pmax = full[size_t(rank[0])];
    for (std::size_t i = 0; i < v.size(); ++i)
      if (full[i] >= 0.05 * pmax) want.push_back(static_cast<token_id>(i));
    CHECK(support() == want);
  }
  SECTION("top-k then top-p then min-p") {
    auto c = make_chain(1, 0.7f, 50, 0.8f, 0.2f);
    REQUIRE(c.probabilities(v, out) == errc::ok);
    double z = 0;
    for (int i = 0; i < 50; ++i) z += full[size_t(rank[size_t(i)])];
    double cum = 0;
    std::size_t keep = 0;
    while (cum < 0.8 * z) cum += full[size_t(rank[keep++])];
    std::vector<token_id> want;
    for (std::size_t i = 0; i < keep; ++i)
      if (full[size_t(rank[i])] >= 0.2 * full[size_t(rank[0])]) want.push_back(rank[i]);
    CHECK(support() == sorted(want));
  }
  double sum = 0;
  for (float x : out) sum += x;
  CHECK(sum == Approx(1.0).epsilon(1e-5));
}

TEST_CASE("sampler: equal seeds give equal tokens, different seeds differ", "[core][sampler]") {
  const auto v = gaussian_logits(5000, 3);
  auto a = make_chain(123, 1.5f, 0, 0.99f, 0.0f);
  auto b = make_chain(123, 1.5f, 0, 0.99f, 0.0f);
  auto c = make_chain(124, 1.5f, 0, 0.99f, 0.0f);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a.sample(v).value(), y = b.sample(v).value(), z = c.sample(v).value();
    REQUIRE(x == y);
    differs = differs || x != z;
  }
  CHECK(differs);
  a.reseed(5);
  b.reseed(5);
  CHECK(a.sample(v).value() == b.sample(v).value());
}

TEST_CASE("sampler: bad parameters and misuse give named errors", "[core][sampler]") {
  sampler_chain c(0);
  CHECK(c.add(s::temperature{0.0f}) == errc::invalid_temperature);
  CHECK(c.add(s::temperature{-1.0f}) == errc::invalid_temperature);
  CHECK(c.add(s::temperature{std::numeric_limits<float>::quiet_NaN()}) ==
        errc::invalid_temperature);
  CHECK(c.add(s::top_k{0}) == errc::invalid_argument);
  CHECK(c.add(s::top_p{0.0f}) == errc::invalid_argument);
  CHECK(c.add(s::top_p{1.01f}) == errc::invalid_argument);
  CHECK(c.add(s::min_p{-0.01f}) == errc::invalid_argument);
  CHECK(c.add(s::min_p{1.5f}) == errc::invalid_argument);
  CHECK(c.add(s::penalties{64, 0.0f, 0.0f, 0.0f}) == errc::invalid_argument);
  CHECK(c.size() == 0);
  const std::vector<float> v{1.0f, 2.0f};
  CHECK(c.sample(v).error() == errc::invalid_argument);  // no terminal step
  REQUIRE(c.add(s::temperature{0.5f}) == errc::ok);
  CHECK(c.add(s::penalties{}) == errc::invalid_argument);  // penalties must come first
  REQUIRE(c.add(s::dist{}) == errc::ok);
  CHECK(c.add(s::top_k{3}) == errc::invalid_argument);  // nothing after the terminal step
  CHECK(c.add(s::greedy{}) == errc::invalid_argument);
  CHECK(c.size() == 2);
  CHECK(c.sample(std::vector<float>{}).error() == errc::empty_input);
  CHECK(c.sample(std::vector<float>{1.0f, std::nanf("")}).error() == errc::non_finite);
  CHECK(c.sample(std::vector<float>{inf, 1.0f}).error() == errc::non_finite);
  CHECK(c.sample(std::vector<float>{-inf, -inf}).error() == errc::no_candidates);
  std::vector<float> one(1);
  CHECK(c.probabilities(v, one) == errc::size_mismatch);
  c.reserve(2);
  CHECK(c.accept(2) == errc::invalid_token);
  CHECK(c.accept(-1) == errc::invalid_token);
  CHECK(c.accept(1) == errc::ok);

  tandem::categorical_sampler bad(0.0f, 1);
  CHECK(bad.sample(v).error() == errc::invalid_temperature);
  tandem::greedy_sampler g;
  CHECK(g.sample(std::vector<float>{std::nanf("")}).error() == errc::non_finite);

  tandem::sampling_options p;
  p.temperature = -1.0f;
  CHECK(tandem::make_sampler(p, 10).error() == errc::invalid_temperature);
  p.temperature = 1.0f;
  p.top_p = 0.0f;
  CHECK(tandem::make_sampler(p, 10).error() == errc::invalid_argument);
  p.top_p = 1.0f;
  p.min_p = 2.0f;
  CHECK(tandem::make_sampler(p, 10).error() == errc::invalid_argument);
  p.min_p = 0.0f;
  CHECK(tandem::make_sampler(p, 0).error() == errc::invalid_argument);
}

TEST_CASE("sampler: make_sampler builds greedy for temperature 0, else the full chain",
          "[core][sampler]") {
  const auto v = gaussian_logits(2000, 12);
  tandem::sampling_options p;
  auto g = tandem::make_sampler(p, v.size());
  REQUIRE(g.has_value());
  CHECK(g->size() == 1);
  CHECK(g->sample(v).value() == static_cast<token_id>(v.size() / 3));
  p.temperature = 0.9f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  p.seed = 77;
  auto c = tandem::make_sampler(p, v.size());
  REQUIRE(c.has_value());
  CHECK(c->size() == 5);
  auto same = make_chain(77, 0.9f, 40, 0.95f, 0.05f);
  for (int i = 0; i < 50; ++i) CHECK(c->sample(v).value() == same.sample(v).value());
}

TEST_CASE("sampler: penalties lower the logits of accepted tokens", "[core][sampler]") {
  std::vector<float> v{1.0f, 3.0f, 2.9f, -1.0f};
  sampler_chain c(0);
  REQUIRE(c.add(s::penalties{2, 1.5f, 0.0f, 0.0f}) == errc::ok);
  REQUIRE(c.add(s::greedy{}) == errc::ok);
  CHECK(c.sample(v).value() == 1);
  REQUIRE(c.accept(1) == errc::ok);
  CHECK(c.sample(v).value() == 2);  // 3 / 1.5 = 2 < 2.9
  REQUIRE(c.accept(2) == errc::ok);
  CHECK(c.sample(v).value() == 1);  // 2 vs 2.9 / 1.5
  REQUIRE(c.accept(0) == errc::ok);
  REQUIRE(c.accept(0) == errc::ok);  // the ring holds 2: token 1 and 2 are forgotten
  CHECK(c.sample(v).value() == 1);
  c.reset();
  REQUIRE(c.accept(1) == errc::ok);
  CHECK(c.sample(v).value() == 2);
  // The logits passed in are never modified.
  CHECK(v == std::vector<float>{1.0f, 3.0f, 2.9f, -1.0f});

  sampler_chain f(0);
  REQUIRE(f.add(s::penalties{8, 1.0f, 0.5f, 0.25f}) == errc::ok);
  REQUIRE(f.add(s::greedy{}) == errc::ok);
  REQUIRE(f.accept(1) == errc::ok);
  REQUIRE(f.accept(1) == errc::ok);
  std::vector<float> pr(v.size());
  REQUIRE(f.probabilities(v, pr) == errc::ok);
  CHECK(pr[2] == 1.0f);  // token 1: 3 - 2 * 0.5 - 0.25 = 1.75 < 2.9
}

TEST_CASE("sampler: sample and probabilities allocate nothing after reserve", "[core][sampler]") {
  const auto v = gaussian_logits(32000, 2);
  std::vector<float> out(v.size());
  auto c = make_chain(1, 0.8f, 40, 0.95f, 0.05f);
  sampler_chain p(1);
  REQUIRE(p.add(s::penalties{64, 1.1f, 0.1f, 0.1f}) == errc::ok);
  REQUIRE(p.add(s::temperature{0.8f}) == errc::ok);
  REQUIRE(p.add(s::top_p{0.9f}) == errc::ok);
  REQUIRE(p.add(s::dist{}) == errc::ok);
  c.reserve(v.size());
  p.reserve(v.size());
  tandem::categorical_sampler cat(0.8f, 1);
  tandem::greedy_sampler g;
  tandem_test::allocation_scope scope;
  for (int i = 0; i < 10; ++i) {
    const auto t = c.sample(v);
    REQUIRE(t.has_value());
    REQUIRE(c.accept(*t) == errc::ok);
    const auto u = p.sample(v);
    REQUIRE(u.has_value());
    REQUIRE(p.accept(*u) == errc::ok);
    REQUIRE(c.probabilities(v, out) == errc::ok);
    REQUIRE(p.probabilities(v, out) == errc::ok);
    REQUIRE(cat.sample(v).has_value());
    REQUIRE(g.sample(v).has_value());
  }
  CHECK(scope.allocations() == 0);
}
