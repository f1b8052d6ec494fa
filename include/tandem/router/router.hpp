// tandem: a router that picks a model from the query alone: a featurizer (hashed TF-IDF
// n-grams or user embeddings) plus per-model quality predictors (logistic regression,
// k-NN, matrix factorisation, a blend of logistic regression and k-NN, or a joint logistic
// regression anchoring every model to a reference model), with
// regularisation chosen by cross-validation on the training rows only, and a versioned,
// checksummed save/load format. Every choice is scored by how well held-out predictions
// order queries by each pair of models' recorded gain, which is what a routing policy
// uses (see detail::route::routing_score).
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/router/factorization.hpp"
#include "tandem/router/featurizer.hpp"
#include "tandem/router/joint_logistic.hpp"
#include "tandem/router/knn.hpp"
#include "tandem/router/logistic.hpp"

namespace tandem::inline v0 {

/// Which per-model quality predictor a router uses.
enum class router_predictor : std::uint8_t {
  logistic = 1,       ///< one logistic regression per model, L2 strength by k-fold CV
  knn = 2,            ///< k nearest neighbours, k and shrinkage by leave-one-out
  factorization = 3,  ///< low-rank model x query factorisation (RouteLLM-style MF)
  ensemble = 4,       ///< logistic and k-NN predictions blended, weight by held-out error
  /// One logistic regression over all models, each model's logit the reference model's
  /// plus a penalised offset (joint_logistic.hpp), L2 strength by k-fold CV. Orders
  /// queries by gain best of these on the recorded MMLU outcomes (tandem-route's default).
  joint = 5,
};

/// Which features a router reads.
enum class router_features : std::uint8_t {
  ngrams = 1,      ///< hashed word and character n-grams with TF-IDF, from the text
  embeddings = 2,  ///< caller-supplied dense vectors
};

/// Settings of router::fit.
struct router_options {
  /// Which quality predictor fit() trains.
  router_predictor predictor = router_predictor::ensemble;
  featurizer_options ngrams{};                                     ///< for router_features::ngrams
  std::vector<double> l2_grid{1e-2, 3e-3, 1e-3, 3e-4, 1e-4};  ///< logistic CV grid
  std::size_t folds = 4;                                      ///< logistic CV folds
  std::vector<std::size_t> k_grid{8, 16, 32, 64, 128, 256};   ///< k-NN LOO grid
  std::vector<double> prior_grid{0.01, 0.1, 1.0};             ///< k-NN LOO shrinkage grid
  std::vector<double> power_grid{1.0, 2.0, 4.0};              ///< k-NN LOO weight exponents
  /// Features of the k-NN view: word n-grams only by default, whose overlaps single out
  /// near-duplicate queries better than the many shared character n-grams.
  featurizer_options knn_ngrams{1, 2, 0, 0, 18, true, 1.0f};
  knn_options knn{};  ///< max_terms is used
  /// Settings of the factorisation predictor.
  factorization_options factorization{};
  /// Features of the joint predictor: word 1- and 2-grams, binary term weights, n-grams
  /// seen in at least 2 training queries (one-off n-grams only add noise to the offsets).
  featurizer_options joint_ngrams{1, 2, 0, 0, 20, true, 1.0f, true, 2};
  /// Joint predictor's CV grid. Its L2 strength multiplies the weights' squared norm
  /// against the mean loss over every (query, model) outcome.
  std::vector<double> joint_l2_grid{1e-3, 3e-4, 1e-4, 5e-5, 2.5e-5};
  /// The joint predictor's reference model (an index into the models; e.g. the cheapest).
  std::size_t reference = 0;
  std::uint64_t seed = 0;  ///< folds and factorisation initialisation
};

/// The on-disk format version written by router::save.
/// Version 2 added the featurizers' binary_tf and min_df and the joint predictor.
inline constexpr std::uint32_t router_format_version = 2;

namespace detail::route {
class byte_writer {
 public:
  void u8(std::uint8_t v) { buf_.push_back(v); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void f32(float v) { u32(std::bit_cast<std::uint32_t>(v)); }
  void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
  void str(std::string_view s) {
    u64(s.size());
    buf_.insert(buf_.end(), s.begin(), s.end());
  }
  template <class T>
  void vec(std::span<const T> v) {
    u64(v.size());
    for (const T& x : v) {
      if constexpr (std::is_same_v<T, float>)
        f32(x);
      else if constexpr (std::is_same_v<T, double>)
        f64(x);
      else if constexpr (sizeof(T) == 4)
        u32(static_cast<std::uint32_t>(x));
      else
        u64(static_cast<std::uint64_t>(x));
    }
  }
  std::vector<std::uint8_t>& bytes() noexcept { return buf_; }

 private:
  std::vector<std::uint8_t> buf_;
};

class byte_reader {
 public:
  explicit byte_reader(std::span<const std::uint8_t> b) noexcept : b_(b) {}
  bool u8(std::uint8_t& v) noexcept {
    if (left() < 1) return false;
    v = b_[p_++];
    return true;
  }
  bool u32(std::uint32_t& v) noexcept {
    if (left() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(b_[p_++]) << (8 * i);
    return true;
  }
  bool u64(std::uint64_t& v) noexcept {
    if (left() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(b_[p_++]) << (8 * i);
    return true;
  }
  bool f32(float& v) noexcept {
    std::uint32_t u = 0;
    if (!u32(u)) return false;
    v = std::bit_cast<float>(u);
    return true;
  }
  bool f64(double& v) noexcept {
    std::uint64_t u = 0;
    if (!u64(u)) return false;
    v = std::bit_cast<double>(u);
    return true;
  }
  bool str(std::string& s) {
    std::uint64_t n = 0;
    if (!u64(n) || n > left()) return false;
    s.assign(reinterpret_cast<const char*>(b_.data() + p_), static_cast<std::size_t>(n));
    p_ += static_cast<std::size_t>(n);
    return true;
  }
  template <class T>
  bool vec(std::vector<T>& v) {
    std::uint64_t n = 0;
    constexpr std::size_t w = sizeof(T) == 4 ? 4 : 8;
    if (!u64(n) || n > left() / w) return false;  // counts beyond the file are corrupt
    v.resize(static_cast<std::size_t>(n));
    for (T& x : v) {
      if constexpr (std::is_same_v<T, float>) {
        if (!f32(x)) return false;
      } else if constexpr (std::is_same_v<T, double>) {
        if (!f64(x)) return false;
      } else if constexpr (sizeof(T) == 4) {
        std::uint32_t u = 0;
        if (!u32(u)) return false;
        x = static_cast<T>(u);
      } else {
        std::uint64_t u = 0;
        if (!u64(u)) return false;
        x = static_cast<T>(u);
      }
    }
    return true;
  }
  std::size_t left() const noexcept { return b_.size() - p_; }

 private:
  std::span<const std::uint8_t> b_;
  std::size_t p_ = 0;
};

// k-fold cross-validation of an L2 strength over `grid`, visited from the strongest
// penalty down so that each fold can warm-start along the path. fit_fold(train, val, order,
// pred) fits the fold's training rows at every strength order[k] and writes its predictions
// for the validation rows into pred[k] (n x m). The strength with the best routing_score
// (or, for one model, the least squared contrast error) wins; `oof`, when not null,
// receives its out-of-fold predictions.
template <class FitFold>
errc cv_l2_path(std::size_t n, std::span<const double> y, std::size_t m,
                std::span<const double> grid, std::size_t folds, rng& g, FitFold&& fit_fold,
                double& best_l2, std::vector<double>* oof) {
  if (grid.empty() || folds < 2 || folds > n) return errc::invalid_argument;
  for (double l2 : grid)
    if (!(l2 >= 0) || !std::isfinite(l2)) return errc::invalid_argument;
  std::vector<double> order(grid.begin(), grid.end());
  std::sort(order.begin(), order.end(), [](double a, double b) { return a > b; });
  const std::vector<std::uint32_t> fold = random_folds(n, folds, g);
  std::vector<std::vector<double>> pred(order.size(), std::vector<double>(n * m, 0.0));
  for (std::size_t f = 0; f < folds; ++f) {
    std::vector<std::uint32_t> train, val;
    for (std::size_t i = 0; i < n; ++i)
      (fold[i] == f ? val : train).push_back(static_cast<std::uint32_t>(i));
    TANDEM_TRY(fit_fold(std::span<const std::uint32_t>(train), std::span<const std::uint32_t>(val),
                        std::span<const double>(order), pred));
  }
  std::size_t best = 0;
  double best_err = 0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    double e = 0;
    if (m >= 2) {
      e = -routing_score(pred[k], y, m);
    } else {
      for (std::size_t i = 0; i < n; ++i)
        e += contrast_sq_error(pred[k].data() + i * m, y.data() + i * m, m);
    }
    if (k == 0 || e < best_err) {
      best = k;
      best_err = e;
    }
  }
  best_l2 = order[best];
  if (oof != nullptr) *oof = std::move(pred[best]);
  return errc::ok;
}

// Cross-validated L2 strength shared by the per-model logistic regressions (cv_l2_path);
// `oof` receives the out-of-fold predictions (n x m) under the chosen strength.
inline errc cv_logistic_multi(std::span<const sparse_vector> x, std::span<const double> y,
                              std::size_t m, std::size_t dims, std::span<const double> grid,
                              std::size_t folds, rng& g, double& best_l2,
                              std::vector<double>& oof) {
  std::vector<double> yj(x.size());
  const auto fit_fold = [&](std::span<const std::uint32_t> train,
                            std::span<const std::uint32_t> val, std::span<const double> order,
                            std::vector<std::vector<double>>& pred) -> errc {
    for (std::size_t j = 0; j < m; ++j) {
      double mean = 0;
      for (std::size_t i = 0; i < x.size(); ++i) yj[i] = y[i * m + j];
      for (std::uint32_t i : train) mean += yj[i];
      mean /= static_cast<double>(train.size());
      logistic_regression lr;
      for (std::size_t k = 0; k < order.size(); ++k) {
        logistic_options o;
        o.l2 = order[k];
        const errc e = lr.fit(x, yj, dims, o, k > 0, train);
        if (e == errc::insufficient_data) {  // one-class fold: the mean is all it knows
          for (std::uint32_t i : val) pred[k][i * m + j] = mean;
          continue;
        }
        TANDEM_TRY(e);
        for (std::uint32_t i : val) pred[k][i * m + j] = lr.predict(x[i]);
      }
    }
    return errc::ok;
  };
  return cv_l2_path(x.size(), y, m, grid, folds, g, fit_fold, best_l2, &oof);
}

// Cross-validated L2 strength of the joint predictor (cv_l2_path; each fold's path is
// warm-started).
inline errc cv_joint(std::span<const sparse_vector> x, std::span<const double> y, std::size_t m,
                     std::size_t reference, std::size_t dims, std::span<const double> grid,
                     std::size_t folds, rng& g, double& best_l2) {
  const auto fit_fold = [&](std::span<const std::uint32_t> train,
                            std::span<const std::uint32_t> val, std::span<const double> order,
                            std::vector<std::vector<double>>& pred) -> errc {
    joint_logistic jl;
    for (std::size_t k = 0; k < order.size(); ++k) {
      logistic_options o;
      o.l2 = order[k];
      const errc e = jl.fit(x, y, m, reference, dims, o, k > 0, train);
      if (e == errc::insufficient_data) {  // a one-class fold: the means are all it knows
        for (std::size_t j = 0; j < m; ++j) {
          double mean = 0;
          for (std::uint32_t i : train) mean += y[i * m + j];
          mean /= static_cast<double>(train.size());
          for (std::uint32_t i : val) pred[k][i * m + j] = mean;
        }
        continue;
      }
      TANDEM_TRY(e);
      for (std::uint32_t i : val)
        TANDEM_TRY(jl.predict(x[i], std::span<double>(pred[k].data() + i * m, m)));
    }
    return errc::ok;
  };
  return cv_l2_path(x.size(), y, m, grid, folds, g, fit_fold, best_l2, nullptr);
}

inline constexpr char router_magic[8] = {'T', 'N', 'D', 'M', 'R', 'O', 'U', 'T'};

inline std::uint64_t checksum(std::span<const std::uint8_t> b) noexcept {
  std::uint64_t h = fnv_offset;
  for (std::uint8_t c : b) {
    h ^= c;
    h *= fnv_prime;
  }
  return h;
}
}  // namespace detail::route

/// A query's features in the views a router reads: `main` for the logistic, factorisation
/// and joint predictors, `knn` for the k-NN predictor (for embedding routers both are the
/// caller's vector).
struct query_features {
  sparse_vector main;  ///< the view of every predictor but k-NN
  sparse_vector knn;   ///< the k-NN view
};

/// Predicts each model's quality on a query and keeps what a routing policy needs. Owns
/// its featurizers and predictors; movable and copyable; const member functions may run
/// concurrently from several threads.
class router {
 public:
  /// Fits on `prompts` (n texts) with recorded `quality` (n x models.size(), row-major, in
  /// [0, 1]) using hashed n-gram features (options.ngrams for the logistic and
  /// factorisation predictors, options.joint_ngrams for the joint predictor,
  /// options.knn_ngrams for k-NN). Errors: empty_input (no rows or no models),
  /// size_mismatch, invalid_argument (bad options, a reference model out of range, a
  /// quality outside [0, 1]), insufficient_data (a model whose quality is the same on every
  /// row, for the logistic, ensemble and joint predictors), plus those of the predictors.
  /// On error the router is left unfitted.
  [[nodiscard]] errc fit(std::span<const std::string> prompts, std::span<const double> quality,
                         std::span<const std::string> models, const router_options& o) {
    *this = router{};
    if (prompts.empty() || models.empty()) return errc::empty_input;
    predictor_ = o.predictor;
    std::vector<sparse_vector> x, xk;
    if (uses_main()) {
      TANDEM_TRY(
          featurizer_.configure(predictor_ == router_predictor::joint ? o.joint_ngrams : o.ngrams));
      TANDEM_TRY(featurizer_.fit(prompts));
      x.resize(prompts.size());
      for (std::size_t i = 0; i < prompts.size(); ++i) featurizer_.transform(prompts[i], x[i]);
    }
    if (uses_knn()) {
      TANDEM_TRY(knn_featurizer_.configure(o.knn_ngrams));
      TANDEM_TRY(knn_featurizer_.fit(prompts));
      xk.resize(prompts.size());
      for (std::size_t i = 0; i < prompts.size(); ++i) knn_featurizer_.transform(prompts[i], xk[i]);
    }
    const errc e =
        fit_rows(x, featurizer_.fitted() ? featurizer_.dims() : 0, xk,
                 knn_featurizer_.fitted() ? knn_featurizer_.dims() : 0, quality, models, o);
    if (e != errc::ok)
      *this = router{};
    else
      features_ = router_features::ngrams;
    return e;
  }

  /// Fits on caller-supplied feature rows (e.g. from embedding_features) of dimension
  /// `dims`, read by every predictor. Errors: as fit, plus invalid_argument (an index >=
  /// dims). On error the router is left unfitted.
  [[nodiscard]] errc fit_features(std::span<const sparse_vector> x, std::size_t dims,
                                  std::span<const double> quality,
                                  std::span<const std::string> models, const router_options& o) {
    *this = router{};
    if (x.empty() || models.empty()) return errc::empty_input;
    predictor_ = o.predictor;
    const errc e = fit_rows(x, dims, x, dims, quality, models, o);
    if (e != errc::ok)
      *this = router{};
    else
      features_ = router_features::embeddings;
    return e;
  }

  /// Features of `prompt` in `out` (each view this router reads). Errors: unsupported (an
  /// embedding router: the caller supplies features). Precondition: fitted().
  [[nodiscard]] errc featurize(std::string_view prompt, query_features& out) const {
    TANDEM_ASSERT(fitted(), "router used before fit");
    if (features_ != router_features::ngrams) return errc::unsupported;
    out.main.clear();
    out.knn.clear();
    if (featurizer_.fitted()) featurizer_.transform(prompt, out.main);
    if (knn_featurizer_.fitted()) knn_featurizer_.transform(prompt, out.knn);
    return errc::ok;
  }

  /// Predicted quality of each model (in models() order) for `prompt`, written to `out`.
  /// Errors: size_mismatch (out.size() != models().size()), unsupported (embedding
  /// router). Precondition: fitted().
  [[nodiscard]] errc predict(std::string_view prompt, std::span<double> out) const {
    query_features f;
    TANDEM_TRY(featurize(prompt, f));
    return predict(f, out);
  }

  /// Predicted quality of each model for an embedding router's feature row `x`. Errors:
  /// size_mismatch, invalid_argument (an index >= the dimension), unsupported (an n-gram
  /// router, which reads text). Precondition: fitted().
  [[nodiscard]] errc predict(const sparse_vector& x, std::span<double> out) const {
    TANDEM_ASSERT(fitted(), "router used before fit");
    if (features_ != router_features::embeddings) return errc::unsupported;
    return predict_views(x, x, out);
  }

  /// Predicted quality of each model for featurized views `f`. Errors: size_mismatch,
  /// invalid_argument (an index >= a view's dimension). Precondition: fitted().
  [[nodiscard]] errc predict(const query_features& f, std::span<double> out) const {
    TANDEM_ASSERT(fitted(), "router used before fit");
    return predict_views(f.main, f.knn, out);
  }

  /// True once fitted or loaded.
  [[nodiscard]] bool fitted() const noexcept { return !models_.empty(); }
  /// Model names, in prediction order.
  [[nodiscard]] const std::vector<std::string>& models() const noexcept { return models_; }
  /// The predictor kind.
  [[nodiscard]] router_predictor predictor() const noexcept { return predictor_; }
  /// The feature kind.
  [[nodiscard]] router_features features() const noexcept { return features_; }
  /// L2 strength chosen by cross-validation (logistic, ensemble and joint), shared by the
  /// models.
  [[nodiscard]] double chosen_l2() const noexcept { return chosen_l2_; }
  /// Weight of the logistic predictions in the ensemble (the k-NN ones get 1 - weight).
  [[nodiscard]] double blend_weight() const noexcept { return blend_; }
  /// The k-NN predictor (k, shrinkage and weight exponent chosen by leave-one-out).
  [[nodiscard]] const knn_predictor& knn() const noexcept { return knn_; }

  /// Serialises the router: magic, format version, body, FNV-1a checksum. Errors:
  /// invalid_argument (not fitted). Leaves the router unchanged.
  [[nodiscard]] result<std::vector<std::uint8_t>> serialize() const {
    if (!fitted()) return errc::invalid_argument;
    detail::route::byte_writer w;
    for (char c : detail::route::router_magic) w.u8(static_cast<std::uint8_t>(c));
    w.u32(router_format_version);
    w.u8(static_cast<std::uint8_t>(features_));
    w.u8(static_cast<std::uint8_t>(predictor_));
    w.u64(dims_);
    w.u64(models_.size());
    for (const std::string& m : models_) w.str(m);
    if (features_ == router_features::ngrams) {
      if (uses_main()) write_featurizer(w, featurizer_);
      if (uses_knn()) write_featurizer(w, knn_featurizer_);
    }
    if (uses_logistic()) {
      w.f64(chosen_l2_);
      w.f64(blend_);
      for (const logistic_regression& lr : logistic_) {
        w.vec<double>(std::span<const double>(lr.weights().data(),
                                              static_cast<std::size_t>(lr.weights().size())));
        w.f64(lr.bias());
      }
    }
    if (uses_knn()) {
      w.u64(knn_.dims());
      w.u64(knn_.options().k);
      w.f64(knn_.options().prior);
      w.f64(knn_.options().power);
      w.u64(knn_.options().max_terms);
      w.vec<std::uint64_t>(knn_.row_offsets());
      w.vec<std::uint32_t>(knn_.columns());
      w.vec<float>(knn_.values());
      w.vec<double>(knn_.stored_targets());
    }
    if (predictor_ == router_predictor::factorization) {
      w.u64(mf_.rank());
      w.vec<float>(mf_.projection());
      w.vec<float>(mf_.model_vectors());
      w.vec<float>(mf_.biases());
    }
    if (predictor_ == router_predictor::joint) {
      w.f64(chosen_l2_);
      w.u64(joint_.reference());
      w.vec<double>(std::span<const double>(joint_.weights().data(),
                                            static_cast<std::size_t>(joint_.weights().size())));
      w.vec<double>(std::span<const double>(joint_.biases().data(),
                                            static_cast<std::size_t>(joint_.biases().size())));
    }
    w.u64(detail::route::checksum(w.bytes()));
    return std::move(w.bytes());
  }

  /// Restores a router from serialize()'s bytes. Errors: corrupt_file (bad magic, a
  /// checksum mismatch, truncation, inconsistent sizes, an unknown kind, trailing bytes),
  /// unsupported_version (another format version).
  [[nodiscard]] static result<router> deserialize(std::span<const std::uint8_t> bytes) {
    constexpr std::size_t head = sizeof detail::route::router_magic + 4;
    if (bytes.size() < head + 8) return errc::corrupt_file;
    if (std::memcmp(bytes.data(), detail::route::router_magic,
                    sizeof detail::route::router_magic) != 0)
      return errc::corrupt_file;
    detail::route::byte_reader r(bytes.subspan(sizeof detail::route::router_magic));
    std::uint32_t version = 0;
    (void)r.u32(version);
    if (version != router_format_version) return errc::unsupported_version;
    const std::span<const std::uint8_t> body = bytes.first(bytes.size() - 8);
    detail::route::byte_reader tail(bytes.last(8));
    std::uint64_t sum = 0;
    (void)tail.u64(sum);
    if (detail::route::checksum(body) != sum) return errc::corrupt_file;
    r = detail::route::byte_reader(body.subspan(head));

    router out;
    std::uint8_t feat = 0, pred = 0;
    std::uint64_t dims = 0, n_models = 0;
    if (!r.u8(feat) || !r.u8(pred) || !r.u64(dims) || !r.u64(n_models)) return errc::corrupt_file;
    if (feat < 1 || feat > 2 || pred < 1 || pred > 5) return errc::corrupt_file;
    if (n_models == 0 || n_models > r.left() || dims > (std::uint64_t{1} << 32))
      return errc::corrupt_file;
    out.features_ = static_cast<router_features>(feat);
    out.predictor_ = static_cast<router_predictor>(pred);
    out.dims_ = static_cast<std::size_t>(dims);
    out.models_.resize(static_cast<std::size_t>(n_models));
    for (std::string& m : out.models_)
      if (!r.str(m)) return errc::corrupt_file;
    if (out.features_ == router_features::ngrams) {
      if (out.uses_main()) {
        TANDEM_TRY(read_featurizer(r, out.featurizer_));
        if (out.featurizer_.dims() != out.dims_) return errc::corrupt_file;
      }
      if (out.uses_knn()) TANDEM_TRY(read_featurizer(r, out.knn_featurizer_));
    }
    if (out.uses_main() && out.dims_ == 0) return errc::corrupt_file;
    if (out.uses_logistic()) {
      if (!r.f64(out.chosen_l2_) || !r.f64(out.blend_) || !(out.blend_ >= 0 && out.blend_ <= 1))
        return errc::corrupt_file;
      out.logistic_.resize(out.models_.size());
      for (logistic_regression& lr : out.logistic_) {
        std::vector<double> wv;
        double b = 0;
        if (!r.vec(wv) || !r.f64(b) || wv.size() != out.dims_) return errc::corrupt_file;
        Eigen::VectorXd w =
            Eigen::Map<const Eigen::VectorXd>(wv.data(), static_cast<Eigen::Index>(wv.size()));
        if (lr.restore(std::move(w), b) != errc::ok) return errc::corrupt_file;
      }
    }
    if (out.uses_knn()) {
      knn_options ko;
      std::uint64_t kdims = 0, k = 0, max_terms = 0;
      std::vector<std::uint64_t> off;
      std::vector<std::uint32_t> cols;
      std::vector<float> vals;
      std::vector<double> y;
      if (!r.u64(kdims) || !r.u64(k) || !r.f64(ko.prior) || !r.f64(ko.power) || !r.u64(max_terms) ||
          !r.vec(off) || !r.vec(cols) || !r.vec(vals) || !r.vec(y))
        return errc::corrupt_file;
      if (kdims == 0 || kdims > (std::uint64_t{1} << 32)) return errc::corrupt_file;
      if (out.features_ == router_features::ngrams && kdims != out.knn_featurizer_.dims())
        return errc::corrupt_file;
      ko.k = static_cast<std::size_t>(k);
      ko.max_terms = static_cast<std::size_t>(max_terms);
      if (out.knn_.restore(static_cast<std::size_t>(kdims), out.models_.size(), ko, std::move(off),
                           std::move(cols), std::move(vals), std::move(y)) != errc::ok)
        return errc::corrupt_file;
    }
    if (out.predictor_ == router_predictor::factorization) {
      std::uint64_t rank = 0;
      std::vector<float> p, u, b;
      if (!r.u64(rank) || !r.vec(p) || !r.vec(u) || !r.vec(b)) return errc::corrupt_file;
      if (out.mf_.restore(out.dims_, out.models_.size(), static_cast<std::size_t>(rank),
                          std::move(p), std::move(u), std::move(b)) != errc::ok)
        return errc::corrupt_file;
    }
    if (out.predictor_ == router_predictor::joint) {
      std::uint64_t ref = 0;
      std::vector<double> wv, bv;
      if (!r.f64(out.chosen_l2_) || !r.u64(ref) || !r.vec(wv) || !r.vec(bv))
        return errc::corrupt_file;
      if (bv.size() != out.models_.size() || ref >= bv.size()) return errc::corrupt_file;
      Eigen::VectorXd w =
          Eigen::Map<const Eigen::VectorXd>(wv.data(), static_cast<Eigen::Index>(wv.size()));
      Eigen::VectorXd b =
          Eigen::Map<const Eigen::VectorXd>(bv.data(), static_cast<Eigen::Index>(bv.size()));
      if (out.joint_.restore(out.dims_, static_cast<std::size_t>(ref), std::move(w),
                             std::move(b)) != errc::ok)
        return errc::corrupt_file;
    }
    if (r.left() != 0) return errc::corrupt_file;
    return out;
  }

  /// Writes serialize()'s bytes to `path` (overwritten). Errors: invalid_argument (not
  /// fitted), io_error (cannot open or write; a partial file may remain).
  [[nodiscard]] errc save(const char* path) const {
    auto bytes = serialize();
    if (!bytes) return bytes.error();
    std::FILE* f = std::fopen(path, "wb");
    if (f == nullptr) return errc::io_error;
    const bool ok_write = std::fwrite(bytes->data(), 1, bytes->size(), f) == bytes->size();
    const bool ok_close = std::fclose(f) == 0;
    return ok_write && ok_close ? errc::ok : errc::io_error;
  }

  /// Reads a router saved by save(). Errors: file_not_found, io_error, and those of
  /// deserialize.
  [[nodiscard]] static result<router> load(const char* path) {
    std::FILE* f = std::fopen(path, "rb");
    if (f == nullptr) return errc::file_not_found;
    std::vector<std::uint8_t> bytes;
    std::vector<std::uint8_t> buf(1 << 16);
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0)
      bytes.insert(bytes.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) return errc::io_error;
    return deserialize(bytes);
  }

 private:
  [[nodiscard]] bool uses_logistic() const noexcept {
    return predictor_ == router_predictor::logistic || predictor_ == router_predictor::ensemble;
  }
  [[nodiscard]] bool uses_knn() const noexcept {
    return predictor_ == router_predictor::knn || predictor_ == router_predictor::ensemble;
  }
  [[nodiscard]] bool uses_main() const noexcept { return predictor_ != router_predictor::knn; }

  static void write_featurizer(detail::route::byte_writer& w, const tfidf_featurizer& f) {
    const featurizer_options& g = f.options();
    w.u32(g.word_min);
    w.u32(g.word_max);
    w.u32(g.char_min);
    w.u32(g.char_max);
    w.u32(g.dims_log2);
    w.u8(g.sublinear_tf ? 1 : 0);
    w.f32(g.max_df);
    w.u8(g.binary_tf ? 1 : 0);
    w.u32(g.min_df);
    w.vec<float>(f.idf());
  }
  [[nodiscard]] static errc read_featurizer(detail::route::byte_reader& r, tfidf_featurizer& f) {
    featurizer_options g;
    std::uint8_t sub = 0, bin = 0;
    std::vector<float> idf;
    if (!r.u32(g.word_min) || !r.u32(g.word_max) || !r.u32(g.char_min) || !r.u32(g.char_max) ||
        !r.u32(g.dims_log2) || !r.u8(sub) || !r.f32(g.max_df) || !r.u8(bin) || !r.u32(g.min_df) ||
        !r.vec(idf))
      return errc::corrupt_file;
    if (sub > 1 || bin > 1) return errc::corrupt_file;
    g.sublinear_tf = sub != 0;
    g.binary_tf = bin != 0;
    if (f.restore(g, std::move(idf)) != errc::ok) return errc::corrupt_file;
    return errc::ok;
  }

  [[nodiscard]] errc predict_views(const sparse_vector& x, const sparse_vector& xk,
                                   std::span<double> out) const {
    if (out.size() != models_.size()) return errc::size_mismatch;
    if (uses_main())
      for (std::uint32_t f : x.index)
        if (f >= dims_) return errc::invalid_argument;
    switch (predictor_) {
      case router_predictor::logistic:
        for (std::size_t m = 0; m < models_.size(); ++m) out[m] = logistic_[m].predict(x);
        return errc::ok;
      case router_predictor::knn:
        return knn_.predict(xk, out);
      case router_predictor::factorization:
        return mf_.predict(x, out);
      case router_predictor::joint:
        return joint_.predict(x, out);
      case router_predictor::ensemble: {
        TANDEM_TRY(knn_.predict(xk, out));
        for (std::size_t m = 0; m < models_.size(); ++m)
          out[m] = blend_ * logistic_[m].predict(x) + (1 - blend_) * out[m];
        return errc::ok;
      }
    }
    return errc::unsupported;
  }

  [[nodiscard]] errc fit_rows(std::span<const sparse_vector> x, std::size_t dims,
                              std::span<const sparse_vector> xk, std::size_t kdims,
                              std::span<const double> quality, std::span<const std::string> models,
                              const router_options& o) {
    if (o.predictor < router_predictor::logistic || o.predictor > router_predictor::joint)
      return errc::invalid_argument;
    predictor_ = o.predictor;
    const std::size_t m = models.size();
    const std::size_t n = uses_main() ? x.size() : xk.size();
    if (uses_main() && dims == 0) return errc::invalid_argument;
    if (uses_knn() && kdims == 0) return errc::invalid_argument;
    if (quality.size() != n * m) return errc::size_mismatch;
    for (double q : quality)
      if (!(q >= 0.0 && q <= 1.0)) return errc::invalid_argument;
    if (uses_main()) TANDEM_TRY(detail::route::check_rows(x, dims));
    if (uses_knn()) TANDEM_TRY(detail::route::check_rows(xk, kdims));
    dims_ = uses_main() ? dims : 0;
    rng g(o.seed);
    std::vector<double> oof, loo;
    if (uses_logistic()) {
      double l2 = 0;
      TANDEM_TRY(
          detail::route::cv_logistic_multi(x, quality, m, dims, o.l2_grid, o.folds, g, l2, oof));
      logistic_.resize(m);
      chosen_l2_ = l2;
      std::vector<double> y(n);
      for (std::size_t j = 0; j < m; ++j) {
        for (std::size_t i = 0; i < n; ++i) y[i] = quality[i * m + j];
        logistic_options lo;
        lo.l2 = l2;
        TANDEM_TRY(logistic_[j].fit(x, y, dims, lo));
      }
    }
    if (uses_knn())
      TANDEM_TRY(fit_knn_loo(knn_, xk, quality, m, kdims, o.k_grid, o.prior_grid, o.power_grid,
                             o.knn, &loo));
    if (predictor_ == router_predictor::ensemble) {
      // One blend weight, chosen on held-out predictions of both (out-of-fold and
      // leave-one-out), never on the rows a prediction was fitted to.
      double best_err = 0;
      std::vector<double> mix(n * m);
      for (int step = 0; step <= 10; ++step) {
        const double a = step / 10.0;
        for (std::size_t i = 0; i < n * m; ++i) mix[i] = a * oof[i] + (1 - a) * loo[i];
        double e = 0;
        if (m >= 2) {
          e = -detail::route::routing_score(mix, quality, m);
        } else {
          for (std::size_t i = 0; i < n; ++i)
            e += detail::route::contrast_sq_error(mix.data() + i, quality.data() + i, 1);
        }
        if (step == 0 || e < best_err) {
          best_err = e;
          blend_ = a;
        }
      }
    }
    if (predictor_ == router_predictor::factorization)
      TANDEM_TRY(mf_.fit(x, quality, m, dims, o.factorization, g));
    if (predictor_ == router_predictor::joint) {
      if (o.reference >= m) return errc::invalid_argument;
      double l2 = 0;
      TANDEM_TRY(detail::route::cv_joint(x, quality, m, o.reference, dims, o.joint_l2_grid, o.folds,
                                         g, l2));
      chosen_l2_ = l2;
      logistic_options lo;
      lo.l2 = l2;
      TANDEM_TRY(joint_.fit(x, quality, m, o.reference, dims, lo));
    }
    models_.assign(models.begin(), models.end());
    return errc::ok;
  }

  std::vector<std::string> models_;
  router_features features_ = router_features::ngrams;
  router_predictor predictor_ = router_predictor::ensemble;
  std::size_t dims_ = 0;  // main view
  tfidf_featurizer featurizer_, knn_featurizer_;
  std::vector<logistic_regression> logistic_;
  double chosen_l2_ = 0;
  double blend_ = 0.5;
  knn_predictor knn_;
  factorization_predictor mf_;
  joint_logistic joint_;
};

}  // namespace tandem::inline v0
