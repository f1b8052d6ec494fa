// tandem: the router block (query featurizers, per-model quality predictors, routing
// policies).
#pragma once

#include "tandem/router/factorization.hpp"
#include "tandem/router/featurizer.hpp"
#include "tandem/router/joint_logistic.hpp"
#include "tandem/router/knn.hpp"
#include "tandem/router/logistic.hpp"
#include "tandem/router/policy.hpp"
#include "tandem/router/router.hpp"
