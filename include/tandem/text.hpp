// tandem: text in, text out. One call from an opened model (a session and its tokenizer,
// see backends/ngram_text.hpp and backends/llama_cpp_text.hpp) and a prompt to a
// completion: plain, speculative with a draft model, or contrastive against an amateur.
/// \file
/// The one-call path. Each call starts from a fresh context (it rewinds the sessions),
/// builds the sampler of `request.sampling`, and returns the completion or a named error
/// with its context in `*info`. It allocates (sampler, decoder buffers, completion): for
/// a loop that must not allocate per token, keep a model_generator, speculative_decoder
/// or contrastive_model instead.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "tandem/contrastive/combine.hpp"
#include "tandem/contrastive/combined_model.hpp"
#include "tandem/core/completion.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative/decoder.hpp"
#include "tandem/speculative/drafter.hpp"

namespace tandem::inline v0 {

/// An opened model: a Rewindable session and the Tokenizer of its vocabulary, as the
/// backends' one-call openers return them (ngram_text_model, llama_text_model).
template <class M>
concept TextModel = requires(M& m) {
  requires Rewindable<std::remove_reference_t<decltype(m.session())>>;
  requires Tokenizer<std::remove_cvref_t<decltype(m.tokenizer())>>;
};

namespace detail {

/// Rewinds `m` to an empty context.
template <class M>
errc rewind_all(M& m, error_info* info, const char* which) {
  const auto held = static_cast<std::size_t>(m.size());
  if (held == 0) return errc::ok;
  const errc e = m.rewind(held);
  if (e != errc::ok) return fail(info, e, "%s: could not rewind %zu tokens", which, held);
  return errc::ok;
}

/// Encodes the request's prompt with `tok` into `ids` and makes its sampler.
template <class T>
result<sampler_chain> text_prepare(const T& tok, const generate_request& req,
                                   std::vector<token_id>& ids, error_info* info) {
  if (const errc e = tok.encode(req.prompt, ids); e != errc::ok)
    return fail(info, e, "the prompt could not be encoded");
  if (ids.empty()) return fail(info, errc::empty_input, "the prompt encodes to no tokens");
  auto s = make_sampler(req.sampling, static_cast<std::size_t>(tok.vocab_size()));
  if (!s) return fail(info, s.error(), "request.sampling is out of range");
  return s;
}

/// The completion, or the error when nothing was generated.
inline result<completion> text_result(errc e, completion&& out, error_info* info) {
  if (e != errc::ok) {
    if (info != nullptr && !*info) (void)fail(info, e);
    if (out.tokens.empty()) return e;
  }
  return std::move(out);
}

}  // namespace detail

/// Generates a completion of `request.prompt` with `m`'s session and tokenizer, from an
/// empty context. Errors (details in `*info` when not null): the tokenizer's encode
/// error, `empty_input`, make_sampler's errors, the session's rewind error, then those
/// of generate(); a run cut short after some tokens returns its partial completion
/// (`finish_reason::error`, `error` set). State left: the session holds the prompt and
/// the generated tokens.
template <TextModel M>
[[nodiscard]] result<completion> complete(M& m, const generate_request& request,
                                          error_info* info = nullptr) {
  auto& session = m.session();
  const auto& tok = m.tokenizer();
  std::vector<token_id> ids;
  auto sampler = detail::text_prepare(tok, request, ids, info);
  if (!sampler) return sampler.error();
  TANDEM_TRY(detail::rewind_all(session, info, "session"));
  completion out;
  errc e = errc::ok;
  if (request.on_token)
    e = generate(session, tok, *sampler, ids, request.options, out, *request.on_token);
  else
    e = generate(session, tok, *sampler, ids, request.options, out);
  if (e == errc::vocab_mismatch)
    (void)detail::fail(info, e, "tokenizer vocabulary %zu, model vocabulary %zu",
                       static_cast<std::size_t>(tok.vocab_size()),
                       static_cast<std::size_t>(session.vocab_size()));
  return detail::text_result(e, std::move(out), info);
}

/// Speculative decoding: `draft`'s session drafts (greedily), `target`'s verifies, and
/// the text is rendered with the target's tokenizer. With greedy sampling (the default
/// request.sampling) the output equals complete(target, request) exactly. Errors as
/// complete(), plus `vocab_mismatch` (draft and target vocabularies differ; both sizes in
/// `*info`) and those of speculative_decoder::generate(). State left: both sessions hold
/// a prefix of the prompt and the generated tokens.
template <TextModel Target, TextModel Draft>
[[nodiscard]] result<completion> complete_speculative(Target& target, Draft& draft,
                                                      const generate_request& request,
                                                      error_info* info = nullptr) {
  auto& ts = target.session();
  auto& ds = draft.session();
  const auto tv = static_cast<std::size_t>(ts.vocab_size());
  const auto dv = static_cast<std::size_t>(ds.vocab_size());
  if (tv != dv)
    return detail::fail(info, errc::vocab_mismatch, "draft vocabulary %zu, target vocabulary %zu",
                        dv, tv);
  const auto& tok = target.tokenizer();
  std::vector<token_id> ids;
  auto sampler = detail::text_prepare(tok, request, ids, info);
  if (!sampler) return sampler.error();
  TANDEM_TRY(detail::rewind_all(ts, info, "target session"));
  TANDEM_TRY(detail::rewind_all(ds, info, "draft session"));
  using draft_session = std::remove_reference_t<decltype(ds)>;
  model_drafter<draft_session, greedy_sampler> drafter(ds, greedy_sampler{});
  speculative_decoder<std::remove_reference_t<decltype(ts)>, decltype(drafter)> decoder(ts,
                                                                                        drafter);
  completion out;
  errc e = errc::ok;
  if (request.on_token)
    e = decoder.generate(tok, *sampler, ids, request.options, out, *request.on_token);
  else
    e = decoder.generate(tok, *sampler, ids, request.options, out);
  if (e != errc::ok && info != nullptr) *info = decoder.last_error();
  return detail::text_result(e, std::move(out), info);
}

/// Contrastive decoding of `expert` against `amateur` (contrastive_model with `params`),
/// rendered with the expert's tokenizer. Errors as complete(), plus make_contrastive's
/// (`vocab_mismatch` with both sizes in `*info`, `invalid_argument` for params out of
/// range). State left: both sessions hold the prompt and the generated tokens.
template <TextModel Expert, TextModel Amateur>
[[nodiscard]] result<completion> complete_contrastive(Expert& expert, Amateur& amateur,
                                                      const generate_request& request,
                                                      const contrastive_options& params = {},
                                                      error_info* info = nullptr) {
  auto& es = expert.session();
  auto& as = amateur.session();
  const auto& tok = expert.tokenizer();
  std::vector<token_id> ids;
  auto sampler = detail::text_prepare(tok, request, ids, info);
  if (!sampler) return sampler.error();
  TANDEM_TRY(detail::rewind_all(es, info, "expert session"));
  TANDEM_TRY(detail::rewind_all(as, info, "amateur session"));
  auto model = make_contrastive(es, as, params, info);
  if (!model) return model.error();
  completion out;
  errc e = errc::ok;
  if (request.on_token)
    e = generate(*model, tok, *sampler, ids, request.options, out, *request.on_token);
  else
    e = generate(*model, tok, *sampler, ids, request.options, out);
  return detail::text_result(e, std::move(out), info);
}

}  // namespace tandem::inline v0
