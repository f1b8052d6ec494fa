// tandem: chat messages, the chat-template renderer concept, and an incremental chat
// session that keeps a conversation's tokens in one model's cache across turns.
/// \file
/// A conversation is a list of `chat_message` (role and content). A backend renders it to
/// prompt tokens through the model's chat template (llama.cpp: `llama_chat_template` in
/// tandem/backends/llama_cpp_chat.hpp) or sends it as is (the HTTP generator's `chat`).
/// `chat_session` keeps a conversation in a model: for each new turn it renders the whole
/// history, keeps the longest prefix the model already holds, and appends only the rest.
/// Light header: no xsimd, no Eigen.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// Who speaks a chat message. The names are those of chat templates and of the OpenAI
/// chat API ("system", "user", "assistant", "tool").
enum class chat_role : std::uint8_t {
  system,     ///< instructions for the assistant
  user,       ///< the user's turn
  assistant,  ///< the model's turn
  tool,       ///< a tool's result (templates that do not know it refuse it)
};

/// The role's name as chat templates and the OpenAI API spell it, e.g. "assistant".
[[nodiscard]] constexpr std::string_view to_string(chat_role r) noexcept {
  switch (r) {
    case chat_role::system:
      return "system";
    case chat_role::user:
      return "user";
    case chat_role::assistant:
      return "assistant";
    case chat_role::tool:
      return "tool";
  }
  return "unknown";
}

/// The role named `name` (exact, lower case). Errors: not_found (no such role).
[[nodiscard]] inline result<chat_role> parse_chat_role(std::string_view name) noexcept {
  for (const chat_role r :
       {chat_role::system, chat_role::user, chat_role::assistant, chat_role::tool})
    if (to_string(r) == name) return r;
  return errc::not_found;
}

/// One message of a conversation: its role and its text (UTF-8). A conversation (its
/// history) is a sequence of messages, oldest first.
struct chat_message {
  chat_role role = chat_role::user;  ///< who speaks
  std::string content;               ///< what is said

  friend bool operator==(const chat_message&, const chat_message&) = default;
};

/// Renders a conversation to prompt tokens through a chat template.
/// `r.render(messages, add_generation_prompt, out)` appends to `out` the tokens of
/// `messages` as the template formats them (with the model's BOS where it wants one);
/// with `add_generation_prompt` it ends with the opening of an assistant turn, so that
/// the model's next tokens are the assistant's reply. Returns `errc::ok`, or an error with
/// `out` as before (e.g. `unknown_template`, `unsupported` for a role the template lacks).
/// Equal messages must render to equal tokens.
template <class R>
concept ChatRenderer = requires(const R& r, std::span<const chat_message> messages, bool gen,
                                std::vector<token_id>& out) {
  { r.render(messages, gen, out) } -> std::same_as<errc>;
};

/// What a chat session did to its model's cache, over all turns and for the last one.
struct chat_stats {
  std::size_t turns = 0;           ///< successful prepare() calls
  std::size_t prefill_tokens = 0;  ///< tokens prepare() returned to feed (not in the model)
  std::size_t reused_tokens = 0;   ///< rendered tokens already in the model: prefill saved
  std::size_t rewound_tokens = 0;  ///< tokens dropped because the new rendering differs there
  std::size_t last_prefill = 0;    ///< prefill_tokens of the last prepare()
  std::size_t last_reused = 0;     ///< reused_tokens of the last prepare()
  std::size_t last_rewound = 0;    ///< rewound_tokens of the last prepare()
};

/// An incremental chat over a model with rewind: it keeps a conversation in the model's
/// cache (KV cache) across turns and appends only what is new.
///
/// Each turn, `prepare(history)` renders the whole history (with the generation prompt),
/// compares it with the tokens the model holds, rewinds the model to the longest common
/// prefix (a template may render earlier turns differently once a later turn exists, and
/// a reply's retokenized text may differ from the tokens the model generated) and returns
/// the rest, to be fed as the prompt of the reply's generation. The model then holds
/// exactly the rendering of the history, as if it had been prefilled afresh.
///
/// The session is itself a `LanguageModel` with rewind (and `score`/`context_length` when
/// the model has them): generate the reply through it (e.g. `generate(session, ...)`) so
/// that it knows every token in the model. Tokens appended to the model behind the
/// session's back make the next prepare() fail with `out_of_sync`.
///
/// Borrows the model and the renderer, which must outlive it. One thread at a time.
/// Allocation: prepare() renders into a reused buffer; the token record is reserved to the
/// model's context length when it has one (at most 131072 tokens), so appending a generated
/// token does not allocate.
template <Rewindable M, ChatRenderer R>
class chat_session {
 public:
  /// A session over `model` (which may already hold tokens: the first prepare() rewinds
  /// them away, as they are unknown to the session) rendering with `renderer`.
  chat_session(M& model, const R& renderer) : model_(&model), renderer_(&renderer) {
    if constexpr (HasContextLength<M>)
      tokens_.reserve(std::min<std::size_t>(model.context_length(), std::size_t{1} << 17));
  }

  /// Renders `history` (with the generation prompt when `add_generation_prompt`), rewinds
  /// the model to the longest prefix of the rendering it holds (at most all rendered
  /// tokens but the last, so that feeding the rest gives the rendering's logits) and
  /// returns the rest: the tokens to feed next, never empty. Feed them through the session,
  /// usually as the prompt of `continue_generation(session, ...)` (or `append`); the model
  /// then holds exactly the rendering. Updates stats(): the returned tokens count as
  /// prefill, the kept prefix as reused.
  /// Errors (details in last_error()): empty_input (no messages, or a rendering without
  /// tokens), the renderer's errors (e.g. unknown_template, unsupported), out_of_sync (the
  /// model's size differs from the tokens the session knows: tokens were appended or
  /// dropped without the session), the model's rewind errors (rewind_failed). State left
  /// on error: a renderer error, empty_input or out_of_sync leave the model untouched; a
  /// failed rewind leaves it as the model's rewind documents.
  /// The returned view is into the session, valid until its next prepare().
  [[nodiscard]] result<std::span<const token_id>> prepare(std::span<const chat_message> history,
                                                          bool add_generation_prompt = true) {
    error_.clear();
    if (history.empty()) return detail::fail(&error_, errc::empty_input, "no messages to render");
    rendered_.clear();
    if (const errc e = renderer_->render(history, add_generation_prompt, rendered_); e != errc::ok)
      return detail::fail(&error_, e, "rendering %zu messages failed", history.size());
    if (rendered_.empty())
      return detail::fail(&error_, errc::empty_input, "the template rendered no tokens");
    if (started_ && model_->size() != tokens_.size())
      return detail::fail(&error_, errc::out_of_sync,
                          "the model holds %zu tokens, the chat session knows of %zu",
                          static_cast<std::size_t>(model_->size()), tokens_.size());

    std::size_t keep = 0;  // before the first turn the model's tokens are unknown: drop them
    if (started_) {
      const std::size_t limit = std::min(tokens_.size(), rendered_.size() - 1);
      keep = static_cast<std::size_t>(
          std::mismatch(tokens_.begin(), tokens_.begin() + static_cast<std::ptrdiff_t>(limit),
                        rendered_.begin())
              .first -
          tokens_.begin());
    }
    const std::size_t drop = model_->size() - keep;
    if (drop != 0) {
      if (const errc e = model_->rewind(drop); e != errc::ok)
        return detail::fail(&error_, e, "rewinding %zu of %zu tokens failed", drop,
                            static_cast<std::size_t>(model_->size()));
    }
    tokens_.resize(keep);
    started_ = true;
    const std::size_t rest = rendered_.size() - keep;
    ++stats_.turns;
    stats_.last_prefill = rest;
    stats_.last_reused = keep;
    stats_.last_rewound = drop;
    stats_.prefill_tokens += rest;
    stats_.reused_tokens += keep;
    stats_.rewound_tokens += drop;
    return std::span<const token_id>(rendered_.data() + keep, rest);
  }

  /// The tokens in the model, as far as the session knows them (oldest first). A view
  /// into the session, valid until its next non-const call.
  [[nodiscard]] std::span<const token_id> tokens() const noexcept { return tokens_; }
  /// The session's cache statistics.
  [[nodiscard]] const chat_stats& stats() const noexcept { return stats_; }
  /// Details of the last failed prepare(); `code` is ok after a successful one.
  [[nodiscard]] const error_info& last_error() const noexcept { return error_; }
  /// The model.
  [[nodiscard]] M& model() const noexcept { return *model_; }

  /// The model's vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return model_->vocab_size(); }
  /// Tokens in the model.
  [[nodiscard]] std::size_t size() const noexcept { return model_->size(); }
  /// The model's next-token logits.
  [[nodiscard]] std::span<const float> logits() const noexcept { return model_->logits(); }
  /// Appends `t` to the model and records it. Errors: the model's; on error nothing is
  /// recorded (the model's state is what its append documents).
  [[nodiscard]] errc append(std::span<const token_id> t) {
    const errc e = model_->append(t);
    if (e == errc::ok) tokens_.insert(tokens_.end(), t.begin(), t.end());
    return e;
  }
  /// Drops the last `n` tokens of the model and of the record. Errors: the model's
  /// (rewind_out_of_range, rewind_failed); on error the record is unchanged.
  [[nodiscard]] errc rewind(std::size_t n) {
    const errc e = model_->rewind(n);
    if (e == errc::ok) tokens_.resize(n <= tokens_.size() ? tokens_.size() - n : 0);
    return e;
  }
  /// Appends `t` and writes the logits of every position (when the model can score).
  /// Errors: the model's; on error nothing is recorded.
  [[nodiscard]] errc score(std::span<const token_id> t, std::span<float> rows) requires Scoring<M> {
    const errc e = model_->score(t, rows);
    if (e == errc::ok) tokens_.insert(tokens_.end(), t.begin(), t.end());
    return e;
  }
  /// The model's context length (when it has one).
  [[nodiscard]] std::size_t context_length() const noexcept requires HasContextLength<M> {
    return model_->context_length();
  }

 private:
  M* model_;
  const R* renderer_;
  std::vector<token_id> tokens_;    // what the model holds, as far as the session knows
  std::vector<token_id> rendered_;  // the last rendering (reused buffer)
  bool started_ = false;            // tokens_ describes the model (after the first rewind)
  chat_stats stats_;
  error_info error_;
};

}  // namespace tandem::inline v0
