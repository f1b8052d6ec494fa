// tandem: the eval block (CSV reading, outcome tables, prompt lists, replay metrics: APGR,
// CPT, AIQ, SVG charts).
#pragma once

#include "tandem/eval/csv.hpp"
#include "tandem/eval/outcome_table.hpp"
#include "tandem/eval/prompt_list.hpp"
#include "tandem/eval/replay.hpp"
#include "tandem/eval/svg_chart.hpp"
