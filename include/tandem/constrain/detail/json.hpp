// tandem: the JSON reader moved to core/detail/json.hpp (the HTTP backend reads JSON too,
// and a backend does not include constrain/); this name keeps existing includes working.
#pragma once

#include "tandem/core/detail/json.hpp"
