// tandem: umbrella header over the core layer and the building blocks: what an
// application needs at run time. Never the opt-in targets, which are included by name:
// the backends, and replay evaluation (tandem::eval, <tandem/eval.hpp>).
#pragma once

#include "tandem/batch.hpp"
#include "tandem/cascade.hpp"
#include "tandem/confidence.hpp"
#include "tandem/contrastive.hpp"
#include "tandem/core.hpp"
#include "tandem/router.hpp"
#include "tandem/speculative.hpp"
