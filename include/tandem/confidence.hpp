// tandem: the confidence block (white-box, consistency, verbalized and learned
// estimators, calibrators, and the metrics that judge them).
#pragma once

#include "tandem/confidence/calibration.hpp"
#include "tandem/confidence/consistency.hpp"
#include "tandem/confidence/learned.hpp"
#include "tandem/confidence/metrics.hpp"
#include "tandem/confidence/verbalized.hpp"
#include "tandem/confidence/white_box.hpp"
