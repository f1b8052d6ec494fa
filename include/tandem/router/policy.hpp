// tandem: routing policies over predicted per-model quality. For N models: pick the model
// maximising predicted quality - lambda * cost. For two models: send a query to the strong
// model when its predicted win (strong minus weak quality) reaches a threshold, calibrated
// so that a target share of queries goes to the strong model.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// The model maximising predicted[j] - lambda * cost[j]; ties go to the cheaper model,
/// then the lower index. Errors: empty_input, size_mismatch, invalid_argument (lambda < 0
/// or NaN, a negative cost), non_finite (a NaN/Inf prediction or cost).
[[nodiscard]] inline result<std::size_t> pick_model(std::span<const double> predicted,
                                                    std::span<const double> cost,
                                                    double lambda) noexcept {
  if (predicted.empty()) return errc::empty_input;
  if (cost.size() != predicted.size()) return errc::size_mismatch;
  if (!(lambda >= 0)) return errc::invalid_argument;
  std::size_t best = 0;
  double best_v = 0;
  for (std::size_t j = 0; j < predicted.size(); ++j) {
    if (!std::isfinite(predicted[j]) || !std::isfinite(cost[j])) return errc::non_finite;
    if (cost[j] < 0) return errc::invalid_argument;
    // lambda may be +inf: then only cost matters.
    const double v = std::isinf(lambda) ? -cost[j] : predicted[j] - lambda * cost[j];
    if (j == 0 || v > best_v || (v == best_v && cost[j] < cost[best])) {
      best = j;
      best_v = v;
    }
  }
  return best;
}

/// A two-model threshold policy: route to the strong model when win >= threshold, where win
/// is the predicted quality of the strong model minus that of the weak one.
struct win_threshold_policy {
  double threshold = 0;  ///< may be +inf (never strong) or -inf (always strong)

  /// True when the query with predicted win `win` goes to the strong model.
  [[nodiscard]] bool route_strong(double win) const noexcept { return win >= threshold; }
};

/// Calibrates a threshold so that the share of `wins` (predicted wins on a calibration set
/// of queries, e.g. the training or recent traffic) at or above it is as close as possible
/// to `strong_share` without exceeding it (ties can only move together). Share 0 gives
/// +inf, share 1 gives -inf. Errors: empty_input, invalid_argument (strong_share outside
/// [0, 1] or NaN), non_finite (a NaN/Inf win).
[[nodiscard]] inline result<win_threshold_policy> calibrate_win_threshold(
    std::span<const double> wins, double strong_share) {
  if (wins.empty()) return errc::empty_input;
  if (!(strong_share >= 0.0 && strong_share <= 1.0)) return errc::invalid_argument;
  for (double w : wins)
    if (!std::isfinite(w)) return errc::non_finite;
  constexpr double inf = std::numeric_limits<double>::infinity();
  if (strong_share == 1.0) return win_threshold_policy{-inf};
  std::vector<double> s(wins.begin(), wins.end());
  std::sort(s.begin(), s.end(), [](double a, double b) { return a > b; });
  const auto budget =
      static_cast<std::size_t>(std::floor(strong_share * static_cast<double>(s.size()) + 1e-9));
  if (budget == 0) return win_threshold_policy{inf};
  // Largest count <= budget that does not split a run of equal wins.
  std::size_t k = budget;
  while (k > 0 && k < s.size() && s[k] == s[k - 1]) --k;
  if (k == 0) return win_threshold_policy{inf};
  return win_threshold_policy{s[k - 1]};
}

}  // namespace tandem::inline v0
