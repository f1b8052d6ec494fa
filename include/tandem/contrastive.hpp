// tandem: the contrastive block (contrastive decoding, proxy tuning and log-linear
// ensembles as combined LanguageModels; vocabulary maps between tokenizers).
#pragma once

#include "tandem/contrastive/combine.hpp"
#include "tandem/contrastive/combined_model.hpp"
#include "tandem/contrastive/vocab_map.hpp"
