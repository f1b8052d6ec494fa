// tandem: calibrators that map a raw confidence score to a probability of being correct:
// temperature scaling, Platt scaling, isotonic regression (pool-adjacent-violators) and
// histogram binning. Fit, apply, save and load (versioned, checksummed files).
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/confidence/metrics.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// Which calibration map is fitted.
enum class calibration_method : std::uint8_t {
  temperature,  ///< p = sigmoid(z / T), z the score's logit; one parameter T > 0
  platt,        ///< p = sigmoid(A z + B), z the score's logit (Platt 1999 smoothed targets)
  isotonic,     ///< monotone non-decreasing step fit (PAV), linear between knots
  histogram,    ///< equal-mass bins of the training scores; p = the bin's accuracy
};

/// Stable lower-case name, e.g. "isotonic".
[[nodiscard]] constexpr std::string_view to_string(calibration_method m) noexcept {
  switch (m) {
    case calibration_method::temperature:
      return "temperature";
    case calibration_method::platt:
      return "platt";
    case calibration_method::isotonic:
      return "isotonic";
    case calibration_method::histogram:
      return "histogram";
  }
  return "unknown";
}

/// What the raw scores are.
enum class score_scale : std::uint8_t {
  probability,  ///< scores in [0, 1]; temperature and Platt scaling work on their logit
  logit,        ///< any finite real (a log-odds, a mean log-probability...)
};

/// Fitting settings.
struct calibration_options {
  score_scale scale = score_scale::probability;  ///< what the raw scores are
  std::size_t bins = 10;  ///< histogram binning: number of equal-mass bins (> 0)
};

/// A fitted calibrator. Value type; owns its parameters. Default-constructed it is the
/// identity map on probability scores (temperature 1).
class calibrator {
 public:
  /// The first bytes of to_bytes()'s output.
  static constexpr std::string_view file_magic = "TNDMCAL1";
  /// The format version to_bytes() writes; from_bytes() refuses any other
  /// (`unsupported_version`).
  static constexpr std::uint32_t file_version = 1;

  /// The identity map on probability scores (a temperature calibrator with T = 1).
  calibrator() = default;

  /// Fits `method` to (scores, labels) (labels 0/1, 1 = correct). Errors: `empty_input`,
  /// `size_mismatch`, `non_finite` (a NaN/inf score), `invalid_argument` (a label other
  /// than 0/1, a probability-scale score outside [0, 1], bins == 0),
  /// `insufficient_data` (one class only; temperature and Platt scaling: no score with
  /// a finite logit, i.e. all scores 0 or 1). Scores of exactly 0 or 1 do not enter those
  /// two fits and map to 0 or 1. Temperature is the constrained maximum-likelihood fit over
  /// T in [1e-6, 1e6].
  template <int = 0>
  [[nodiscard]] static result<calibrator> fit(calibration_method method,
                                              std::span<const double> scores,
                                              std::span<const int> labels,
                                              const calibration_options& options = {}) {
    TANDEM_TRY(detail::conf::check_scored(scores, labels));
    if (options.scale == score_scale::probability)
      TANDEM_TRY(detail::conf::check_probabilities(scores));
    if (options.bins == 0) return errc::invalid_argument;
    const auto pos = std::count(labels.begin(), labels.end(), 1);
    if (pos == 0 || pos == static_cast<std::ptrdiff_t>(labels.size()))
      return errc::insufficient_data;
    calibrator c;
    c.method_ = method;
    c.scale_ = options.scale;
    switch (method) {
      case calibration_method::temperature:
        TANDEM_TRY(c.fit_temperature(scores, labels));
        break;
      case calibration_method::platt:
        TANDEM_TRY(c.fit_platt(scores, labels));
        break;
      case calibration_method::isotonic:
        c.fit_isotonic(scores, labels);
        break;
      case calibration_method::histogram:
        c.fit_histogram(scores, labels, options.bins);
        break;
    }
    return c;
  }

  /// Calibrated probability of `score`. Errors: `non_finite` (NaN/inf score),
  /// `invalid_argument` (a probability-scale score outside [0, 1]).
  [[nodiscard]] result<double> apply(double score) const noexcept {
    if (!std::isfinite(score)) return errc::non_finite;
    if (scale_ == score_scale::probability && (score < 0.0 || score > 1.0))
      return errc::invalid_argument;
    switch (method_) {
      case calibration_method::temperature:
        return affine(logit_of(score), 0.0);
      case calibration_method::platt:
        return affine(logit_of(score), b_);
      case calibration_method::isotonic:
        return interpolate(score);
      case calibration_method::histogram: {
        const auto it = std::upper_bound(xs_.begin(), xs_.end(), score);
        return ys_[static_cast<std::size_t>(it - xs_.begin())];
      }
    }
    return errc::invalid_argument;
  }

  /// Calibrates `scores` into `out` (same size: `size_mismatch`). On the first bad
  /// score returns its error (see `apply(double)`); `out` is then partly written.
  [[nodiscard]] errc apply(std::span<const double> scores, std::span<double> out) const noexcept {
    if (scores.size() != out.size()) return errc::size_mismatch;
    for (std::size_t i = 0; i < scores.size(); ++i) {
      const auto p = apply(scores[i]);
      if (!p) return p.error();
      out[i] = *p;
    }
    return errc::ok;
  }

  /// The fitted method (temperature for a default-constructed calibrator).
  [[nodiscard]] calibration_method method() const noexcept { return method_; }
  /// The scale of the scores it takes (from the fitting options).
  [[nodiscard]] score_scale scale() const noexcept { return scale_; }
  /// Temperature T of a temperature calibrator (1 / the fitted slope).
  [[nodiscard]] double temperature() const noexcept { return 1.0 / a_; }
  ///@{
  /// Platt parameters A and B: p = sigmoid(A logit(score) + B) (on the logit scale, the
  /// score itself). Meaningful for a Platt calibrator only.
  [[nodiscard]] double platt_a() const noexcept { return a_; }
  [[nodiscard]] double platt_b() const noexcept { return b_; }
  ///@}

  /// The calibrator as bytes: a frame of core/detail/bytes.hpp (magic "TNDMCAL1", version
  /// file_version, payload size, FNV-1a-64 checksum) around u8 method, u8 scale, f64 a,
  /// f64 b, then the knots and the values (each a u64 count and f64s), little-endian.
  template <int = 0>
  [[nodiscard]] std::vector<std::byte> to_bytes() const {
    detail::byte_writer w;
    w.u8(static_cast<std::uint8_t>(method_));
    w.u8(static_cast<std::uint8_t>(scale_));
    w.f64(a_);
    w.f64(b_);
    w.array(xs_);
    w.array(ys_);
    return detail::frame(file_magic, file_version, w.bytes());
  }

  /// Reads a calibrator written by `to_bytes` (or `save`). Errors, with details in `*info`
  /// when not null: `corrupt_file` (bad magic, checksum, sizes, truncation, or parameters
  /// no fit could produce), `unsupported_version` (another format version; the details
  /// state it and file_version).
  template <int = 0>
  [[nodiscard]] static result<calibrator> from_bytes(std::span<const std::byte> bytes,
                                                     error_info* info = nullptr) {
    auto payload = detail::unframe(bytes, file_magic, file_version, "calibrator", info);
    if (!payload) return payload.error();
    detail::byte_reader r(*payload);
    calibrator c;
    std::uint8_t m = 0, s = 0;
    if (!r.u8(m) || !r.u8(s))
      return detail::fail(info, errc::corrupt_file, "calibrator file truncated");
    if (m > 3 || s > 1)
      return detail::fail(info, errc::corrupt_file,
                          "calibrator file: unknown method %u or scale %u", unsigned{m},
                          unsigned{s});
    c.method_ = static_cast<calibration_method>(m);
    c.scale_ = static_cast<score_scale>(s);
    if (!r.f64(c.a_) || !r.f64(c.b_) || !r.array(c.xs_) || !r.array(c.ys_))
      return detail::fail(info, errc::corrupt_file, "calibrator file truncated");
    if (!r.at_end())
      return detail::fail(info, errc::corrupt_file, "calibrator file: %zu trailing bytes",
                          r.left());
    if (!c.valid())
      return detail::fail(
          info, errc::corrupt_file, "calibrator file: %.*s parameters no fit could produce",
          static_cast<int>(to_string(c.method_).size()), to_string(c.method_).data());
    return c;
  }

  /// Writes `to_bytes()` to `path`, replacing any file there as a whole. Errors: `io_error`
  /// (details in `*info`: the path). The object is unchanged; on failure an earlier file at
  /// `path` is intact.
  template <int = 0>
  [[nodiscard]] errc save(std::string_view path, error_info* info = nullptr) const {
    return detail::write_file(path, to_bytes(), info);
  }

  /// Reads a calibrator from `path`. Errors: `file_not_found`, `invalid_argument` (a
  /// directory), `io_error`, and those of `from_bytes`; details (the path first) in `*info`.
  template <int = 0>
  [[nodiscard]] static result<calibrator> load(std::string_view path, error_info* info = nullptr) {
    return detail::parse_file(
        path, info, [](std::span<const std::byte> b, error_info* i) { return from_bytes(b, i); });
  }

 private:
  static double sigmoid(double z) noexcept {
    if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
    const double e = std::exp(z);
    return e / (1.0 + e);
  }
  static double softplus(double z) noexcept {
    return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
  }
  /// sigmoid(a_ z + b) where z may be +-inf (a probability score of exactly 1 or 0).
  double affine(double z, double b) const noexcept {
    if (std::isinf(z)) {
      if (a_ == 0.0) return sigmoid(b);
      return (z > 0) == (a_ > 0) ? 1.0 : 0.0;
    }
    return sigmoid(a_ * z + b);
  }
  double logit_of(double s) const noexcept {
    if (scale_ == score_scale::logit) return s;
    return std::log(s) - std::log1p(-s);  // +-inf at 1 and 0 map back to 1 and 0
  }

  bool valid() const noexcept {
    auto finite = [](double v) { return std::isfinite(v); };
    if (!finite(a_) || !finite(b_)) return false;
    if (!std::all_of(xs_.begin(), xs_.end(), finite)) return false;
    for (double y : ys_)
      if (!(y >= 0.0 && y <= 1.0)) return false;
    switch (method_) {
      case calibration_method::temperature:
        return a_ > 0.0 && xs_.empty() && ys_.empty();
      case calibration_method::platt:
        return xs_.empty() && ys_.empty();
      case calibration_method::isotonic:
        return !xs_.empty() && xs_.size() == ys_.size() && std::is_sorted(xs_.begin(), xs_.end()) &&
               std::is_sorted(ys_.begin(), ys_.end());
      case calibration_method::histogram:
        return ys_.size() == xs_.size() + 1 &&
               std::adjacent_find(xs_.begin(), xs_.end(),
                                  [](double a, double b) { return a >= b; }) == xs_.end();
    }
    return false;
  }

  template <int = 0>
  errc fit_temperature(std::span<const double> scores, std::span<const int> labels) {
    std::vector<double> z;
    std::vector<int> y;
    for (std::size_t i = 0; i < scores.size(); ++i) {
      const double l = logit_of(scores[i]);
      if (std::isfinite(l)) {
        z.push_back(l);
        y.push_back(labels[i]);
      }
    }
    if (z.empty()) return errc::insufficient_data;
    // The negative log-likelihood is convex in the slope a = 1/T, so its derivative is
    // increasing: bisect on log a.
    auto slope = [&](double a) {
      double g = 0.0;
      for (std::size_t i = 0; i < z.size(); ++i) g += (sigmoid(a * z[i]) - y[i]) * z[i];
      return g;
    };
    double lo = std::log(1e-6), hi = std::log(1e6);
    if (slope(std::exp(lo)) >= 0.0) {
      a_ = std::exp(lo);
    } else if (slope(std::exp(hi)) <= 0.0) {
      a_ = std::exp(hi);
    } else {
      for (int it = 0; it < 200; ++it) {
        const double mid = 0.5 * (lo + hi);
        (slope(std::exp(mid)) < 0.0 ? lo : hi) = mid;
      }
      a_ = std::exp(0.5 * (lo + hi));
    }
    return errc::ok;
  }

  template <int = 0>
  errc fit_platt(std::span<const double> all_scores, std::span<const int> all_labels) {
    std::vector<double> z;
    std::vector<int> y;
    for (std::size_t i = 0; i < all_scores.size(); ++i) {
      const double l = logit_of(all_scores[i]);
      if (std::isfinite(l)) {
        z.push_back(l);
        y.push_back(all_labels[i]);
      }
    }
    if (z.empty()) return errc::insufficient_data;
    const std::span<const double> scores(z);
    const std::span<const int> labels(y);
    const std::size_t n = scores.size();
    const double np = static_cast<double>(std::count(labels.begin(), labels.end(), 1));
    const double nn = static_cast<double>(n) - np;
    const double t_pos = (np + 1.0) / (np + 2.0), t_neg = 1.0 / (nn + 2.0);
    auto objective = [&](double a, double b) {
      double f = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        const double zz = a * scores[i] + b;
        f += softplus(zz) - (labels[i] ? t_pos : t_neg) * zz;
      }
      return f;
    };
    double a = 0.0, b = std::log((np + 1.0) / (nn + 1.0));
    double f = objective(a, b);
    for (int it = 0; it < 100; ++it) {
      double g1 = 0, g2 = 0, h11 = 1e-12, h12 = 0, h22 = 1e-12;
      for (std::size_t i = 0; i < n; ++i) {
        const double p = sigmoid(a * scores[i] + b);
        const double d = p - (labels[i] ? t_pos : t_neg);
        const double w = p * (1.0 - p);
        g1 += d * scores[i];
        g2 += d;
        h11 += w * scores[i] * scores[i];
        h12 += w * scores[i];
        h22 += w;
      }
      if (std::abs(g1) < 1e-12 * static_cast<double>(n) &&
          std::abs(g2) < 1e-12 * static_cast<double>(n))
        break;
      const double det = h11 * h22 - h12 * h12;
      const double da = -(h22 * g1 - h12 * g2) / det, db = -(h11 * g2 - h12 * g1) / det;
      double step = 1.0;
      bool moved = false;
      while (step > 1e-10) {
        const double fa = objective(a + step * da, b + step * db);
        if (fa < f + 1e-4 * step * (g1 * da + g2 * db)) {
          a += step * da;
          b += step * db;
          f = fa;
          moved = true;
          break;
        }
        step /= 2.0;
      }
      if (!moved) break;
    }
    a_ = a;
    b_ = b;
    return errc::ok;
  }

  template <int = 0>
  void fit_isotonic(std::span<const double> scores, std::span<const int> labels) {
    std::vector<std::size_t> idx(scores.size());
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::sort(idx.begin(), idx.end(),
              [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
    struct block {
      double lo, hi, weight, sum;
    };
    std::vector<block> stack;
    for (std::size_t i = 0; i < idx.size();) {
      std::size_t j = i;
      double sum = 0.0;
      while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) sum += labels[idx[j++]];
      stack.push_back({scores[idx[i]], scores[idx[i]], static_cast<double>(j - i), sum});
      // Pool adjacent violators: merge while the previous block's mean exceeds the last.
      while (stack.size() > 1) {
        block& last = stack.back();
        block& prev = stack[stack.size() - 2];
        if (prev.sum * last.weight <= last.sum * prev.weight) break;
        prev.hi = last.hi;
        prev.weight += last.weight;
        prev.sum += last.sum;
        stack.pop_back();
      }
      i = j;
    }
    xs_.clear();
    ys_.clear();
    for (const block& b : stack) {
      const double mean = b.sum / b.weight;
      xs_.push_back(b.lo);
      ys_.push_back(mean);
      if (b.hi != b.lo) {
        xs_.push_back(b.hi);
        ys_.push_back(mean);
      }
    }
  }

  double interpolate(double s) const noexcept {
    if (s <= xs_.front()) return ys_.front();
    if (s >= xs_.back()) return ys_.back();
    const auto it = std::upper_bound(xs_.begin(), xs_.end(), s);
    const std::size_t k = static_cast<std::size_t>(it - xs_.begin());
    const double x0 = xs_[k - 1], x1 = xs_[k];
    if (x1 == x0) return ys_[k];
    return ys_[k - 1] + (ys_[k] - ys_[k - 1]) * (s - x0) / (x1 - x0);
  }

  template <int = 0>
  void fit_histogram(std::span<const double> scores, std::span<const int> labels,
                     std::size_t bins) {
    const std::size_t n = scores.size();
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::stable_sort(idx.begin(), idx.end(),
                     [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
    // Tie groups stay whole; a group joins the bin its first item falls in by rank.
    std::vector<double> lo, hi, cnt, pos;
    std::size_t current = static_cast<std::size_t>(-1);
    for (std::size_t i = 0; i < n;) {
      std::size_t j = i;
      double sum = 0.0;
      while (j < n && scores[idx[j]] == scores[idx[i]]) sum += labels[idx[j++]];
      const std::size_t b = i * bins / n;
      if (b != current || lo.empty()) {
        current = b;
        lo.push_back(scores[idx[i]]);
        hi.push_back(scores[idx[i]]);
        cnt.push_back(0.0);
        pos.push_back(0.0);
      }
      hi.back() = scores[idx[i]];
      cnt.back() += static_cast<double>(j - i);
      pos.back() += sum;
      i = j;
    }
    xs_.clear();
    ys_.clear();
    for (std::size_t b = 0; b < cnt.size(); ++b) {
      ys_.push_back(pos[b] / cnt[b]);
      if (b + 1 < cnt.size()) xs_.push_back(0.5 * (hi[b] + lo[b + 1]));
    }
  }

  calibration_method method_ = calibration_method::temperature;
  score_scale scale_ = score_scale::probability;
  double a_ = 1.0;          ///< temperature: slope 1/T; Platt: A
  double b_ = 0.0;          ///< Platt: B
  std::vector<double> xs_;  ///< isotonic: knots; histogram: thresholds between bins
  std::vector<double> ys_;  ///< isotonic: values at the knots; histogram: bin accuracies
};

}  // namespace tandem::inline v0
