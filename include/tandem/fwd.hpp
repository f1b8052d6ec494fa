// tandem: forward declarations, so an application's own headers can name tandem's types
// (in declarations, pointers, references and function signatures) without paying for
// their definitions. Includes only errc.hpp (an opaque declaration of errc would make
// the [[nodiscard]] of its definition a warning). Include the real header where a type is
// used: <tandem/core.hpp>, <tandem/speculative.hpp>, ...
#pragma once

#include "tandem/core/errc.hpp"

namespace tandem::inline v0 {

/// Details of the last failure (tandem/core/error_info.hpp).
struct error_info;
/// A `T` or an errc (tandem/core/result.hpp).
template <class T>
class result;
/// The record of one generation (tandem/core/completion.hpp).
struct completion;
/// The deterministic random generator (tandem/core/rng.hpp).
class rng;
/// Samplers (tandem/core/sampler.hpp).
template <class Unused>
class basic_greedy_sampler;
using greedy_sampler = basic_greedy_sampler<void>;
template <class Unused>
class basic_categorical_sampler;
using categorical_sampler = basic_categorical_sampler<void>;
template <class Unused>
class basic_sampler_chain;
using sampler_chain = basic_sampler_chain<void>;
/// Type-erased generators (tandem/core/generator.hpp).
class any_generator;
class generator_ref;
/// Draft-length policies (tandem/speculative/draft_length.hpp).
struct fixed_draft;
class adaptive_draft;
class cost_model_draft;
/// The speculative decoder (tandem/speculative/decoder.hpp); its third parameter
/// defaults to adaptive_draft there.
template <class Target, class D, class Policy>
class speculative_decoder;

}  // namespace tandem::inline v0
