// tandem: named error values. tandem never throws; every runtime failure is one of these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tandem/core/config.hpp"

namespace tandem::inline v0 {

/// Error values returned by tandem functions. `errc::ok` (zero) means success. Each
/// function documents which of these it returns and the state it leaves behind.
///
/// Which codes belong here: a code is in core's errc when generic code must be able to
/// react to it without knowing the backend (retry, fall back to another model, escalate,
/// report). `network_error`, `http_error` and `timeout` qualify: any remote backend returns
/// them through the Generator concept, and a cascade or a router treats them alike
/// whichever generator failed. A condition that only one backend produces and only its
/// caller can act on gets no code of its own: it maps to the nearest generic code (a
/// llama.cpp decode failure is `decode_failed`, a refused model file `corrupt_file`) and
/// its specifics go to the `error_info` details or to the backend's own accessors (e.g.
/// `http_generator::last_status()`). Values are never renumbered; a new one goes last,
/// with a name in to_string() and errc_count moved past it.
// clang-format 14 mangles an attribute on an enum; keep this block as written.
// clang-format off
enum class [[nodiscard]] errc : std::uint8_t {
  ok = 0,               ///< success; never held by an error result
  invalid_argument,     ///< a parameter is outside its documented domain
  invalid_token,        ///< a token id outside [0, vocab_size)
  non_finite,           ///< NaN or +Inf in logits or probabilities (-Inf means "masked")
  no_candidates,        ///< every entry is masked (-Inf); no distribution exists
  empty_input,          ///< an input that must be non-empty is empty
  size_mismatch,        ///< spans that must have related sizes do not
  vocab_mismatch,       ///< models or tokenizers disagree on the vocabulary
  invalid_temperature,  ///< temperature <= 0 or non-finite where a distribution is needed
  rewind_out_of_range,  ///< rewind past the start of the sequence
  rewind_failed,        ///< the backend could not drop the tail (e.g. recurrent state)
  context_overflow,     ///< the sequence would exceed the model's context length
  decode_failed,        ///< the backend's forward pass failed
  capacity_exceeded,    ///< a caller-sized buffer or a reserved capacity is too small
  out_of_memory,        ///< an allocation failed
  insufficient_data,    ///< too little or one-class data to fit a model or a statistic
  file_not_found,       ///< a file could not be opened for reading
  io_error,             ///< reading or writing a file failed
  corrupt_file,         ///< bad magic, sizes, checksum or truncation
  unsupported_version,  ///< a file written by an incompatible format version
  parse_error,          ///< malformed text input
  not_found,            ///< a looked-up item (column, token, key) does not exist
  cancelled,            ///< the caller asked to stop
  timeout,              ///< a deadline or time budget passed
  network_error,        ///< connection refused, reset or unreachable
  http_error,           ///< a server answered with an error status
  unsupported,          ///< the operation is not supported by this model or build
  out_of_sync,          ///< parts of a combined model stand at different positions
  invalid_sequence,     ///< a sequence id that is not open in a multi-sequence model
  no_free_sequence,     ///< every sequence slot of a multi-sequence model is in use
  context_not_empty,    ///< generate() on a model that already holds tokens (continue_generation)
  constraint_violation, ///< a token the active output constraint does not allow here
  constraint_too_large, ///< compiling a constraint would exceed its state or size limit
  unknown_template,     ///< a chat template that this build cannot render (never a silent fallback)
};
// clang-format on

/// Number of error values: every errc lies in [0, errc_count). A test walks the range and
/// checks that each value has a distinct name and that errc_count itself has none, so a
/// new enumerator added without a name or without moving this constant fails it.
inline constexpr std::size_t errc_count = static_cast<std::size_t>(errc::unknown_template) + 1;

/// Stable lower-case name of an error value, e.g. "invalid_token". Never null.
[[nodiscard]] constexpr std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::ok:
      return "ok";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::invalid_token:
      return "invalid_token";
    case errc::non_finite:
      return "non_finite";
    case errc::no_candidates:
      return "no_candidates";
    case errc::empty_input:
      return "empty_input";
    case errc::size_mismatch:
      return "size_mismatch";
    case errc::vocab_mismatch:
      return "vocab_mismatch";
    case errc::invalid_temperature:
      return "invalid_temperature";
    case errc::rewind_out_of_range:
      return "rewind_out_of_range";
    case errc::rewind_failed:
      return "rewind_failed";
    case errc::context_overflow:
      return "context_overflow";
    case errc::decode_failed:
      return "decode_failed";
    case errc::capacity_exceeded:
      return "capacity_exceeded";
    case errc::out_of_memory:
      return "out_of_memory";
    case errc::insufficient_data:
      return "insufficient_data";
    case errc::file_not_found:
      return "file_not_found";
    case errc::io_error:
      return "io_error";
    case errc::corrupt_file:
      return "corrupt_file";
    case errc::unsupported_version:
      return "unsupported_version";
    case errc::parse_error:
      return "parse_error";
    case errc::not_found:
      return "not_found";
    case errc::cancelled:
      return "cancelled";
    case errc::timeout:
      return "timeout";
    case errc::network_error:
      return "network_error";
    case errc::http_error:
      return "http_error";
    case errc::unsupported:
      return "unsupported";
    case errc::out_of_sync:
      return "out_of_sync";
    case errc::invalid_sequence:
      return "invalid_sequence";
    case errc::no_free_sequence:
      return "no_free_sequence";
    case errc::context_not_empty:
      return "context_not_empty";
    case errc::constraint_violation:
      return "constraint_violation";
    case errc::constraint_too_large:
      return "constraint_too_large";
    case errc::unknown_template:
      return "unknown_template";
  }
  return "unknown";
}

/// True when `e` is `errc::ok`.
[[nodiscard]] constexpr bool ok(errc e) noexcept { return e == errc::ok; }

}  // namespace tandem::inline v0
