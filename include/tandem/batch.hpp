// tandem: the batch block (the continuous-batching scheduler over a multi-sequence model,
// shared prefixes forked per request, k samples from one prefill, batched speculative
// decoding).
#pragma once

#include "tandem/batch/sample_k.hpp"
#include "tandem/batch/scheduler.hpp"
#include "tandem/batch/speculative.hpp"
