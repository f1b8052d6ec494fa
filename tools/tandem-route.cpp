// tandem-route: trains a query router on recorded outcome tables and replays it on held-out
// queries (quality-cost curve, APGR, CPT, AIQ, references), or saves it for later use.
//
//   tandem-route eval --data DIR_OR_CSV... --models A,B --costs A=1,B=20 [options]
//   tandem-route train --data ... --models ... --save router.bin [options]
//   tandem-route predict --router router.bin --prompt TEXT
//
// Output of eval: one JSON object on stdout. Errors: a message on stderr and exit status 2
// (bad command line) or 1 (bad data).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "tandem/eval/csv.hpp"
#include "tandem/eval/outcome_table.hpp"
#include "tandem/eval/replay.hpp"
#include "tandem/router/policy.hpp"
#include "tandem/router/router.hpp"
#include "tool_common.hpp"

const char* tandem_tool::tool_name() { return "tandem-route"; }

namespace {

using namespace tandem_tool;

constexpr const char* help_text = R"(usage: tandem-route <command> [options]

commands:
  eval      train on one split, replay on the other, print one JSON object
  train     train on all rows of --data (or --train) and write --save
  predict   print each model's predicted quality for --prompt with a saved --router

data options (eval, train):
  --data PATH...           CSV files or directories of CSV files (rows concatenated)
  --train PATH... --test PATH...   explicit splits instead of --train-fraction
  --models A,B,...         quality columns (True/False, true/false, 1/0 or a float in [0,1])
  --costs A=1,B=20         fixed cost per model, or
  --cost-suffix SUFFIX     per-row cost in column <model><SUFFIX>
  --prompt-column NAME     query text column (default prompt)
  --train-fraction F       share of rows for training (default 0.7)
  --seed N                 split and fitting seed (default 0)
  --exclude-prompts FILE   JSONL; lines with a train_prompt, eval_prompt or prompt field are removed
router options:
  --predictor KIND         joint (default: one logistic regression over all models, each
                           model anchored to the cheapest one), ensemble (logistic + k-NN),
                           logistic, knn, mf
  --save PATH              write the fitted router
output options (eval):
  --svg PATH               plot the quality-cost curve with single models and the oracle
  --curve-points N         at most N curve points in the JSON (default 201, 0 = all)
)";

struct args : data_args, output_args {
  std::string command;
  std::string predictor = "joint";
  std::optional<std::string> save, router_path, prompt;
};

args parse_args(int argc, char** argv) {
  args a;
  if (argc < 2) usage_error("missing command");
  a.command = argv[1];
  if (a.command == "--help" || a.command == "-h") print_help(help_text);
  if (a.command != "eval" && a.command != "train" && a.command != "predict")
    usage_error("unknown command '" + a.command + "'");
  for (int i = 2; i < argc; ++i) {
    if (parse_data_flag(argc, argv, i, a) || parse_output_flag(argc, argv, i, a)) continue;
    const std::string flag = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      print_help(help_text);
    } else if (flag == "--predictor") {
      a.predictor = value();
      if (a.predictor != "joint" && a.predictor != "ensemble" && a.predictor != "logistic" &&
          a.predictor != "knn" && a.predictor != "mf")
        usage_error("--predictor must be joint, ensemble, logistic, knn or mf");
    } else if (flag == "--save") {
      a.save = value();
    } else if (flag == "--router") {
      a.router_path = value();
    } else if (flag == "--prompt") {
      a.prompt = value();
    } else {
      usage_error("unknown flag '" + flag + "'");
    }
  }
  if (a.command == "predict") {
    if (!a.router_path || !a.prompt) usage_error("predict needs --router and --prompt");
    return a;
  }
  check_data_args(a, a.command == "eval");
  if (a.command == "train" && !a.save) usage_error("train needs --save");
  return a;
}

tandem::router_predictor predictor_kind(const std::string& s) {
  if (s == "logistic") return tandem::router_predictor::logistic;
  if (s == "knn") return tandem::router_predictor::knn;
  if (s == "mf") return tandem::router_predictor::factorization;
  if (s == "ensemble") return tandem::router_predictor::ensemble;
  return tandem::router_predictor::joint;
}

int run_predict(const args& a) {
  auto r = tandem::router::load(a.router_path->c_str());
  if (!r)
    die(1, "cannot load router '" + *a.router_path +
               "': " + std::string(tandem::to_string(r.error())));
  std::vector<double> q(r->models().size());
  const tandem::errc e = r->predict(*a.prompt, q);
  if (e != tandem::errc::ok) die(1, "prediction failed: " + std::string(tandem::to_string(e)));
  json out;
  for (std::size_t j = 0; j < q.size(); ++j) out[r->models()[j]] = q[j];
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const args a = parse_args(argc, argv);
  if (a.command == "predict") return run_predict(a);

  loaded_tables data = load_splits(a, a.command == "eval");
  const tandem::outcome_table& train = data.train;
  const tandem::outcome_table& test = data.test;
  const tandem::outcome_load_stats& stats = data.stats;
  const std::size_t n_excluded = data.n_excluded;

  const std::size_t m = a.models.size();
  tandem::router_options ro;
  ro.predictor = predictor_kind(a.predictor);
  ro.seed = a.seed;
  // The joint predictor anchors every model to the cheapest (by mean training cost).
  {
    std::vector<double> mean_cost(m, 0.0);
    for (std::size_t i = 0; i < train.size(); ++i)
      for (std::size_t j = 0; j < m; ++j) mean_cost[j] += train.cost[i * m + j];
    ro.reference = static_cast<std::size_t>(std::min_element(mean_cost.begin(), mean_cost.end()) -
                                            mean_cost.begin());
  }
  tandem::router router;
  const tandem::errc fe = router.fit(train.prompts, train.quality, train.models, ro);
  if (fe != tandem::errc::ok)
    die(1, "fitting the router failed: " + std::string(tandem::to_string(fe)) +
               (fe == tandem::errc::insufficient_data
                    ? " (a model has the same quality on every training row)"
                    : ""));
  if (a.save) {
    const tandem::errc se = router.save(a.save->c_str());
    if (se != tandem::errc::ok)
      die(1, "cannot save router to '" + *a.save + "': " + std::string(tandem::to_string(se)));
  }
  if (a.command == "train") {
    json out;
    out["n_train"] = train.size();
    out["n_dropped"] = stats.dropped;
    out["n_excluded"] = n_excluded;
    out["saved"] = *a.save;
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }

  // Predict every test query.
  const std::size_t n = test.size();
  std::vector<double> pred(n * m);
  for (std::size_t i = 0; i < n; ++i) {
    const tandem::errc e =
        router.predict(test.prompts[i], std::span<double>(pred.data() + i * m, m));
    if (e != tandem::errc::ok) die(1, "prediction failed: " + std::string(tandem::to_string(e)));
  }

  // Single models, the cheapest and the most expensive.
  const single_models sm = find_single_models(test, a.models);
  const std::vector<tandem::curve_point>& singles = sm.points;
  const std::size_t cheap = sm.cheap, dear = sm.dear, best = sm.best;
  const double c_lo = singles[cheap].cost, c_hi = singles[dear].cost;

  // Two-model view: cheapest vs most expensive, ranked by predicted win.
  two_model_view view;
  if (m >= 2 && cheap != dear) {
    std::vector<double> win(n);
    for (std::size_t i = 0; i < n; ++i) win[i] = pred[i * m + dear] - pred[i * m + cheap];
    view = make_two_model_view(test, cheap, dear, std::move(win), false);
  }
  const std::optional<tandem::two_model_metrics>& pair = view.pair;
  const std::optional<tandem::two_model_metrics>& pair_oracle = view.pair_oracle;

  // The router's curve: the threshold sweep for two models, the lambda sweep for more.
  std::vector<tandem::curve_point> curve, oracle;
  if (m == 2 && cheap != dear) {
    curve = view.curve;
    oracle = view.oracle;
  } else {
    curve = *tandem::lambda_sweep_curve({pred, test.quality, test.cost, m}, dear);
    oracle = *tandem::lambda_sweep_curve({test.quality, test.quality, test.cost, m}, dear);
  }
  std::optional<double> router_aiq, oracle_aiq, random_aiq;
  if (c_hi > c_lo) {
    if (auto v = tandem::aiq(curve, c_lo, c_hi)) router_aiq = *v;
    if (auto v = tandem::aiq(oracle, c_lo, c_hi)) oracle_aiq = *v;
    if (auto v = tandem::aiq(singles, c_lo, c_hi)) random_aiq = *v;
  }
  const double best_q = singles[best].quality;
  const auto reach = tandem::cost_reaching(curve, best_q - 1e-12);

  json out = summary_json({train.size(), n, stats.dropped, n_excluded}, sm, a.models, pair,
                          router_aiq, reach);
  json router_info;
  router_info["predictor"] = a.predictor;
  if (ro.predictor == tandem::router_predictor::logistic ||
      ro.predictor == tandem::router_predictor::ensemble ||
      ro.predictor == tandem::router_predictor::joint)
    router_info["l2"] = router.chosen_l2();
  if (ro.predictor == tandem::router_predictor::joint)
    router_info["reference"] = a.models[ro.reference];
  if (ro.predictor == tandem::router_predictor::ensemble)
    router_info["logistic_weight"] = router.blend_weight();
  if (const tandem::knn_predictor* knn = router.knn()) {
    router_info["knn_k"] = knn->options().k;
    router_info["knn_prior"] = knn->options().prior;
    router_info["knn_power"] = knn->options().power;
  }
  out["router"] = router_info;
  json refs;
  refs["random"] = {{"apgr", pair ? json(0.5) : json(nullptr)}, {"aiq", nullable(random_aiq)}};
  refs["oracle"] = {{"apgr", pair_oracle ? json(pair_oracle->apgr) : json(nullptr)},
                    {"cpt50", pair_oracle ? json(pair_oracle->cpt50) : json(nullptr)},
                    {"aiq", nullable(oracle_aiq)}};
  out["references"] = refs;
  out["curve"] = points_json(curve, a.curve_points, m == 2);
  std::printf("%s\n", out.dump().c_str());
  if (a.svg) write_svg(*a.svg, curve, oracle, singles, a.models);
  return 0;
}
