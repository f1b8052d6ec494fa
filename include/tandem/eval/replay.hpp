// tandem: replay metrics over cached query x model outcome tables: quality-cost curves of a
// routing policy, APGR and CPT for two models (RouteLLM), AIQ for N models (RouterBench),
// and the single-model, random and oracle references.
//
// A curve is a list of operating points (mean cost, mean quality) in order of increasing
// spend. Two adjacent points are joined by a straight line: mixing the two policies at
// random (or breaking a tie at random) reaches every point between them in expectation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// One operating point of a routing policy replayed over a table.
struct curve_point {
  double cost = 0;          ///< mean cost per query
  double quality = 0;       ///< mean quality per query, in [0, 1]
  double strong_share = 0;  ///< share of queries sent to the designated strong model
};

/// APGR and CPT of a two-model curve (RouteLLM). Shares are in [0, 1].
struct two_model_metrics {
  double weak_quality = 0;    ///< quality with every query on the weak model
  double strong_quality = 0;  ///< quality with every query on the strong model
  double auc = 0;             ///< area under quality over the share of strong calls
  double apgr = 0;            ///< (auc - weak) / (strong - weak); random routing gives 0.5
  double cpt20 = 0;           ///< least strong-call share reaching weak + 0.2 (strong - weak)
  double cpt50 = 0;           ///< same at 0.5
  double cpt80 = 0;           ///< same at 0.8
};

namespace detail::replay {
inline bool all_finite(std::span<const double> v) noexcept {
  for (double x : v)
    if (!std::isfinite(x)) return false;
  return true;
}
inline bool all_unit(std::span<const double> v) noexcept {
  for (double x : v)
    if (!(x >= 0.0 && x <= 1.0)) return false;
  return true;
}
}  // namespace detail::replay

/// Replays a two-model threshold policy: queries are sent to the strong model in order of
/// decreasing `score`; queries with equal scores move together (a random tie-break in
/// expectation). Returns n_groups + 1 points from all-weak (share 0) to all-strong (share 1).
/// Errors: empty_input (no queries), size_mismatch (spans of different lengths),
/// non_finite (NaN/Inf score or cost), invalid_argument (quality outside [0, 1] or a
/// negative cost). Borrows every span; the result is owned by the caller.
[[nodiscard]] inline result<std::vector<curve_point>> two_model_curve(
    std::span<const double> score, std::span<const double> weak_quality,
    std::span<const double> strong_quality, std::span<const double> weak_cost,
    std::span<const double> strong_cost) {
  const std::size_t n = score.size();
  if (n == 0) return errc::empty_input;
  if (weak_quality.size() != n || strong_quality.size() != n || weak_cost.size() != n ||
      strong_cost.size() != n)
    return errc::size_mismatch;
  if (!detail::replay::all_finite(score) || !detail::replay::all_finite(weak_cost) ||
      !detail::replay::all_finite(strong_cost))
    return errc::non_finite;
  if (!detail::replay::all_unit(weak_quality) || !detail::replay::all_unit(strong_quality))
    return errc::invalid_argument;
  for (std::size_t i = 0; i < n; ++i)
    if (weak_cost[i] < 0 || strong_cost[i] < 0) return errc::invalid_argument;

  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
  double q = 0, c = 0;
  for (std::size_t i = 0; i < n; ++i) {
    q += weak_quality[i];
    c += weak_cost[i];
  }
  const double inv = 1.0 / static_cast<double>(n);
  std::vector<curve_point> out;
  out.reserve(n + 1);
  out.push_back({c * inv, q * inv, 0.0});
  std::size_t i = 0;
  while (i < n) {
    const double s = score[order[i]];
    for (; i < n && score[order[i]] == s; ++i) {
      const std::size_t k = order[i];
      q += strong_quality[k] - weak_quality[k];
      c += strong_cost[k] - weak_cost[k];
    }
    out.push_back({c * inv, q * inv, static_cast<double>(i) * inv});
  }
  return out;
}

/// Area under quality over the share of strong calls of a curve from two_model_curve
/// (trapezoids). Errors: empty_input (fewer than two points), invalid_argument (shares not
/// non-decreasing from 0 to 1).
[[nodiscard]] inline result<double> area_over_share(std::span<const curve_point> curve) {
  if (curve.size() < 2) return errc::empty_input;
  if (curve.front().strong_share != 0.0 || std::abs(curve.back().strong_share - 1.0) > 1e-12)
    return errc::invalid_argument;
  double area = 0;
  for (std::size_t i = 1; i < curve.size(); ++i) {
    const double w = curve[i].strong_share - curve[i - 1].strong_share;
    if (w < 0) return errc::invalid_argument;
    area += 0.5 * w * (curve[i].quality + curve[i - 1].quality);
  }
  return area;
}

/// Least strong-call share at which the piecewise-linear curve first reaches `target`
/// quality; nullopt when it never does. Precondition: the curve is ordered by share.
[[nodiscard]] inline std::optional<double> share_reaching(std::span<const curve_point> curve,
                                                          double target) noexcept {
  for (std::size_t i = 0; i < curve.size(); ++i) {
    if (curve[i].quality >= target) {
      if (i == 0) return curve[0].strong_share;
      const curve_point& a = curve[i - 1];
      const curve_point& b = curve[i];
      const double t = (target - a.quality) / (b.quality - a.quality);
      return a.strong_share + t * (b.strong_share - a.strong_share);
    }
  }
  return std::nullopt;
}

/// APGR and CPT(20/50/80) of a curve from two_model_curve. APGR =
/// (AUC - AUC_weak) / (AUC_strong - AUC_weak) over the share of strong calls, where the
/// all-weak and all-strong policies have AUC equal to their quality. Errors: those of
/// area_over_share, insufficient_data when the two models have equal quality (no gap to
/// recover).
[[nodiscard]] inline result<two_model_metrics> two_model_summary(
    std::span<const curve_point> curve) {
  auto area = area_over_share(curve);
  if (!area) return area.error();
  two_model_metrics m;
  m.weak_quality = curve.front().quality;
  m.strong_quality = curve.back().quality;
  const double gap = m.strong_quality - m.weak_quality;
  if (std::abs(gap) < 1e-12) return errc::insufficient_data;
  m.auc = *area;
  m.apgr = (m.auc - m.weak_quality) / gap;
  const auto cpt = [&](double x) {
    // The all-strong end reaches every target when strong > weak; a weaker "strong" model
    // reaches it at share 0.
    return share_reaching(curve, m.weak_quality + x * gap).value_or(1.0);
  };
  m.cpt20 = cpt(0.2);
  m.cpt50 = cpt(0.5);
  m.cpt80 = cpt(0.8);
  return m;
}

/// Per-query predicted quality and cost of N models, plus the replayed truth, in
/// row-major n x m layout (row = query, column = model). Borrowed views.
struct outcome_views {
  std::span<const double> predicted;  ///< what the policy believes, n x m
  std::span<const double> quality;    ///< recorded quality in [0, 1], n x m
  std::span<const double> cost;       ///< recorded cost >= 0, n x m (also what it pays)
  std::size_t models = 0;             ///< m
};

/// Replays "pick argmax_m predicted(q, m) - lambda cost(q, m)" for every lambda from +inf
/// (each query's cheapest model; ties to the higher prediction, then the lower index) down
/// to 0 (each query's best predicted model). The sweep is exact: one point per distinct
/// lambda at which some query switches model, so cost never decreases along the curve.
/// `strong` names the model counted in curve_point::strong_share. Errors: empty_input,
/// size_mismatch (spans not n x m), invalid_argument (m == 0, strong >= m, quality outside
/// [0, 1], negative cost), non_finite (NaN/Inf prediction or cost).
[[nodiscard]] inline result<std::vector<curve_point>> lambda_sweep_curve(outcome_views v,
                                                                         std::size_t strong) {
  const std::size_t m = v.models;
  if (m == 0 || strong >= m) return errc::invalid_argument;
  if (v.quality.empty()) return errc::empty_input;
  if (v.quality.size() % m != 0 || v.predicted.size() != v.quality.size() ||
      v.cost.size() != v.quality.size())
    return errc::size_mismatch;
  if (!detail::replay::all_finite(v.predicted) || !detail::replay::all_finite(v.cost))
    return errc::non_finite;
  if (!detail::replay::all_unit(v.quality)) return errc::invalid_argument;
  for (double c : v.cost)
    if (c < 0) return errc::invalid_argument;
  const std::size_t n = v.quality.size() / m;

  struct event {
    double lambda;
    std::uint32_t query, from, to;
  };
  std::vector<event> events;
  std::vector<std::uint32_t> start(n);
  double q = 0, c = 0, s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double* p = v.predicted.data() + i * m;
    const double* cc = v.cost.data() + i * m;
    std::size_t a = 0;
    for (std::size_t j = 1; j < m; ++j)
      if (cc[j] < cc[a] || (cc[j] == cc[a] && p[j] > p[a])) a = j;
    start[i] = static_cast<std::uint32_t>(a);
    q += v.quality[i * m + a];
    c += cc[a];
    s += a == strong ? 1.0 : 0.0;
    // Walk the upper envelope of the lines p_j - lambda c_j as lambda falls.
    for (;;) {
      std::size_t best = m;
      double best_l = 0;
      for (std::size_t j = 0; j < m; ++j) {
        if (!(cc[j] > cc[a] && p[j] > p[a])) continue;
        const double l = (p[j] - p[a]) / (cc[j] - cc[a]);
        if (best == m || l > best_l || (l == best_l && cc[j] > cc[best])) {
          best = j;
          best_l = l;
        }
      }
      if (best == m) break;
      events.push_back({best_l, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(a),
                        static_cast<std::uint32_t>(best)});
      a = best;
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const event& x, const event& y) { return x.lambda > y.lambda; });
  const double inv = 1.0 / static_cast<double>(n);
  std::vector<curve_point> out;
  out.reserve(events.size() + 1);
  out.push_back({c * inv, q * inv, s * inv});
  std::size_t k = 0;
  while (k < events.size()) {
    const double l = events[k].lambda;
    for (; k < events.size() && events[k].lambda == l; ++k) {
      const event& e = events[k];
      const std::size_t row = static_cast<std::size_t>(e.query) * m;
      q += v.quality[row + e.to] - v.quality[row + e.from];
      c += v.cost[row + e.to] - v.cost[row + e.from];
      s += (e.to == strong ? 1.0 : 0.0) - (e.from == strong ? 1.0 : 0.0);
    }
    out.push_back({c * inv, q * inv, s * inv});
  }
  return out;
}

/// The non-decreasing upper convex hull of a set of (cost, quality) points, ordered by
/// cost: the best quality reachable at each spend by mixing operating points at random, and
/// never lower at a higher spend (one may spend less). Errors: empty_input, non_finite.
[[nodiscard]] inline result<std::vector<curve_point>> nondecreasing_hull(
    std::span<const curve_point> points) {
  if (points.empty()) return errc::empty_input;
  for (const curve_point& p : points)
    if (!std::isfinite(p.cost) || !std::isfinite(p.quality)) return errc::non_finite;
  std::vector<curve_point> pts(points.begin(), points.end());
  std::sort(pts.begin(), pts.end(), [](const curve_point& a, const curve_point& b) {
    return a.cost < b.cost || (a.cost == b.cost && a.quality > b.quality);
  });
  std::vector<curve_point> hull;
  for (const curve_point& p : pts) {
    if (!hull.empty() && hull.back().cost == p.cost) continue;  // a better one is kept
    // Drop points that lie on or under the chord to p (upper hull, monotone chain).
    while (hull.size() >= 2) {
      const curve_point& a = hull[hull.size() - 2];
      const curve_point& b = hull.back();
      const double cross =
          (b.cost - a.cost) * (p.quality - a.quality) - (b.quality - a.quality) * (p.cost - a.cost);
      if (cross >= 0)
        hull.pop_back();
      else
        break;
    }
    hull.push_back(p);
  }
  // A concave hull rises then falls; past its peak the best policy is to stay at the peak.
  std::size_t peak = 0;
  for (std::size_t i = 1; i < hull.size(); ++i)
    if (hull[i].quality > hull[peak].quality) peak = i;
  hull.resize(peak + 1);
  return hull;
}

/// Average improvement in quality (RouterBench's AIQ): the area under the non-decreasing
/// convex hull of `points` over [cost_lo, cost_hi], divided by the width; the hull is flat
/// right of its last point. Errors: those of nondecreasing_hull, invalid_argument when
/// cost_hi <= cost_lo or the hull starts right of cost_lo (quality there is undefined).
[[nodiscard]] inline result<double> aiq(std::span<const curve_point> points, double cost_lo,
                                        double cost_hi) {
  if (!(cost_hi > cost_lo) || !std::isfinite(cost_lo) || !std::isfinite(cost_hi))
    return errc::invalid_argument;
  auto h = nondecreasing_hull(points);
  if (!h) return h.error();
  const std::vector<curve_point>& hull = *h;
  const double tol = 1e-9 * std::max(1.0, std::abs(cost_lo));
  if (hull.front().cost > cost_lo + tol) return errc::invalid_argument;
  const auto at = [&](double x) {  // hull value at cost x
    if (x <= hull.front().cost) return hull.front().quality;
    for (std::size_t i = 1; i < hull.size(); ++i)
      if (x <= hull[i].cost) {
        const double t = (x - hull[i - 1].cost) / (hull[i].cost - hull[i - 1].cost);
        return hull[i - 1].quality + t * (hull[i].quality - hull[i - 1].quality);
      }
    return hull.back().quality;
  };
  // Integrate piecewise-linear segments between the breakpoints inside [lo, hi].
  std::vector<double> xs{cost_lo};
  for (const curve_point& p : hull)
    if (p.cost > cost_lo && p.cost < cost_hi) xs.push_back(p.cost);
  xs.push_back(cost_hi);
  double area = 0;
  for (std::size_t i = 1; i < xs.size(); ++i)
    area += 0.5 * (xs[i] - xs[i - 1]) * (at(xs[i]) + at(xs[i - 1]));
  return area / (cost_hi - cost_lo);
}

/// Least mean cost of any point on the piecewise-linear curve (adjacent points joined)
/// whose quality reaches `target`; nullopt when none does. The curve need not be ordered
/// by cost (per-query costs can make a threshold sweep non-monotone in cost).
[[nodiscard]] inline std::optional<double> cost_reaching(std::span<const curve_point> curve,
                                                         double target) noexcept {
  std::optional<double> best;
  const auto offer = [&](double c) {
    if (!best || c < *best) best = c;
  };
  for (std::size_t i = 0; i < curve.size(); ++i) {
    if (curve[i].quality >= target) offer(curve[i].cost);
    if (i == 0) continue;
    const curve_point& a = curve[i - 1];
    const curve_point& b = curve[i];
    if ((a.quality < target) != (b.quality < target)) {
      const double t = (target - a.quality) / (b.quality - a.quality);
      offer(a.cost + t * (b.cost - a.cost));
    }
  }
  return best;
}

/// Mean recorded quality and cost of sending every query to model `j`. Errors:
/// empty_input, size_mismatch, invalid_argument (j >= m).
[[nodiscard]] inline result<curve_point> single_model_point(std::span<const double> quality,
                                                            std::span<const double> cost,
                                                            std::size_t models, std::size_t j) {
  if (models == 0 || j >= models) return errc::invalid_argument;
  if (quality.empty()) return errc::empty_input;
  if (quality.size() % models != 0 || cost.size() != quality.size()) return errc::size_mismatch;
  const std::size_t n = quality.size() / models;
  double q = 0, c = 0;
  for (std::size_t i = 0; i < n; ++i) {
    q += quality[i * models + j];
    c += cost[i * models + j];
  }
  return curve_point{c / static_cast<double>(n), q / static_cast<double>(n), 0.0};
}

}  // namespace tandem::inline v0
