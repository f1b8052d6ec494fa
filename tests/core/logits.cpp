#include "tandem/core/logits.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "common/catch.hpp"

namespace {

namespace k = tandem::kernels;
using tandem::errc;

constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();
const std::size_t sizes[] = {1, 7, 1000, 32000, 151936};

// Gaussian logits with a few peaked tokens, a tie for the maximum and some masked entries.
std::vector<float> make_logits(std::size_t n, std::uint32_t seed, float sigma = 2.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sigma > 0 ? sigma : 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = sigma > 0 ? d(g) : 0.0f;
  if (n >= 7 && sigma > 0) {
    v[n / 3] = 12.0f;
    v[n / 2] = 12.0f;  // tie for the maximum: the lower index must win
    v[n - 1] = 9.0f;
    v[1] = -inf;
    v[n - 2] = -inf;
  }
  return v;
}

// Scalar references in double precision.
double ref_max(const std::vector<float>& v) {
  double m = -INFINITY;
  for (float x : v) m = std::max(m, double(x));
  return m;
}
std::size_t ref_argmax(const std::vector<float>& v) {
  std::size_t b = 0;
  for (std::size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[b]) b = i;
  return b;
}
double ref_lse(const std::vector<float>& v, double scale = 1.0) {
  const double m = ref_max(v);
  double s = 0;
  for (float x : v) s += std::exp(scale * (x - m));
  return scale * m + std::log(s);
}
std::vector<double> ref_softmax(const std::vector<float>& v, double scale = 1.0) {
  const double lse = ref_lse(v, scale);
  std::vector<double> p(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) p[i] = std::exp(scale * v[i] - lse);
  return p;
}
double ref_entropy(const std::vector<float>& v) {
  double h = 0;
  for (double p : ref_softmax(v))
    if (p > 0) h -= p * std::log(p);
  return h;
}
std::vector<k::candidate> ref_ranked(const std::vector<float>& v) {
  std::vector<k::candidate> c;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i] != -inf) c.push_back({v[i], static_cast<tandem::token_id>(i)});
  std::sort(c.begin(), c.end(), k::ranks_before);
  return c;
}

bool same_ids(std::span<const k::candidate> a, std::span<const k::candidate> b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].id != b[i].id) return false;
  return true;
}

}  // namespace

TEST_CASE("logits: fast exp matches std::exp to 2e-7 relative and handles the edges",
          "[core][logits]") {
  double worst = 0;
  for (float x = -87.3f; x < 88.7f; x += 0.0007f) {
    const double r = std::exp(double(x));
    worst = std::max(worst, std::abs(tandem::detail::exp1(x) - r) / r);
  }
  CHECK(worst < 2e-7);
  CHECK(tandem::detail::exp1(0.0f) == 1.0f);
  CHECK(tandem::detail::exp1(-inf) == 0.0f);
  CHECK(tandem::detail::exp1(-100.0f) == 0.0f);
  CHECK(tandem::detail::exp1(-1e30f) == 0.0f);
  CHECK(tandem::detail::exp1(89.0f) == inf);
  CHECK(std::isnan(tandem::detail::exp1(qnan)));
}

TEST_CASE("logits: exp for non-positive arguments matches std::exp and maps -inf to 0",
          "[core][logits]") {
  using tandem::detail::fbatch;
  constexpr std::size_t w = tandem::detail::simd_width;
  auto exp_np = [](float x) {
    alignas(64) float buf[w];
    tandem::detail::exp_nonpos(fbatch(x)).store_aligned(buf);
    return buf[0];
  };
  double worst = 0;
  for (float x = -87.33f; x <= 0.0f; x += 0.0003f) {
    const double r = std::exp(double(x));
    worst = std::max(worst, std::abs(exp_np(x) - r) / r);
  }
  CHECK(worst < 2e-7);
  CHECK(exp_np(0.0f) == 1.0f);
  CHECK(exp_np(-0.0f) == 1.0f);
  CHECK(exp_np(-inf) == 0.0f);
  CHECK(exp_np(-87.5f) == 0.0f);
  CHECK(exp_np(-1e30f) == 0.0f);
}

TEST_CASE("logits: max, argmax, logsumexp, entropy match the scalar reference", "[core][logits]") {
  for (std::size_t n : sizes) {
    CAPTURE(n);
    const auto v = make_logits(n, 11 + static_cast<std::uint32_t>(n));
    REQUIRE(k::max_logit(v).value() == float(ref_max(v)));
    REQUIRE(k::argmax(v).value() == ref_argmax(v));
    CHECK(k::logsumexp(v).value() == Approx(ref_lse(v)).epsilon(1e-5));
    CHECK(k::entropy(v).value() == Approx(ref_entropy(v)).epsilon(1e-4).margin(1e-5));
  }
}

TEST_CASE("logits: argmax breaks ties toward the lowest index", "[core][logits]") {
  std::vector<float> v(37, 1.0f);
  v[20] = 3.0f;
  v[5] = 3.0f;
  v[36] = 3.0f;
  CHECK(k::argmax(v).value() == 5);
  std::vector<float> flat(1001, -2.5f);
  CHECK(k::argmax(flat).value() == 0);
}

TEST_CASE("logits: softmax and log_softmax match the reference, also in place", "[core][logits]") {
  for (std::size_t n : sizes) {
    CAPTURE(n);
    const auto v = make_logits(n, 3 + static_cast<std::uint32_t>(n));
    const auto ref = ref_softmax(v);
    std::vector<float> p(n), lp(n);
    REQUIRE(k::softmax(v, p) == errc::ok);
    REQUIRE(k::log_softmax(v, lp) == errc::ok);
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sum += p[i];
      REQUIRE(p[i] == Approx(ref[i]).epsilon(1e-5).margin(1e-12));
      if (ref[i] == 0) {
        REQUIRE(lp[i] == -inf);
      } else {
        REQUIRE(lp[i] == Approx(std::log(ref[i])).epsilon(1e-5).margin(1e-5));
      }
    }
    CHECK(sum == Approx(1.0).epsilon(1e-5));
    auto in_place = v;
    REQUIRE(k::softmax(in_place, in_place) == errc::ok);
    CHECK(in_place == p);
    in_place = v;
    REQUIRE(k::log_softmax(in_place, in_place) == errc::ok);
    CHECK(in_place == lp);
  }
}

TEST_CASE("logits: all but one masked gives a one-hot distribution", "[core][logits]") {
  for (std::size_t n : sizes) {
    CAPTURE(n);
    std::vector<float> v(n, -inf);
    const std::size_t hot = n / 2;
    v[hot] = -3.0f;
    CHECK(k::argmax(v).value() == hot);
    CHECK(k::logsumexp(v).value() == -3.0f);
    CHECK(k::entropy(v).value() == 0.0f);
    std::vector<float> p(n);
    REQUIRE(k::softmax(v, p) == errc::ok);
    CHECK(p[hot] == 1.0f);
    CHECK(std::accumulate(p.begin(), p.end(), 0.0f) == 1.0f);
    const auto st = k::token_stats(v, static_cast<tandem::token_id>(hot));
    REQUIRE(st.has_value());
    CHECK(st->logprob == 0.0f);
    CHECK(st->entropy == 0.0f);
    std::vector<k::candidate> out(n);
    REQUIRE(k::top_k(v, 5, out).value() == 1);
    CHECK(out[0].id == static_cast<tandem::token_id>(hot));
  }
}

TEST_CASE("logits: NaN, +inf, all -inf and empty input give named errors in every kernel",
          "[core][logits]") {
  for (std::size_t n : sizes) {
    for (float bad : {qnan, inf}) {
      // The bad value at the start, in the middle and in the scalar tail.
      for (std::size_t pos : {std::size_t{0}, n / 2, n - 1}) {
        CAPTURE(n, bad, pos);
        auto v = make_logits(n, 5);
        v[pos] = bad;
        std::vector<float> out(n), other(n, 0.0f);
        std::vector<k::candidate> cand(n);
        std::vector<float> scratch(n);
        std::vector<std::uint32_t> counts(n);
        CHECK(k::max_logit(v).error() == errc::non_finite);
        CHECK(k::argmax(v).error() == errc::non_finite);
        CHECK(k::logsumexp(v).error() == errc::non_finite);
        CHECK(k::entropy(v).error() == errc::non_finite);
        CHECK(k::token_stats(v, 0).error() == errc::non_finite);
        CHECK(k::softmax(v, out) == errc::non_finite);
        CHECK(k::log_softmax(v, out) == errc::non_finite);
        CHECK(k::top_k(v, 1, cand).error() == errc::non_finite);
        CHECK(k::top_p(v, 0.9f, cand, scratch).error() == errc::non_finite);
        CHECK(k::min_p(v, 0.1f, cand).error() == errc::non_finite);
        CHECK(k::total_variation(v, other).error() == errc::non_finite);
        CHECK(k::kl_divergence(other, v).error() == errc::non_finite);
        auto t = v;
        CHECK(k::apply_temperature(t, 0.5f) == errc::non_finite);
        CHECK(std::equal(t.begin(), t.end(), v.begin(), v.end(), [](float a, float b) {
          return (std::isnan(a) && std::isnan(b)) || a == b;
        }));
      }
    }
    std::vector<float> masked(n, -inf), out(n);
    std::vector<k::candidate> cand(n);
    std::vector<float> scratch(n);
    CHECK(k::max_logit(masked).error() == errc::no_candidates);
    CHECK(k::argmax(masked).error() == errc::no_candidates);
    CHECK(k::entropy(masked).error() == errc::no_candidates);
    CHECK(k::softmax(masked, out) == errc::no_candidates);
    CHECK(k::top_k(masked, 3, cand).error() == errc::no_candidates);
    CHECK(k::top_p(masked, 0.5f, cand, scratch).error() == errc::no_candidates);
    CHECK(k::min_p(masked, 0.5f, cand).error() == errc::no_candidates);
  }
  const std::vector<float> empty;
  std::vector<float> none;
  std::vector<k::candidate> cand(4);
  CHECK(k::max_logit(empty).error() == errc::empty_input);
  CHECK(k::argmax(empty).error() == errc::empty_input);
  CHECK(k::logsumexp(empty).error() == errc::empty_input);
  CHECK(k::entropy(empty).error() == errc::empty_input);
  CHECK(k::softmax(empty, none) == errc::empty_input);
  CHECK(k::top_k(empty, 1, cand).error() == errc::empty_input);
  CHECK(k::token_stats(empty, 0).error() == errc::empty_input);
}

TEST_CASE("logits: size and argument errors are named", "[core][logits]") {
  const std::vector<float> v{1.0f, 2.0f, 3.0f};
  std::vector<float> two(2);
  CHECK(k::softmax(v, two) == errc::size_mismatch);
  CHECK(k::log_softmax(v, two) == errc::size_mismatch);
  CHECK(k::total_variation(v, two).error() == errc::size_mismatch);
  CHECK(k::kl_divergence(v, two).error() == errc::size_mismatch);
  CHECK(k::token_stats(v, 3).error() == errc::invalid_token);
  CHECK(k::token_stats(v, -1).error() == errc::invalid_token);
  auto t = v;
  for (float bad : {0.0f, -1.0f, qnan, inf})
    CHECK(k::apply_temperature(t, bad) == errc::invalid_temperature);
  CHECK(t == v);
  std::vector<k::candidate> cand(3), small(1);
  std::vector<float> scratch(3), wrong(2);
  CHECK(k::top_k(v, 0, cand).error() == errc::invalid_argument);
  CHECK(k::top_k(v, 2, small).error() == errc::capacity_exceeded);
  CHECK(k::top_p(v, 0.0f, cand, scratch).error() == errc::invalid_argument);
  CHECK(k::top_p(v, 1.5f, cand, scratch).error() == errc::invalid_argument);
  CHECK(k::top_p(v, 0.5f, cand, wrong).error() == errc::size_mismatch);
  CHECK(k::min_p(v, -0.1f, cand).error() == errc::invalid_argument);
  CHECK(k::min_p(v, 1.1f, cand).error() == errc::invalid_argument);
  CHECK(k::min_p(v, 0.0f, small).error() == errc::capacity_exceeded);
  auto x = v;
  std::vector<std::uint32_t> counts(3), bad_counts(2);
  const std::vector<tandem::token_id> out_of_vocab{0, 3};
  CHECK(k::apply_penalties(x, out_of_vocab, 1.1f, 0, 0, counts) == errc::invalid_token);
  CHECK(k::apply_penalties(x, {}, 1.1f, 0, 0, bad_counts) == errc::size_mismatch);
  CHECK(k::apply_penalties(x, {}, 0.0f, 0, 0, counts) == errc::invalid_argument);
  CHECK(k::apply_penalties(x, {}, 1.0f, qnan, 0, counts) == errc::invalid_argument);
  CHECK(x == v);
}

TEST_CASE("logits: token_stats gives log p of the chosen token and the entropy", "[core][logits]") {
  for (std::size_t n : sizes) {
    CAPTURE(n);
    const auto v = make_logits(n, 21);
    const auto ref = ref_softmax(v);
    for (std::size_t c : {std::size_t{0}, n / 2, n - 1}) {
      const auto st = k::token_stats(v, static_cast<tandem::token_id>(c));
      REQUIRE(st.has_value());
      if (ref[c] == 0) {
        CHECK(st->logprob == -inf);
      } else {
        CHECK(st->logprob == Approx(std::log(ref[c])).epsilon(1e-5).margin(1e-5));
      }
      CHECK(st->entropy == Approx(ref_entropy(v)).epsilon(1e-4).margin(1e-5));
    }
  }
}

TEST_CASE("logits: temperature divides every logit", "[core][logits]") {
  auto v = make_logits(1000, 8);
  const auto orig = v;
  REQUIRE(k::apply_temperature(v, 0.7f) == errc::ok);
  for (std::size_t i = 0; i < v.size(); ++i) REQUIRE(v[i] == orig[i] / 0.7f);
}

TEST_CASE("logits: top-k keeps exactly k tokens, ties going to lower ids", "[core][logits]") {
  for (std::size_t n : sizes) {
    for (std::size_t kk :
         {std::size_t{1}, std::size_t{2}, std::size_t{40}, std::size_t{1000}, n + 5}) {
      CAPTURE(n, kk);
      const auto v = make_logits(n, 17 + static_cast<std::uint32_t>(kk));
      std::vector<k::candidate> out(k::top_k_buffer_size(kk, n));
      const auto r = k::top_k(v, kk, out);
      REQUIRE(r.has_value());
      const auto ref = ref_ranked(v);
      const std::size_t want = std::min(kk, ref.size());
      REQUIRE(*r == want);
      CHECK(same_ids({out.data(), *r}, {ref.data(), want}));
    }
  }
  // Heavy ties: 100 equal logits, keep 10: ids 0..9, and ascending input (worst case).
  std::vector<float> flat(100, 0.5f);
  std::vector<k::candidate> out(k::top_k_buffer_size(10, 100));
  REQUIRE(k::top_k(flat, 10, out).value() == 10);
  for (int i = 0; i < 10; ++i) CHECK(out[static_cast<std::size_t>(i)].id == i);
  std::vector<float> asc(5000);
  for (std::size_t i = 0; i < asc.size(); ++i) asc[i] = float(i % 700);
  std::vector<k::candidate> out2(k::top_k_buffer_size(7, asc.size()));
  REQUIRE(k::top_k(asc, 7, out2).value() == 7);
  CHECK(same_ids({out2.data(), 7}, {ref_ranked(asc).data(), 7}));
}

TEST_CASE("logits: top-p keeps the shortest rank-order prefix reaching p", "[core][logits]") {
  struct dist_case {
    float sigma;
    bool peaks;
  };
  for (std::size_t n : sizes) {
    // Peaked (the top-64 attempt suffices), broad (bisection), and all ties.
    for (const auto dc : {dist_case{2.0f, true}, dist_case{1.0f, false}, dist_case{0.0f, false}}) {
      auto v = dc.peaks ? make_logits(n, 99, dc.sigma) : make_logits(n, 98, dc.sigma);
      if (!dc.peaks)
        for (auto& x : v)
          if (x == 12.0f || x == 9.0f) x = 0.0f;
      const auto ref = ref_ranked(v);
      std::vector<k::candidate> out(n);
      std::vector<float> scratch(n);
      for (float scale : {1.0f, 1.25f}) {
        const auto prob = ref_softmax(v, scale);
        for (float p : {0.1f, 0.5f, 0.9f, 0.95f, 0.999f, 1.0f}) {
          CAPTURE(n, dc.sigma, dc.peaks, p, scale);
          const auto r = k::top_p(v, p, out, scratch, scale);
          REQUIRE(r.has_value());
          std::size_t want = ref.size();
          double cum = 0;
          for (std::size_t i = 0; i < ref.size(); ++i) {
            cum += prob[static_cast<std::size_t>(ref[i].id)];
            if (cum >= p) {
              want = i + 1;
              break;
            }
          }
          if (p == 1.0f) want = ref.size();
          if (*r != want) {
            // Float exps may move the cut only among tokens whose cumulative mass is
            // within rounding of p: the kept prefix must reach p, one token less must not.
            double below = 0;
            for (std::size_t i = 0; i + 1 < *r; ++i)
              below += prob[static_cast<std::size_t>(ref[i].id)];
            const double at = below + prob[static_cast<std::size_t>(ref[*r - 1].id)];
            INFO("kept " << *r << " want " << want << " cum " << at);
            CHECK(at >= p - 1e-6);
            CHECK(below < p + 1e-6);
          }
          // Unspecified order: in rank order the kept set is the reference's prefix.
          std::sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*r), k::ranks_before);
          CHECK(same_ids({out.data(), *r}, {ref.data(), *r}));
        }
      }
    }
  }
}

TEST_CASE("logits: min-p keeps exactly the tokens with p >= p_min * p_max", "[core][logits]") {
  for (std::size_t n : sizes) {
    for (float pm : {0.0f, 0.01f, 0.1f, 0.5f, 1.0f}) {
      CAPTURE(n, pm);
      const auto v = make_logits(n, 45);
      std::vector<k::candidate> out(n);
      const auto r = k::min_p(v, pm, out, 1.25f);
      REQUIRE(r.has_value());
      const double m = ref_max(v);
      std::vector<k::candidate> want;
      for (std::size_t i = 0; i < n; ++i)
        if (v[i] != -inf && (v[i] - float(m)) * 1.25f >= std::log(pm))
          want.push_back({v[i], static_cast<tandem::token_id>(i)});
      CHECK(same_ids({out.data(), *r}, want));
    }
  }
}

TEST_CASE("logits: penalties follow llama.cpp semantics", "[core][logits]") {
  std::vector<float> v{2.0f, -1.0f, 0.5f, 3.0f, -inf};
  std::vector<std::uint32_t> counts(v.size(), 0);
  const std::vector<tandem::token_id> hist{0, 1, 1, 4, 0, 0};
  REQUIRE(k::apply_penalties(v, hist, 2.0f, 0.25f, 0.5f, counts) == errc::ok);
  CHECK(v[0] == 2.0f / 2.0f - 3 * 0.25f - 0.5f);
  CHECK(v[1] == -1.0f * 2.0f - 2 * 0.25f - 0.5f);
  CHECK(v[2] == 0.5f);
  CHECK(v[3] == 3.0f);
  CHECK(v[4] == -inf);
  CHECK(std::all_of(counts.begin(), counts.end(), [](std::uint32_t c) { return c == 0; }));
}

TEST_CASE("logits: total variation and KL divergence match the reference", "[core][logits]") {
  for (std::size_t n : sizes) {
    CAPTURE(n);
    const auto a = make_logits(n, 1);
    auto b = make_logits(n, 2);
    const auto pa = ref_softmax(a), pb = ref_softmax(b);
    double tv = 0, kl = 0;
    for (std::size_t i = 0; i < n; ++i) {
      tv += 0.5 * std::abs(pa[i] - pb[i]);
      if (pa[i] > 0) kl += pa[i] * (std::log(pa[i]) - std::log(pb[i]));
    }
    CHECK(k::total_variation(a, b).value() == Approx(tv).epsilon(1e-4).margin(1e-6));
    CHECK(k::kl_divergence(a, b).value() == Approx(kl).epsilon(1e-4).margin(1e-5));
    CHECK(k::total_variation(a, a).value() == Approx(0.0).margin(1e-6));
    CHECK(k::kl_divergence(a, a).value() == Approx(0.0).margin(1e-5));
  }
  // p puts mass where q is masked: KL is +inf, TV is that mass.
  const std::vector<float> p{0.0f, 0.0f}, q{0.0f, -inf};
  CHECK(k::kl_divergence(p, q).value() == inf);
  CHECK(k::total_variation(p, q).value() == Approx(0.5));
}
