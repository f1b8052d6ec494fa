// tandem: speculative_generator, a speculative decoder as a text-level Generator (a
// cascade or router stage, an any_generator).
#pragma once

#include <cstddef>
#include <optional>
#include <type_traits>
#include <vector>

#include "tandem/core/completion.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/generator.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/core/types.hpp"
#include "tandem/speculative/decoder.hpp"

namespace tandem::inline v0 {

/// A Generator over a speculative decoder and the target's tokenizer: encodes the
/// request's prompt, builds a sampler from `request.sampling` with make_sampler, rewinds
/// the target to an empty context and runs the decoder's text-level generate(). Each
/// request is a fresh prompt: its answer does not depend on earlier requests (the
/// decoder's statistics and learned draft-length policy do accumulate).
///
/// Ownership: borrows the decoder (and through it the target and drafter) and the
/// tokenizer; they must outlive the adapter. Keeps a prompt buffer and the sampler,
/// reused while the sampling parameters (seed aside) stay the same. Not thread-safe.
template <class Decoder, Tokenizer T>
class speculative_generator {
 public:
  /// Wraps `decoder` and `tokenizer` (both borrowed).
  speculative_generator(Decoder& decoder, const T& tokenizer) noexcept
      : dec_(&decoder), tok_(&tokenizer) {}

  /// Generates a completion for `req` into `out` (cleared first; capacity kept).
  ///
  /// Errors, each also stored in `out.error` with `out.finish == finish_reason::error`:
  /// the tokenizer's encode error, `empty_input` (the prompt encodes to no tokens),
  /// make_sampler's errors (`invalid_temperature`, `invalid_argument`), all before the
  /// target is touched; the target's rewind error; then every error of the decoder's
  /// generate() (`vocab_mismatch` among them, with both sizes in the decoder's
  /// last_error()), with the partial completion kept.
  ///
  /// State left: the target holds this request's prompt and a prefix of its tokens.
  [[nodiscard]] errc generate(const generate_request& req, completion& out) {
    const auto fail = [&out](errc e) { return detail::fail_completion(out, e); };
    if (errc e = detail::start_request(*tok_, req, prompt_, out); e != errc::ok) return e;
    if (errc e = prepare_sampler(req.sampling); e != errc::ok) return fail(e);
    auto& target = dec_->target();
    if (const auto held = static_cast<std::size_t>(target.size()); held > 0) {
      if (errc e = target.rewind(held); e != errc::ok) return fail(e);
    }
    if (req.on_token)
      return dec_->generate(*tok_, *sampler_, prompt_, req.options, out, *req.on_token);
    return dec_->generate(*tok_, *sampler_, prompt_, req.options, out);
  }

  /// Generator interface: the completion, or the error when generation failed before
  /// producing any token (a run cut short mid-way returns its partial completion with
  /// `finish_reason::error` and `error` set). Errors as the overload above.
  [[nodiscard]] result<completion> generate(const generate_request& req) {
    completion out;
    if (errc e = generate(req, out); e != errc::ok && out.tokens.empty()) return e;
    return out;
  }

  /// The wrapped decoder (its statistics describe every request so far).
  [[nodiscard]] Decoder& decoder() noexcept { return *dec_; }
  /// The wrapped tokenizer.
  [[nodiscard]] const T& tokenizer() const noexcept { return *tok_; }

 private:
  errc prepare_sampler(const sampling_options& s) {
    const auto vocab = static_cast<std::size_t>(tok_->vocab_size());
    const bool same = sampler_ && sampler_vocab_ == vocab &&
                      s.temperature == sampling_.temperature && s.top_k == sampling_.top_k &&
                      s.top_p == sampling_.top_p && s.min_p == sampling_.min_p;
    if (same) {
      sampler_->reseed(s.seed);
      sampler_->reset();
      return errc::ok;
    }
    result<sampler_chain> made = make_sampler(s, vocab);
    if (!made) return made.error();
    sampler_.emplace(std::move(*made));
    sampling_ = s;
    sampler_vocab_ = vocab;
    return errc::ok;
  }

  Decoder* dec_;
  const T* tok_;
  std::vector<token_id> prompt_;
  std::optional<sampler_chain> sampler_;
  sampling_options sampling_{};
  std::size_t sampler_vocab_ = 0;
};

}  // namespace tandem::inline v0
