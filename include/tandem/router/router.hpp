// tandem: a router that picks a model from the query alone: a featurizer (hashed TF-IDF
// n-grams or user embeddings) plus per-model quality predictors (logistic regression,
// k-NN, matrix factorisation, a blend of logistic regression and k-NN, or a joint logistic
// regression anchoring every model to a reference model), with
// regularisation chosen by cross-validation on the training rows only, and a versioned,
// checksummed save/load format. Every choice is scored by how well held-out predictions
// order queries by each pair of models' recorded gain, which is what a routing policy
// uses (see detail::route::routing_score).
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/router/featurizer.hpp"
#include "tandem/router/logistic.hpp"
#include "tandem/router/predictors.hpp"

namespace tandem::inline v0 {

/// Which features a router reads.
enum class router_features : std::uint8_t {
  ngrams = 1,      ///< hashed word and character n-grams with TF-IDF, from the text
  embeddings = 2,  ///< caller-supplied dense vectors
};

/// The on-disk format version written by router::save and router::to_bytes.
/// Version 2 added the featurizers' binary_tf and min_df and the joint predictor; version 3
/// moved to the library's common frame (magic "TNDMROUT" | version | size | payload |
/// FNV-1a of the payload) with each predictor writing its own part. Files of version 2
/// are refused with unsupported_version (the details state both versions): refit.
inline constexpr std::uint32_t router_format_version = 3;

namespace detail::route {
inline constexpr std::string_view router_magic = "TNDMROUT";
}  // namespace detail::route

/// A query's features in the views a router reads: `main` for the logistic, factorisation
/// and joint predictors, `knn` for the k-NN predictor (for embedding routers both are the
/// caller's vector).
struct query_features {
  sparse_vector main;  ///< the view of every predictor but k-NN
  sparse_vector knn;   ///< the k-NN view
};

/// Predicts each model's quality on a query and keeps what a routing policy needs. Owns
/// its featurizers and its quality predictor (one of the kinds of `quality_predictor`);
/// movable and copyable; const member functions may run concurrently from several threads.
class router {
 public:
  /// Fits on `prompts` (n texts) with recorded `quality` (n x models.size(), row-major, in
  /// [0, 1]) using hashed n-gram features (options.ngrams for the logistic and
  /// factorisation predictors, options.joint_ngrams for the joint predictor,
  /// options.knn_ngrams for k-NN). Errors: empty_input (no rows or no models),
  /// size_mismatch, invalid_argument (bad options, a reference model out of range, a
  /// quality outside [0, 1]), insufficient_data (a model whose quality is the same on every
  /// row, for the logistic, ensemble and joint predictors), plus those of the predictors.
  /// On error the router is left unfitted. `Vector` is a template parameter only so that
  /// the predictors' fits are compiled in the translation units that fit: leave it
  /// defaulted.
  template <class Vector = Eigen::VectorXd>
  [[nodiscard]] errc fit(std::span<const std::string> prompts, std::span<const double> quality,
                         std::span<const std::string> models, const router_options& o) {
    *this = router{};
    if (prompts.empty() || models.empty()) return errc::empty_input;
    if (!emplace_predictor(predictor_, o.predictor)) return errc::invalid_argument;
    std::vector<sparse_vector> x, xk;
    if (reads_main()) {
      TANDEM_TRY(featurizer_.configure(o.predictor == router_predictor::joint ? o.joint_ngrams
                                                                              : o.ngrams));
      TANDEM_TRY(featurizer_.fit(prompts));
      x.resize(prompts.size());
      for (std::size_t i = 0; i < prompts.size(); ++i) featurizer_.transform(prompts[i], x[i]);
    }
    if (reads_knn()) {
      TANDEM_TRY(knn_featurizer_.configure(o.knn_ngrams));
      TANDEM_TRY(knn_featurizer_.fit(prompts));
      xk.resize(prompts.size());
      for (std::size_t i = 0; i < prompts.size(); ++i) knn_featurizer_.transform(prompts[i], xk[i]);
    }
    const errc e = this->template fit_rows<Vector>(
        x, featurizer_.fitted() ? featurizer_.dims() : 0, xk,
        knn_featurizer_.fitted() ? knn_featurizer_.dims() : 0, quality, models, o);
    if (e != errc::ok)
      *this = router{};
    else
      features_ = router_features::ngrams;
    return e;
  }

  /// Fits on caller-supplied feature rows (e.g. from embedding_features) of dimension
  /// `dims`, read by every predictor. Errors: as fit, plus invalid_argument (an index >=
  /// dims). On error the router is left unfitted. `Vector`: as in fit.
  template <class Vector = Eigen::VectorXd>
  [[nodiscard]] errc fit_features(std::span<const sparse_vector> x, std::size_t dims,
                                  std::span<const double> quality,
                                  std::span<const std::string> models, const router_options& o) {
    *this = router{};
    if (x.empty() || models.empty()) return errc::empty_input;
    if (!emplace_predictor(predictor_, o.predictor)) return errc::invalid_argument;
    const errc e = this->template fit_rows<Vector>(x, dims, x, dims, quality, models, o);
    if (e != errc::ok)
      *this = router{};
    else
      features_ = router_features::embeddings;
    return e;
  }

  /// Features of `prompt` in `out` (each view this router reads). Errors: unsupported (an
  /// embedding router: the caller supplies features). Precondition: fitted().
  template <int = 0>
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
  template <int = 0>
  [[nodiscard]] errc predict(std::string_view prompt, std::span<double> out) const {
    query_features f;
    TANDEM_TRY(featurize(prompt, f));
    return predict(f, out);
  }

  /// Predicted quality of each model for an embedding router's feature row `x`. Errors:
  /// size_mismatch, invalid_argument (an index >= the dimension), unsupported (an n-gram
  /// router, which reads text). Precondition: fitted().
  template <int = 0>
  [[nodiscard]] errc predict(const sparse_vector& x, std::span<double> out) const {
    TANDEM_ASSERT(fitted(), "router used before fit");
    if (features_ != router_features::embeddings) return errc::unsupported;
    return predict_views(x, x, out);
  }

  /// Predicted quality of each model for featurized views `f`. Errors: size_mismatch,
  /// invalid_argument (an index >= a view's dimension). Precondition: fitted().
  template <int = 0>
  [[nodiscard]] errc predict(const query_features& f, std::span<double> out) const {
    TANDEM_ASSERT(fitted(), "router used before fit");
    return predict_views(f.main, f.knn, out);
  }

  /// True once fitted or loaded.
  [[nodiscard]] bool fitted() const noexcept { return !models_.empty(); }
  /// Model names, in prediction order.
  [[nodiscard]] const std::vector<std::string>& models() const noexcept { return models_; }
  /// The predictor kind.
  [[nodiscard]] router_predictor predictor() const noexcept {
    return std::visit([](const auto& p) { return p.kind; }, predictor_);
  }
  /// The feature kind.
  [[nodiscard]] router_features features() const noexcept { return features_; }
  /// The quality predictor itself (one alternative of the variant per kind).
  [[nodiscard]] const quality_predictor& quality_model() const noexcept { return predictor_; }
  /// L2 strength chosen by cross-validation (logistic, ensemble and joint; 0 for the
  /// others), shared by the models.
  [[nodiscard]] double chosen_l2() const noexcept {
    return std::visit(
        [](const auto& p) -> double {
          if constexpr (requires { p.chosen_l2(); })
            return p.chosen_l2();
          else
            return 0.0;
        },
        predictor_);
  }
  /// Weight of the logistic predictions in the ensemble (the k-NN ones get 1 - weight);
  /// 0.5 for the other predictors.
  [[nodiscard]] double blend_weight() const noexcept {
    const auto* e = std::get_if<ensemble_quality_predictor>(&predictor_);
    return e != nullptr ? e->blend_weight() : 0.5;
  }
  /// The k-NN predictor (k, shrinkage and weight exponent chosen by leave-one-out) of a
  /// k-NN or ensemble router; null for the others.
  [[nodiscard]] const knn_predictor* knn() const noexcept {
    if (const auto* k = std::get_if<knn_quality_predictor>(&predictor_)) return &k->model();
    if (const auto* e = std::get_if<ensemble_quality_predictor>(&predictor_))
      return &e->knn().model();
    return nullptr;
  }

  /// The router as bytes (router_format_version in the common frame, magic "TNDMROUT"):
  /// feature kind, predictor kind, main dimension, model names, the featurizers the
  /// predictor reads, then the predictor's own part. Errors: invalid_argument (not
  /// fitted). Leaves the router unchanged.
  template <int = 0>
  [[nodiscard]] result<std::vector<std::byte>> to_bytes() const {
    if (!fitted()) return errc::invalid_argument;
    detail::byte_writer w;
    w.u8(static_cast<std::uint8_t>(features_));
    w.u8(static_cast<std::uint8_t>(predictor()));
    w.u64(dims_);
    w.u64(models_.size());
    for (const std::string& m : models_) w.str(m);
    if (features_ == router_features::ngrams) {
      if (reads_main()) featurizer_.write(w);
      if (reads_knn()) knn_featurizer_.write(w);
    }
    std::visit([&](const auto& p) { p.write(w); }, predictor_);
    return detail::frame(detail::route::router_magic, router_format_version, w.bytes());
  }

  /// Restores a router from to_bytes()'s bytes. Errors: corrupt_file (not a router file,
  /// a checksum or size mismatch, truncation, inconsistent sizes, an unknown kind, trailing
  /// bytes), unsupported_version (another format version, e.g. 2: the details state the
  /// file's version and router_format_version). `info`, when not null, receives the
  /// details.
  template <int = 0>
  [[nodiscard]] static result<router> from_bytes(std::span<const std::byte> bytes,
                                                 error_info* info = nullptr) {
    auto payload =
        detail::unframe(bytes, detail::route::router_magic, router_format_version, "router", info);
    if (!payload) return payload.error();
    detail::byte_reader r(*payload);
    router out;
    std::uint8_t feat = 0, pred = 0;
    std::uint64_t dims = 0, n_models = 0;
    if (!r.u8(feat) || !r.u8(pred) || !r.u64(dims) || !r.u64(n_models))
      return detail::route::corrupt(info, "header truncated");
    if (feat < 1 || feat > 2) return detail::route::corrupt(info, "unknown feature kind");
    if (!emplace_predictor(out.predictor_, static_cast<router_predictor>(pred)))
      return detail::route::corrupt(info, "unknown predictor kind");
    if (n_models == 0 || n_models > r.left() || dims > (std::uint64_t{1} << 32))
      return detail::route::corrupt(info, "model count or dimension out of range");
    out.features_ = static_cast<router_features>(feat);
    out.dims_ = static_cast<std::size_t>(dims);
    out.models_.resize(static_cast<std::size_t>(n_models));
    for (std::string& m : out.models_)
      if (!r.str(m)) return detail::route::corrupt(info, "model names truncated");
    predictor_shape shape{out.models_.size(), out.dims_, 0};
    if (out.features_ == router_features::ngrams) {
      if (out.reads_main()) {
        TANDEM_TRY(out.featurizer_.read(r, info));
        if (out.featurizer_.dims() != out.dims_)
          return detail::route::corrupt(info, "featurizer dimension does not match");
      }
      if (out.reads_knn()) {
        TANDEM_TRY(out.knn_featurizer_.read(r, info));
        shape.knn_dims = out.knn_featurizer_.dims();
      }
    }
    if (out.reads_main() && out.dims_ == 0) return detail::route::corrupt(info, "main dimension 0");
    TANDEM_TRY(std::visit([&](auto& p) { return p.read(r, shape, info); }, out.predictor_));
    if (!r.at_end()) return detail::route::corrupt(info, "trailing bytes");
    return out;
  }

  /// Writes to_bytes()'s bytes to `path`, replacing the file as a whole (a failure leaves
  /// an earlier file intact). Errors: invalid_argument (not fitted), io_error (the details
  /// name the path).
  template <int = 0>
  [[nodiscard]] errc save(std::string_view path, error_info* info = nullptr) const {
    auto bytes = to_bytes();
    if (!bytes) return detail::fail(info, bytes.error(), "router not fitted");
    return detail::write_file(path, *bytes, info);
  }

  /// Reads a router saved by save(). Errors: file_not_found, io_error, invalid_argument (a
  /// directory), and those of from_bytes; `info`, when not null, receives the details.
  template <int = 0>
  [[nodiscard]] static result<router> load(std::string_view path, error_info* info = nullptr) {
    auto bytes = detail::read_file(path, info);
    if (!bytes) return bytes.error();
    return from_bytes(*bytes, info);
  }

 private:
  [[nodiscard]] bool reads_main() const noexcept {
    return std::visit([](const auto& p) { return p.reads_main; }, predictor_);
  }
  [[nodiscard]] bool reads_knn() const noexcept {
    return std::visit([](const auto& p) { return p.reads_knn; }, predictor_);
  }

  template <int = 0>
  [[nodiscard]] errc predict_views(const sparse_vector& x, const sparse_vector& xk,
                                   std::span<double> out) const {
    if (out.size() != models_.size()) return errc::size_mismatch;
    if (reads_main())
      for (std::uint32_t f : x.index)
        if (f >= dims_) return errc::invalid_argument;
    return std::visit([&](const auto& p) { return p.predict(x, xk, out); }, predictor_);
  }

  // Checks the rows for the chosen predictor (already emplaced) and fits it; a template
  // for the reason fit is.
  template <class Vector = Eigen::VectorXd>
  [[nodiscard]] errc fit_rows(std::span<const sparse_vector> x, std::size_t dims,
                              std::span<const sparse_vector> xk, std::size_t kdims,
                              std::span<const double> quality, std::span<const std::string> models,
                              const router_options& o) {
    const std::size_t m = models.size();
    const std::size_t n = reads_main() ? x.size() : xk.size();
    if (reads_main() && dims == 0) return errc::invalid_argument;
    if (reads_knn() && kdims == 0) return errc::invalid_argument;
    if (quality.size() != n * m) return errc::size_mismatch;
    for (double q : quality)
      if (!(q >= 0.0 && q <= 1.0)) return errc::invalid_argument;
    if (reads_main()) TANDEM_TRY(detail::route::check_rows(x, dims));
    if (reads_knn()) TANDEM_TRY(detail::route::check_rows(xk, kdims));
    dims_ = reads_main() ? dims : 0;
    rng g(o.seed);
    const router_rows rows{x, dims, xk, kdims, quality, m};
    TANDEM_TRY(std::visit([&](auto& p) { return p.fit(rows, o, g); }, predictor_));
    models_.assign(models.begin(), models.end());
    return errc::ok;
  }

  std::vector<std::string> models_;
  router_features features_ = router_features::ngrams;
  std::size_t dims_ = 0;  // main view
  tfidf_featurizer featurizer_, knn_featurizer_;
  quality_predictor predictor_;
};

}  // namespace tandem::inline v0
