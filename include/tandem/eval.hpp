// tandem: the eval block, an opt-in target of its own (tandem::eval; not part of
// tandem.hpp): CSV reading, outcome tables and replay metrics (APGR, CPT, AIQ) with the
// cross-validation helpers that evaluate routers and cascades on recorded outcomes.
#pragma once

#include "tandem/eval/csv.hpp"
#include "tandem/eval/outcome_table.hpp"
#include "tandem/eval/replay.hpp"
