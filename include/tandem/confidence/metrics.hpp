// tandem: metrics of a confidence score against 0/1 correctness labels: ECE (equal-width
// and equal-mass bins), Brier, AUROC, AUPRC, PRR (LM-Polygraph) and the risk-coverage
// curve with its area. Tied scores are handled exactly: every metric equals its
// expectation over the orders in which tied items could be ranked.
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// \file
/// Confidence metrics. Conventions for every function here: `scores[i]` is a confidence
/// (higher means "more likely correct") and `labels[i]` is 1 when item i was correct, 0
/// otherwise. Common errors: `empty_input` (no items), `size_mismatch` (spans of different
/// lengths), `non_finite` (a NaN or infinite score), `invalid_argument` (a label other than
/// 0/1). Functions that need both classes return `insufficient_data` when one is missing.
/// Nothing is modified; results are owned by the caller.

namespace detail::conf {
[[nodiscard]] inline errc check_scored(std::span<const double> scores,
                                       std::span<const int> labels) noexcept {
  if (scores.size() != labels.size()) return errc::size_mismatch;
  if (scores.empty()) return errc::empty_input;
  for (double s : scores)
    if (!std::isfinite(s)) return errc::non_finite;
  for (int y : labels)
    if (y != 0 && y != 1) return errc::invalid_argument;
  return errc::ok;
}
[[nodiscard]] inline errc check_probabilities(std::span<const double> scores) noexcept {
  for (double s : scores)
    if (s < 0.0 || s > 1.0) return errc::invalid_argument;
  return errc::ok;
}
/// Indices sorted by score, descending (most confident first); ties keep index order.
template <int = 0>
inline std::vector<std::size_t> order_descending(std::span<const double> scores) {
  std::vector<std::size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::stable_sort(idx.begin(), idx.end(),
                   [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  return idx;
}
/// Expected number of correct items among the m most confident, m = 0..n, averaging over
/// the orders of tied scores (linear inside each tie group). out has n + 1 entries.
template <int = 0>
inline std::vector<double> expected_correct_prefix(std::span<const double> scores,
                                                   std::span<const int> labels) {
  const auto idx = order_descending(scores);
  const std::size_t n = idx.size();
  std::vector<double> out(n + 1, 0.0);
  std::size_t i = 0;
  double before = 0.0;
  while (i < n) {
    std::size_t j = i;
    double group = 0.0;
    while (j < n && scores[idx[j]] == scores[idx[i]]) group += labels[idx[j++]];
    const double g = static_cast<double>(j - i);
    for (std::size_t m = i + 1; m <= j; ++m)
      out[m] = before + group * static_cast<double>(m - i) / g;
    before += group;
    i = j;
  }
  return out;
}
}  // namespace detail::conf

/// Brier score: mean of (score - label)^2. Scores must be probabilities in [0, 1]
/// (`invalid_argument` otherwise). Errors: besides, the common ones (metrics.hpp).
template <int = 0>
[[nodiscard]] inline result<double> brier_score(std::span<const double> scores,
                                                std::span<const int> labels) {
  TANDEM_TRY(detail::conf::check_scored(scores, labels));
  TANDEM_TRY(detail::conf::check_probabilities(scores));
  double sum = 0.0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const double d = scores[i] - labels[i];
    sum += d * d;
  }
  return sum / static_cast<double>(scores.size());
}

/// Area under the ROC curve: the probability that a random correct item scores above a
/// random wrong one, ties counting one half (Mann-Whitney with mid-ranks). Needs both
/// classes (`insufficient_data`). Errors: besides, the common ones (metrics.hpp).
template <int = 0>
[[nodiscard]] inline result<double> auroc(std::span<const double> scores,
                                          std::span<const int> labels) {
  TANDEM_TRY(detail::conf::check_scored(scores, labels));
  const std::size_t n = scores.size();
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::sort(idx.begin(), idx.end(),
            [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  double rank_sum = 0.0;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    std::size_t p = 0;
    while (j < n && scores[idx[j]] == scores[idx[i]])
      p += static_cast<std::size_t>(labels[idx[j++]]);
    const double mid_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    rank_sum += mid_rank * static_cast<double>(p);
    pos += p;
    i = j;
  }
  const std::size_t neg = n - pos;
  if (pos == 0 || neg == 0) return errc::insufficient_data;
  const double np = static_cast<double>(pos);
  return (rank_sum - np * (np + 1.0) / 2.0) / (np * static_cast<double>(neg));
}

/// Area under the precision-recall curve of the positive (correct) class as average
/// precision: the sum over distinct score thresholds of (recall gain) x precision, a tie
/// group entering as one threshold. Needs at least one correct item
/// (`insufficient_data`); equals the positive rate when all scores tie. Errors: besides,
/// the common ones (metrics.hpp).
template <int = 0>
[[nodiscard]] inline result<double> auprc(std::span<const double> scores,
                                          std::span<const int> labels) {
  TANDEM_TRY(detail::conf::check_scored(scores, labels));
  const auto idx = detail::conf::order_descending(scores);
  const double total_pos = static_cast<double>(std::count(labels.begin(), labels.end(), 1));
  if (total_pos == 0.0) return errc::insufficient_data;
  double ap = 0.0, tp = 0.0, seen = 0.0;
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    double gain = 0.0;
    while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) {
      gain += labels[idx[j]];
      ++j;
    }
    tp += gain;
    seen += static_cast<double>(j - i);
    ap += (gain / total_pos) * (tp / seen);
    i = j;
  }
  return ap;
}

/// Selective prediction: keep the most confident items and answer only those.
/// `coverage[m-1] = m / n` and `risk[m-1]` = expected error rate among the m most
/// confident items (ties averaged), m = 1..n; `area` is the mean of `risk` (AURC, lower
/// is better).
struct risk_coverage {
  std::vector<double> coverage;  ///< m / n for m = 1..n
  std::vector<double> risk;      ///< error rate among the m most confident items
  double area = 0.0;             ///< AURC: the mean of `risk` (lower is better)
};

/// The risk-coverage curve and its area (see `risk_coverage`). Errors: the common ones
/// (metrics.hpp).
template <int = 0>
[[nodiscard]] inline result<risk_coverage> risk_coverage_curve(std::span<const double> scores,
                                                               std::span<const int> labels) {
  TANDEM_TRY(detail::conf::check_scored(scores, labels));
  const auto correct = detail::conf::expected_correct_prefix(scores, labels);
  const std::size_t n = scores.size();
  risk_coverage rc;
  rc.coverage.resize(n);
  rc.risk.resize(n);
  double sum = 0.0;
  for (std::size_t m = 1; m <= n; ++m) {
    rc.coverage[m - 1] = static_cast<double>(m) / static_cast<double>(n);
    rc.risk[m - 1] = 1.0 - correct[m] / static_cast<double>(m);
    sum += rc.risk[m - 1];
  }
  rc.area = sum / static_cast<double>(n);
  return rc;
}

/// Prediction-rejection ratio (LM-Polygraph): with q(m) the accuracy of the m most
/// confident items and AUC = mean over m = 1..n of q(m),
/// PRR = (AUC_score - AUC_random) / (AUC_oracle - AUC_random), where random rejection
/// keeps accuracy at the base rate and the oracle rejects wrong items first. 1 is
/// perfect, 0 is no better than random, negative is worse. Needs both classes
/// (`insufficient_data`). Errors: besides, the common ones (metrics.hpp).
template <int = 0>
[[nodiscard]] inline result<double> prediction_rejection_ratio(std::span<const double> scores,
                                                               std::span<const int> labels) {
  TANDEM_TRY(detail::conf::check_scored(scores, labels));
  const std::size_t n = scores.size();
  const auto correct = detail::conf::expected_correct_prefix(scores, labels);
  const double pos = correct[n];
  if (pos == 0.0 || pos == static_cast<double>(n)) return errc::insufficient_data;
  double auc = 0.0, oracle = 0.0;
  for (std::size_t m = 1; m <= n; ++m) {
    const double md = static_cast<double>(m);
    auc += correct[m] / md;
    oracle += std::min(md, pos) / md;
  }
  const double base = pos / static_cast<double>(n);
  auc /= static_cast<double>(n);
  oracle /= static_cast<double>(n);
  return (auc - base) / (oracle - base);
}

/// How calibration bins are laid out.
enum class binning : unsigned char {
  equal_width,  ///< bins [k/B, (k+1)/B), the last one closed at 1
  equal_mass,   ///< B bins of (nearly) equal count by rank; tied scores share a bin
};

/// One bin of a reliability diagram. Empty bins have count 0 and NaN means.
struct reliability_bin {
  double lower = 0.0;            ///< lower edge (equal-mass: smallest score in the bin)
  double upper = 0.0;            ///< upper edge (equal-mass: largest score in the bin)
  std::size_t count = 0;         ///< items in the bin
  double mean_confidence = 0.0;  ///< mean score of its items
  double accuracy = 0.0;         ///< fraction of its items that were correct
};

/// Reliability diagram with `bins` bins. Scores must be probabilities in [0, 1].
/// Errors: the common ones (metrics.hpp), `invalid_argument` (bins == 0 or a score outside
/// [0, 1]).
template <int = 0>
[[nodiscard]] inline result<std::vector<reliability_bin>> reliability_diagram(
    std::span<const double> scores, std::span<const int> labels, std::size_t bins,
    binning layout = binning::equal_width) {
  TANDEM_TRY(detail::conf::check_scored(scores, labels));
  TANDEM_TRY(detail::conf::check_probabilities(scores));
  if (bins == 0) return errc::invalid_argument;
  const std::size_t n = scores.size();
  std::vector<std::size_t> bin_of(n);
  if (layout == binning::equal_width) {
    for (std::size_t i = 0; i < n; ++i)
      bin_of[i] =
          std::min(bins - 1, static_cast<std::size_t>(scores[i] * static_cast<double>(bins)));
  } else {
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::stable_sort(idx.begin(), idx.end(),
                     [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
    for (std::size_t i = 0; i < n;) {
      std::size_t j = i;
      while (j < n && scores[idx[j]] == scores[idx[i]]) ++j;
      const std::size_t b = i * bins / n;  // a tie group goes where its first item falls
      for (std::size_t k = i; k < j; ++k) bin_of[idx[k]] = b;
      i = j;
    }
  }
  std::vector<reliability_bin> out(bins);
  std::vector<double> lo(bins, 2.0), hi(bins, -1.0), conf(bins, 0.0), acc(bins, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t b = bin_of[i];
    ++out[b].count;
    conf[b] += scores[i];
    acc[b] += labels[i];
    lo[b] = std::min(lo[b], scores[i]);
    hi[b] = std::max(hi[b], scores[i]);
  }
  for (std::size_t b = 0; b < bins; ++b) {
    auto& r = out[b];
    if (layout == binning::equal_width) {
      r.lower = static_cast<double>(b) / static_cast<double>(bins);
      r.upper = static_cast<double>(b + 1) / static_cast<double>(bins);
    } else {
      r.lower = r.count ? lo[b] : std::nan("");
      r.upper = r.count ? hi[b] : std::nan("");
    }
    if (r.count == 0) {
      r.mean_confidence = r.accuracy = std::nan("");
    } else {
      r.mean_confidence = conf[b] / static_cast<double>(r.count);
      r.accuracy = acc[b] / static_cast<double>(r.count);
    }
  }
  return out;
}

/// Expected calibration error: sum over bins of (bin count / n) x |accuracy - mean
/// confidence|. Report the bin count with it. Errors: as `reliability_diagram`.
template <int = 0>
[[nodiscard]] inline result<double> expected_calibration_error(
    std::span<const double> scores, std::span<const int> labels, std::size_t bins = 10,
    binning layout = binning::equal_width) {
  auto diagram = reliability_diagram(scores, labels, bins, layout);
  if (!diagram) return diagram.error();
  double ece = 0.0;
  for (const auto& b : *diagram)
    if (b.count > 0) ece += static_cast<double>(b.count) * std::abs(b.accuracy - b.mean_confidence);
  return ece / static_cast<double>(scores.size());
}

}  // namespace tandem::inline v0
