// tandem (private): the logistic function and log(1 + e^z), without overflow; no Eigen, so
// that headers which only evaluate a fitted model need not include it.
#pragma once

#include <cmath>

namespace tandem::inline v0::detail {

/// log(1 + e^z) without overflow.
inline double log1pexp(double z) noexcept {
  return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

/// The logistic function 1 / (1 + e^-z) without overflow.
inline double sigmoid(double z) noexcept {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

}  // namespace tandem::inline v0::detail
