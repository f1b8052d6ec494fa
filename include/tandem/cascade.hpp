// tandem: the cascade block (k-stage cascades over generators, policies and traces,
// threshold search, guaranteed thresholds and the online escalation-rate controller).
#pragma once

#include "tandem/cascade/cascade.hpp"
#include "tandem/cascade/policy.hpp"
#include "tandem/cascade/threshold.hpp"
