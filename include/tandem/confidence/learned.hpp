// tandem: a learned answer evaluator (FrugalGPT's scorer without a neural network):
// L2-regularised logistic regression over hashed word 1-2 grams of the question and of
// the answer, plus any dense features (white-box scores, lengths...). Trained full-batch
// with L-BFGS (deterministic: the same data gives the same weights), saved and loaded as
// a versioned, checksummed file.
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/detail/hashed_features.hpp"
#include "tandem/core/detail/logistic.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// Training settings of `learned_evaluator`.
struct learned_options {
  unsigned hash_bits = 18;           ///< 2^bits hashed n-gram buckets, in [1, 30]
  bool bigrams = true;               ///< add word bigrams to the unigrams
  double l2 = 1e-3;                  ///< L2 penalty (lambda/2)|w|^2 on the weights, >= 0
  std::size_t max_iterations = 300;  ///< L-BFGS iterations
  std::size_t history = 10;          ///< L-BFGS memory (> 0)
  double tolerance = 1e-7;           ///< stop when the gradient's max-norm falls below
};

/// One training example: a question, the model's answer, optional dense features (the
/// same count for every example) and whether the answer was correct (0/1). Views only:
/// the caller owns the data for the duration of `train`.
struct learned_example {
  std::string_view question;           ///< the question text (hashed into features)
  std::string_view answer;             ///< the model's answer text (hashed into features)
  std::span<const double> features{};  ///< dense features, finite; may be empty
  int label = 0;                       ///< 1 when the answer was correct, else 0
};

namespace detail::conf {
/// Appends the hashed 1-2 grams of one field, each weighted 1/sqrt(number of n-grams)
/// so long texts do not dominate; `tag` separates the question and answer spaces.
template <int = 0>
inline void hash_field(std::string_view text, char tag, unsigned bits, bool bigrams,
                       std::vector<std::string>& words, std::vector<hashed_entry>& out) {
  split_words(text, words);
  const std::size_t grams = words.size() + (bigrams && words.size() > 1 ? words.size() - 1 : 0);
  if (grams == 0) return;
  const double v = 1.0 / std::sqrt(static_cast<double>(grams));
  const char uni[2] = {tag, '\x01'}, bi[2] = {tag, '\x02'};
  for (std::size_t i = 0; i < words.size(); ++i) {
    out.push_back({hash_bucket(detail::fnv1a64(words[i], detail::fnv1a64({uni, 2})), bits), v});
    if (bigrams && i + 1 < words.size()) {
      const std::uint64_t h = detail::fnv1a64(
          words[i + 1],
          detail::fnv1a64("\x1f", detail::fnv1a64(words[i], detail::fnv1a64({bi, 2}))));
      out.push_back({hash_bucket(h, bits), v});
    }
  }
}
/// Sorted, merged hashed features of a (question, answer) pair.
template <int = 0>
inline void hash_pair(std::string_view q, std::string_view a, unsigned bits, bool bigrams,
                      std::vector<std::string>& words, std::vector<hashed_entry>& out) {
  out.clear();
  hash_field(q, 'q', bits, bigrams, words, out);
  hash_field(a, 'a', bits, bigrams, words, out);
  sort_and_merge(out);
}
}  // namespace detail::conf

/// Logistic-regression evaluator predicting the probability that an answer is correct.
/// A value type owning its weights (only buckets seen in training are stored). Not
/// trained (default-constructed) it predicts 0.5 for every input without dense features.
class learned_evaluator {
 public:
  /// The first bytes of to_bytes()'s output.
  static constexpr std::string_view file_magic = "TNDMLRN1";
  /// The format version to_bytes() writes; from_bytes() refuses any other
  /// (`unsupported_version`).
  static constexpr std::uint32_t file_version = 1;

  /// An untrained evaluator: predicts 0.5 for every input without dense features.
  learned_evaluator() = default;

  /// Trains on `examples`. Errors: `empty_input` (no examples), `insufficient_data`
  /// (one class only), `invalid_argument` (a label other than 0/1, hash_bits outside
  /// [1, 30], l2 < 0 or NaN, history 0), `size_mismatch` (dense feature counts differ),
  /// `non_finite` (a NaN/inf dense feature). `Vector` is a template parameter only so
  /// that the L-BFGS fit is compiled in the translation units that train: leave it
  /// defaulted.
  template <class Vector = Eigen::VectorXd>
  [[nodiscard]] static result<learned_evaluator> train(std::span<const learned_example> examples,
                                                       const learned_options& options = {}) {
    if (examples.empty()) return errc::empty_input;
    if (options.hash_bits < 1 || options.hash_bits > 30 || !(options.l2 >= 0.0) ||
        options.history == 0)
      return errc::invalid_argument;
    const std::size_t d = examples[0].features.size();
    std::size_t pos = 0;
    for (const auto& e : examples) {
      if (e.label != 0 && e.label != 1) return errc::invalid_argument;
      if (e.features.size() != d) return errc::size_mismatch;
      for (double x : e.features)
        if (!std::isfinite(x)) return errc::non_finite;
      pos += static_cast<std::size_t>(e.label);
    }
    if (pos == 0 || pos == examples.size()) return errc::insufficient_data;

    learned_evaluator m;
    m.bits_ = options.hash_bits;
    m.bigrams_ = options.bigrams;
    const std::size_t n = examples.size();
    // Dense features are standardised with the training mean and deviation; a constant
    // feature gets scale 0 and so no influence.
    m.mean_.assign(d, 0.0);
    m.scale_.assign(d, 0.0);
    for (const auto& e : examples)
      for (std::size_t j = 0; j < d; ++j) m.mean_[j] += e.features[j] / static_cast<double>(n);
    for (const auto& e : examples)
      for (std::size_t j = 0; j < d; ++j) {
        const double c = e.features[j] - m.mean_[j];
        m.scale_[j] += c * c / static_cast<double>(n);
      }
    for (double& s : m.scale_) s = s > 0.0 ? 1.0 / std::sqrt(s) : 0.0;

    // Rows in a compact column space: the buckets seen in training, then the dense ones.
    std::vector<std::string> words;
    std::vector<detail::hashed_entry> entries;
    std::vector<std::size_t> row_start{0};
    std::vector<std::uint32_t> col;
    std::vector<double> val;
    std::vector<std::uint32_t> buckets;
    for (const auto& e : examples) {
      detail::conf::hash_pair(e.question, e.answer, m.bits_, m.bigrams_, words, entries);
      for (const auto& h : entries) {
        col.push_back(h.index);
        val.push_back(h.value);
        buckets.push_back(h.index);
      }
      row_start.push_back(col.size());
    }
    std::sort(buckets.begin(), buckets.end());
    buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
    for (auto& c : col)
      c = static_cast<std::uint32_t>(std::lower_bound(buckets.begin(), buckets.end(), c) -
                                     buckets.begin());
    const std::size_t nb = buckets.size();
    const auto dim = static_cast<Eigen::Index>(nb + d + 1);  // last entry: bias

    // Each row's standardised dense features, as the last nb..nb+d columns.
    std::vector<double> dense(n * d);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < d; ++j)
        dense[i * d + j] = (examples[i].features[j] - m.mean_[j]) * m.scale_[j];
    std::vector<std::uint32_t> rows(n);
    for (std::size_t i = 0; i < n; ++i) rows[i] = static_cast<std::uint32_t>(i);

    // L-BFGS from the base rate; stops once a step gains less than 1e-12 relative.
    Vector x = Vector::Zero(dim);
    x(dim - 1) = std::log(static_cast<double>(pos) / static_cast<double>(n - pos));
    detail::fit_l2_logistic(
        x, rows,
        [&](std::uint32_t i, auto&& visit) {
          for (std::size_t k = row_start[i]; k < row_start[i + 1]; ++k) visit(col[k], val[k]);
          for (std::size_t j = 0; j < d; ++j)
            visit(static_cast<std::uint32_t>(nb + j), dense[i * d + j]);
        },
        [&](std::uint32_t i) { return static_cast<double>(examples[i].label); }, options.l2,
        {options.history, options.max_iterations, options.tolerance},
        [](double f_old, double f_new) {
          return f_old - f_new <= 1e-12 * std::max(1.0, std::abs(f_new));
        });

    m.bias_ = x(dim - 1);
    m.dense_weight_.resize(d);
    for (std::size_t j = 0; j < d; ++j) m.dense_weight_[j] = x(static_cast<Eigen::Index>(nb + j));
    for (std::size_t b = 0; b < nb; ++b) {
      const double w = x(static_cast<Eigen::Index>(b));
      if (w != 0.0) {
        m.index_.push_back(buckets[b]);
        m.weight_.push_back(w);
      }
    }
    return m;
  }

  /// Log-odds that `answer` to `question` is correct. `features` must have the count
  /// used in training (`size_mismatch`) and be finite (`non_finite`). Reads only.
  template <int = 0>
  [[nodiscard]] result<double> logit(std::string_view question, std::string_view answer,
                                     std::span<const double> features = {}) const {
    if (features.size() != mean_.size()) return errc::size_mismatch;
    for (double x : features)
      if (!std::isfinite(x)) return errc::non_finite;
    std::vector<std::string> words;
    std::vector<detail::hashed_entry> entries;
    detail::conf::hash_pair(question, answer, bits_, bigrams_, words, entries);
    double z = bias_;
    for (const auto& e : entries) {
      const auto it = std::lower_bound(index_.begin(), index_.end(), e.index);
      if (it != index_.end() && *it == e.index)
        z += weight_[static_cast<std::size_t>(it - index_.begin())] * e.value;
    }
    for (std::size_t j = 0; j < features.size(); ++j)
      z += dense_weight_[j] * (features[j] - mean_[j]) * scale_[j];
    return z;
  }

  /// Probability that `answer` to `question` is correct (the logistic of `logit`).
  /// Errors: as `logit`.
  template <int = 0>
  [[nodiscard]] result<double> predict(std::string_view question, std::string_view answer,
                                       std::span<const double> features = {}) const {
    auto z = logit(question, answer, features);
    if (!z) return z.error();
    return detail::sigmoid(*z);
  }

  /// Number of dense features the evaluator expects.
  [[nodiscard]] std::size_t feature_count() const noexcept { return mean_.size(); }
  /// Number of non-zero hashed n-gram weights.
  [[nodiscard]] std::size_t nonzero_weights() const noexcept { return index_.size(); }

  /// The evaluator as bytes: the common frame (magic "TNDMLRN1", file_version, size,
  /// payload, FNV-1a) around hash bits, bigram flag, bias, dense standardisation and
  /// weights, and the non-zero bucket weights.
  template <int = 0>
  [[nodiscard]] std::vector<std::byte> to_bytes() const {
    detail::byte_writer w;
    w.u32(bits_);
    w.u8(bigrams_ ? 1 : 0);
    w.f64(bias_);
    w.u64(mean_.size());
    for (std::size_t j = 0; j < mean_.size(); ++j) {
      w.f64(mean_[j]);
      w.f64(scale_[j]);
      w.f64(dense_weight_[j]);
    }
    w.u64(index_.size());
    for (std::size_t k = 0; k < index_.size(); ++k) {
      w.u32(index_[k]);
      w.f64(weight_[k]);
    }
    return detail::frame(file_magic, file_version, w.bytes());
  }

  /// Reads an evaluator written by `to_bytes`. Errors: `corrupt_file` (bad magic,
  /// checksum, sizes, truncation, non-finite weights, bucket indices unsorted or out of
  /// range), `unsupported_version` (another version; the details state both). `info`, when
  /// not null, receives the details.
  template <int = 0>
  [[nodiscard]] static result<learned_evaluator> from_bytes(std::span<const std::byte> bytes,
                                                            error_info* info = nullptr) {
    auto payload = detail::unframe(bytes, file_magic, file_version, "learned evaluator", info);
    if (!payload) return payload.error();
    const auto corrupt = [info](const char* what) {
      return detail::fail(info, errc::corrupt_file, "learned evaluator file: %s", what);
    };
    detail::byte_reader r(*payload);
    learned_evaluator m;
    std::uint8_t bigrams = 0;
    std::uint64_t d = 0, nnz = 0;
    if (!r.u32(m.bits_) || m.bits_ < 1 || m.bits_ > 30 || !r.u8(bigrams) || bigrams > 1 ||
        !r.f64(m.bias_) || !std::isfinite(m.bias_) || !r.u64(d) || d > r.left() / 24)
      return corrupt("header truncated or out of range");
    m.bigrams_ = bigrams == 1;
    const auto dn = static_cast<std::size_t>(d);
    m.mean_.resize(dn);
    m.scale_.resize(dn);
    m.dense_weight_.resize(dn);
    for (std::size_t j = 0; j < dn; ++j) {
      if (!r.f64(m.mean_[j]) || !r.f64(m.scale_[j]) || !r.f64(m.dense_weight_[j]) ||
          !std::isfinite(m.mean_[j]) || !std::isfinite(m.scale_[j]) || m.scale_[j] < 0.0 ||
          !std::isfinite(m.dense_weight_[j]))
        return corrupt("dense feature weights truncated or invalid");
    }
    if (!r.u64(nnz) || nnz > r.left() / 12) return corrupt("weight count out of range");
    const auto nn = static_cast<std::size_t>(nnz);
    m.index_.resize(nn);
    m.weight_.resize(nn);
    for (std::size_t k = 0; k < nn; ++k) {
      if (!r.u32(m.index_[k]) || !r.f64(m.weight_[k]) || !std::isfinite(m.weight_[k]) ||
          (std::uint64_t{m.index_[k]} >> m.bits_) != 0 || (k > 0 && m.index_[k] <= m.index_[k - 1]))
        return corrupt("bucket weights truncated, unsorted or out of range");
    }
    if (!r.at_end()) return corrupt("trailing bytes");
    return m;
  }

  /// Writes the evaluator to `path`, replacing the file as a whole (a failure leaves an
  /// earlier file intact). Errors: `io_error` (the details name the path). The object is
  /// unchanged.
  template <int = 0>
  [[nodiscard]] errc save(std::string_view path, error_info* info = nullptr) const {
    return detail::write_file(path, to_bytes(), info);
  }

  /// Reads an evaluator from `path`. Errors: `file_not_found`, `io_error`,
  /// `invalid_argument` (a directory), and those of `from_bytes`; `info`, when not null,
  /// receives the details.
  template <int = 0>
  [[nodiscard]] static result<learned_evaluator> load(std::string_view path,
                                                      error_info* info = nullptr) {
    auto bytes = detail::read_file(path, info);
    if (!bytes) return bytes.error();
    return from_bytes(*bytes, info);
  }

 private:
  std::uint32_t bits_ = 18;
  bool bigrams_ = true;
  double bias_ = 0.0;
  std::vector<double> mean_, scale_, dense_weight_;  ///< per dense feature
  std::vector<std::uint32_t> index_;                 ///< sorted hashed buckets with weights
  std::vector<double> weight_;
};

}  // namespace tandem::inline v0
