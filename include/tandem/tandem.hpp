// tandem: umbrella header over the core layer and the building blocks (never the
// opt-in backends, which are included by name).
#pragma once

#include "tandem/cascade.hpp"
#include "tandem/confidence.hpp"
#include "tandem/contrastive.hpp"
#include "tandem/core.hpp"
#include "tandem/eval.hpp"
#include "tandem/router.hpp"
#include "tandem/speculative.hpp"
