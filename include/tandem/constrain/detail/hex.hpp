// tandem: hex_value() moved to core/detail/hex.hpp (the JSON reader, now in core/detail,
// uses it); this name keeps existing includes working.
#pragma once

#include "tandem/core/detail/hex.hpp"
