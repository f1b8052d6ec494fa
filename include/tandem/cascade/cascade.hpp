// tandem: a k-stage cascade of text generators. Each stage answers, a confidence scorer
// and an optional calibrator turn the answer into a probability of being correct, and
// the policy accepts, escalates or abstains; every decision is traced.
#pragma once

#include <cmath>
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/cascade/policy.hpp"
#include "tandem/confidence/calibration.hpp"
#include "tandem/core/completion.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/function_ref.hpp"
#include "tandem/core/generator.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// Scores a stage's answer: the raw confidence that `answer` to `prompt` is correct.
using cascade_scorer =
    function_ref<result<double>(std::string_view prompt, const completion& answer)>;

/// One stage: a generator (owned), its cost per call, a scorer (borrowed: the callable
/// must outlive the cascade) and an optional calibrator applied to the raw score.
struct cascade_stage {
  /// Answers the request; owned by the stage.
  any_generator generator;
  double cost = 0;  ///< added to the run's cost when the stage runs (plus completion::cost)
  /// Raw confidence in the answer; the callable is borrowed.
  cascade_scorer scorer;
  /// Maps the raw score to a probability; without one the raw score is used as it is.
  std::optional<calibrator> calibration{};
};

/// What a cascade run returns: the accepted answer (none on abstention), the total cost
/// and the decision trace.
struct cascade_result {
  std::optional<completion> answer;  ///< empty when the cascade abstained
  std::size_t answered_by = 0;       ///< stage index of the answer (when there is one)
  double cost = 0;                   ///< sum over the stages that ran
  /// One entry per stage that ran, in order.
  std::vector<cascade_trace_entry> trace;
};

/// A cascade over owned stages and a policy. Move-only (stages own generators).
class cascade {
 public:
  /// An empty cascade: no stages and no policy (run() returns invalid_argument).
  cascade() = default;

  /// Adds a stage (its index is the current stage count). Errors: invalid_argument (a
  /// negative or non-finite cost); the cascade is then unchanged.
  [[nodiscard]] errc add_stage(cascade_stage stage) {
    if (!(stage.cost >= 0.0) || !std::isfinite(stage.cost)) return errc::invalid_argument;
    stages_.push_back(std::move(stage));
    return errc::ok;
  }

  /// Sets the policy. Errors: those of policy.validate(stage count); the old policy stays.
  [[nodiscard]] errc set_policy(cascade_policy policy) {
    TANDEM_TRY(policy.validate(stages_.size()));
    policy_ = std::move(policy);
    return errc::ok;
  }

  /// The current policy (empty until set_policy succeeds).
  [[nodiscard]] const cascade_policy& policy() const noexcept { return policy_; }
  /// Number of stages added.
  [[nodiscard]] std::size_t size() const noexcept { return stages_.size(); }

  /// Runs `request` through the stages in policy order until one accepts or the policy
  /// abstains. Errors: invalid_argument (no valid policy for the current stages), and
  /// the first error of a generator, scorer or calibrator, non_finite (a NaN score after
  /// calibration) (the run stops there; the partial trace is lost). Calls each stage's
  /// generator at most once.
  [[nodiscard]] result<cascade_result> run(const generate_request& request) {
    if (policy_.validate(stages_.size()) != errc::ok) return errc::invalid_argument;
    cascade_result out;
    out.trace.reserve(policy_.order.size());
    for (std::size_t r = 0; r < policy_.order.size(); ++r) {
      const std::size_t s = policy_.order[r];
      cascade_stage& st = stages_[s];
      auto c = st.generator.generate(request);
      if (!c) return c.error();
      const double cost = st.cost + c->cost;
      out.cost += cost;
      auto raw = st.scorer(request.prompt, *c);
      if (!raw) return raw.error();
      double score = *raw;
      if (st.calibration) {
        auto p = st.calibration->apply(score);
        if (!p) return p.error();
        score = *p;
      }
      if (std::isnan(score)) return errc::non_finite;
      const cascade_decision d = policy_.decide(r, score);
      out.trace.push_back({s, score, policy_.accept[r], cost, d});
      if (d == cascade_decision::accept) {
        out.answer = std::move(*c);
        out.answered_by = s;
      }
      if (d != cascade_decision::escalate) break;
    }
    return out;
  }

 private:
  std::vector<cascade_stage> stages_;
  cascade_policy policy_;
};

}  // namespace tandem::inline v0
