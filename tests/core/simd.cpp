// The SIMD layer (core/detail/simd.hpp) and the kernels built on it against scalar
// references. Built twice: in test_core_kernels on the library's backend and in
// test_kernels_xsimd on the other one, so both backends answer to the same references.
#include "tandem/core/detail/simd.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "common/catch.hpp"
#include "tandem/core/logits.hpp"

namespace {

namespace k = tandem::kernels;
namespace simd = tandem::detail::simd;
using tandem::errc;
using fbatch = simd::batch<float>;
using ibatch = simd::batch<std::int32_t>;
constexpr std::size_t w = fbatch::size;
constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();

std::vector<float> lanes(fbatch v) {
  std::vector<float> out(w);
  v.store_unaligned(out.data());
  return out;
}

// Values with -inf, ties and both signs, `n` long, starting one float past an aligned
// boundary (so no load is aligned) when `offset` is 1.
struct row {
  std::vector<float> storage;
  std::size_t offset;
  std::span<float> span() { return {storage.data() + offset, storage.size() - offset}; }
};
row make_row(std::size_t n, std::size_t offset, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  row r{std::vector<float>(n + offset, 0.0f), offset};
  auto s = r.span();
  for (auto& x : s) x = d(g);
  if (n >= 3) {
    s[n / 2] = -inf;
    s[0] = 7.5f;
    s[n - 1] = 7.5f;  // a tie for the maximum in the tail: argmax must keep index 0
  }
  return r;
}

// Lengths around every multiple of the register width up to four registers, plus a long one.
std::vector<std::size_t> lengths() {
  std::vector<std::size_t> out;
  for (std::size_t n = 1; n <= 4 * w + 3; ++n) out.push_back(n);
  out.push_back(1031);
  return out;
}

}  // namespace

TEST_CASE("simd: the layer's lane operations agree with scalar arithmetic", "[core][simd]") {
  std::vector<float> a(w), b(w);
  for (std::size_t i = 0; i < w; ++i) {
    a[i] = static_cast<float>(i) - 1.5f;
    b[i] = i % 2 == 0 ? 0.25f * static_cast<float>(i) : -2.0f;
  }
  a[w - 1] = qnan;
  const fbatch va = fbatch::load_unaligned(a.data()), vb = fbatch::load_unaligned(b.data());
  const auto mx = lanes(simd::max(va, vb)), mn = lanes(simd::min(va, vb));
  const auto fm = lanes(simd::fma(va, vb, fbatch(1.0f))), ab = lanes(simd::abs(va));
  const auto sel = lanes(simd::select(va < vb, va, vb));
  const auto nan = lanes(simd::select(simd::isnan(va), fbatch(1.0f), fbatch(0.0f)));
  for (std::size_t i = 0; i + 1 < w; ++i) {
    CAPTURE(i);
    CHECK(mx[i] == std::max(a[i], b[i]));
    CHECK(mn[i] == std::min(a[i], b[i]));
    CHECK(fm[i] == Approx(a[i] * b[i] + 1.0f));
    CHECK(ab[i] == std::abs(a[i]));
    CHECK(sel[i] == (a[i] < b[i] ? a[i] : b[i]));
    CHECK(nan[i] == 0.0f);
  }
  CHECK(nan[w - 1] == 1.0f);
  CHECK(std::isnan(ab[w - 1]));
  // Reductions: one lane set at each position in turn.
  for (std::size_t i = 0; i < w; ++i) {
    std::vector<float> one(w, 0.0f);
    one[i] = 1.0f;
    const auto m = fbatch::load_unaligned(one.data()) > fbatch(0.5f);
    CHECK(simd::any(m));
    CHECK(simd::all(m) == (w == 1));
    CHECK(simd::bitmask(m) == std::uint32_t{1} << i);
    CHECK(simd::bitmask(fbatch::load_unaligned(one.data()) < fbatch(0.5f)) ==
          (((std::uint64_t{1} << w) - 1) & ~(std::uint64_t{1} << i)));
    CHECK(simd::hadd(fbatch::load_unaligned(one.data()) * fbatch(3.0f)) == 3.0f);
  }
  CHECK(simd::bitmask(fbatch(0.0f) > fbatch(1.0f)) == 0);
  CHECK(simd::bitmask(simd::isnan(va)) == std::uint32_t{1} << (w - 1));
  CHECK_FALSE(simd::any(fbatch(0.0f) > fbatch(1.0f)));
  CHECK(simd::all(fbatch(0.0f) < fbatch(1.0f)));
  CHECK(simd::hadd(fbatch(0.5f)) == 0.5f * static_cast<float>(w));
  // Bit casts and integer lanes.
  std::vector<std::int32_t> bits(w);
  simd::to_bits(va).store_unaligned(bits.data());
  for (std::size_t i = 0; i + 1 < w; ++i) {
    std::int32_t expect = 0;
    std::memcpy(&expect, &a[i], sizeof expect);
    CHECK(bits[i] == expect);
  }
  const auto two = lanes(simd::from_bits((ibatch(1) + ibatch(127)) << 23));
  CHECK(two[0] == 2.0f);
  std::vector<std::int32_t> shifted(w);
  (ibatch(-8) >> 1).store_unaligned(shifted.data());
  CHECK(shifted[0] == -4);                                            // arithmetic shift
  for (const float x : lanes(fbatch(-0.0f))) CHECK(std::signbit(x));  // broadcast keeps -0
  for (const float x : lanes(fbatch(-3.25f))) CHECK(x == -3.25f);
  CHECK(simd::backend_name()[0] != '\0');
}

TEST_CASE("simd: exp has relative error below 1.5e-7 against std::exp over the float range",
          "[core][simd]") {
  // The polynomial's own error is about 1e-9; what remains is float rounding.
  double worst = 0, worst_nonpos = 0;
  std::vector<float> xs;
  for (float x = -87.33f; x < 88.72f; x += 0.00061f) xs.push_back(x);
  for (std::size_t i = 0; i + w <= xs.size(); i += w) {
    const fbatch v = fbatch::load_unaligned(xs.data() + i);
    const auto e = lanes(tandem::detail::exp(v));
    const auto en = lanes(tandem::detail::exp_nonpos(simd::min(v, fbatch(0.0f))));
    for (std::size_t j = 0; j < w; ++j) {
      const double x = xs[i + j];
      const double r = std::exp(x);
      worst = std::max(worst, std::abs(e[j] - r) / r);
      const double rn = std::exp(std::min(x, 0.0));
      worst_nonpos = std::max(worst_nonpos, std::abs(en[j] - rn) / rn);
    }
  }
  INFO("max relative error: exp " << worst << ", exp_nonpos " << worst_nonpos);
  CHECK(worst < 1.5e-7);
  CHECK(worst_nonpos < 1.5e-7);
  CHECK(worst > 0.0);  // the measurement saw rounding at all
  for (const float x : {88.72f, -87.3f, -1e-6f, 0.34657f, -0.34657f}) {
    CAPTURE(x);
    CHECK(tandem::detail::exp1(x) == Approx(std::exp(static_cast<double>(x))).epsilon(1.5e-7));
  }
  CHECK(tandem::detail::exp1(200.0f) == inf);
  CHECK(tandem::detail::exp1(-inf) == 0.0f);
  CHECK(std::isnan(tandem::detail::exp1(qnan)));
}

TEST_CASE(
    "simd: softmax, log-softmax, argmax and top-k match references at odd lengths "
    "and unaligned tails",
    "[core][simd]") {
  for (const std::size_t n : lengths()) {
    for (std::size_t offset : {0u, 1u}) {
      CAPTURE(n, offset);
      auto r = make_row(n, offset, static_cast<std::uint32_t>(7 * n + offset));
      const auto x = r.span();
      double m = -inf;
      for (const float v : x) m = std::max(m, static_cast<double>(v));
      double z = 0;
      for (const float v : x) z += std::exp(static_cast<double>(v) - m);
      std::vector<float> out(n + 1, 0.0f);
      std::span<float> o(out.data() + 1 - offset, n);  // misaligned against the input
      REQUIRE(k::softmax(x, o) == errc::ok);
      for (std::size_t i = 0; i < n; ++i) {
        const double p = std::exp(static_cast<double>(x[i]) - m) / z;
        CHECK(o[i] == Approx(p).epsilon(1e-5).margin(1e-9));
      }
      REQUIRE(k::log_softmax(x, o) == errc::ok);
      for (std::size_t i = 0; i < n; ++i) {
        if (x[i] == -inf) {
          CHECK(o[i] == -inf);
        } else {
          CHECK(o[i] == Approx(static_cast<double>(x[i]) - m - std::log(z)).margin(1e-5));
        }
      }
      std::size_t best = 0;
      for (std::size_t i = 1; i < n; ++i)
        if (x[i] > x[best]) best = i;
      CHECK(k::argmax(x).value() == best);
      const std::size_t kk = std::min<std::size_t>(5, n);
      std::vector<k::candidate> buf(k::top_k_buffer_size(kk, n));
      const auto got = k::top_k(x, kk, buf);
      REQUIRE(got.has_value());
      std::vector<k::candidate> ref;
      for (std::size_t i = 0; i < n; ++i)
        if (x[i] != -inf) ref.push_back({x[i], static_cast<tandem::token_id>(i)});
      std::sort(ref.begin(), ref.end(), k::ranks_before);
      REQUIRE(*got == std::min(kk, ref.size()));
      for (std::size_t i = 0; i < *got; ++i) CHECK(buf[i].id == ref[i].id);
    }
  }
}

TEST_CASE("simd: NaN, +inf and all -inf are reported in any lane and in the tail", "[core][simd]") {
  for (const std::size_t n : lengths()) {
    for (std::size_t pos = 0; pos < n; pos += std::max<std::size_t>(1, n / 7)) {
      CAPTURE(n, pos);
      std::vector<float> x(n, 0.5f), o(n);
      x[pos] = qnan;
      CHECK(k::max_logit(x).error() == errc::non_finite);
      CHECK(k::softmax(x, o) == errc::non_finite);
      std::vector<k::candidate> buf(k::top_k_buffer_size(1, n));
      CHECK(k::top_k(x, 1, buf).error() == errc::non_finite);
      x[pos] = inf;
      CHECK(k::argmax(x).error() == errc::non_finite);
      CHECK(k::log_softmax(x, o) == errc::non_finite);
    }
    std::vector<float> masked(n, -inf), o(n);
    CHECK(k::max_logit(masked).error() == errc::no_candidates);
    CHECK(k::softmax(masked, o) == errc::no_candidates);
  }
}
