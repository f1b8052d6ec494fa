// tandem: a learned answer evaluator (FrugalGPT's scorer without a neural network):
// L2-regularised logistic regression over hashed word 1-2 grams of the question and of
// the answer, plus any dense features (white-box scores, lengths...). Trained full-batch
// with L-BFGS (deterministic: the same data gives the same weights), saved and loaded as
// a versioned, checksummed file.
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

#include "tandem/confidence/detail/serial.hpp"
#include "tandem/confidence/detail/text.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/detail/logistic.hpp"
#include "tandem/core/errc.hpp"
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
struct hashed_entry {
  std::uint32_t index;
  double value;
};
[[nodiscard]] inline std::uint32_t hash_bucket(std::uint64_t h, unsigned bits) noexcept {
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 32;
  return static_cast<std::uint32_t>(h & ((std::uint64_t{1} << bits) - 1));
}
/// Appends the hashed 1-2 grams of one field, each weighted 1/sqrt(number of n-grams)
/// so long texts do not dominate; `tag` separates the question and answer spaces.
inline void hash_field(std::string_view text, char tag, unsigned bits, bool bigrams,
                       std::vector<std::string>& words, std::vector<hashed_entry>& out) {
  split_words(text, words);
  const std::size_t grams = words.size() + (bigrams && words.size() > 1 ? words.size() - 1 : 0);
  if (grams == 0) return;
  const double v = 1.0 / std::sqrt(static_cast<double>(grams));
  const char uni[2] = {tag, '\x01'}, bi[2] = {tag, '\x02'};
  for (std::size_t i = 0; i < words.size(); ++i) {
    out.push_back({hash_bucket(fnv1a64(words[i], fnv1a64({uni, 2})), bits), v});
    if (bigrams && i + 1 < words.size()) {
      const std::uint64_t h =
          fnv1a64(words[i + 1], fnv1a64("\x1f", fnv1a64(words[i], fnv1a64({bi, 2}))));
      out.push_back({hash_bucket(h, bits), v});
    }
  }
}
/// Sorted, merged hashed features of a (question, answer) pair.
inline void hash_pair(std::string_view q, std::string_view a, unsigned bits, bool bigrams,
                      std::vector<std::string>& words, std::vector<hashed_entry>& out) {
  out.clear();
  hash_field(q, 'q', bits, bigrams, words, out);
  hash_field(a, 'a', bits, bigrams, words, out);
  std::sort(out.begin(), out.end(),
            [](const hashed_entry& x, const hashed_entry& y) { return x.index < y.index; });
  std::size_t w = 0;
  for (std::size_t r = 0; r < out.size(); ++r) {
    if (w > 0 && out[w - 1].index == out[r].index)
      out[w - 1].value += out[r].value;
    else
      out[w++] = out[r];
  }
  out.resize(w);
}
}  // namespace detail::conf

/// Logistic-regression evaluator predicting the probability that an answer is correct.
/// A value type owning its weights (only buckets seen in training are stored). Not
/// trained (default-constructed) it predicts 0.5 for every input without dense features.
class learned_evaluator {
 public:
  /// The first bytes of serialize()'s output.
  static constexpr std::string_view file_magic = "TNDMLRN1";
  /// The format version serialize() writes; deserialize() refuses any other
  /// (`unsupported_version`).
  static constexpr std::uint32_t file_version = 1;

  /// An untrained evaluator: predicts 0.5 for every input without dense features.
  learned_evaluator() = default;

  /// Trains on `examples`. Errors: `empty_input` (no examples), `insufficient_data`
  /// (one class only), `invalid_argument` (a label other than 0/1, hash_bits outside
  /// [1, 30], l2 < 0 or NaN, history 0), `size_mismatch` (dense feature counts differ),
  /// `non_finite` (a NaN/inf dense feature).
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
    std::vector<detail::conf::hashed_entry> entries;
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

    auto margin = [&](const Eigen::VectorXd& x, std::size_t i) {
      double z = x(dim - 1);
      for (std::size_t k = row_start[i]; k < row_start[i + 1]; ++k) z += x(col[k]) * val[k];
      for (std::size_t j = 0; j < d; ++j)
        z += x(static_cast<Eigen::Index>(nb + j)) * (examples[i].features[j] - m.mean_[j]) *
             m.scale_[j];
      return z;
    };
    const double inv_n = 1.0 / static_cast<double>(n);
    auto objective = [&](const Eigen::VectorXd& x, Eigen::VectorXd& g) {
      g.setZero();
      double f = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        const double z = margin(x, i);
        const double y = examples[i].label;
        f += (detail::log1pexp(z) - y * z) * inv_n;
        const double r = (detail::sigmoid(z) - y) * inv_n;
        g(dim - 1) += r;
        for (std::size_t k = row_start[i]; k < row_start[i + 1]; ++k) g(col[k]) += r * val[k];
        for (std::size_t j = 0; j < d; ++j)
          g(static_cast<Eigen::Index>(nb + j)) +=
              r * (examples[i].features[j] - m.mean_[j]) * m.scale_[j];
      }
      const auto w = x.head(dim - 1);
      f += 0.5 * options.l2 * w.squaredNorm();
      g.head(dim - 1) += options.l2 * w;
      return f;
    };

    // L-BFGS from the base rate; stops once a step gains less than 1e-12 relative.
    Eigen::VectorXd x = Eigen::VectorXd::Zero(dim);
    x(dim - 1) = std::log(static_cast<double>(pos) / static_cast<double>(n - pos));
    detail::minimize_lbfgs(x, objective,
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
  [[nodiscard]] result<double> logit(std::string_view question, std::string_view answer,
                                     std::span<const double> features = {}) const {
    if (features.size() != mean_.size()) return errc::size_mismatch;
    for (double x : features)
      if (!std::isfinite(x)) return errc::non_finite;
    std::vector<std::string> words;
    std::vector<detail::conf::hashed_entry> entries;
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

  /// The evaluator as a framed byte string (magic "TNDMLRN1", version, checksum).
  [[nodiscard]] std::string serialize() const {
    detail::conf::byte_writer w;
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
    return detail::conf::frame(file_magic, file_version, w.bytes());
  }

  /// Reads an evaluator written by `serialize`. Errors: `corrupt_file` (bad magic,
  /// checksum, sizes, truncation, non-finite weights, bucket indices unsorted or out of
  /// range), `unsupported_version`.
  [[nodiscard]] static result<learned_evaluator> deserialize(std::string_view bytes) {
    auto payload = detail::conf::unframe(bytes, file_magic, file_version);
    if (!payload) return payload.error();
    detail::conf::byte_reader r(*payload);
    learned_evaluator m;
    std::uint8_t bigrams = 0;
    std::uint64_t d = 0, nnz = 0;
    if (!r.u32(m.bits_) || m.bits_ < 1 || m.bits_ > 30 || !r.u8(bigrams) || bigrams > 1 ||
        !r.f64(m.bias_) || !std::isfinite(m.bias_) || !r.u64(d) || d > r.remaining() / 24)
      return errc::corrupt_file;
    m.bigrams_ = bigrams == 1;
    const auto dn = static_cast<std::size_t>(d);
    m.mean_.resize(dn);
    m.scale_.resize(dn);
    m.dense_weight_.resize(dn);
    for (std::size_t j = 0; j < dn; ++j) {
      if (!r.f64(m.mean_[j]) || !r.f64(m.scale_[j]) || !r.f64(m.dense_weight_[j]) ||
          !std::isfinite(m.mean_[j]) || !std::isfinite(m.scale_[j]) || m.scale_[j] < 0.0 ||
          !std::isfinite(m.dense_weight_[j]))
        return errc::corrupt_file;
    }
    if (!r.u64(nnz) || nnz > r.remaining() / 12) return errc::corrupt_file;
    const auto nn = static_cast<std::size_t>(nnz);
    m.index_.resize(nn);
    m.weight_.resize(nn);
    for (std::size_t k = 0; k < nn; ++k) {
      if (!r.u32(m.index_[k]) || !r.f64(m.weight_[k]) || !std::isfinite(m.weight_[k]) ||
          (std::uint64_t{m.index_[k]} >> m.bits_) != 0 || (k > 0 && m.index_[k] <= m.index_[k - 1]))
        return errc::corrupt_file;
    }
    if (!r.at_end()) return errc::corrupt_file;
    return m;
  }

  /// Writes the evaluator to `path`. Errors: `io_error`. The object is unchanged.
  [[nodiscard]] errc save(const char* path) const {
    return detail::conf::write_file(path, serialize());
  }

  /// Reads an evaluator from `path`. Errors: `file_not_found`, `io_error`, and those of
  /// `deserialize`.
  [[nodiscard]] static result<learned_evaluator> load(const char* path) {
    auto bytes = detail::conf::read_file(path);
    if (!bytes) return bytes.error();
    return deserialize(*bytes);
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
