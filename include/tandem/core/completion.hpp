// tandem: the completion record and the text-level Generator concept.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/core/constraint.hpp"
#include "tandem/core/detail/light_std.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/function_ref.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// Why a generation ended.
enum class finish_reason : std::uint8_t {
  none,          ///< not finished (or never started)
  length,        ///< max_tokens reached
  stop_token,    ///< a stop token (e.g. end of sequence) was sampled; it is not kept
  stop_string,   ///< the text ended with a stop string; it is removed from the text
  deadline,      ///< the deadline passed
  cancelled,     ///< the per-token callback asked to stop
  context_full,  ///< the model's context length was reached
  error,         ///< a backend or sampler error; see completion::error
  /// the output constraint (generation_options::constraint) was complete: no token but an
  /// end token could follow
  constraint_complete,
};

/// Stable lower-case name of a finish reason, e.g. "stop_string".
[[nodiscard]] constexpr std::string_view to_string(finish_reason r) noexcept {
  switch (r) {
    case finish_reason::none:
      return "none";
    case finish_reason::length:
      return "length";
    case finish_reason::stop_token:
      return "stop_token";
    case finish_reason::stop_string:
      return "stop_string";
    case finish_reason::deadline:
      return "deadline";
    case finish_reason::cancelled:
      return "cancelled";
    case finish_reason::context_full:
      return "context_full";
    case finish_reason::error:
      return "error";
    case finish_reason::constraint_complete:
      return "constraint_complete";
  }
  return "unknown";
}

/// What one generation produced. Reused across calls, it keeps its capacity, so a warm
/// loop allocates nothing per token.
struct completion {
  std::string text;              ///< generated text (empty when no tokenizer was given)
  std::vector<token_id> tokens;  ///< generated tokens, stop token excluded
  std::vector<float>
      logprobs;  ///< per token: log p under the model (temperature 1); NaN if unknown
  std::vector<float>
      entropies;  ///< per token: entropy (nats) of the model's distribution; NaN if unknown
  /// Why the generation ended.
  finish_reason finish = finish_reason::none;
  errc error = errc::ok;          ///< set when finish == finish_reason::error
  std::size_t prompt_tokens = 0;  ///< tokens fed as the prompt
  double cost = 0.0;              ///< caller-defined cost units (price x tokens, or seconds)
  double seconds = 0.0;           ///< wall time of the generation
  /// Tokens the output constraint forced (the only token it allowed), kept without sampling;
  /// 0 without a constraint.
  std::size_t forced_tokens = 0;

  /// Empties the record, keeping capacity.
  void clear() noexcept {
    text.clear();
    tokens.clear();
    logprobs.clear();
    entropies.clear();
    finish = finish_reason::none;
    error = errc::ok;
    prompt_tokens = 0;
    cost = 0.0;
    seconds = 0.0;
    forced_tokens = 0;
  }
};

/// One generated token as reported to a streaming callback.
struct token_event {
  token_id token = 0;      ///< the generated token
  std::size_t index = 0;   ///< position among the generated tokens (0 = first)
  std::string_view piece;  ///< the token's text when a tokenizer is known, else empty
  /// log p(token) under the model at temperature 1; NaN when not recorded or unknown
  float logprob = std::numeric_limits<float>::quiet_NaN();
  /// entropy (nats) of the model's distribution; NaN when not recorded or unknown
  float entropy = std::numeric_limits<float>::quiet_NaN();
};

/// Sampling settings understood by every Generator (text level). Defaults reproduce
/// plain greedy decoding.
struct sampling_options {
  float temperature = 0.0f;  ///< 0 means greedy; otherwise must be > 0
  std::size_t top_k = 0;     ///< 0 disables
  float top_p = 1.0f;        ///< 1 disables; must be in (0, 1]
  float min_p = 0.0f;        ///< 0 disables; must be in [0, 1]
  std::uint64_t seed = 0;    ///< seed of the explicit RNG
};

/// Options of one generation, token level and text level alike.
struct generation_options {
  std::size_t max_tokens = 128;                      ///< token budget
  std::span<const token_id> stop_tokens{};           ///< ends generation; not kept
  std::span<const std::string_view> stop_strings{};  ///< need a tokenizer; removed from text
  std::optional<std::chrono::steady_clock::time_point> deadline{};  ///< time budget
  bool record_logprobs = true;  ///< fill completion::logprobs/entropies
  /// Output constraint (a view: the state must outlive the call); empty: none. With one,
  /// only tokens it allows are sampled, a token it forces is kept without sampling, stop
  /// tokens are allowed exactly when it can end, and the generation ends when it is
  /// complete (see generate()). It advances with every kept token.
  constraint_ref constraint{};
};

/// Callback type used at the text level: sees every token as it is generated and may
/// stop the generation (cancellation).
using token_callback = function_ref<control(const token_event&)>;

/// A text-level request: the prompt plus options, sampling settings and an optional
/// streaming callback.
struct generate_request {
  std::string_view prompt;  ///< the prompt text; borrowed for the call
  /// budget, stops, deadline, logprob recording, output constraint (local generators reset
  /// it at the start of each request; remote ones refuse it with `unsupported`)
  generation_options options{};
  sampling_options sampling{};               ///< how tokens are chosen
  std::optional<token_callback> on_token{};  ///< streaming callback; may stop the generation
};

/// Produces a completion for a text request (a local model + tokenizer through
/// `model_generator`, or a remote engine). Returns the completion, or an error when
/// nothing could be generated; a generation cut short keeps its partial text with
/// `finish_reason::error`.
template <class G>
concept Generator = requires(G& g, const generate_request& req) {
  { g.generate(req) } -> std::same_as<result<completion>>;
};

}  // namespace tandem::inline v0
