// tandem: query featurizers for routers. Hashed word and character n-grams with TF-IDF
// weighting (no model needed), and user-supplied dense embeddings. Both give L2-normalised
// sparse vectors, so every predictor sees one feature type.
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
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/detail/hashed_features.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// A sparse feature vector: strictly increasing `index`, one `value` per index.
struct sparse_vector {
  std::vector<std::uint32_t> index;  ///< feature indices, strictly increasing
  std::vector<float> value;          ///< one value per index

  /// Number of stored entries.
  [[nodiscard]] std::size_t nnz() const noexcept { return index.size(); }
  /// Removes every entry (keeps the capacity).
  void clear() noexcept {
    index.clear();
    value.clear();
  }
};

/// Dot product of two sparse vectors (merge of the sorted indices).
[[nodiscard]] inline double dot(const sparse_vector& a, const sparse_vector& b) noexcept {
  double s = 0;
  std::size_t i = 0, j = 0;
  while (i < a.nnz() && j < b.nnz()) {
    if (a.index[i] < b.index[j])
      ++i;
    else if (a.index[i] > b.index[j])
      ++j;
    else
      s += static_cast<double>(a.value[i++]) * b.value[j++];
  }
  return s;
}

/// Settings of the hashed n-gram featurizer. Text is lower-cased (ASCII); words are runs of
/// ASCII letters and digits and of non-ASCII bytes (so UTF-8 letters stay inside words);
/// character n-grams run over the text with whitespace collapsed to one space.
struct featurizer_options {
  std::uint32_t word_min = 1;    ///< shortest word n-gram (0 with word_max 0: no words)
  std::uint32_t word_max = 2;    ///< longest word n-gram
  std::uint32_t char_min = 3;    ///< shortest character n-gram (0 with char_max 0: none)
  std::uint32_t char_max = 5;    ///< longest character n-gram
  std::uint32_t dims_log2 = 18;  ///< hashed dimension 2^dims_log2, in [4, 26]
  bool sublinear_tf = true;      ///< weight term counts as 1 + ln(tf)
  float max_df = 1.0f;           ///< drop features in more than this share of documents
  bool binary_tf = false;        ///< weight a present term 1 whatever its count (overrides
                                 ///< sublinear_tf): a repeated word is no more telling
  std::uint32_t min_df = 1;      ///< drop features seen in fewer documents than this (>= 1):
                                 ///< a one-off n-gram only adds noise to a fitted predictor
};

namespace detail::route {
inline void l2_normalize(sparse_vector& v) noexcept {
  double s = 0;
  for (float x : v.value) s += static_cast<double>(x) * x;
  if (s <= 0) return;
  const auto inv = static_cast<float>(1.0 / std::sqrt(s));
  for (float& x : v.value) x *= inv;
}
}  // namespace detail::route

/// Hashed word and character n-grams weighted by TF-IDF and L2-normalised. fit() learns
/// the inverse document frequencies from a corpus; transform() then maps any text. Holds no
/// reference to the corpus. Copyable; transform() is const and keeps its scratch local, so
/// one fitted featurizer may serve several threads.
class tfidf_featurizer {
 public:
  /// An unfitted featurizer with default options.
  tfidf_featurizer() = default;

  /// Checks `o` and keeps it. Errors: invalid_argument (dims_log2 outside [4, 26], a min
  /// above its max, a zero min with a non-zero max, no n-gram kind at all, max_df outside
  /// (0, 1], min_df == 0). Leaves the featurizer unfitted.
  template <int = 0>
  [[nodiscard]] errc configure(const featurizer_options& o) {
    if (o.dims_log2 < 4 || o.dims_log2 > 26) return errc::invalid_argument;
    if (o.word_min > o.word_max || o.char_min > o.char_max) return errc::invalid_argument;
    if ((o.word_min == 0 && o.word_max != 0) || (o.char_min == 0 && o.char_max != 0))
      return errc::invalid_argument;
    if (o.word_max == 0 && o.char_max == 0) return errc::invalid_argument;
    if (!(o.max_df > 0.0f && o.max_df <= 1.0f)) return errc::invalid_argument;
    if (o.min_df == 0) return errc::invalid_argument;
    options_ = o;
    idf_.clear();
    return errc::ok;
  }

  /// Learns smoothed IDF weights ln((1 + N) / (1 + df)) + 1 from `corpus` (0, i.e.
  /// dropped, for a hashed feature in more than max_df * N or fewer than min_df documents).
  /// Errors: empty_input (no documents). On error the featurizer is left unfitted.
  template <int = 0>
  [[nodiscard]] errc fit(std::span<const std::string> corpus) {
    idf_.clear();
    if (corpus.empty()) return errc::empty_input;
    const std::size_t d = dims();
    std::vector<std::uint32_t> df(d, 0);
    std::vector<std::uint32_t> raw;
    std::string norm;
    for (const std::string& doc : corpus) {
      hash_features(doc, raw, norm);
      std::sort(raw.begin(), raw.end());
      raw.erase(std::unique(raw.begin(), raw.end()), raw.end());
      for (std::uint32_t f : raw) ++df[f];
    }
    const double n = static_cast<double>(corpus.size());
    idf_.assign(d, 0.0f);
    for (std::size_t f = 0; f < d; ++f) {
      if (static_cast<double>(df[f]) > static_cast<double>(options_.max_df) * n) continue;
      if (df[f] < options_.min_df) continue;
      idf_[f] = static_cast<float>(std::log((1.0 + n) / (1.0 + df[f])) + 1.0);
    }
    return errc::ok;
  }

  /// Maps `text` to an L2-normalised TF-IDF vector in `out` (overwritten). An empty text
  /// (or one with no n-grams) gives an empty vector. Precondition: fitted().
  template <int = 0>
  void transform(std::string_view text, sparse_vector& out) const {
    TANDEM_ASSERT(fitted(), "tfidf_featurizer::transform before fit");
    std::vector<std::uint32_t> raw;
    std::string norm;
    hash_features(text, raw, norm);
    std::sort(raw.begin(), raw.end());
    out.clear();
    for (std::size_t i = 0; i < raw.size();) {
      std::size_t j = i;
      while (j < raw.size() && raw[j] == raw[i]) ++j;
      const float idf = idf_[raw[i]];
      if (idf > 0) {
        const double tf = static_cast<double>(j - i);
        const double w = options_.binary_tf ? 1.0 : options_.sublinear_tf ? 1.0 + std::log(tf) : tf;
        out.index.push_back(raw[i]);
        out.value.push_back(static_cast<float>(w * idf));
      }
      i = j;
    }
    detail::route::l2_normalize(out);
  }

  /// True after a successful fit() or load.
  [[nodiscard]] bool fitted() const noexcept { return !idf_.empty(); }
  /// The hashed dimension.
  [[nodiscard]] std::size_t dims() const noexcept { return std::size_t{1} << options_.dims_log2; }
  /// The options in use.
  [[nodiscard]] const featurizer_options& options() const noexcept { return options_; }
  /// The IDF weight per hashed feature (0 for dropped features); empty before fit.
  [[nodiscard]] std::span<const float> idf() const noexcept { return idf_; }

  /// Restores a fitted state. Errors: those of configure, corrupt_file (idf of the wrong
  /// size, or a negative or non-finite weight). On error the featurizer is left unfitted.
  template <int = 0>
  [[nodiscard]] errc restore(const featurizer_options& o, std::vector<float> idf) {
    idf_.clear();
    TANDEM_TRY(configure(o));
    if (idf.size() != dims()) return errc::corrupt_file;
    for (float w : idf)
      if (!std::isfinite(w) || w < 0) return errc::corrupt_file;
    idf_ = std::move(idf);
    return errc::ok;
  }

  /// Appends the options and the IDF weights to `w` (part of a router's file).
  /// Precondition: fitted().
  template <int = 0>
  void write(detail::byte_writer& w) const {
    TANDEM_ASSERT(fitted(), "tfidf_featurizer::write before fit");
    w.u32(options_.word_min);
    w.u32(options_.word_max);
    w.u32(options_.char_min);
    w.u32(options_.char_max);
    w.u32(options_.dims_log2);
    w.u8(options_.sublinear_tf ? 1 : 0);
    w.f32(options_.max_df);
    w.u8(options_.binary_tf ? 1 : 0);
    w.u32(options_.min_df);
    w.array(idf_);
  }

  /// Reads what write() wrote. Errors: corrupt_file (truncation, a flag other than 0/1,
  /// options configure() refuses, IDF weights of the wrong size or value; the details say
  /// which). On error the featurizer is left unfitted.
  template <int = 0>
  [[nodiscard]] errc read(detail::byte_reader& r, error_info* info = nullptr) {
    idf_.clear();
    featurizer_options g;
    std::uint8_t sub = 0, bin = 0;
    std::vector<float> idf;
    if (!r.u32(g.word_min) || !r.u32(g.word_max) || !r.u32(g.char_min) || !r.u32(g.char_max) ||
        !r.u32(g.dims_log2) || !r.u8(sub) || !r.f32(g.max_df) || !r.u8(bin) || !r.u32(g.min_df) ||
        !r.array(idf))
      return detail::fail(info, errc::corrupt_file, "featurizer truncated");
    if (sub > 1 || bin > 1)
      return detail::fail(info, errc::corrupt_file, "featurizer flag not 0/1");
    g.sublinear_tf = sub != 0;
    g.binary_tf = bin != 0;
    if (restore(g, std::move(idf)) != errc::ok)
      return detail::fail(info, errc::corrupt_file, "featurizer options or IDF weights invalid");
    return errc::ok;
  }

 private:
  void hash_features(std::string_view text, std::vector<std::uint32_t>& out,
                     std::string& norm) const {
    out.clear();
    norm.clear();
    norm.reserve(text.size());
    bool space = true;
    for (char c : text) {
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\v') {
        if (!space) norm.push_back(' ');
        space = true;
      } else {
        norm.push_back(detail::lower_ascii(c));
        space = false;
      }
    }
    if (!norm.empty() && norm.back() == ' ') norm.pop_back();
    const std::uint64_t mask = dims() - 1;
    if (options_.word_max > 0) {
      std::vector<std::uint64_t> words;
      for (std::size_t i = 0; i < norm.size();) {
        if (!detail::is_word_byte(norm[i])) {
          ++i;
          continue;
        }
        std::size_t j = i;
        while (j < norm.size() && detail::is_word_byte(norm[j])) ++j;
        words.push_back(detail::fnv1a64(std::string_view(norm).substr(i, j - i)));
        i = j;
      }
      for (std::size_t n = options_.word_min; n <= options_.word_max; ++n)
        for (std::size_t i = 0; i + n <= words.size(); ++i) {
          std::uint64_t h = 0x5157u + n;  // word n-grams get their own hash family
          for (std::size_t k = 0; k < n; ++k) h = detail::mix64(h ^ words[i + k]);
          out.push_back(static_cast<std::uint32_t>(h & mask));
        }
    }
    if (options_.char_max > 0) {
      for (std::size_t n = options_.char_min; n <= options_.char_max; ++n)
        for (std::size_t i = 0; i + n <= norm.size(); ++i) {
          const std::uint64_t h = detail::mix64(detail::fnv1a64(std::string_view(norm).substr(i, n),
                                                                detail::fnv1a64_offset ^ (n << 8)));
          out.push_back(static_cast<std::uint32_t>(h & mask));
        }
    }
  }

  featurizer_options options_{};
  std::vector<float> idf_;
};

/// Turns a user-supplied dense embedding into a sparse vector (every entry kept, so
/// predictors treat embeddings and n-grams alike), L2-normalised when `normalize`.
/// Errors: empty_input, non_finite. `out` is overwritten; on error it is left empty.
template <int = 0>
[[nodiscard]] inline errc embedding_features(std::span<const float> embedding, bool normalize,
                                             sparse_vector& out) {
  out.clear();
  if (embedding.empty()) return errc::empty_input;
  for (float x : embedding)
    if (!std::isfinite(x)) return errc::non_finite;
  out.index.resize(embedding.size());
  out.value.assign(embedding.begin(), embedding.end());
  for (std::size_t i = 0; i < embedding.size(); ++i) out.index[i] = static_cast<std::uint32_t>(i);
  if (normalize) detail::route::l2_normalize(out);
  return errc::ok;
}

}  // namespace tandem::inline v0
