// tandem: basic vocabulary types shared by every block.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tandem/core/config.hpp"

namespace tandem::inline v0 {

/// A token id: an index into a model's vocabulary, in [0, vocab_size).
using token_id = std::int32_t;

/// "No token": returned where a token may be absent (e.g. a constraint with no single forced
/// token). Never a valid id.
inline constexpr token_id no_token = -1;

/// What a per-token callback asks the caller to do next.
enum class control : std::uint8_t {
  proceed,  ///< keep generating
  stop,     ///< stop now; the token just reported is kept
};

}  // namespace tandem::inline v0
