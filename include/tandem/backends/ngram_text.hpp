// tandem: the built-in n-gram model opened in one call from text (a corpus string or a
// text file), with a byte tokenizer, ready for the one-call path of <tandem/text.hpp>.
#pragma once

#include <cstddef>
#include <cstdio>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/backends/ngram_model.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// A Tokenizer whose tokens are the 256 byte values: text is its bytes. Stateless.
struct byte_tokenizer {
  /// 256.
  [[nodiscard]] static constexpr std::size_t vocab_size() noexcept { return 256; }
  /// Appends one token per byte of `text`. Never fails (allocates as `ids` grows).
  [[nodiscard]] errc encode(std::string_view text, std::vector<token_id>& ids) const {
    for (const char c : text) ids.push_back(static_cast<unsigned char>(c));
    return errc::ok;
  }
  /// Appends the bytes of `ids`. Errors: invalid_token (an id outside [0, 256)); `out` is
  /// then as before.
  [[nodiscard]] errc decode(std::span<const token_id> ids, std::string& out) const {
    for (const token_id t : ids)
      if (t < 0 || t > 255) return errc::invalid_token;
    for (const token_id t : ids) out.push_back(static_cast<char>(t));
    return errc::ok;
  }
  /// Appends the byte of `id`. Errors: invalid_token.
  [[nodiscard]] errc piece(token_id id, std::string& out) const {
    if (id < 0 || id > 255) return errc::invalid_token;
    out.push_back(static_cast<char>(id));
    return errc::ok;
  }
  /// Appends the byte of `id` (for output constraints: `ByteTokenizer`). Errors:
  /// invalid_token.
  [[nodiscard]] errc token_bytes(token_id id, std::string& out) const { return piece(id, out); }
};

/// How open_ngram_text trains its model.
struct ngram_text_options {
  std::size_t order = 6;  ///< n-gram order over bytes, in [1, ngram_max_order]
  std::size_t context_length = ngram_session::default_context_length;  ///< session bound
};

/// A byte-level n-gram model trained on text, with its session and tokenizer (a
/// TextModel for <tandem/text.hpp>). Move-only; the model lives on the heap so the
/// session's reference to it survives moves.
class ngram_text_model {
 public:
  /// The session (an ngram_session over the model).
  [[nodiscard]] ngram_session& session() noexcept { return session_; }
  /// The byte tokenizer.
  [[nodiscard]] const byte_tokenizer& tokenizer() const noexcept { return tokenizer_; }
  /// The trained model (shareable read-only by more sessions).
  [[nodiscard]] const ngram_model& model() const noexcept { return *model_; }

 private:
  friend result<ngram_text_model> open_ngram_text(std::string_view, const ngram_text_options&,
                                                  error_info*);
  ngram_text_model(std::unique_ptr<ngram_model> m, std::size_t context_length)
      : model_(std::move(m)), session_(*model_, context_length) {}

  std::unique_ptr<ngram_model> model_;
  ngram_session session_;
  byte_tokenizer tokenizer_;
};

/// Trains a byte-level n-gram model on `corpus` (each non-empty line a sentence) and
/// opens a session and tokenizer over it. Errors (details in `*info` when not null):
/// empty_input (no non-empty line), invalid_argument (order outside [1,
/// ngram_max_order]), out_of_memory; the builder's errors.
[[nodiscard]] inline result<ngram_text_model> open_ngram_text(
    std::string_view corpus, const ngram_text_options& options = {}, error_info* info = nullptr) {
  auto builder = ngram_builder::create({.order = options.order, .vocab_size = 256});
  if (!builder)
    return detail::fail(info, builder.error(), "n-gram order %zu: must lie in [1, %zu]",
                        options.order, ngram_max_order);
  std::vector<token_id> sentence;
  std::size_t lines = 0;
  while (!corpus.empty()) {
    const std::size_t nl = corpus.find('\n');
    std::string_view line = corpus.substr(0, nl);
    corpus = nl == std::string_view::npos ? std::string_view{} : corpus.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    sentence.clear();
    for (const char c : line) sentence.push_back(static_cast<unsigned char>(c));
    if (const errc e = builder->add_sentence(sentence); e != errc::ok)
      return detail::fail(info, e, "n-gram corpus: line %zu could not be added", lines + 1);
    ++lines;
  }
  if (lines == 0) return detail::fail(info, errc::empty_input, "n-gram corpus: no non-empty line");
  auto built = builder->build();
  if (!built) return detail::fail(info, built.error(), "n-gram corpus: training failed");
  std::unique_ptr<ngram_model> model(new (std::nothrow) ngram_model(std::move(*built)));
  if (!model) return detail::fail(info, errc::out_of_memory, "n-gram model: out of memory");
  return ngram_text_model(std::move(model), options.context_length);
}

/// As open_ngram_text, on the text file at `path`. Additional errors: those of reading
/// the file (file_not_found, invalid_argument for a directory, io_error), the path in
/// `*info`.
[[nodiscard]] inline result<ngram_text_model> open_ngram_text_file(
    std::string_view path, const ngram_text_options& options = {}, error_info* info = nullptr) {
  auto text = detail::read_text_file(path, info);
  if (!text) return text.error();
  auto m = open_ngram_text(*text, options, info);
  if (!m && info != nullptr) {
    char what[error_info::capacity];
    std::snprintf(what, sizeof what, "%s", info->text);
    (void)detail::fail(info, m.error(), "%.*s: %s", static_cast<int>(path.size()), path.data(),
                       what);
  }
  return m;
}

}  // namespace tandem::inline v0
