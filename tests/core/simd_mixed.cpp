// Translation units built for different instruction sets in one program (simd_mixed_wide.cpp
// is compiled with -mavx2 -mfma, this one with the project's flags): the SIMD layer's types
// and helpers carry the instruction set in their names, so each unit's kernels run on their
// own register layout. Before that, the linker merged the 16- and 32-byte helpers and the
// kernels overflowed a stack buffer or returned wrong sums.
#include <cmath>
#include <cstring>
#include <span>
#include <vector>

#include "common/catch.hpp"
#include "tandem/core/logits.hpp"

float mixed_wide_total_variation(std::span<const float> p, std::span<const float> q);
tandem::errc mixed_wide_softmax(std::span<const float> in, std::span<float> out);
const char* mixed_wide_backend();

namespace {

std::vector<double> reference_softmax(const std::vector<float>& x) {
  double m = x[0];
  for (float v : x) m = std::max(m, static_cast<double>(v));
  std::vector<double> p(x.size());
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += p[i] = std::exp(x[i] - m);
  for (double& v : p) v /= s;
  return p;
}

}  // namespace

TEST_CASE("simd: units built for different instruction sets each compute with their own registers",
          "[simd]") {
  INFO("wide unit: " << mixed_wide_backend()
                     << ", this unit: " << tandem::detail::simd::backend_name());
  CHECK(std::strcmp(mixed_wide_backend(), tandem::detail::simd::backend_name()) != 0);
  for (std::size_t n : {3u, 11u, 16u, 37u, 1000u}) {
    std::vector<float> x(n), y(n);
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = static_cast<float>(i % 13) * 0.7f - 3.0f;
      y[i] = static_cast<float>((n - i) % 7) * 0.9f - 2.0f;
    }
    const auto px = reference_softmax(x), py = reference_softmax(y);
    double tv = 0;
    for (std::size_t i = 0; i < n; ++i) tv += std::abs(px[i] - py[i]);
    tv /= 2;
    std::vector<float> a(n), b(n);
    REQUIRE(tandem::kernels::softmax(x, a) == tandem::errc::ok);
    REQUIRE(mixed_wide_softmax(x, b) == tandem::errc::ok);
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(a[i] == Approx(px[i]).epsilon(1e-5));
      CHECK(b[i] == Approx(px[i]).epsilon(1e-5));
    }
    CHECK(mixed_wide_total_variation(x, y) == Approx(tv).epsilon(1e-4));
    auto here = tandem::kernels::total_variation(x, y);
    REQUIRE(here);
    CHECK(*here == Approx(tv).epsilon(1e-4));
  }
}
