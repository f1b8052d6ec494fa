// tandem: white-box confidence estimators computed from a completion's per-token
// log-probabilities and entropies: sequence probability, mean log-probability,
// perplexity, minimum token probability, mean/max entropy, top-1/top-2 margin and
// token-quantile scores (a quantile of per-token confidence, free of the length bias of
// sums and means).
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "tandem/core/completion.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

// Common errors of the estimators over per-token values: `empty_input` (no tokens),
// `not_found` (a NaN entry: the value was not recorded), `invalid_argument` (a
// log-probability above 0, or +inf; an entropy below 0 or infinite). A log-probability
// of -inf (a token of probability 0) is valid. Inputs are read only.

namespace detail::conf {
[[nodiscard]] inline errc check_logprobs(std::span<const float> logprobs) noexcept {
  if (logprobs.empty()) return errc::empty_input;
  for (float l : logprobs) {
    if (std::isnan(l)) return errc::not_found;
    if (l > 0.0f) return errc::invalid_argument;
  }
  return errc::ok;
}
[[nodiscard]] inline errc check_entropies(std::span<const float> entropies) noexcept {
  if (entropies.empty()) return errc::empty_input;
  for (float h : entropies) {
    if (std::isnan(h)) return errc::not_found;
    if (h < 0.0f || std::isinf(h)) return errc::invalid_argument;
  }
  return errc::ok;
}
/// q-quantile of non-empty, NaN-free `v` (reordered), linear between order statistics.
template <int = 0>
[[nodiscard]] inline double quantile_in_place(std::vector<double>& v, double q) noexcept {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const std::size_t k = static_cast<std::size_t>(pos);
  if (k + 1 >= v.size()) return v.back();
  const double frac = pos - static_cast<double>(k);
  return frac == 0.0 ? v[k] : v[k] + frac * (v[k + 1] - v[k]);
}
}  // namespace detail::conf

/// Product of the token probabilities, exp(sum of log-probabilities). Biased towards
/// short answers. Errors (here and in the estimators below over log-probabilities):
/// `empty_input` (no tokens), `not_found` (a NaN entry: not recorded), `invalid_argument`
/// (a log-probability above 0 or +inf; -inf, probability 0, is valid).
[[nodiscard]] inline result<double> sequence_probability(std::span<const float> logprobs) noexcept {
  TANDEM_TRY(detail::conf::check_logprobs(logprobs));
  double sum = 0.0;
  for (float l : logprobs) sum += l;
  return std::exp(sum);
}

/// Mean token log-probability (<= 0; higher is more confident). Errors: as
/// sequence_probability.
[[nodiscard]] inline result<double> mean_logprob(std::span<const float> logprobs) noexcept {
  TANDEM_TRY(detail::conf::check_logprobs(logprobs));
  double sum = 0.0;
  for (float l : logprobs) sum += l;
  return sum / static_cast<double>(logprobs.size());
}

/// Perplexity exp(-mean log-probability) (>= 1; lower is more confident; +inf when a
/// token had probability 0). Errors: as sequence_probability.
[[nodiscard]] inline result<double> perplexity(std::span<const float> logprobs) noexcept {
  auto m = mean_logprob(logprobs);
  if (!m) return m.error();
  return std::exp(-*m);
}

/// Smallest token probability. Errors: as sequence_probability.
[[nodiscard]] inline result<double> min_token_probability(
    std::span<const float> logprobs) noexcept {
  TANDEM_TRY(detail::conf::check_logprobs(logprobs));
  return std::exp(static_cast<double>(*std::min_element(logprobs.begin(), logprobs.end())));
}

/// Mean per-token entropy in nats (lower is more confident). Errors: `empty_input` (no
/// tokens), `not_found` (a NaN entry: not recorded), `invalid_argument` (an entropy below
/// 0 or infinite).
[[nodiscard]] inline result<double> mean_entropy(std::span<const float> entropies) noexcept {
  TANDEM_TRY(detail::conf::check_entropies(entropies));
  double sum = 0.0;
  for (float h : entropies) sum += h;
  return sum / static_cast<double>(entropies.size());
}

/// Largest per-token entropy in nats (lower is more confident). Errors: as mean_entropy.
[[nodiscard]] inline result<double> max_entropy(std::span<const float> entropies) noexcept {
  TANDEM_TRY(detail::conf::check_entropies(entropies));
  return static_cast<double>(*std::max_element(entropies.begin(), entropies.end()));
}

/// The q-quantile (q in [0, 1]) of `values` with linear interpolation between order
/// statistics (q = 0 is the minimum, 0.5 the median). Errors: `empty_input`,
/// `invalid_argument` (q outside [0, 1] or NaN), `non_finite` (a NaN value). `scratch`
/// receives a sorted copy (its capacity is reused, so a warm call does not allocate).
template <int = 0>
[[nodiscard]] inline result<double> quantile(std::span<const double> values, double q,
                                             std::vector<double>& scratch) {
  if (values.empty()) return errc::empty_input;
  if (!(q >= 0.0 && q <= 1.0)) return errc::invalid_argument;
  for (double v : values)
    if (std::isnan(v)) return errc::non_finite;
  scratch.assign(values.begin(), values.end());
  return detail::conf::quantile_in_place(scratch, q);
}

/// Token-quantile score: the q-quantile of the per-token probabilities exp(logprob).
/// q = 0 gives the minimum token probability; a small q (e.g. 0.1) flags answers with a
/// few doubtful tokens whatever their length. `scratch` is reused as a buffer. Errors: the common
/// ones, and `invalid_argument` for q outside [0, 1].
template <int = 0>
[[nodiscard]] inline result<double> token_quantile_probability(std::span<const float> logprobs,
                                                               double q,
                                                               std::vector<double>& scratch) {
  TANDEM_TRY(detail::conf::check_logprobs(logprobs));
  if (!(q >= 0.0 && q <= 1.0)) return errc::invalid_argument;
  scratch.clear();
  for (float l : logprobs) scratch.push_back(std::exp(static_cast<double>(l)));
  return detail::conf::quantile_in_place(scratch, q);
}

/// Top-1 minus top-2 probability of one next-token distribution given by its logits
/// (softmax at temperature 1; -inf entries are masked). In [0, 1]; higher is more
/// confident. Errors: `empty_input`, `non_finite` (NaN or +inf logit), `no_candidates`
/// (every entry -inf). A single candidate gives margin 1.
[[nodiscard]] inline result<double> top2_margin(std::span<const float> logits) noexcept {
  if (logits.empty()) return errc::empty_input;
  const float ninf = -std::numeric_limits<float>::infinity();
  float m1 = ninf, m2 = ninf;
  for (float z : logits) {
    if (std::isnan(z) || z == std::numeric_limits<float>::infinity()) return errc::non_finite;
    if (z > m1) {
      m2 = m1;
      m1 = z;
    } else if (z > m2) {
      m2 = z;
    }
  }
  if (m1 == ninf) return errc::no_candidates;
  double sum = 0.0;
  for (float z : logits) sum += std::exp(static_cast<double>(z) - m1);
  const double p1 = 1.0 / sum;
  const double p2 = std::exp(static_cast<double>(m2) - m1) / sum;
  return p1 - p2;
}

/// The white-box estimators of one completion, all at once. Entropy fields are NaN and
/// `has_entropy` false when the record has no entropies; `mean_margin`/`min_margin` are
/// NaN unless per-token margins were supplied.
struct white_box_scores {
  double sequence_probability = 0.0;   ///< product of the token probabilities
  double mean_logprob = 0.0;           ///< mean token log-probability (<= 0)
  double perplexity = 0.0;             ///< exp(-mean_logprob) (>= 1)
  double min_token_probability = 0.0;  ///< smallest token probability
  double quantile_probability = 0.0;   ///< token-quantile score at the requested q
  bool has_entropy = false;            ///< whether the entropy fields were computed
  /// mean per-token entropy, nats; NaN without entropies
  double mean_entropy = std::numeric_limits<double>::quiet_NaN();
  /// largest per-token entropy, nats; NaN without entropies
  double max_entropy = std::numeric_limits<double>::quiet_NaN();
  /// mean top-1 minus top-2 probability; NaN without margins
  double mean_margin = std::numeric_limits<double>::quiet_NaN();
  /// smallest top-1 minus top-2 probability; NaN without margins
  double min_margin = std::numeric_limits<double>::quiet_NaN();
};

/// Computes every white-box estimator of `c` (token-quantile at `q`), with optional
/// per-token top-1/top-2 margins (`margins`, one per token, from `top2_margin`).
/// Errors: those of sequence_probability on `c.logprobs` (`empty_input` for an empty
/// completion), `not_found` (tokens but no logprobs recorded), `size_mismatch`
/// (logprobs, entropies when present, or margins not one per token), `invalid_argument`
/// (q outside [0, 1], a margin outside [0, 1]).
[[nodiscard]] inline result<white_box_scores> score_white_box(
    const completion& c, double q = 0.1, std::span<const double> margins = {}) {
  if (!c.tokens.empty() && c.logprobs.size() != c.tokens.size()) {
    if (c.logprobs.empty()) return errc::not_found;
    return errc::size_mismatch;
  }
  const std::span<const float> lp(c.logprobs);
  white_box_scores s;
  auto m = mean_logprob(lp);
  if (!m) return m.error();
  s.mean_logprob = *m;
  s.sequence_probability = std::exp(*m * static_cast<double>(lp.size()));
  s.perplexity = std::exp(-*m);
  s.min_token_probability = *min_token_probability(lp);
  std::vector<double> scratch;
  auto qp = token_quantile_probability(lp, q, scratch);
  if (!qp) return qp.error();
  s.quantile_probability = *qp;
  if (!c.entropies.empty() &&
      !std::all_of(c.entropies.begin(), c.entropies.end(), [](float h) { return std::isnan(h); })) {
    if (c.entropies.size() != lp.size()) return errc::size_mismatch;
    auto me = mean_entropy(c.entropies);
    if (!me) return me.error();
    s.has_entropy = true;
    s.mean_entropy = *me;
    s.max_entropy = *max_entropy(c.entropies);
  }
  if (!margins.empty()) {
    if (margins.size() != lp.size()) return errc::size_mismatch;
    double sum = 0.0, mn = 1.0;
    for (double v : margins) {
      if (!(v >= 0.0 && v <= 1.0)) return errc::invalid_argument;
      sum += v;
      mn = std::min(mn, v);
    }
    s.mean_margin = sum / static_cast<double>(margins.size());
    s.min_margin = mn;
  }
  return s;
}

/// Names of the white-box estimators, for reports and feature vectors.
enum class white_box_estimator : std::uint8_t {
  sequence_probability,   ///< white_box_scores::sequence_probability
  mean_logprob,           ///< white_box_scores::mean_logprob
  perplexity,             ///< white_box_scores::perplexity (lower is more confident)
  min_token_probability,  ///< white_box_scores::min_token_probability
  quantile_probability,   ///< white_box_scores::quantile_probability
  mean_entropy,           ///< white_box_scores::mean_entropy (lower is more confident)
  max_entropy,            ///< white_box_scores::max_entropy (lower is more confident)
  mean_margin,            ///< white_box_scores::mean_margin
  min_margin,             ///< white_box_scores::min_margin
};

/// Stable name, e.g. "mean_entropy".
[[nodiscard]] constexpr std::string_view to_string(white_box_estimator e) noexcept {
  switch (e) {
    case white_box_estimator::sequence_probability:
      return "sequence_probability";
    case white_box_estimator::mean_logprob:
      return "mean_logprob";
    case white_box_estimator::perplexity:
      return "perplexity";
    case white_box_estimator::min_token_probability:
      return "min_token_probability";
    case white_box_estimator::quantile_probability:
      return "quantile_probability";
    case white_box_estimator::mean_entropy:
      return "mean_entropy";
    case white_box_estimator::max_entropy:
      return "max_entropy";
    case white_box_estimator::mean_margin:
      return "mean_margin";
    case white_box_estimator::min_margin:
      return "min_margin";
  }
  return "unknown";
}

/// The estimator `e` of `s` oriented as a confidence (higher = more likely correct):
/// perplexity and entropies are negated, the others returned as they are. NaN when the
/// estimator was not computed (no entropies or margins).
[[nodiscard]] constexpr double confidence_of(const white_box_scores& s,
                                             white_box_estimator e) noexcept {
  switch (e) {
    case white_box_estimator::sequence_probability:
      return s.sequence_probability;
    case white_box_estimator::mean_logprob:
      return s.mean_logprob;
    case white_box_estimator::perplexity:
      return -s.perplexity;
    case white_box_estimator::min_token_probability:
      return s.min_token_probability;
    case white_box_estimator::quantile_probability:
      return s.quantile_probability;
    case white_box_estimator::mean_entropy:
      return -s.mean_entropy;
    case white_box_estimator::max_entropy:
      return -s.max_entropy;
    case white_box_estimator::mean_margin:
      return s.mean_margin;
    case white_box_estimator::min_margin:
      return s.min_margin;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace tandem::inline v0
