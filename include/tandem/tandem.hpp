// tandem: umbrella header over the core layer and the building blocks that need no Eigen:
// what an application needs at run time, at a compile cost of about one second per
// translation unit (README, "Compile cost"). Included by name instead:
// - the blocks built on Eigen: the routers (<tandem/router.hpp>) and the consistency and
//   learned confidence estimators (<tandem/confidence/consistency.hpp>,
//   <tandem/confidence/learned.hpp>, or all of <tandem/confidence.hpp>);
// - the opt-in targets: the backends, and replay evaluation (tandem::eval,
//   <tandem/eval.hpp>).
#pragma once

#include "tandem/batch.hpp"
#include "tandem/cascade.hpp"
#include "tandem/confidence/calibration.hpp"
#include "tandem/confidence/metrics.hpp"
#include "tandem/confidence/verbalized.hpp"
#include "tandem/confidence/white_box.hpp"
#include "tandem/contrastive.hpp"
#include "tandem/core.hpp"
#include "tandem/speculative.hpp"
