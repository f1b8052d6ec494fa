// tandem: the router's per-model quality predictors, one type each, behind one small
// interface (the QualityPredictor concept): fit on training rows (hyper-parameters chosen
// on those rows only), predict every model's quality for a query, and write / read their
// own part of a router file. A router holds one of them in a `quality_predictor` variant.
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <Eigen/Core>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/router/factorization.hpp"
#include "tandem/router/featurizer.hpp"
#include "tandem/router/joint_logistic.hpp"
#include "tandem/router/knn.hpp"
#include "tandem/router/logistic.hpp"

namespace tandem::inline v0 {

/// Which per-model quality predictor a router uses (also its tag in a router file).
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

/// Settings of router::fit.
struct router_options {
  /// Which quality predictor fit() trains.
  router_predictor predictor = router_predictor::ensemble;
  featurizer_options ngrams{};                                ///< for router_features::ngrams
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

/// The training rows a predictor fits on, as views the caller owns for the duration of
/// fit(): the main view (every predictor but k-NN reads it), the k-NN view, and the
/// quality table (rows x models, row-major, values in [0, 1]). The router has checked them
/// (sizes, indices below the dimensions, finite values) before a predictor sees them.
struct router_rows {
  std::span<const sparse_vector> main;  ///< main view, one row per query
  std::size_t dims = 0;                 ///< dimension of the main view
  std::span<const sparse_vector> knn;   ///< k-NN view, one row per query
  std::size_t knn_dims = 0;             ///< dimension of the k-NN view
  std::span<const double> quality;      ///< rows x models
  std::size_t models = 0;               ///< number of models

  /// Number of queries.
  [[nodiscard]] std::size_t rows() const noexcept {
    return models == 0 ? 0 : quality.size() / models;
  }
};

/// What a predictor's part of a router file is read against: the router's models and the
/// dimensions of its views (0 for a view whose dimension the predictor's part states, as
/// the k-NN view of an embedding router).
struct predictor_shape {
  std::size_t models = 0;    ///< number of models
  std::size_t dims = 0;      ///< dimension of the main view
  std::size_t knn_dims = 0;  ///< dimension of the k-NN view; 0: any
};

/// The interface of a router's quality predictor. `P::kind` is its tag; `reads_main` and
/// `reads_knn` say which feature views it reads (and so which featurizers the router fits
/// and saves); fit() trains on checked rows with the router's options and generator;
/// predict() writes one quality per model for a query's views; write() appends the
/// predictor's part of a router file and read() restores it.
template <class P>
concept QualityPredictor = std::default_initializable<P> && std::copyable<P> &&
    requires(P p, const P cp, const router_rows& rows, const router_options& o, rng& g,
             const sparse_vector& v, std::span<double> out, detail::byte_writer& w,
             detail::byte_reader& r, const predictor_shape& s, error_info* info) {
  { P::kind } -> std::convertible_to<router_predictor>;
  { P::reads_main } -> std::convertible_to<bool>;
  { P::reads_knn } -> std::convertible_to<bool>;
  { p.fit(rows, o, g) } -> std::same_as<errc>;
  { cp.predict(v, v, out) } -> std::same_as<errc>;
  cp.write(w);
  { p.read(r, s, info) } -> std::same_as<errc>;
};

namespace detail::route {

// k-fold cross-validation of an L2 strength over `grid`, visited from the strongest
// penalty down so that each fold can warm-start along the path. fit_fold(train, val, order,
// pred) fits the fold's training rows at every strength order[k] and writes its predictions
// for the validation rows into pred[k] (n x m). The strength with the best routing_score
// (or, for one model, the least squared contrast error) wins; `oof`, when not null,
// receives its out-of-fold predictions. Folds come from random_folds(n, folds, g).
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

// Writes `v` as an array of doubles.
template <int = 0>
inline void write_vector(detail::byte_writer& w, const Eigen::VectorXd& v) {
  w.array(std::span<const double>(v.data(), static_cast<std::size_t>(v.size())));
}

// Reads an array of doubles into `v`.
template <int = 0>
[[nodiscard]] inline bool read_vector(detail::byte_reader& r, Eigen::VectorXd& v) {
  std::vector<double> d;
  if (!r.array(d)) return false;
  v = Eigen::Map<const Eigen::VectorXd>(d.data(), static_cast<Eigen::Index>(d.size()));
  return true;
}

// The corrupt_file error of a predictor's part of a router file.
[[nodiscard]] inline errc corrupt(error_info* info, const char* what) {
  return detail::fail(info, errc::corrupt_file, "router file: %s", what);
}

}  // namespace detail::route

/// One L2 logistic regression per model over the main view; one L2 strength for all,
/// chosen from `l2_grid` by `folds`-fold cross-validation of the routing score.
class logistic_quality_predictor {
 public:
  static constexpr router_predictor kind = router_predictor::logistic;  ///< file tag
  static constexpr bool reads_main = true;                              ///< main view
  static constexpr bool reads_knn = false;                              ///< k-NN view

  /// Fits on `rows` (main view) with `o.l2_grid` and `o.folds`, folds drawn from `g`;
  /// `oof`, when not null, receives the out-of-fold predictions (rows x models) under the
  /// chosen strength. Errors: invalid_argument (an empty grid, a negative or non-finite
  /// strength, folds < 2 or above the rows), insufficient_data (a model with one quality on
  /// every row). On error the predictor is left in an unspecified, unfitted-or-partial state
  /// (the router discards it). `Vector` is a template parameter only so that the fits are
  /// compiled in the translation units that fit: leave it defaulted.
  template <class Vector = Eigen::VectorXd>
  [[nodiscard]] errc fit(const router_rows& rows, const router_options& o, rng& g,
                         std::vector<double>* oof = nullptr) {
    const std::size_t n = rows.rows(), m = rows.models;
    std::vector<double> yj(n);
    const auto fit_fold = [&](std::span<const std::uint32_t> train,
                              std::span<const std::uint32_t> val, std::span<const double> order,
                              std::vector<std::vector<double>>& pred) -> errc {
      for (std::size_t j = 0; j < m; ++j) {
        double mean = 0;
        for (std::size_t i = 0; i < n; ++i) yj[i] = rows.quality[i * m + j];
        for (std::uint32_t i : train) mean += yj[i];
        mean /= static_cast<double>(train.size());
        logistic_regression lr;
        for (std::size_t k = 0; k < order.size(); ++k) {
          logistic_options lo;
          lo.l2 = order[k];
          const errc e = lr.template fit<Vector>(rows.main, yj, rows.dims, lo, k > 0, train);
          if (e == errc::insufficient_data) {  // one-class fold: the mean is all it knows
            for (std::uint32_t i : val) pred[k][i * m + j] = mean;
            continue;
          }
          TANDEM_TRY(e);
          for (std::uint32_t i : val) pred[k][i * m + j] = lr.predict(rows.main[i]);
        }
      }
      return errc::ok;
    };
    std::vector<double> held_out;
    TANDEM_TRY(detail::route::cv_l2_path(n, rows.quality, m, o.l2_grid, o.folds, g, fit_fold, l2_,
                                         &held_out));
    models_.assign(m, logistic_regression{});
    for (std::size_t j = 0; j < m; ++j) {
      for (std::size_t i = 0; i < n; ++i) yj[i] = rows.quality[i * m + j];
      logistic_options lo;
      lo.l2 = l2_;
      TANDEM_TRY(models_[j].template fit<Vector>(rows.main, yj, rows.dims, lo));
    }
    if (oof != nullptr) *oof = std::move(held_out);
    return errc::ok;
  }

  /// Writes each model's predicted quality for `main` to `out` (one per model; the router
  /// checked the sizes and indices). The k-NN view is not read.
  template <int = 0>
  [[nodiscard]] errc predict(const sparse_vector& main, const sparse_vector& /*knn*/,
                             std::span<double> out) const {
    for (std::size_t m = 0; m < models_.size(); ++m) out[m] = models_[m].predict(main);
    return errc::ok;
  }

  /// Appends the chosen strength and each model's weights and bias.
  template <int = 0>
  void write(detail::byte_writer& w) const {
    w.f64(l2_);
    for (const logistic_regression& lr : models_) {
      detail::route::write_vector(w, lr.weights());
      w.f64(lr.bias());
    }
  }

  /// Reads what write() wrote for `s.models` models over `s.dims` features. Errors:
  /// corrupt_file (truncation, weights of another length, non-finite values).
  template <int = 0>
  [[nodiscard]] errc read(detail::byte_reader& r, const predictor_shape& s, error_info* info) {
    if (!r.f64(l2_)) return detail::route::corrupt(info, "logistic predictor truncated");
    models_.assign(s.models, logistic_regression{});
    for (logistic_regression& lr : models_) {
      Eigen::VectorXd w;
      double b = 0;
      if (!detail::route::read_vector(r, w) || !r.f64(b))
        return detail::route::corrupt(info, "logistic predictor truncated");
      if (static_cast<std::size_t>(w.size()) != s.dims || lr.restore(std::move(w), b) != errc::ok)
        return detail::route::corrupt(info, "logistic weights of a wrong size or value");
    }
    return errc::ok;
  }

  /// The L2 strength chosen by cross-validation.
  [[nodiscard]] double chosen_l2() const noexcept { return l2_; }
  /// The per-model regressions, in model order.
  [[nodiscard]] std::span<const logistic_regression> models() const noexcept { return models_; }

 private:
  std::vector<logistic_regression> models_;
  double l2_ = 0;
};

/// k nearest neighbours over the k-NN view; k, shrinkage and weight exponent chosen from
/// the grids by leave-one-out (fit_knn_loo).
class knn_quality_predictor {
 public:
  static constexpr router_predictor kind = router_predictor::knn;  ///< file tag
  static constexpr bool reads_main = false;                        ///< main view
  static constexpr bool reads_knn = true;                          ///< k-NN view

  /// Fits on `rows` (k-NN view) with `o.k_grid`, `o.prior_grid`, `o.power_grid` and
  /// `o.knn`; `loo`, when not null, receives the leave-one-out predictions under the chosen
  /// setting. `g` is not used. Errors: those of fit_knn_loo.
  template <int = 0>
  [[nodiscard]] errc fit(const router_rows& rows, const router_options& o, rng& /*g*/,
                         std::vector<double>* loo = nullptr) {
    return fit_knn_loo(knn_, rows.knn, rows.quality, rows.models, rows.knn_dims, o.k_grid,
                       o.prior_grid, o.power_grid, o.knn, loo);
  }

  /// Writes each model's predicted quality for `knn` to `out`. Errors: those of
  /// knn_predictor::predict.
  template <int = 0>
  [[nodiscard]] errc predict(const sparse_vector& /*main*/, const sparse_vector& knn,
                             std::span<double> out) const {
    return knn_.predict(knn, out);
  }

  /// Appends the dimension, the tuned settings, the stored rows (CSR) and their targets.
  template <int = 0>
  void write(detail::byte_writer& w) const {
    w.u64(knn_.dims());
    w.u64(knn_.options().k);
    w.f64(knn_.options().prior);
    w.f64(knn_.options().power);
    w.u64(knn_.options().max_terms);
    w.array(knn_.row_offsets());
    w.array(knn_.columns());
    w.array(knn_.values());
    w.array(knn_.stored_targets());
  }

  /// Reads what write() wrote. Errors: corrupt_file (truncation, a dimension of 0, above
  /// 2^32 or other than `s.knn_dims` when that is set, rows or targets knn_predictor::restore
  /// refuses).
  template <int = 0>
  [[nodiscard]] errc read(detail::byte_reader& r, const predictor_shape& s, error_info* info) {
    knn_options ko;
    std::uint64_t dims = 0, k = 0, max_terms = 0;
    std::vector<std::uint64_t> off;
    std::vector<std::uint32_t> cols;
    std::vector<float> vals;
    std::vector<double> y;
    if (!r.u64(dims) || !r.u64(k) || !r.f64(ko.prior) || !r.f64(ko.power) || !r.u64(max_terms) ||
        !r.array(off) || !r.array(cols) || !r.array(vals) || !r.array(y))
      return detail::route::corrupt(info, "k-NN predictor truncated");
    if (dims == 0 || dims > (std::uint64_t{1} << 32) || (s.knn_dims != 0 && dims != s.knn_dims))
      return detail::route::corrupt(info, "k-NN dimension does not match its featurizer");
    ko.k = static_cast<std::size_t>(k);
    ko.max_terms = static_cast<std::size_t>(max_terms);
    if (knn_.restore(static_cast<std::size_t>(dims), s.models, ko, std::move(off), std::move(cols),
                     std::move(vals), std::move(y)) != errc::ok)
      return detail::route::corrupt(info, "k-NN rows, targets or settings invalid");
    return errc::ok;
  }

  /// The fitted k-NN predictor.
  [[nodiscard]] const knn_predictor& model() const noexcept { return knn_; }

 private:
  knn_predictor knn_;
};

/// Low-rank model x query factorisation over the main view (factorization_predictor).
class factorization_quality_predictor {
 public:
  static constexpr router_predictor kind = router_predictor::factorization;  ///< file tag
  static constexpr bool reads_main = true;                                   ///< main view
  static constexpr bool reads_knn = false;                                   ///< k-NN view

  /// Fits on `rows` (main view) with `o.factorization`, initialised and shuffled from `g`.
  /// Errors: those of factorization_predictor::fit.
  template <int = 0>
  [[nodiscard]] errc fit(const router_rows& rows, const router_options& o, rng& g) {
    return mf_.fit(rows.main, rows.quality, rows.models, rows.dims, o.factorization, g);
  }

  /// Writes each model's predicted quality for `main` to `out`. Errors: those of
  /// factorization_predictor::predict.
  template <int = 0>
  [[nodiscard]] errc predict(const sparse_vector& main, const sparse_vector& /*knn*/,
                             std::span<double> out) const {
    return mf_.predict(main, out);
  }

  /// Appends the rank, the projection, the model vectors and the biases.
  template <int = 0>
  void write(detail::byte_writer& w) const {
    w.u64(mf_.rank());
    w.array(mf_.projection());
    w.array(mf_.model_vectors());
    w.array(mf_.biases());
  }

  /// Reads what write() wrote. Errors: corrupt_file (truncation, parameters that do not
  /// match `s.dims` x rank and `s.models`, non-finite values).
  template <int = 0>
  [[nodiscard]] errc read(detail::byte_reader& r, const predictor_shape& s, error_info* info) {
    std::uint64_t rank = 0;
    std::vector<float> p, u, b;
    if (!r.u64(rank) || !r.array(p) || !r.array(u) || !r.array(b))
      return detail::route::corrupt(info, "factorisation predictor truncated");
    if (mf_.restore(s.dims, s.models, static_cast<std::size_t>(rank), std::move(p), std::move(u),
                    std::move(b)) != errc::ok)
      return detail::route::corrupt(info, "factorisation parameters of a wrong size or value");
    return errc::ok;
  }

  /// The fitted factorisation.
  [[nodiscard]] const factorization_predictor& model() const noexcept { return mf_; }

 private:
  factorization_predictor mf_;
};

/// Logistic and k-NN predictions blended: weight a on the logistic ones, 1 - a on the k-NN
/// ones, a in {0, 0.1, ..., 1} chosen on held-out predictions of both (out-of-fold and
/// leave-one-out), never on the rows a prediction was fitted to.
class ensemble_quality_predictor {
 public:
  static constexpr router_predictor kind = router_predictor::ensemble;  ///< file tag
  static constexpr bool reads_main = true;                              ///< main view
  static constexpr bool reads_knn = true;                               ///< k-NN view

  /// Fits both parts (as their own predictors do, logistic first from `g`), then the blend
  /// weight. Errors: those of both parts. `Vector`: as in logistic_quality_predictor::fit.
  template <class Vector = Eigen::VectorXd>
  [[nodiscard]] errc fit(const router_rows& rows, const router_options& o, rng& g) {
    std::vector<double> oof, loo;
    TANDEM_TRY(logistic_.template fit<Vector>(rows, o, g, &oof));
    TANDEM_TRY(knn_.fit(rows, o, g, &loo));
    const std::size_t n = rows.rows(), m = rows.models;
    double best_err = 0;
    std::vector<double> mix(n * m);
    for (int step = 0; step <= 10; ++step) {
      const double a = step / 10.0;
      for (std::size_t i = 0; i < n * m; ++i) mix[i] = a * oof[i] + (1 - a) * loo[i];
      double e = 0;
      if (m >= 2) {
        e = -detail::route::routing_score(mix, rows.quality, m);
      } else {
        for (std::size_t i = 0; i < n; ++i)
          e += detail::route::contrast_sq_error(mix.data() + i, rows.quality.data() + i, 1);
      }
      if (step == 0 || e < best_err) {
        best_err = e;
        blend_ = a;
      }
    }
    return errc::ok;
  }

  /// Writes the blended prediction of each model to `out`. Errors: those of the k-NN part.
  template <int = 0>
  [[nodiscard]] errc predict(const sparse_vector& main, const sparse_vector& knn,
                             std::span<double> out) const {
    TANDEM_TRY(knn_.predict(main, knn, out));
    const auto lr = logistic_.models();
    for (std::size_t m = 0; m < lr.size(); ++m)
      out[m] = blend_ * lr[m].predict(main) + (1 - blend_) * out[m];
    return errc::ok;
  }

  /// Appends the blend weight, then the logistic part, then the k-NN part.
  template <int = 0>
  void write(detail::byte_writer& w) const {
    w.f64(blend_);
    logistic_.write(w);
    knn_.write(w);
  }

  /// Reads what write() wrote. Errors: corrupt_file (a weight outside [0, 1], and those of
  /// both parts).
  template <int = 0>
  [[nodiscard]] errc read(detail::byte_reader& r, const predictor_shape& s, error_info* info) {
    if (!r.f64(blend_) || !(blend_ >= 0 && blend_ <= 1))
      return detail::route::corrupt(info, "ensemble blend weight truncated or outside [0, 1]");
    TANDEM_TRY(logistic_.read(r, s, info));
    return knn_.read(r, s, info);
  }

  /// The weight of the logistic predictions (the k-NN ones get 1 - weight).
  [[nodiscard]] double blend_weight() const noexcept { return blend_; }
  /// The L2 strength of the logistic part.
  [[nodiscard]] double chosen_l2() const noexcept { return logistic_.chosen_l2(); }
  /// The logistic part.
  [[nodiscard]] const logistic_quality_predictor& logistic() const noexcept { return logistic_; }
  /// The k-NN part.
  [[nodiscard]] const knn_quality_predictor& knn() const noexcept { return knn_; }

 private:
  logistic_quality_predictor logistic_;
  knn_quality_predictor knn_;
  double blend_ = 0.5;
};

/// One joint logistic regression over all models anchored to `o.reference`
/// (joint_logistic), its L2 strength chosen from `o.joint_l2_grid` by cross-validation.
class joint_quality_predictor {
 public:
  static constexpr router_predictor kind = router_predictor::joint;  ///< file tag
  static constexpr bool reads_main = true;                           ///< main view
  static constexpr bool reads_knn = false;                           ///< k-NN view

  /// Fits on `rows` (main view); the folds come from `g`, each fold's path warm-started.
  /// Errors: invalid_argument (a reference model out of range, and those of the
  /// cross-validation), those of joint_logistic::fit. `Vector`: as in
  /// logistic_quality_predictor::fit.
  template <class Vector = Eigen::VectorXd>
  [[nodiscard]] errc fit(const router_rows& rows, const router_options& o, rng& g) {
    const std::size_t m = rows.models;
    if (o.reference >= m) return errc::invalid_argument;
    const std::span<const sparse_vector> x = rows.main;
    const std::span<const double> y = rows.quality;
    const auto fit_fold = [&](std::span<const std::uint32_t> train,
                              std::span<const std::uint32_t> val, std::span<const double> order,
                              std::vector<std::vector<double>>& pred) -> errc {
      joint_logistic jl;
      for (std::size_t k = 0; k < order.size(); ++k) {
        logistic_options lo;
        lo.l2 = order[k];
        const errc e = jl.template fit<Vector>(x, y, m, o.reference, rows.dims, lo, k > 0, train);
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
    TANDEM_TRY(detail::route::cv_l2_path(rows.rows(), y, m, o.joint_l2_grid, o.folds, g, fit_fold,
                                         l2_, nullptr));
    logistic_options lo;
    lo.l2 = l2_;
    return joint_.template fit<Vector>(x, y, m, o.reference, rows.dims, lo);
  }

  /// Writes each model's predicted quality for `main` to `out`. Errors: those of
  /// joint_logistic::predict.
  template <int = 0>
  [[nodiscard]] errc predict(const sparse_vector& main, const sparse_vector& /*knn*/,
                             std::span<double> out) const {
    return joint_.predict(main, out);
  }

  /// Appends the chosen strength, the reference model, the weights and the biases.
  template <int = 0>
  void write(detail::byte_writer& w) const {
    w.f64(l2_);
    w.u64(joint_.reference());
    detail::route::write_vector(w, joint_.weights());
    detail::route::write_vector(w, joint_.biases());
  }

  /// Reads what write() wrote. Errors: corrupt_file (truncation, a bias per model other
  /// than `s.models`, a reference out of range, weights not `s.dims` x models long,
  /// non-finite values).
  template <int = 0>
  [[nodiscard]] errc read(detail::byte_reader& r, const predictor_shape& s, error_info* info) {
    std::uint64_t ref = 0;
    Eigen::VectorXd w, b;
    if (!r.f64(l2_) || !r.u64(ref) || !detail::route::read_vector(r, w) ||
        !detail::route::read_vector(r, b))
      return detail::route::corrupt(info, "joint predictor truncated");
    if (static_cast<std::size_t>(b.size()) != s.models || ref >= s.models ||
        joint_.restore(s.dims, static_cast<std::size_t>(ref), std::move(w), std::move(b)) !=
            errc::ok)
      return detail::route::corrupt(info, "joint predictor of a wrong shape or value");
    return errc::ok;
  }

  /// The L2 strength chosen by cross-validation.
  [[nodiscard]] double chosen_l2() const noexcept { return l2_; }
  /// The fitted joint regression.
  [[nodiscard]] const joint_logistic& model() const noexcept { return joint_; }

 private:
  joint_logistic joint_;
  double l2_ = 0;
};

/// The quality predictor a router holds: one of the five kinds (the first is the one an
/// unfitted router reports).
using quality_predictor =
    std::variant<ensemble_quality_predictor, logistic_quality_predictor, knn_quality_predictor,
                 factorization_quality_predictor, joint_quality_predictor>;

static_assert(QualityPredictor<logistic_quality_predictor>);
static_assert(QualityPredictor<knn_quality_predictor>);
static_assert(QualityPredictor<factorization_quality_predictor>);
static_assert(QualityPredictor<ensemble_quality_predictor>);
static_assert(QualityPredictor<joint_quality_predictor>);

/// Makes `p` the predictor of kind `kind` (default-constructed). Returns false, leaving
/// `p` unchanged, for a value that names no predictor.
template <std::size_t I = 0>
[[nodiscard]] bool emplace_predictor(quality_predictor& p, router_predictor kind) {
  if constexpr (I < std::variant_size_v<quality_predictor>) {
    if (std::variant_alternative_t<I, quality_predictor>::kind == kind) {
      p.template emplace<I>();
      return true;
    }
    return emplace_predictor<I + 1>(p, kind);
  } else {
    return false;
  }
}

}  // namespace tandem::inline v0
