// tandem: chat templates of llama.cpp models: a conversation (core/chat.hpp) rendered to
// prompt tokens through the model's own template (llama_chat_apply_template), and the
// model's end-of-generation tokens as a chat's stop tokens. Needs tandem::llama_cpp.
//
// llama.cpp (the pinned version, see llama_cpp.hpp) does not run Jinja: it recognises a
// template among its built-in ones (llama_builtin_chat_templates(), by name or by the
// special tokens the GGUF's `tokenizer.chat_template` text contains) and formats the chat
// itself. A template it does not recognise, or a model without one, is an error
// (`unknown_template`), never a silent fallback to another format; a built-in name or a
// template text can be given instead.
#pragma once

#include <llama.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/backends/llama_cpp.hpp"
#include "tandem/core/chat.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// The names of the chat templates this llama.cpp build formats itself (llama.cpp's
/// `llama_chat_builtin_templates`, e.g. "chatml", "llama3", "gemma"), in llama.cpp's
/// order. The views point to llama.cpp's static strings. Allocates the vector.
[[nodiscard]] inline std::vector<std::string_view> llama_builtin_chat_templates() {
  const std::int32_t n = llama_chat_builtin_templates(nullptr, 0);
  std::vector<const char*> names(n > 0 ? static_cast<std::size_t>(n) : 0, nullptr);
  llama_chat_builtin_templates(names.data(), names.size());
  std::vector<std::string_view> out;
  out.reserve(names.size());
  for (const char* s : names)
    if (s != nullptr) out.emplace_back(s);
  return out;
}

/// The end-of-generation tokens of `model`'s vocabulary (`llama_vocab_is_eog`: EOS, the
/// end-of-turn token such as `<|im_end|>` or `<|eot_id|>`, and the others llama.cpp counts),
/// ascending: the stop tokens of a chat generation. Empty when the vocabulary has none.
[[nodiscard]] inline std::vector<token_id> llama_end_of_generation_tokens(
    const llama_model_handle& model) {
  std::vector<token_id> out;
  const ::llama_vocab* v = model.vocab();
  for (std::size_t i = 0, n = model.vocab_size(); i < n; ++i)
    if (llama_vocab_is_eog(v, static_cast<llama_token>(i))) out.push_back(static_cast<token_id>(i));
  return out;
}

/// A llama.cpp chat template bound to a model's vocabulary; satisfies `ChatRenderer`, so a
/// `chat_session` can render with it. Borrows the model, which must outlive it. Copyable.
class llama_chat_template {
 public:
  /// The model's own template (`tokenizer.chat_template` of its GGUF file).
  /// Errors (details in `*info` when not null): unknown_template (the model has no chat
  /// template, or llama.cpp does not recognise it: the details quote its start and say to
  /// pass a built-in name to `create` instead), out_of_memory.
  [[nodiscard]] static result<llama_chat_template> from_model(const llama_model_handle& model,
                                                              error_info* info = nullptr) {
    const char* t =
        model.get() != nullptr ? llama_model_chat_template(model.get(), nullptr) : nullptr;
    if (t == nullptr || *t == '\0')
      return detail::fail(info, errc::unknown_template,
                          "the model has no tokenizer.chat_template; name a built-in template "
                          "(llama_builtin_chat_templates) or pass a template text");
    return create(model, t, info);
  }

  /// A template given by the caller instead of the model's: a built-in name ("chatml",
  /// "llama3", ...; see llama_builtin_chat_templates()) or a Jinja template text that
  /// llama.cpp recognises. Errors (details in `*info`): invalid_argument (empty, or a NUL
  /// inside), unknown_template (llama.cpp does not recognise it), out_of_memory.
  [[nodiscard]] static result<llama_chat_template> create(const llama_model_handle& model,
                                                          std::string_view name_or_template,
                                                          error_info* info = nullptr) {
    if (name_or_template.empty() || name_or_template.find('\0') != std::string_view::npos)
      return detail::fail(info, errc::invalid_argument,
                          "a chat template name or text must be non-empty and without NUL");
    llama_chat_template t(model, name_or_template);
    const llama_chat_message probe{"user", "x"};
    if (llama_chat_apply_template(t.source_.c_str(), &probe, 1, true, nullptr, 0) < 0) {
      const std::string_view head = name_or_template.substr(0, 60);
      return detail::fail(info, errc::unknown_template,
                          "llama.cpp does not recognise the chat template '%.*s%s'; name a "
                          "built-in one (llama_builtin_chat_templates) instead",
                          static_cast<int>(head.size()), head.data(),
                          head.size() < name_or_template.size() ? "..." : "");
    }
    return t;
  }

  /// Appends to `out` the text of `messages` as the template formats them, ending with
  /// the opening of an assistant turn when `add_generation_prompt`. No BOS text (the
  /// tokenizer adds BOS in `render`). Errors: empty_input (no messages), invalid_argument
  /// (a content with a NUL byte), unsupported (llama.cpp refused these messages for this
  /// template), capacity_exceeded (longer than INT32_MAX bytes). On error `out` is as
  /// before.
  [[nodiscard]] errc render_text(std::span<const chat_message> messages, bool add_generation_prompt,
                                 std::string& out) const {
    if (messages.empty()) return errc::empty_input;
    std::vector<llama_chat_message> chat;
    chat.reserve(messages.size());
    std::size_t bytes = 0;
    for (const chat_message& m : messages) {
      if (m.content.find('\0') != std::string::npos) return errc::invalid_argument;
      chat.push_back({to_string(m.role).data(), m.content.c_str()});
      bytes += m.content.size() + 32;
    }
    const std::size_t old = out.size();
    std::size_t room = bytes + 256;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (room > static_cast<std::size_t>(INT32_MAX)) return errc::capacity_exceeded;
      out.resize(old + room);
      const std::int32_t r = llama_chat_apply_template(source_.c_str(), chat.data(), chat.size(),
                                                       add_generation_prompt, out.data() + old,
                                                       static_cast<std::int32_t>(room));
      if (r < 0) {
        out.resize(old);
        return errc::unsupported;
      }
      if (static_cast<std::size_t>(r) <= room) {
        out.resize(old + static_cast<std::size_t>(r));
        return errc::ok;
      }
      room = static_cast<std::size_t>(r);
    }
    out.resize(old);
    return errc::capacity_exceeded;
  }

  /// Appends to `out` the tokens of the rendered text: BOS first when the model asks for
  /// one (GGUF add_bos), and the template's special tokens (`<|im_start|>`, ...) as
  /// themselves. Note that special-token text inside a message's content becomes those
  /// tokens too (llama.cpp tokenizes the whole rendered text at once). Errors: those of
  /// render_text, and of llama_tokenizer::encode (unsupported: a sentencepiece vocabulary
  /// without byte tokens). On error `out` is as before.
  [[nodiscard]] errc render(std::span<const chat_message> messages, bool add_generation_prompt,
                            std::vector<token_id>& out) const {
    std::string text;
    if (const errc e = render_text(messages, add_generation_prompt, text); e != errc::ok) return e;
    return tokenizer_.encode(text, out);
  }

  /// The template as given: the GGUF's template text, or the built-in name or text passed
  /// to `create`.
  [[nodiscard]] std::string_view source() const noexcept { return source_; }
  /// The model's end-of-generation tokens (llama_end_of_generation_tokens): pass them as
  /// `generation_options::stop_tokens` so a reply ends at its end of turn.
  [[nodiscard]] std::span<const token_id> stop_tokens() const noexcept { return stops_; }

 private:
  llama_chat_template(const llama_model_handle& model, std::string_view source)
      : source_(source),
        tokenizer_(model, llama_tokenizer_options{.add_special = true, .parse_special = true}),
        stops_(llama_end_of_generation_tokens(model)) {}

  std::string source_;
  llama_tokenizer tokenizer_;
  std::vector<token_id> stops_;
};

static_assert(ChatRenderer<llama_chat_template>);

}  // namespace tandem::inline v0
