// tandem: consistency estimators over k sampled answers to one question (black-box; a
// Generator sampled k times): majority-vote share through a pluggable answer extractor,
// lexical similarity (ROUGE-L, Jaccard), and graph measures over the pairwise similarity
// matrix (number of semantic sets, degree, eccentricity, eigenvalues of the graph
// Laplacian; Lin, Trivedi & Sun 2023), computed with Eigen.
// Functions declared `template <int = 0>` are templates only so that their bodies are
// compiled in the translation units that call them (compile cost, issue 20); call them
// as usual, without template arguments.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>  // SelfAdjointEigenSolver, for the graph Laplacian

#include "tandem/confidence/detail/text.hpp"
#include "tandem/core/completion.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// An answer extractor maps an answer's full text to the canonical answer compared
/// across samples, returning an empty string when the text holds no answer.
template <class F>
concept AnswerExtractor = std::is_invocable_r_v<std::string, F&, std::string_view>;

/// Default normaliser: lower-cases ASCII, collapses whitespace runs to one space, trims,
/// and drops trailing sentence punctuation (. ! ? , ; :).
[[nodiscard]] inline std::string normalize_answer(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(detail::conf::lower_ascii(c));
  }
  while (!out.empty() && std::string_view(".!?,;:").find(out.back()) != std::string_view::npos)
    out.pop_back();
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

/// Numeric answer extractor (GSM8K style): the number after the last "####" if there is
/// one, else the last number in the text. Thousands separators are dropped and a
/// trailing ".0..." removed ("1,000.00" -> "1000"); a leading '-' is kept. Returns an
/// empty string when the text has no number.
[[nodiscard]] inline std::string extract_last_number(std::string_view text) {
  const auto mark = text.rfind("####");
  std::string_view scope = mark == std::string_view::npos ? text : text.substr(mark + 4);
  std::string best;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  for (std::size_t i = 0; i < scope.size();) {
    if (!digit(scope[i])) {
      ++i;
      continue;
    }
    std::string num;
    if (i > 0 && scope[i - 1] == '-') num.push_back('-');
    while (i < scope.size()) {
      if (digit(scope[i])) {
        num.push_back(scope[i++]);
      } else if ((scope[i] == ',' || scope[i] == '.') && i + 1 < scope.size() &&
                 digit(scope[i + 1])) {
        if (scope[i] == '.') num.push_back('.');
        ++i;
      } else {
        break;
      }
    }
    if (const auto dot = num.find('.'); dot != std::string::npos) {
      while (num.back() == '0') num.pop_back();
      if (num.back() == '.') num.pop_back();
    }
    best = std::move(num);
    if (mark != std::string_view::npos) break;  // the first number after "####"
  }
  return best;
}

/// Samples `k` answers to one request from `generator` into `out` (cleared first; the
/// texts are moved out of the completions). Sample i uses seed `request.sampling.seed + i`,
/// so the set is reproducible. Errors: `invalid_argument` (k == 0),
/// `invalid_temperature` (temperature <= 0 or NaN: greedy decoding would repeat one
/// answer k times), or the first error `generate` returns (then `out` holds the answers
/// sampled before it). Over a multi-sequence model, `sample_answers(model, tokenizer,
/// prompt, ...)` in batch/sample_k.hpp prefills the prompt once and samples k forks.
template <Generator G>
[[nodiscard]] errc sample_answers(G& generator, const generate_request& request, std::size_t k,
                                  std::vector<std::string>& out) {
  out.clear();
  if (k == 0) return errc::invalid_argument;
  if (!(request.sampling.temperature > 0.0f)) return errc::invalid_temperature;
  generate_request r = request;
  for (std::size_t i = 0; i < k; ++i) {
    r.sampling.seed = request.sampling.seed + i;
    auto c = generator.generate(r);
    if (!c) return c.error();
    out.push_back(std::move(c->text));
  }
  return errc::ok;
}

/// Result of a majority vote.
struct vote_result {
  std::string answer;        ///< the most frequent non-empty extracted answer ("" if none)
  std::size_t count = 0;     ///< samples that gave it
  std::size_t distinct = 0;  ///< distinct non-empty answers
  double share = 0.0;        ///< count / number of samples (empty answers included)
};

/// Majority vote over `answers` after `extract` (e.g. `normalize_answer`,
/// `extract_last_number` or a user function). Samples whose extracted answer is empty
/// count in the denominator but never win; among equally frequent answers the first one
/// seen wins. Errors: `empty_input` (no samples).
template <AnswerExtractor Extract>
[[nodiscard]] result<vote_result> majority_vote(std::span<const std::string> answers,
                                                Extract&& extract) {
  if (answers.empty()) return errc::empty_input;
  std::vector<std::string> keys;
  std::vector<std::size_t> counts;
  for (const auto& a : answers) {
    std::string k = extract(std::string_view(a));
    if (k.empty()) continue;
    const auto it = std::find(keys.begin(), keys.end(), k);
    if (it == keys.end()) {
      keys.push_back(std::move(k));
      counts.push_back(1);
    } else {
      ++counts[static_cast<std::size_t>(it - keys.begin())];
    }
  }
  vote_result v;
  v.distinct = keys.size();
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (counts[i] > v.count) {
      v.count = counts[i];
      v.answer = keys[i];
    }
  v.share = static_cast<double>(v.count) / static_cast<double>(answers.size());
  return v;
}

/// ROUGE-L F1 between two texts over lower-cased words: LCS length l, precision l/|b|,
/// recall l/|a|, F1 = 2PR/(P+R). Two texts without words score 1; one empty scores 0.
template <int = 0>
[[nodiscard]] inline double rouge_l(std::string_view a, std::string_view b) {
  std::vector<std::string> wa, wb;
  detail::conf::split_words(a, wa);
  detail::conf::split_words(b, wb);
  if (wa.empty() && wb.empty()) return 1.0;
  if (wa.empty() || wb.empty()) return 0.0;
  std::vector<std::size_t> prev(wb.size() + 1, 0), cur(wb.size() + 1, 0);
  for (std::size_t i = 1; i <= wa.size(); ++i) {
    for (std::size_t j = 1; j <= wb.size(); ++j)
      cur[j] = wa[i - 1] == wb[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  const double l = static_cast<double>(prev[wb.size()]);
  if (l == 0.0) return 0.0;
  const double p = l / static_cast<double>(wb.size()), r = l / static_cast<double>(wa.size());
  return 2.0 * p * r / (p + r);
}

/// Jaccard similarity of the two texts' sets of lower-cased words. Two texts without
/// words score 1; one empty scores 0.
template <int = 0>
[[nodiscard]] inline double jaccard(std::string_view a, std::string_view b) {
  std::vector<std::string> wa, wb;
  detail::conf::split_words(a, wa);
  detail::conf::split_words(b, wb);
  if (wa.empty() && wb.empty()) return 1.0;
  std::sort(wa.begin(), wa.end());
  wa.erase(std::unique(wa.begin(), wa.end()), wa.end());
  std::sort(wb.begin(), wb.end());
  wb.erase(std::unique(wb.begin(), wb.end()), wb.end());
  std::vector<std::string> both;
  std::set_intersection(wa.begin(), wa.end(), wb.begin(), wb.end(), std::back_inserter(both));
  const double inter = static_cast<double>(both.size());
  return inter / (static_cast<double>(wa.size() + wb.size()) - inter);
}

/// Lexical similarity used to build the answer graph.
enum class similarity : std::uint8_t {
  rouge_l,  ///< ROUGE-L F1: longest common subsequence of the words
  jaccard,  ///< Jaccard index of the word sets
};

/// Symmetric k x k matrix of pairwise similarities (1 on the diagonal; ROUGE-L is
/// symmetric). Errors: `empty_input` (no answers). `Matrix` is a template parameter only
/// so that the Eigen code is compiled in the translation units that call it: leave it
/// defaulted.
template <class Matrix = Eigen::MatrixXd>
[[nodiscard]] result<Matrix> similarity_matrix(std::span<const std::string> answers,
                                               similarity kind = similarity::rouge_l) {
  if (answers.empty()) return errc::empty_input;
  const auto k = static_cast<Eigen::Index>(answers.size());
  Matrix w = Matrix::Identity(k, k);
  for (Eigen::Index i = 0; i < k; ++i)
    for (Eigen::Index j = i + 1; j < k; ++j) {
      const auto& a = answers[static_cast<std::size_t>(i)];
      const auto& b = answers[static_cast<std::size_t>(j)];
      w(i, j) = w(j, i) = kind == similarity::rouge_l ? rouge_l(a, b) : jaccard(a, b);
    }
  return w;
}

/// Graph measures of an answer-similarity matrix W (Lin et al. 2023). Uncertainties:
/// higher means less consistent answers, hence less confidence.
struct graph_measures {
  std::size_t semantic_sets = 0;            ///< connected components of {W_ij >= threshold}
  double degree = 0.0;                      ///< U_Deg = trace(kI - D) / k^2 = 1 - mean(W)
  double eccentricity = 0.0;                ///< U_Ecc: spread of the spectral embeddings
  double eigenvalues = 0.0;                 ///< U_EigV = sum_i max(0, 1 - lambda_i) of L_sym
  std::vector<double> answer_degree;        ///< C_Deg per answer: D_jj / k
  std::vector<double> answer_eccentricity;  ///< C_Ecc per answer: -|v_j - mean v|
};

/// Settings of `graph_uncertainty`.
struct graph_options {
  double set_threshold = 0.5;       ///< answers with W_ij >= this are in one semantic set
  double spectral_threshold = 0.9;  ///< eigenvectors of L_sym with lambda < this embed answers
};

/// Computes the graph measures of W: the normalised Laplacian
/// L = I - D^-1/2 W D^-1/2 (D the degree matrix) gives U_EigV, and the eigenvectors of
/// its eigenvalues below `spectral_threshold` (at least one) embed each answer for
/// U_Ecc. Errors: `empty_input` (0 x 0), `size_mismatch` (not square), `non_finite`,
/// `invalid_argument` (an entry outside [0, 1], an asymmetric matrix, a diagonal entry
/// other than 1, thresholds NaN). `Matrix` is a template parameter only so that the
/// eigen-solver is compiled in the translation units that call it (it costs seconds of
/// compile time): leave it defaulted; `w` converts to it as to any parameter.
template <class Matrix = Eigen::MatrixXd>
[[nodiscard]] result<graph_measures> graph_uncertainty(const std::type_identity_t<Matrix>& w,
                                                       const graph_options& options = {}) {
  using vector = Eigen::Matrix<typename Matrix::Scalar, Eigen::Dynamic, 1>;
  using row_vector = Eigen::Matrix<typename Matrix::Scalar, 1, Eigen::Dynamic>;
  if (w.rows() != w.cols()) return errc::size_mismatch;
  if (w.rows() == 0) return errc::empty_input;
  if (std::isnan(options.set_threshold) || std::isnan(options.spectral_threshold))
    return errc::invalid_argument;
  if (!w.allFinite()) return errc::non_finite;
  const Eigen::Index k = w.rows();
  for (Eigen::Index i = 0; i < k; ++i) {
    if (w(i, i) != 1.0) return errc::invalid_argument;
    for (Eigen::Index j = 0; j < k; ++j)
      if (w(i, j) < 0.0 || w(i, j) > 1.0 || std::abs(w(i, j) - w(j, i)) > 1e-12)
        return errc::invalid_argument;
  }
  graph_measures g;
  const double kd = static_cast<double>(k);
  // Semantic sets: union-find over the thresholded graph.
  std::vector<Eigen::Index> parent(static_cast<std::size_t>(k));
  std::iota(parent.begin(), parent.end(), Eigen::Index{0});
  auto find = [&](Eigen::Index x) {
    while (parent[static_cast<std::size_t>(x)] != x) x = parent[static_cast<std::size_t>(x)];
    return x;
  };
  for (Eigen::Index i = 0; i < k; ++i)
    for (Eigen::Index j = i + 1; j < k; ++j)
      if (w(i, j) >= options.set_threshold) parent[static_cast<std::size_t>(find(j))] = find(i);
  for (Eigen::Index i = 0; i < k; ++i) g.semantic_sets += find(i) == i ? 1 : 0;

  const vector degree = w.rowwise().sum();  // >= 1 thanks to the unit diagonal
  g.degree = (kd * kd - degree.sum()) / (kd * kd);
  g.answer_degree.resize(static_cast<std::size_t>(k));
  for (Eigen::Index i = 0; i < k; ++i)
    g.answer_degree[static_cast<std::size_t>(i)] = degree(i) / kd;

  const vector inv_sqrt = degree.array().rsqrt();
  const Matrix lap = Matrix::Identity(k, k) - inv_sqrt.asDiagonal() * w * inv_sqrt.asDiagonal();
  Eigen::SelfAdjointEigenSolver<Matrix> solver(lap);
  const vector& lambda = solver.eigenvalues();  // ascending
  Eigen::Index used = 0;
  for (Eigen::Index i = 0; i < k; ++i) {
    g.eigenvalues += std::max(0.0, 1.0 - lambda(i));
    if (lambda(i) < options.spectral_threshold) ++used;
  }
  used = std::max<Eigen::Index>(used, 1);
  const Matrix v = solver.eigenvectors().leftCols(used);
  const row_vector center = v.colwise().mean();
  g.answer_eccentricity.resize(static_cast<std::size_t>(k));
  double total = 0.0;
  for (Eigen::Index i = 0; i < k; ++i) {
    const double d2 = (v.row(i) - center).squaredNorm();
    total += d2;
    g.answer_eccentricity[static_cast<std::size_t>(i)] = -std::sqrt(d2);
  }
  g.eccentricity = std::sqrt(total);
  return g;
}

/// Consistency estimators of one set of sampled answers, oriented as confidences
/// (higher = more consistent) except where named as uncertainties.
struct consistency_scores {
  vote_result vote;              ///< majority vote over extracted answers
  double mean_similarity = 0.0;  ///< mean off-diagonal similarity (1 when k = 1)
  graph_measures graph;          ///< uncertainties over the similarity graph
};

/// Settings of `score_consistency`.
struct consistency_options {
  similarity kind = similarity::rouge_l;  ///< how two answers are compared
  graph_options graph{};                  ///< thresholds of the graph measures
};

/// Majority vote (through `extract`), mean pairwise similarity and graph measures of
/// `answers`. Errors: `empty_input` (no answers), and those of `graph_uncertainty`
/// (options). The answers are read only.
template <AnswerExtractor Extract>
[[nodiscard]] result<consistency_scores> score_consistency(
    std::span<const std::string> answers, Extract&& extract,
    const consistency_options& options = {}) {
  auto vote = majority_vote(answers, extract);
  if (!vote) return vote.error();
  auto w = similarity_matrix(answers, options.kind);
  if (!w) return w.error();
  auto g = graph_uncertainty(*w, options.graph);
  if (!g) return g.error();
  consistency_scores s;
  s.vote = std::move(*vote);
  const double k = static_cast<double>(answers.size());
  s.mean_similarity = k < 2 ? 1.0 : (w->sum() - k) / (k * (k - 1.0));
  s.graph = std::move(*g);
  return s;
}

}  // namespace tandem::inline v0
