// tandem-cascade: fits a cascade (cheapest model first; a learned evaluator per stage
// scores its answer) on recorded outcome tables and replays it on held-out queries
// (quality-cost curve, APGR, CPT, AIQ), optionally choosing thresholds by budget, by
// escalation rate or with a risk guarantee.
//
//   tandem-cascade eval --data DIR_OR_CSV... --models A,B --costs A=1,B=20 [options]
//
// Output: one JSON object on stdout. Errors: a message on stderr and exit status 2 (bad
// command line) or 1 (bad data).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/cascade/policy.hpp"
#include "tandem/cascade/threshold.hpp"
#include "tandem/confidence/learned.hpp"
#include "tandem/confidence/metrics.hpp"
#include "tandem/eval/csv.hpp"
#include "tandem/eval/outcome_table.hpp"
#include "tandem/eval/replay.hpp"
#include "tool_common.hpp"

const char* tandem_tool::tool_name() { return "tandem-cascade"; }

namespace {

using namespace tandem_tool;

constexpr const char* help_text = R"(usage: tandem-cascade eval [options]

Stages run from the cheapest model (by mean training cost) to the dearest. Each stage but
the last is scored by a learned evaluator (hashed word n-grams of the query and of the
stage's answer, plus answer-shape features), fitted on the training split; escalating
pays the cost of every stage that ran.

data options:
  --data PATH...           CSV files or directories of CSV files (rows concatenated)
  --train PATH... --test PATH...   explicit splits instead of --train-fraction
  --models A,B,...         quality columns (True/False, true/false, 1/0 or a float in [0,1])
  --costs A=1,B=20         fixed cost per model, or
  --cost-suffix SUFFIX     per-row cost in column <model><SUFFIX>
  --prompt-column NAME     query text column (default prompt)
  --response-suffix SUFFIX column <model><SUFFIX> holds that model's answer text (without
                           it, stages are scored from the query alone)
  --train-fraction F       share of rows for training (default 0.7)
  --seed N                 split and fitting seed (default 0)
  --exclude-prompts FILE   JSONL; lines with a train_prompt, eval_prompt or prompt field are removed
scoring:
  --score KIND             gain (default): a stage's predicted probability of being right
                           minus the last stage's, predicted from the query alone (so
                           escalation goes first where it most likely helps);
                           confidence: the stage's predicted probability alone
policy options (each adds a policy fitted on training data and replayed on the test split):
  --budget B               best quality at mean cost <= B (order and thresholds searched)
  --escalation-rate R      escalate a share R of queries at the first stage
  --epsilon E              quality loss against always escalating <= E with
  --delta D                probability >= 1 - D (default 0.1), two stages
  --save PATH              write the last fitted policy
output options:
  --svg PATH               plot the quality-cost curve with single models and the oracle
  --curve-points N         at most N curve points in the JSON (default 201, 0 = all)
)";

struct args : data_args, output_args {
  std::string command;
  std::optional<std::string> response_suffix, save;
  bool gain = true;
  std::optional<double> budget, rate, epsilon;
  double delta = 0.1;
};

args parse_args(int argc, char** argv) {
  args a;
  if (argc < 2) usage_error("missing command");
  a.command = argv[1];
  if (a.command == "--help" || a.command == "-h") print_help(help_text);
  if (a.command != "eval") usage_error("unknown command '" + a.command + "'");
  for (int i = 2; i < argc; ++i) {
    if (parse_data_flag(argc, argv, i, a) || parse_output_flag(argc, argv, i, a)) continue;
    const std::string flag = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      print_help(help_text);
    } else if (flag == "--response-suffix") {
      a.response_suffix = value();
    } else if (flag == "--score") {
      const std::string v = value();
      if (v != "gain" && v != "confidence") usage_error("--score must be gain or confidence");
      a.gain = v == "gain";
    } else if (flag == "--budget") {
      a.budget = parse_double_arg(flag, value());
    } else if (flag == "--escalation-rate") {
      a.rate = parse_double_arg(flag, value());
      if (!(*a.rate >= 0 && *a.rate <= 1)) usage_error("--escalation-rate must be in [0, 1]");
    } else if (flag == "--epsilon") {
      a.epsilon = parse_double_arg(flag, value());
      if (!(*a.epsilon > 0 && *a.epsilon < 1)) usage_error("--epsilon must be in (0, 1)");
    } else if (flag == "--delta") {
      a.delta = parse_double_arg(flag, value());
      if (!(a.delta > 0 && a.delta < 1)) usage_error("--delta must be in (0, 1)");
    } else if (flag == "--save") {
      a.save = value();
    } else {
      usage_error("unknown flag '" + flag + "'");
    }
  }
  check_data_args(a, true);
  return a;
}

// Answer texts per prompt (first occurrence wins), one per model; empty when missing.
using response_map = std::map<std::string, std::vector<std::string>, std::less<>>;

response_map read_responses(const args& a, const std::vector<std::size_t>& scored) {
  response_map out;
  std::vector<std::string> paths = a.data;
  paths.insert(paths.end(), a.train.begin(), a.train.end());
  paths.insert(paths.end(), a.test.begin(), a.test.end());
  for (const std::string& f : expand_paths(paths)) {
    auto csv = tandem::read_csv_file(f.c_str());
    if (!csv) die(1, "cannot read CSV '" + f + "': " + std::string(tandem::to_string(csv.error())));
    auto pc = csv->column(a.prompt_column);
    if (!pc) die(1, "'" + f + "': missing column '" + a.prompt_column + "'");
    std::vector<std::size_t> rc(a.models.size(), 0);
    for (std::size_t j : scored) {
      const std::string name = a.models[j] + *a.response_suffix;
      auto c = csv->column(name);
      if (!c) die(1, "'" + f + "': missing column '" + name + "'");
      rc[j] = *c;
    }
    for (const auto& row : csv->rows) {
      if (*pc >= row.size()) continue;
      auto [it, fresh] = out.try_emplace(row[*pc], a.models.size());
      if (!fresh) continue;
      for (std::size_t j : scored)
        if (rc[j] < row.size()) it->second[j] = row[rc[j]];
    }
  }
  return out;
}

// General answer-shape features: log counts of words, lines, numbers and '=' signs in the
// answer, whether a line opens with a run of repeated punctuation (a final-answer marker),
// whether the answer ends in a number, and log counts of words and numbers in the query.
constexpr std::size_t n_shape = 8;
void shape_features(std::string_view q, std::string_view ans, double* out) {
  const auto count = [](std::string_view s, std::size_t& words, std::size_t& numbers,
                        std::size_t& lines, std::size_t& eq, bool& marker, bool& ends_num) {
    words = numbers = eq = 0;
    lines = s.empty() ? 0 : 1;
    marker = false;
    bool in_word = false, in_num = false, line_start = true;
    char last_tok = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
      const bool digit = c >= '0' && c <= '9';
      if (line_start && !space && i + 1 < s.size() && s[i + 1] == c &&
          !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || digit))
        marker = true;
      if (!space) line_start = false;
      if (c == '\n') {
        ++lines;
        line_start = true;
      }
      if (c == '=') ++eq;
      if (!space && !in_word) ++words;
      in_word = !space;
      if (digit && !in_num) ++numbers;
      in_num = digit || (in_num && (c == '.' || c == ',') && i + 1 < s.size() && s[i + 1] >= '0' &&
                         s[i + 1] <= '9');
      if (!space) last_tok = digit ? '0' : (c == '.' || c == '*' || c == '$' ? last_tok : 'a');
    }
    ends_num = last_tok == '0';
  };
  std::size_t w, n, l, e, qw, qn, ql, qe;
  bool mk, en, qmk, qen;
  count(ans, w, n, l, e, mk, en);
  count(q, qw, qn, ql, qe, qmk, qen);
  const double v[n_shape] = {std::log1p(double(w)),  std::log1p(double(l)), std::log1p(double(n)),
                             std::log1p(double(e)),  mk ? 1.0 : 0.0,        en ? 1.0 : 0.0,
                             std::log1p(double(qw)), std::log1p(double(qn))};
  std::copy(v, v + n_shape, out);
}

// Scores of stage j's answers: fits on `fit_rows` of `t` and predicts `pred_rows`.
struct stage_data {
  const tandem::outcome_table* t;
  const std::vector<std::string>* answers;  // per row of t
  std::vector<double> feats;                // per row of t, n_shape each
};

std::vector<double> fit_predict(const stage_data& d, std::size_t j,
                                const std::vector<std::size_t>& fit_rows, const stage_data& p,
                                const std::vector<std::size_t>& pred_rows, double l2) {
  std::vector<tandem::learned_example> ex;
  ex.reserve(fit_rows.size());
  for (std::size_t i : fit_rows)
    ex.push_back({d.t->prompts[i], (*d.answers)[i],
                  std::span<const double>(d.feats.data() + i * n_shape, n_shape),
                  d.t->q(i, j) >= 0.5 ? 1 : 0});
  tandem::learned_options lo;
  lo.l2 = l2;
  auto ev = tandem::learned_evaluator::train(ex, lo);
  std::vector<double> out(pred_rows.size(), 0.5);
  if (!ev) return out;  // one class: no information, a constant score
  for (std::size_t k = 0; k < pred_rows.size(); ++k) {
    const std::size_t i = pred_rows[k];
    auto s = ev->predict(p.t->prompts[i], (*p.answers)[i],
                         std::span<const double>(p.feats.data() + i * n_shape, n_shape));
    out[k] = s ? *s : 0.5;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const args a = parse_args(argc, argv);
  loaded_tables data = load_splits(a, true);
  tandem::outcome_table& train = data.train;
  tandem::outcome_table& test = data.test;
  const std::size_t m = a.models.size();

  // Stage order: by mean training cost, cheapest first (ties: --models order).
  std::vector<double> train_cost(m, 0.0);
  for (std::size_t i = 0; i < train.size(); ++i)
    for (std::size_t j = 0; j < m; ++j) train_cost[j] += train.c(i, j);
  std::vector<std::size_t> order(m);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t x, std::size_t y) { return train_cost[x] < train_cost[y]; });
  const std::vector<std::size_t> scored(order.begin(), order.end() - 1);

  // Answer texts of the scored stages; rows without one are dropped.
  std::size_t n_dropped = data.stats.dropped;
  std::vector<std::vector<std::string>> ans_train(m), ans_test(m);
  if (a.response_suffix) {
    const response_map resp = read_responses(a, scored);
    const auto attach = [&](tandem::outcome_table& t, std::vector<std::vector<std::string>>& ans) {
      std::vector<std::size_t> keep;
      for (std::size_t i = 0; i < t.size(); ++i) {
        auto it = resp.find(t.prompts[i]);
        bool ok = it != resp.end();
        for (std::size_t j : scored)
          ok = ok && !it->second[j].empty() &&
               std::string_view(it->second[j]).find_first_not_of(" \t\r\n") != std::string::npos;
        if (ok) keep.push_back(i);
      }
      n_dropped += t.size() - keep.size();
      if (keep.size() != t.size()) t = tandem::subset(t, keep);
      for (std::size_t j = 0; j < m; ++j) ans[j].assign(t.size(), std::string());
      for (std::size_t i = 0; i < t.size(); ++i)
        for (std::size_t j : scored) ans[j][i] = resp.find(t.prompts[i])->second[j];
    };
    attach(train, ans_train);
    attach(test, ans_test);
    if (train.size() == 0) die(1, "the training split is empty");
    if (test.size() == 0) die(1, "the test split is empty");
  } else {
    for (std::size_t j = 0; j < m; ++j) {
      ans_train[j].assign(train.size(), std::string());
      ans_test[j].assign(test.size(), std::string());
    }
  }
  const std::size_t n_tr = train.size(), n = test.size();

  // Per scored stage: out-of-fold training scores (for choosing thresholds) and test
  // scores from an evaluator fitted on the whole training split.
  std::vector<double> oof(n_tr * m, 1.0), score(n * m, 1.0);
  constexpr std::size_t folds = 5;
  std::vector<double> chosen_l2(m, 0.0), oof_auroc(m, 0.0);
  std::vector<std::size_t> all_tr(n_tr), all_te(n);
  std::iota(all_tr.begin(), all_tr.end(), std::size_t{0});
  std::iota(all_te.begin(), all_te.end(), std::size_t{0});
  std::vector<std::size_t> fitted = scored;
  if (a.gain) fitted.push_back(order.back());
  for (std::size_t j : fitted) {
    stage_data dtr{&train, &ans_train[j], std::vector<double>(n_tr * n_shape)};
    stage_data dte{&test, &ans_test[j], std::vector<double>(n * n_shape)};
    for (std::size_t i = 0; i < n_tr; ++i)
      shape_features(train.prompts[i], ans_train[j][i], dtr.feats.data() + i * n_shape);
    for (std::size_t i = 0; i < n; ++i)
      shape_features(test.prompts[i], ans_test[j][i], dte.feats.data() + i * n_shape);
    // The penalty is chosen by out-of-fold AUROC on the training split.
    std::vector<int> labels(n_tr);
    for (std::size_t i = 0; i < n_tr; ++i) labels[i] = train.q(i, j) >= 0.5 ? 1 : 0;
    double best_auc = -1, best_l2 = 1e-2;
    std::vector<double> cv(n_tr);
    for (double l2 : {1e-3, 3e-3, 1e-2, 3e-2, 1e-1}) {
      for (std::size_t f = 0; f < folds; ++f) {
        std::vector<std::size_t> fit, held;
        for (std::size_t i = 0; i < n_tr; ++i) (i % folds == f ? held : fit).push_back(i);
        const std::vector<double> h = fit_predict(dtr, j, fit, dtr, held, l2);
        for (std::size_t k = 0; k < held.size(); ++k) cv[held[k]] = h[k];
      }
      auto auc = tandem::auroc(cv, labels);
      const double v = auc ? *auc : 0.5;
      if (v > best_auc) {
        best_auc = v;
        best_l2 = l2;
        for (std::size_t i = 0; i < n_tr; ++i) oof[i * m + j] = cv[i];
      }
    }
    chosen_l2[j] = best_l2;
    oof_auroc[j] = best_auc;
    const std::vector<double> s = fit_predict(dtr, j, all_tr, dte, all_te, best_l2);
    for (std::size_t i = 0; i < n; ++i) score[i * m + j] = s[i];
  }

  // Gain scores: a stage's confidence minus the query-only predicted quality of the last
  // stage, so the queries the last stage most likely gets right escalate first.
  if (a.gain) {
    const std::size_t last = order.back();
    for (std::size_t j : scored) {
      for (std::size_t i = 0; i < n_tr; ++i) oof[i * m + j] -= oof[i * m + last];
      for (std::size_t i = 0; i < n; ++i) score[i * m + j] -= score[i * m + last];
    }
    for (std::size_t i = 0; i < n_tr; ++i) oof[i * m + last] = 1.0;
    for (std::size_t i = 0; i < n; ++i) score[i * m + last] = 1.0;
  }

  // Single models.
  const single_models sm = find_single_models(test, a.models);
  const std::vector<tandem::curve_point>& singles = sm.points;
  const std::size_t cheap = sm.cheap, dear = sm.dear, best = sm.best;
  const double c_lo = singles[cheap].cost, c_hi = singles[dear].cost;

  // Two-stage view, cheapest then dearest: escalate in order of falling confidence in the
  // cheap answer; an escalated query pays both models.
  two_model_view view;
  if (m >= 2 && cheap != dear) {
    std::vector<double> esc(n);
    for (std::size_t i = 0; i < n; ++i) esc[i] = -score[i * m + cheap];
    view = make_two_model_view(test, cheap, dear, std::move(esc), true);
  }
  const std::optional<tandem::two_model_metrics>& pair = view.pair;
  const std::vector<tandem::curve_point>& oracle = view.oracle;

  // The cascade's curve: for two models the threshold sweep above; for more, one common
  // threshold for every stage but the last, swept over the test scores' quantiles.
  const tandem::cascade_views test_views{score, test.quality, test.cost, m};
  std::vector<tandem::curve_point> curve;
  if (m == 2 && cheap != dear) {
    curve = view.curve;
  } else {
    std::vector<double> ts;
    for (std::size_t j : scored)
      for (std::size_t i = 0; i < n; ++i) ts.push_back(score[i * m + j]);
    std::sort(ts.begin(), ts.end());
    ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
    std::vector<double> grid{-std::numeric_limits<double>::infinity()};
    const std::size_t g = std::min<std::size_t>(ts.size(), 400);
    for (std::size_t k = 0; k < g; ++k) grid.push_back(ts[k * ts.size() / g]);
    grid.push_back(std::numeric_limits<double>::infinity());
    for (double t : grid) {
      auto p = tandem::evaluate_cascade(tandem::cascade_policy::chain(order, t), test_views);
      if (p) curve.push_back({p->cost, p->quality, p->escalation});
    }
  }
  std::optional<double> cascade_aiq;
  if (c_hi > c_lo)
    if (auto v = tandem::aiq(curve, c_lo, c_hi)) cascade_aiq = *v;
  const double best_q = singles[best].quality;
  const auto reach = tandem::cost_reaching(curve, best_q - 1e-12);

  json out =
      summary_json({n_tr, n, n_dropped, data.n_excluded}, sm, a.models, pair, cascade_aiq, reach);
  out["cost_model"] =
      "an escalated query pays every stage that ran; apgr and cpt are over the "
      "share of queries escalated to the strong model";
  json stages = json::array();
  for (std::size_t j : order) stages.push_back(a.models[j]);
  out["stage_order"] = stages;
  json scorer;
  scorer["score"] = a.gain ? "gain" : "confidence";
  scorer["kind"] = a.response_suffix ? "learned: query + answer n-grams, answer shape"
                                     : "learned: query n-grams and shape only";
  for (std::size_t j : fitted)
    scorer["stages"][a.models[j]] = {{"l2", chosen_l2[j]}, {"train_oof_auroc", oof_auroc[j]}};
  out["scorer"] = scorer;

  // Policies fitted on the out-of-fold training scores, replayed on the test split.
  const tandem::cascade_views train_views{oof, train.quality, train.cost, m};
  std::optional<tandem::cascade_policy> last;
  const auto policy_json = [&](const tandem::cascade_policy& p) {
    json j;
    json o = json::array(), t = json::array();
    for (std::size_t r = 0; r < p.order.size(); ++r) {
      o.push_back(a.models[p.order[r]]);
      t.push_back(std::isfinite(p.accept[r]) ? json(p.accept[r]) : json(nullptr));
    }
    j["order"] = o;
    j["accept_at"] = t;
    auto te = tandem::evaluate_cascade(p, test_views);
    if (te)
      j["test"] = {{"quality", te->quality}, {"cost", te->cost}, {"escalation", te->escalation}};
    return j;
  };
  json policies;
  if (a.budget) {
    auto r = tandem::search_budget(train_views, *a.budget);
    if (!r)
      die(1, "no cascade meets --budget " + std::to_string(*a.budget) + ": " +
                 std::string(tandem::to_string(r.error())));
    json j = policy_json(r->policy);
    j["budget"] = *a.budget;
    j["train"] = {{"quality", r->point.quality}, {"cost", r->point.cost}};
    policies["budget"] = j;
    last = r->policy;
  }
  if (a.rate) {
    std::vector<double> s(n_tr);
    for (std::size_t i = 0; i < n_tr; ++i) s[i] = oof[i * m + order[0]];
    const double t = *tandem::threshold_for_escalation_rate(s, *a.rate);
    auto p = tandem::cascade_policy::chain(order, t);
    json j = policy_json(p);
    j["target_rate"] = *a.rate;
    policies["escalation_rate"] = j;
    last = p;
  }
  if (a.epsilon) {
    std::vector<double> s(n_tr), qw(n_tr), qs(n_tr);
    for (std::size_t i = 0; i < n_tr; ++i) {
      s[i] = oof[i * m + cheap];
      qw[i] = train.q(i, cheap);
      qs[i] = train.q(i, dear);
    }
    auto g = tandem::guaranteed_threshold(s, qw, qs, {*a.epsilon, a.delta});
    if (!g) die(1, "risk control failed: " + std::string(tandem::to_string(g.error())));
    auto p = tandem::cascade_policy::chain({cheap, dear}, g->threshold);
    json j = policy_json(p);
    j["epsilon"] = *a.epsilon;
    j["delta"] = a.delta;
    double loss = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (score[i * m + cheap] >= g->threshold) loss += test.q(i, dear) - test.q(i, cheap);
    j["test_loss_vs_always_escalating"] = loss / static_cast<double>(n);
    policies["guaranteed"] = j;
    last = p;
  }
  if (!policies.empty()) out["policies"] = policies;
  if (a.save) {
    if (!last) usage_error("--save needs --budget, --escalation-rate or --epsilon");
    if (last->save(a.save->c_str()) != tandem::errc::ok)
      die(1, "cannot write --save file '" + *a.save + "'");
  }
  out["curve"] = points_json(curve, a.curve_points, m == 2);
  std::printf("%s\n", out.dump().c_str());
  if (a.svg)
    write_svg(*a.svg, curve, oracle.empty() ? curve : oracle, singles, a.models, "cascade");
  return 0;
}
