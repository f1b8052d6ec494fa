// tandem: a llama.cpp GGUF model opened in one call (model, session and tokenizer), ready
// for the one-call path of <tandem/text.hpp>. Needs tandem::llama_cpp.
#pragma once

#include <string_view>
#include <utility>

#include "tandem/backends/llama_cpp.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// How open_llama opens a GGUF file: the model, its session and its tokenizer.
struct llama_text_options {
  llama_model_options model{};      ///< how the file is loaded
  llama_session_options session{};  ///< the session's context
  /// The tokenizer: by default `encode` adds the BOS/EOS tokens the model asks for
  /// (GGUF add_bos/add_eos), as a plain text prompt wants.
  llama_tokenizer_options tokenizer{.add_special = true};
};

/// A GGUF model with one session and its tokenizer (a TextModel for <tandem/text.hpp>).
/// Move-only. The session and tokenizer refer to the model's llama.cpp objects, which
/// stay in place when this object moves; members are destroyed session first.
class llama_text_model {
 public:
  /// The session.
  [[nodiscard]] llama_session& session() noexcept { return session_; }
  /// The tokenizer over the model's vocabulary.
  [[nodiscard]] const llama_tokenizer& tokenizer() const noexcept { return tokenizer_; }
  /// The loaded model (more sessions may borrow it).
  [[nodiscard]] const llama_model_handle& model() const noexcept { return model_; }

  /// Loads the GGUF file at `path` and opens a session and a tokenizer over it. Errors
  /// (details, the path first, in `*info` when not null): those of
  /// llama_model_handle::load (file_not_found, invalid_argument for a directory,
  /// io_error, corrupt_file) and of llama_session::create (invalid_argument,
  /// out_of_memory).
  [[nodiscard]] static result<llama_text_model> open(std::string_view path,
                                                     const llama_text_options& options = {},
                                                     error_info* info = nullptr) {
    auto model = llama_model_handle::load(path, options.model, info);
    if (!model) return model.error();
    auto session = llama_session::create(*model, options.session);
    if (!session)
      return detail::fail(info, session.error(), "%.*s: could not create a llama.cpp session",
                          static_cast<int>(path.size()), path.data());
    llama_tokenizer tok(*model, options.tokenizer);
    return llama_text_model(std::move(*model), std::move(*session), tok);
  }

 private:
  llama_text_model(llama_model_handle&& m, llama_session&& s, const llama_tokenizer& t)
      : model_(std::move(m)), session_(std::move(s)), tokenizer_(t) {}

  llama_model_handle model_;  // declared first: destroyed after the session
  llama_session session_;
  llama_tokenizer tokenizer_;
};

/// Same as llama_text_model::open.
[[nodiscard]] inline result<llama_text_model> open_llama(std::string_view path,
                                                         const llama_text_options& options = {},
                                                         error_info* info = nullptr) {
  return llama_text_model::open(path, options, info);
}

}  // namespace tandem::inline v0
