// tandem: output constraints (umbrella of tandem/constrain/). A token_vocabulary (each
// token's bytes), constraints compiled against it (a choice among strings, a regular
// expression, a JSON Schema) and constraint_state, which models tandem::Constraint. Not included by
// tandem.hpp.
#pragma once

#include "tandem/constrain/choice.hpp"
#include "tandem/constrain/compiled.hpp"
#include "tandem/constrain/json_schema.hpp"
#include "tandem/constrain/regex.hpp"
#include "tandem/constrain/vocabulary.hpp"
