// tandem: the generation loop. Feeds a prompt to a LanguageModel, then samples token by
// token until a stop rule fires, filling a caller-owned completion and streaming each
// token to an optional callback.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/core/completion.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/constraint.hpp"
#include "tandem/core/detail/light_std.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/logits.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/text_stream.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// The default per-token callback of generate(): ignores every event, never stops.
struct no_callback {
  /// Returns control::proceed.
  constexpr control operator()(const token_event&) const noexcept { return control::proceed; }
};

/// Token id of the closing event that only carries text held back until the end (see
/// generate()); it is not a generated token.
inline constexpr token_id flush_event_token = -1;

/// Upper bound on what generate() reserves up front (tokens per vector); longer
/// generations grow their vectors geometrically beyond it.
inline constexpr std::size_t generate_reserve_limit = std::size_t{1} << 16;

namespace detail {
/// The lvalue type through which generate() invokes a callback type `F`.
template <class F>
using callback_lvalue = std::remove_reference_t<F>&;
/// What a callback may return.
template <class R>
concept CallbackResult = std::is_void_v<R> || std::convertible_to<R, control>;
}  // namespace detail

/// A per-token callback (or a reference to one): invocable with `const token_event&`,
/// returning `control` (or void, meaning `control::proceed`).
template <class F>
concept TokenCallback = requires(detail::callback_lvalue<F> f, const token_event& ev) {
  { detail::invoke(f, ev) } -> detail::CallbackResult;
};

namespace detail {

/// Stands in for "no tokenizer" in the shared implementation.
struct no_tokenizer {};

template <class F>
control invoke_token_callback(F& f, const token_event& ev) {
  if constexpr (std::is_void_v<std::invoke_result_t<F&, const token_event&>>) {
    detail::invoke(f, ev);
    return control::proceed;
  } else {
    return static_cast<control>(detail::invoke(f, ev));
  }
}

/// Calls `s.accept(t)`, whose result may be errc or void.
template <class S>
errc accept_token(S& s, token_id t) {
  if constexpr (std::is_same_v<decltype(s.accept(t)), errc>) {
    return s.accept(t);
  } else {
    s.accept(t);
    return errc::ok;
  }
}

/// The per-token bookkeeping every generation loop shares (generate() and the
/// speculative decoder): validation of the request, the budget checks, keeping a token
/// (statistics, text, sampler history, stop strings, streaming event) and the closing
/// flush. A loop drives it as: `begin`, feed the prompt, then per candidate token
/// `budget_finish`, `is_stop_token`, `keep`; finally `end`. It owns nothing but the text
/// stream; `out`, the tokenizer, the options and the callback are borrowed.
template <class T, class F>
class token_emitter {
 public:
  static constexpr bool has_tok = !std::is_same_v<T, no_tokenizer>;
  using clock = std::chrono::steady_clock;

  token_emitter(const T& tok, const generation_options& opts, completion& out, F& on_token) noexcept
      : tok_(tok), opts_(opts), out_(out), on_token_(on_token), t0_(clock::now()) {
    out_.clear();
  }

  /// Validates the request against a model of `vocab` tokens and context length `ctx`
  /// already holding `used` tokens, then reserves `out`. Nothing is fed; on error the
  /// caller returns fail(e).
  errc begin(std::size_t vocab, std::span<const token_id> prompt, std::size_t used,
             std::size_t ctx) {
    vocab_ = vocab;
    if (prompt.empty()) return errc::empty_input;
    const auto valid = [this](token_id t) { return in_vocab(t); };
    if (!std::all_of(prompt.begin(), prompt.end(), valid)) return errc::invalid_token;
    if (!std::all_of(opts_.stop_tokens.begin(), opts_.stop_tokens.end(), valid))
      return errc::invalid_token;
    if constexpr (has_tok) {
      if (static_cast<std::size_t>(tok_.vocab_size()) != vocab) return errc::vocab_mismatch;
      TANDEM_TRY(stream_.start(out_.text, opts_.stop_strings));
    } else {
      if (!opts_.stop_strings.empty()) return errc::invalid_argument;
    }
    if (used > ctx || prompt.size() > ctx - used) return errc::context_overflow;

    out_.prompt_tokens = prompt.size();
    ctx_ = ctx;
    base_ = used + prompt.size();
    // At most one token more than the context has room for: the last one is never fed.
    const std::size_t room = ctx - base_;
    const std::size_t n_reserve =
        std::min({opts_.max_tokens, room < generate_reserve_limit ? room + 1 : room,
                  generate_reserve_limit});
    out_.tokens.reserve(n_reserve);
    if (opts_.record_logprobs) {
      out_.logprobs.reserve(n_reserve);
      out_.entropies.reserve(n_reserve);
    }
    if constexpr (has_tok) out_.text.reserve(n_reserve * 4);
    return errc::ok;
  }

  [[nodiscard]] bool in_vocab(token_id t) const noexcept {
    return t >= 0 && static_cast<std::size_t>(t) < vocab_;
  }

  /// The finish reason when the token budget or the deadline forbids another token,
  /// else finish_reason::none.
  [[nodiscard]] finish_reason budget_finish() const noexcept {
    if (out_.tokens.size() >= opts_.max_tokens) return finish_reason::length;
    if (opts_.deadline && clock::now() >= *opts_.deadline) return finish_reason::deadline;
    return finish_reason::none;
  }

  [[nodiscard]] bool is_stop_token(token_id t) const noexcept {
    return std::find(opts_.stop_tokens.begin(), opts_.stop_tokens.end(), t) !=
           opts_.stop_tokens.end();
  }

  /// What keeping a token did: an error (the token left no trace), or the reason it ended
  /// the generation (none: go on).
  struct kept {
    errc error = errc::ok;
    finish_reason finish = finish_reason::none;
  };

  /// Keeps token `t` (in the vocabulary, not a stop token) that the model chose from
  /// `logits`: records its statistics, renders its text, lets `sampler` accept it,
  /// appends it to `out` and reports it to the callback.
  template <class S>
  kept keep(token_id t, std::span<const float> logits, S& sampler) {
    constexpr float nan = std::numeric_limits<float>::quiet_NaN();
    float logprob = nan, entropy = nan;
    if (opts_.record_logprobs) {
      const result<kernels::token_logprob_entropy> st = kernels::token_stats(logits, t);
      if (!st) return {st.error(), finish_reason::none};
      logprob = st->logprob;
      entropy = st->entropy;
    }
    return keep_with(t, logprob, entropy, sampler);
  }

  /// Keeps token `t` that the output constraint forced (its only allowed token), as
  /// keep(): under the constrained distribution its log-probability and entropy are 0.
  template <class S>
  kept keep_forced(token_id t, S& sampler) {
    constexpr float nan = std::numeric_limits<float>::quiet_NaN();
    const float zero = opts_.record_logprobs ? 0.0f : nan;
    return keep_with(t, zero, zero, sampler);
  }

  /// keep() with the token's statistics given.
  template <class S>
  kept keep_with(token_id t, float logprob, float entropy, S& sampler) {
    // Text first (undoable), then the sampler's history, then the stream, so a failure
    // at any step leaves no trace of the token.
    std::string_view piece{};
    const std::size_t piece_from = stream_.released_size();
    const std::size_t text_before = out_.text.size();
    finish_reason fin = finish_reason::none;
    if constexpr (has_tok) {
      if (errc e = tok_.piece(t, out_.text); e != errc::ok) {
        out_.text.resize(text_before);
        return {e, finish_reason::none};
      }
    }
    if (errc e = accept_token(sampler, t); e != errc::ok) {
      out_.text.resize(text_before);
      return {e, finish_reason::none};
    }
    if constexpr (has_tok) {
      if (stream_.update().stopped) fin = finish_reason::stop_string;
      piece = std::string_view(out_.text).substr(piece_from, stream_.released_size() - piece_from);
    }

    out_.tokens.push_back(t);
    if (opts_.record_logprobs) {
      out_.logprobs.push_back(logprob);
      out_.entropies.push_back(entropy);
    }

    // When this token ends the generation, its event also carries the held-back text.
    // The context then holds every kept token but this one.
    if (fin == finish_reason::none) {
      if (out_.tokens.size() >= opts_.max_tokens)
        fin = finish_reason::length;
      else if (base_ + out_.tokens.size() - 1 >= ctx_)
        fin = finish_reason::context_full;
    }
    if constexpr (has_tok) {
      if (fin != finish_reason::none && !stream_.stopped()) {
        (void)stream_.flush();
        piece = std::string_view(out_.text).substr(piece_from);
      }
    }

    const token_event ev{t, out_.tokens.size() - 1, piece, logprob, entropy};
    const control c = invoke_token_callback(on_token_, ev);
    if (fin == finish_reason::none && c == control::stop) fin = finish_reason::cancelled;
    return {errc::ok, fin};
  }

  /// Records an error that stopped the generation before it started; returns `e`.
  errc fail(errc e) noexcept {
    out_.finish = finish_reason::error;
    out_.error = e;
    out_.seconds = std::chrono::duration<double>(clock::now() - t0_).count();
    return e;
  }

  /// Ends the generation: flushes held-back text in a closing event, then records `err`
  /// (when not ok) or the wall time. Returns `err`.
  errc end(errc err) {
    constexpr float nan = std::numeric_limits<float>::quiet_NaN();
    if constexpr (has_tok) {
      if (!stream_.stopped() && stream_.released_size() < out_.text.size()) {
        const std::string_view rest = stream_.flush();
        const token_event ev{flush_event_token, out_.tokens.size(), rest, nan, nan};
        (void)invoke_token_callback(on_token_, ev);
      }
    }
    if (err != errc::ok) return fail(err);
    out_.seconds = std::chrono::duration<double>(clock::now() - t0_).count();
    return errc::ok;
  }

 private:
  const T& tok_;
  const generation_options& opts_;
  completion& out_;
  F& on_token_;
  clock::time_point t0_;
  text_stream stream_;
  std::size_t vocab_ = 0, ctx_ = 0, base_ = 0;
};

/// Writes `logits` masked by the constraint `c` into `dst` (same size): entries `c` does
/// not allow become -Inf, and each of `stop_tokens` is allowed (its logit kept) exactly when
/// `c.can_end()`. Errors: the constraint's `mask` (size_mismatch). Allocates nothing.
inline errc constrain_logits(const constraint_ref& c, std::span<const float> logits,
                             std::span<float> dst, std::span<const token_id> stop_tokens) noexcept {
  std::copy(logits.begin(), logits.end(), dst.begin());
  TANDEM_TRY(c.mask(dst));
  const bool end = c.can_end();
  for (const token_id s : stop_tokens) {
    const auto i = static_cast<std::size_t>(s);
    if (s >= 0 && i < dst.size())
      dst[i] = end ? logits[i] : -std::numeric_limits<float>::infinity();
  }
  return errc::ok;
}

/// The token `c` forces next, or no_token: none when it allows several, and none when it
/// can end and a stop token other than its forced one could therefore be chosen.
inline token_id forced_token(const constraint_ref& c,
                             std::span<const token_id> stop_tokens) noexcept {
  const token_id t = c.forced();
  if (t == no_token || !c.can_end()) return t;
  for (const token_id s : stop_tokens)
    if (s != t) return no_token;
  return t;
}

/// Checks an output constraint against a generation over a vocabulary of `vocab` tokens:
/// invalid_argument when `fresh` and it is not at its start, vocab_mismatch when it was
/// compiled for a larger vocabulary; ok without one.
inline errc check_constraint(const constraint_ref& c, std::size_t vocab, bool fresh) noexcept {
  if (!c) return errc::ok;
  if (fresh && c.position() != 0) return errc::invalid_argument;
  if (c.vocab_size() > vocab) return errc::vocab_mismatch;
  return errc::ok;
}

/// Whether a generation starts from an empty context (generate()) or continues the one
/// the model holds (continue_generation()).
enum class context_use : bool { fresh, extend };

template <class M, class T, class S, class F>
errc generate_impl(M& model, const T& tok, S& sampler, std::span<const token_id> prompt,
                   const generation_options& opts, completion& out, F& on_token,
                   context_use use = context_use::fresh) {
  token_emitter<T, F> em(tok, opts, out, on_token);
  // Validation: nothing below touches the model on bad input.
  if (use == context_use::fresh && model.size() != 0) return em.fail(errc::context_not_empty);
  const std::size_t ctx = context_length_of(model);
  const auto vocab = static_cast<std::size_t>(model.vocab_size());
  if (errc e = em.begin(vocab, prompt, static_cast<std::size_t>(model.size()), ctx); e != errc::ok)
    return em.fail(e);
  const constraint_ref con = opts.constraint;
  if (errc e = check_constraint(con, vocab, use == context_use::fresh); e != errc::ok)
    return em.fail(e);
  std::vector<float> masked;  // the constrained logits: one buffer per call
  if (con) masked.resize(vocab);
  if (errc e = model.append(prompt); e != errc::ok) return em.fail(e);

  errc err = errc::ok;
  std::size_t fed = 0;  // kept tokens fed to the model; the rest are pending
  while (true) {
    if (const finish_reason f = em.budget_finish(); f != finish_reason::none) {
      out.finish = f;
      break;
    }
    if (con && con.is_complete()) {
      out.finish = finish_reason::constraint_complete;
      break;
    }
    token_id t = con ? forced_token(con, opts.stop_tokens) : no_token;
    const bool forced = t != no_token;
    std::span<const float> dist{};
    if (!forced) {
      // Feed the pending tokens (the last kept one, or a forced run) in one append.
      if (const std::size_t n = out.tokens.size() - fed; n > 0) {
        if (static_cast<std::size_t>(model.size()) + n > ctx) {
          out.finish = finish_reason::context_full;
          break;
        }
        const errc e = model.append(std::span<const token_id>(out.tokens.data() + fed, n));
        if (e == errc::context_overflow) {  // a model that does not report its length
          out.finish = finish_reason::context_full;
          break;
        }
        if (e != errc::ok) {
          err = e;
          break;
        }
        fed += n;
      }
      dist = model.logits();
      if (dist.size() != vocab) {
        err = errc::size_mismatch;
        break;
      }
      if (con) {
        if (err = constrain_logits(con, dist, masked, opts.stop_tokens); err != errc::ok) break;
        dist = masked;
      }
      const result<token_id> sampled = sampler.sample(dist);
      if (!sampled) {
        err = sampled.error();
        break;
      }
      t = *sampled;
    }
    if (!em.in_vocab(t)) {
      err = errc::invalid_token;
      break;
    }
    if (em.is_stop_token(t)) {
      out.finish = finish_reason::stop_token;
      break;
    }
    if (con) {
      if (err = con.advance(t); err != errc::ok) break;
    }
    const auto k = forced ? em.keep_forced(t, sampler) : em.keep(t, dist, sampler);
    if (k.error != errc::ok) {
      if (con) (void)con.rewind(1);  // the token left no trace
      err = k.error;
      break;
    }
    if (forced) ++out.forced_tokens;
    if (k.finish != finish_reason::none) {
      out.finish = k.finish;
      break;
    }
  }
  return em.end(err);
}

}  // namespace detail

/// Generates tokens after `prompt` (token level, no text), from an empty context: `model`
/// must hold no tokens (a fresh session, or one rewound to the start), so the same prompt
/// gives the same output however the model was used before. To go on from what the
/// model already holds (a multi-turn chat, a prompt cache), call continue_generation().
///
/// Feeds `prompt` to `model` in one append, then repeatedly samples from `model.logits()`
/// with `sampler`, keeps the token, reports it to `on_token` and feeds it, until a stop
/// rule fires. Rules, checked in this order for every token:
/// - `opts.max_tokens` tokens kept: finish `length` (0 gives no tokens);
/// - `opts.deadline` passed (checked before each token, std::chrono::steady_clock):
///   finish `deadline`;
/// - the model's context is full (context_length_of; or append returned
///   `context_overflow`): finish `context_full`;
/// - a token in `opts.stop_tokens` sampled: finish `stop_token`, the token is not kept
///   and not fed;
/// - `on_token` returned `control::stop`: finish `cancelled`, the token is kept. When the
///   token also ended the generation by another rule, that rule's reason wins.
///
/// Per kept token it calls `sampler.accept(token)` and, when `opts.record_logprobs`,
/// records log p(token) and the entropy of the model's distribution at temperature 1
/// (before the sampler's transforms) in `out.logprobs`/`out.entropies` (left empty
/// otherwise). The sampler is neither reset nor shown the prompt.
///
/// With an output constraint (`opts.constraint`, which must be at its start: position 0),
/// each step first ends the generation with finish `constraint_complete` when the
/// constraint is complete; else a token the constraint forces (`forced() != no_token`) is
/// kept without calling the sampler or the model (a forced run is fed to the model in one
/// append when logits are next needed; `out.forced_tokens` counts them, their recorded
/// logprob and entropy are 0, those of the constrained distribution); else the sampler sees
/// the model's logits masked by the constraint (copied into one buffer allocated per call),
/// with `opts.stop_tokens` allowed exactly when the constraint can end. The constraint
/// advances with every kept token. Logprobs and entropies are those of the masked
/// distribution. Stop strings still apply to the text.
///
/// `out` is cleared first and keeps its capacity; tokens are reserved up front
/// (max_tokens, bounded by the context's room and generate_reserve_limit), so a warm
/// loop with a reused completion and a non-allocating sampler allocates nothing, except,
/// with a constraint, the one masked-logits buffer of each call.
///
/// Returns `errc::ok` for every finish above. Errors, each also stored in `out.error`
/// with `out.finish == finish_reason::error`:
/// - before the model is touched: `context_not_empty` (`model.size() != 0`: rewind it,
///   or call continue_generation()), `empty_input` (empty prompt), `invalid_token` (a prompt
///   or stop token outside [0, vocab_size)), `invalid_argument` (stop strings given
///   without a tokenizer, or a constraint not at position 0), `vocab_mismatch` (a
///   constraint compiled for a larger vocabulary than the model's), `context_overflow` (the
///   prompt does not fit the context);
/// - while feeding the prompt: the model's append error (the model is unchanged);
/// - mid-run: the model's append error, the sampler's `sample` (or errc-returning
///   `accept`) error, `invalid_token` (a sampler returned an id outside the vocabulary),
///   `size_mismatch` (logits of the wrong size), the logits kernels' errors (`non_finite`),
///   the constraint's `mask`/`advance` errors (`constraint_violation` when a sampler picks a
///   masked token). The tokens kept so far stay in `out`.
///
/// State left: the model's context holds the prompt and the kept tokens, except the trailing
/// ones whose logits were never needed: the last kept token, and with a constraint the whole
/// forced run the generation ended in (forced tokens are fed together, before the next sampled
/// position). `model.size()` tells how many: `out.tokens` past `model.size() - prompt.size()`
/// were not fed (feed them before continuing). The sampler, and the constraint when given, have
/// accepted every kept token. `out` is owned by the caller.
template <LanguageModel M, Sampler S, TokenCallback OnToken = no_callback>
[[nodiscard]] errc generate(M& model, S& sampler, std::span<const token_id> prompt,
                            const generation_options& opts, completion& out,
                            OnToken&& on_token = {}) {
  return detail::generate_impl(model, detail::no_tokenizer{}, sampler, prompt, opts, out, on_token);
}

/// Generates tokens and text after the token ids `prompt` (encode text first with the
/// tokenizer's `encode`), from an empty context, as the overload above, also rendering each
/// kept token with `tokenizer.piece` into `out.text` and honouring `opts.stop_strings`.
///
/// Stop strings: when the text contains one, the text is cut just before its earliest
/// occurrence and the generation ends with finish `stop_string`. Every token generated up
/// to then stays in `out.tokens` (they were part of the model's output, so
/// `out.tokens` may decode to more text than `out.text`); the token that completed the
/// stop string is kept, reported and not fed.
///
/// Streaming: each event's `piece` is the text that became final with that token, which
/// may be empty or include earlier tokens' text: an incomplete UTF-8 character and any
/// suffix that could still grow into a stop string are held back until resolved. When
/// the token ends the generation by length, context or stop string, its event carries
/// all remaining text. If text is still held when the generation ends otherwise (stop
/// token, deadline, cancellation, error), one closing event with token
/// `flush_event_token`, index `out.tokens.size()` and NaN statistics carries it (its
/// return value is ignored). The pieces therefore concatenate exactly to `out.text`.
/// Bytes the tokenizer emits are passed through unchanged; malformed UTF-8 is not held
/// back for longer than it can still become a character.
///
/// Additional errors: `vocab_mismatch` (tokenizer and model vocabulary sizes differ),
/// `invalid_argument` (an empty stop string), both before the model is touched; the
/// tokenizer's `piece` error mid-run (that token is not kept). The tokenizer is not
/// owned and is used only during the call; `opts.stop_strings` is only viewed.
template <LanguageModel M, Tokenizer T, Sampler S, TokenCallback OnToken = no_callback>
[[nodiscard]] errc generate(M& model, const T& tokenizer, S& sampler,
                            std::span<const token_id> prompt, const generation_options& opts,
                            completion& out, OnToken&& on_token = {}) {
  return detail::generate_impl(model, tokenizer, sampler, prompt, opts, out, on_token);
}

/// As generate() (token level), but continues the context `model` already holds: `prompt`
/// is appended after it (a chat's next turn, or the uncached rest of a prompt), so the
/// output depends on everything fed before. On an empty model it is generate(). Errors
/// and state left as generate(), without `context_not_empty`; `context_overflow` counts
/// the tokens already held. A constraint may be at any position: it goes on from there
/// (e.g. resuming a constrained output cut short by `max_tokens`: pass the kept tokens the
/// model was not fed, see generate()'s "State left", as `prompt`).
template <LanguageModel M, Sampler S, TokenCallback OnToken = no_callback>
[[nodiscard]] errc continue_generation(M& model, S& sampler, std::span<const token_id> prompt,
                                       const generation_options& opts, completion& out,
                                       OnToken&& on_token = {}) {
  return detail::generate_impl(model, detail::no_tokenizer{}, sampler, prompt, opts, out, on_token,
                               detail::context_use::extend);
}

/// As generate() with a tokenizer (text, stop strings), continuing the context `model`
/// already holds; see the token-level continue_generation().
template <LanguageModel M, Tokenizer T, Sampler S, TokenCallback OnToken = no_callback>
[[nodiscard]] errc continue_generation(M& model, const T& tokenizer, S& sampler,
                                       std::span<const token_id> prompt,
                                       const generation_options& opts, completion& out,
                                       OnToken&& on_token = {}) {
  return detail::generate_impl(model, tokenizer, sampler, prompt, opts, out, on_token,
                               detail::context_use::extend);
}

}  // namespace tandem::inline v0
