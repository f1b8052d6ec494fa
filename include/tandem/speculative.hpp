// tandem: speculative decoding. Drafters (a small model with rewind, prompt lookup),
// exact verification (greedy and rejection sampling), draft-length policies (fixed,
// +2/-1, cost model) and the speculative decoder over the generation loop.
#pragma once

#include "tandem/speculative/decoder.hpp"
#include "tandem/speculative/draft_length.hpp"
#include "tandem/speculative/drafter.hpp"
#include "tandem/speculative/generator.hpp"
#include "tandem/speculative/text_drafter.hpp"
