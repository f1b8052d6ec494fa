// tandem (private): word splitting for the confidence block's text features. The one
// implementation lives in core/detail/hashed_features.hpp, shared with the router's
// featurizer; these names keep the block's spelling.
#pragma once

#include "tandem/core/config.hpp"
#include "tandem/core/detail/hashed_features.hpp"

namespace tandem::inline v0::detail::conf {
using detail::is_word_byte;
using detail::lower_ascii;
using detail::split_words;
}  // namespace tandem::inline v0::detail::conf
