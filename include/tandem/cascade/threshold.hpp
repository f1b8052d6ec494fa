// tandem: choosing cascade thresholds from labelled data: (1) the best quality under a
// mean-cost budget, searching stage order and thresholds (FrugalGPT); (2) a target
// escalation rate (a quantile of the scores); (3) a guarantee that the quality lost
// against always escalating stays below epsilon with probability 1 - delta
// (learn-then-test with Hoeffding-Bentkus p-values and fixed-sequence testing); and an
// online controller that holds a target escalation rate under drift (streaming quantile).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "tandem/cascade/policy.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// Labelled cascade data, row-major n x k (row = query, column = stage): each stage's
/// calibrated confidence in its answer, the answer's recorded quality in [0, 1] and the
/// stage's cost. Borrowed views.
struct cascade_views {
  std::span<const double> score;    ///< n x k calibrated confidences
  std::span<const double> quality;  ///< n x k answer qualities in [0, 1]
  std::span<const double> cost;     ///< n x k costs of running each stage
  std::size_t stages = 0;           ///< k
};

/// Mean quality and mean cost of a policy replayed over labelled data.
struct cascade_point {
  double quality = 0;     ///< abstentions count as quality 0
  double cost = 0;        ///< every stage that ran is paid
  double escalation = 0;  ///< share of queries that reached a second stage
  double abstention = 0;  ///< share of queries the cascade abstained on
};

namespace detail::cascade {
[[nodiscard]] inline errc check(const cascade_views& v) noexcept {
  if (v.stages == 0) return errc::invalid_argument;
  if (v.quality.empty()) return errc::empty_input;
  if (v.quality.size() % v.stages != 0 || v.score.size() != v.quality.size() ||
      v.cost.size() != v.quality.size())
    return errc::size_mismatch;
  for (std::size_t i = 0; i < v.quality.size(); ++i) {
    if (std::isnan(v.score[i]) || !std::isfinite(v.cost[i])) return errc::non_finite;
    if (!(v.quality[i] >= 0.0 && v.quality[i] <= 1.0) || v.cost[i] < 0.0)
      return errc::invalid_argument;
  }
  return errc::ok;
}
}  // namespace detail::cascade

/// Replays `policy` over `data`. Errors: those of the views (empty_input, size_mismatch,
/// non_finite for a NaN score or non-finite cost, invalid_argument for a quality outside
/// [0, 1] or a negative cost) and of policy.validate(data.stages).
[[nodiscard]] inline result<cascade_point> evaluate_cascade(const cascade_policy& policy,
                                                            const cascade_views& data) {
  TANDEM_TRY(detail::cascade::check(data));
  TANDEM_TRY(policy.validate(data.stages));
  const std::size_t k = data.stages, n = data.quality.size() / k;
  cascade_point p;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t r = 0; r < policy.order.size(); ++r) {
      const std::size_t s = policy.order[r];
      p.cost += data.cost[i * k + s];
      if (r == 1) p.escalation += 1;
      const cascade_decision d = policy.decide(r, data.score[i * k + s]);
      if (d == cascade_decision::accept) p.quality += data.quality[i * k + s];
      if (d == cascade_decision::abstain) p.abstention += 1;
      if (d != cascade_decision::escalate) break;
    }
  }
  const double inv = 1.0 / static_cast<double>(n);
  p.quality *= inv;
  p.cost *= inv;
  p.escalation *= inv;
  p.abstention *= inv;
  return p;
}

/// Settings of `search_budget`.
struct budget_search_options {
  std::size_t max_length = 3;  ///< longest stage list tried (>= 1)
  std::size_t grid = 32;       ///< candidate thresholds per stage: score quantiles (>= 1)
};

/// The policy found by a search, with its replayed quality and cost on the search data.
struct cascade_search_result {
  cascade_policy policy;  ///< the best policy found
  cascade_point point;    ///< its quality and cost replayed on the search data
};

/// FrugalGPT's search: over every ordered list of distinct stages up to
/// `options.max_length` long and every combination of acceptance thresholds (taken from
/// `options.grid` quantiles of each stage's scores) for all but the last stage (which
/// always accepts), the policy of highest mean quality whose mean cost is <= `budget`;
/// ties go to the lower cost, then to the first found. Deterministic. Work grows as
/// k^L grid^(L-1) n for L = max_length: keep L small. Errors: those of the views,
/// invalid_argument (budget NaN, max_length or grid 0), not_found (no policy meets the
/// budget, i.e. it is below every stage's mean cost).
[[nodiscard]] inline result<cascade_search_result> search_budget(
    const cascade_views& data, double budget, const budget_search_options& options = {}) {
  TANDEM_TRY(detail::cascade::check(data));
  if (std::isnan(budget) || options.max_length == 0 || options.grid == 0)
    return errc::invalid_argument;
  const std::size_t k = data.stages, n = data.quality.size() / k;
  const std::size_t max_len = std::min(options.max_length, k);
  // Candidate thresholds per stage: distinct score quantiles.
  std::vector<std::vector<double>> cand(k);
  std::vector<double> col(n);
  for (std::size_t s = 0; s < k; ++s) {
    for (std::size_t i = 0; i < n; ++i) col[i] = data.score[i * k + s];
    std::sort(col.begin(), col.end());
    for (std::size_t g = 0; g < options.grid; ++g) {
      const auto at =
          static_cast<std::size_t>((static_cast<double>(g) + 0.5) /
                                   static_cast<double>(options.grid) * static_cast<double>(n));
      cand[s].push_back(col[std::min(at, n - 1)]);
    }
    std::sort(cand[s].begin(), cand[s].end());
    cand[s].erase(std::unique(cand[s].begin(), cand[s].end()), cand[s].end());
  }
  bool found = false;
  cascade_search_result best;
  std::vector<std::size_t> order, pick;
  std::vector<bool> used(k, false);
  cascade_policy p;
  // Enumerates orders depth-first; for each, every threshold combination (odometer).
  const auto try_order = [&]() {
    const std::size_t len = order.size();
    pick.assign(len, 0);
    p = cascade_policy::chain(order, 0.0);
    for (;;) {
      for (std::size_t r = 0; r + 1 < len; ++r) p.accept[r] = cand[order[r]][pick[r]];
      auto pt = evaluate_cascade(p, data);
      if (pt && pt->cost <= budget &&
          (!found || pt->quality > best.point.quality ||
           (pt->quality == best.point.quality && pt->cost < best.point.cost))) {
        found = true;
        best = {p, *pt};
      }
      std::size_t r = 0;
      for (; r + 1 < len; ++r) {
        if (++pick[r] < cand[order[r]].size()) break;
        pick[r] = 0;
      }
      if (r + 1 >= len) return;
    }
  };
  const auto recurse = [&](auto& self) -> void {
    if (!order.empty()) try_order();
    if (order.size() == max_len) return;
    for (std::size_t s = 0; s < k; ++s) {
      if (used[s]) continue;
      used[s] = true;
      order.push_back(s);
      self(self);
      order.pop_back();
      used[s] = false;
    }
  };
  recurse(recurse);
  if (!found) return errc::not_found;
  return best;
}

/// The threshold t such that "escalate when score < t" escalates a share of `scores` as
/// close to `rate` as possible without exceeding it (exact when the scores are distinct):
/// the floor(rate n)-th smallest score (0-based), or +inf for rate 1. Errors: empty_input,
/// non_finite (a NaN score), invalid_argument (rate outside [0, 1] or NaN).
[[nodiscard]] inline result<double> threshold_for_escalation_rate(std::span<const double> scores,
                                                                  double rate) {
  if (scores.empty()) return errc::empty_input;
  if (!(rate >= 0.0 && rate <= 1.0)) return errc::invalid_argument;
  for (double s : scores)
    if (std::isnan(s)) return errc::non_finite;
  std::vector<double> v(scores.begin(), scores.end());
  const auto k = static_cast<std::size_t>(std::floor(rate * static_cast<double>(v.size())));
  if (k >= v.size()) return std::numeric_limits<double>::infinity();
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

namespace detail::cascade {
/// log P(Bin(n, p) <= k).
[[nodiscard]] inline double log_binom_cdf(std::size_t n, std::size_t k, double p) noexcept {
  if (k >= n) return 0.0;
  const double lp = std::log(p), lq = std::log1p(-p);
  double acc = -std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j <= k; ++j) {
    const double t = std::lgamma(static_cast<double>(n) + 1) -
                     std::lgamma(static_cast<double>(j) + 1) -
                     std::lgamma(static_cast<double>(n - j) + 1) + static_cast<double>(j) * lp +
                     static_cast<double>(n - j) * lq;
    const double hi = std::max(acc, t);
    acc = hi + std::log(std::exp(acc - hi) + std::exp(t - hi));
  }
  return acc;
}
/// Hoeffding-Bentkus p-value of H0: mean loss > eps, for a loss in [0, 1] with empirical
/// mean `mean` over n samples.
[[nodiscard]] inline double hb_p_value(double mean, std::size_t n, double eps) noexcept {
  if (mean >= eps) return 1.0;
  const double a = mean;
  const double kl = (a > 0 ? a * std::log(a / eps) : 0.0) +
                    (a < 1 ? (1 - a) * std::log((1 - a) / (1 - eps)) : 0.0);
  const double hoeffding = std::exp(-static_cast<double>(n) * kl);
  const auto k = static_cast<std::size_t>(std::ceil(static_cast<double>(n) * mean - 1e-9));
  const double bentkus = std::exp(1.0) * std::exp(log_binom_cdf(n, k, eps));
  return std::min({1.0, hoeffding, bentkus});
}
}  // namespace detail::cascade

/// Settings of `guaranteed_threshold`.
struct risk_control_options {
  double epsilon = 0.05;  ///< tolerated quality loss against always escalating, in (0, 1)
  double delta = 0.1;     ///< allowed probability that the loss exceeds epsilon, in (0, 1)
};

/// A threshold with a statistical guarantee, and what it did on the calibration data.
struct guaranteed_threshold_result {
  double threshold = std::numeric_limits<double>::infinity();  ///< accept when score >= it
  double empirical_loss = 0;  ///< calibration loss at the threshold
  double acceptance = 0;      ///< calibration share accepted by the first stage
};

/// Learn-then-test for a two-stage cascade (first stage accepts when its score >= t,
/// else escalates to a second stage that always answers). The loss of a query at t is
/// 1[score >= t] max(0, strong - weak) (quality lost by not escalating, bounded in [0, 1]
/// and never below the true quality loss). Candidate thresholds are the distinct scores
/// from high to low; each is tested with a Hoeffding-Bentkus p-value for
/// "mean loss > epsilon" and fixed-sequence testing stops at the first failure, so for
/// i.i.d. calibration and test queries, P(test loss of the chosen t > epsilon) <= delta.
/// Returns the lowest (most accepting) threshold that passed; +inf (always escalate)
/// when none did. Errors: empty_input, size_mismatch, non_finite (a NaN score),
/// invalid_argument (quality outside [0, 1], epsilon or delta outside (0, 1)).
[[nodiscard]] inline result<guaranteed_threshold_result> guaranteed_threshold(
    std::span<const double> score, std::span<const double> weak_quality,
    std::span<const double> strong_quality, const risk_control_options& options = {}) {
  const std::size_t n = score.size();
  if (n == 0) return errc::empty_input;
  if (weak_quality.size() != n || strong_quality.size() != n) return errc::size_mismatch;
  if (!(options.epsilon > 0 && options.epsilon < 1) || !(options.delta > 0 && options.delta < 1))
    return errc::invalid_argument;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(score[i])) return errc::non_finite;
    if (!(weak_quality[i] >= 0 && weak_quality[i] <= 1) ||
        !(strong_quality[i] >= 0 && strong_quality[i] <= 1))
      return errc::invalid_argument;
  }
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    return score[a] > score[b] || (score[a] == score[b] && a < b);
  });
  guaranteed_threshold_result out;
  double loss = 0;
  std::size_t i = 0;
  while (i < n) {
    const double t = score[idx[i]];
    double l = loss;
    std::size_t j = i;
    for (; j < n && score[idx[j]] == t; ++j)
      l += std::max(0.0, strong_quality[idx[j]] - weak_quality[idx[j]]);
    const double mean = l / static_cast<double>(n);
    if (detail::cascade::hb_p_value(mean, n, options.epsilon) > options.delta) break;
    loss = l;
    i = j;
    out = {t, mean, static_cast<double>(j) / static_cast<double>(n)};
  }
  return out;
}

/// Online controller holding a target escalation rate under drift: a streaming quantile
/// by stochastic approximation. Each observed score escalates when score < threshold; the
/// threshold then moves by -step (escalated - target), so it settles where the
/// escalation rate equals the target. Value type, no allocation.
///
/// Settings out of range (see validate(rate, step, threshold)) do not abort: the
/// controller is left invalid, validate() returns invalid_argument, and observe()
/// escalates every score without counting or learning (the stronger stage answers).
/// create() reports them up front.
class escalation_controller {
 public:
  /// Checks the settings: invalid_argument unless rate is in (0, 1), step > 0 and finite
  /// and threshold finite (the values in `*info` when given); else ok.
  [[nodiscard]] static errc validate(double rate, double step, double threshold,
                                     error_info* info = nullptr) noexcept {
    if (rate > 0 && rate < 1 && step > 0 && std::isfinite(step) && std::isfinite(threshold))
      return errc::ok;
    return detail::fail(info, errc::invalid_argument,
                        "escalation_controller: need rate (%g) in (0, 1), step (%g) > 0 and "
                        "finite, threshold (%g) finite",
                        rate, step, threshold);
  }

  /// Targets `rate` in (0, 1) with step `step` > 0 (in score units) from `threshold`;
  /// settings out of range leave it invalid (see the class comment).
  escalation_controller(double rate, double step, double threshold) noexcept
      : rate_(rate),
        step_(step),
        threshold_(threshold),
        valid_(validate(rate, step, threshold) == errc::ok) {}

  /// A controller as the constructor makes it, or invalid_argument for settings out of
  /// range (details in `*info` when given).
  [[nodiscard]] static result<escalation_controller> create(double rate, double step,
                                                            double threshold,
                                                            error_info* info = nullptr) noexcept {
    TANDEM_TRY(validate(rate, step, threshold, info));
    return escalation_controller(rate, step, threshold);
  }

  /// invalid_argument when the controller was made with settings out of range, else ok.
  [[nodiscard]] errc validate() const noexcept {
    return valid_ ? errc::ok : errc::invalid_argument;
  }

  /// Decides for `score` (escalate when score < threshold) and updates the threshold.
  /// A NaN score escalates and leaves the threshold unchanged; an invalid controller
  /// escalates every score and changes nothing.
  cascade_decision observe(double score) noexcept {
    if (std::isnan(score) || !valid_) return cascade_decision::escalate;
    const bool esc = score < threshold_;
    threshold_ -= step_ * ((esc ? 1.0 : 0.0) - rate_);
    ++seen_;
    escalated_ += esc ? 1 : 0;
    return esc ? cascade_decision::escalate : cascade_decision::accept;
  }

  /// The current threshold (escalate when score < threshold).
  [[nodiscard]] double threshold() const noexcept { return threshold_; }
  /// The target escalation rate.
  [[nodiscard]] double target() const noexcept { return rate_; }
  ///@{
  /// Scores observed and escalations so far (NaN scores are not counted).
  [[nodiscard]] std::size_t seen() const noexcept { return seen_; }
  [[nodiscard]] std::size_t escalated() const noexcept { return escalated_; }
  ///@}

 private:
  double rate_, step_, threshold_;
  bool valid_;
  std::size_t seen_ = 0, escalated_ = 0;
};

}  // namespace tandem::inline v0
