// tandem: the core layer (types, errors, concepts, logits kernels, samplers, the
// generation loop and the completion record).
#pragma once

#include "tandem/core/chat.hpp"
#include "tandem/core/completion.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/constraint.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/function_ref.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/generator.hpp"
#include "tandem/core/logits.hpp"
#include "tandem/core/multi_sequence.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/core/sequence_pool.hpp"
#include "tandem/core/stream_decoder.hpp"
#include "tandem/core/text_stream.hpp"
#include "tandem/core/types.hpp"
