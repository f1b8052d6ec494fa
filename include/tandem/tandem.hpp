// tandem: umbrella header over the core layer and the building blocks (never the
// opt-in backends, which are included by name).
#pragma once

#include "tandem/core.hpp"
