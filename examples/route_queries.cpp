// route_queries: trains a query router on recorded outcomes and replays it on held-out
// queries.
//
// The data are the bundled RouteLLM MMLU tables (46 subjects): for each question, whether
// Mixtral-8x7B (the weak model) and GPT-4 (the strong one) answered it correctly. No costs
// are recorded; this example charges 1 per Mixtral call and 20 per GPT-4 call. Prompts that
// overlap the routers' training data in the original project (contaminated_prompts.jsonl)
// are left out, then a seeded 70/30 split separates training and held-out queries.
//
// The router (tandem::router) reads hashed word 1-2 grams with TF-IDF weights (add
// character 3-5 grams with --char-ngrams 1: ten times the features, no better here) and
// predicts each model's probability of answering correctly with one logistic
// regression per model (its L2 strength chosen by cross-validation on the training split;
// --predictor ensemble blends in k nearest neighbours, slower). A two-model policy sends a
// query to GPT-4 when the predicted win, P(GPT-4 right) - P(Mixtral right), reaches a
// threshold, here calibrated so that 30% of queries go to GPT-4.
//
// It prints the router's choice for a handful of held-out queries, then the replay figures
// over all held-out queries (tandem/eval/replay.hpp): APGR (area under quality over the share of
// GPT-4 calls, normalised: 0.5 is random routing, 1 matches the all-GPT-4 quality at once),
// CPT(50%) (share of GPT-4 calls needed to recover half of the quality gap), AIQ (average
// quality over the cost range), quality at a 30% GPT-4 share, each against random routing.
// Last, it saves the router to a temporary file, loads it back and checks that the loaded
// router predicts the same.
//
//   route_queries [--data DIR] [--seed N] [--share X] [--show N]
//                 [--predictor logistic|ensemble] [--char-ngrams 0|1] [--dims-log2 N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/prompt_list.hpp"  // tools/common: the JSON Lines reader of tandem's tools
#include "tandem/eval/csv.hpp"
#include "tandem/eval/outcome_table.hpp"
#include "tandem/eval/replay.hpp"
#include "tandem/router/policy.hpp"
#include "tandem/router/router.hpp"

namespace {

using tandem::errc;
namespace fs = std::filesystem;

constexpr const char* weak_name = "mistralai/Mixtral-8x7B-Instruct-v0.1";
constexpr const char* strong_name = "gpt-4-1106-preview";

struct args {
  std::string data = TANDEM_EXAMPLE_DATA_DIR;
  std::uint64_t seed = 0;
  double share = 0.3;
  std::size_t show = 6;
  unsigned dims_log2 = 14;
  bool ensemble = false, char_ngrams = false;
};

int usage(const char* why) {
  std::fprintf(stderr, "route_queries: %s\n", why);
  std::fprintf(stderr,
               "usage: route_queries [--data DIR] [--seed N] [--share X] [--show N]\n"
               "                     [--predictor logistic|ensemble] [--char-ngrams 0|1]\n"
               "                     [--dims-log2 N]\n");
  return 2;
}

int fail(const char* what, errc e) {
  std::fprintf(stderr, "route_queries: %s: %s\n", what, tandem::to_string(e).data());
  return 1;
}

bool parse_number(const char* s, double& out) {
  char* end = nullptr;
  out = std::strtod(s, &end);
  return end != s && *end == '\0' && std::isfinite(out);
}

// Mean quality of a two-model curve at a given share of strong calls (linear between
// points; the curve goes from share 0 to share 1).
double quality_at_share(const std::vector<tandem::curve_point>& c, double share) {
  for (std::size_t i = 1; i < c.size(); ++i)
    if (c[i].strong_share >= share) {
      const double w = c[i].strong_share - c[i - 1].strong_share;
      const double t = w > 0 ? (share - c[i - 1].strong_share) / w : 1.0;
      return c[i - 1].quality + t * (c[i].quality - c[i - 1].quality);
    }
  return c.back().quality;
}

// The first line of a query, cut to `width` bytes (at a UTF-8 character boundary).
std::string first_line(std::string_view s, std::size_t width) {
  std::string_view l = s.substr(0, s.find('\n'));
  if (l.size() <= width) return std::string(l);
  std::size_t cut = width - 3;
  while (cut > 0 && (static_cast<unsigned char>(l[cut]) & 0xC0) == 0x80) --cut;
  return std::string(l.substr(0, cut)) + "...";
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return usage("every flag takes a value");
    const char* v = argv[++i];
    double x = 0.0;
    if (flag == "--data")
      a.data = v;
    else if (flag == "--predictor" &&
             (std::string_view(v) == "logistic" || std::string_view(v) == "ensemble"))
      a.ensemble = std::string_view(v) == "ensemble";
    else if (!parse_number(v, x))
      return usage("unknown flag, or a numeric flag with a non-numeric value");
    else if (flag == "--seed" && x >= 0)
      a.seed = static_cast<std::uint64_t>(x);
    else if (flag == "--share" && x >= 0 && x <= 1)
      a.share = x;
    else if (flag == "--show" && x >= 0)
      a.show = static_cast<std::size_t>(x);
    else if (flag == "--char-ngrams" && (x == 0 || x == 1))
      a.char_ngrams = x == 1;
    else if (flag == "--dims-log2" && x >= 4 && x <= 26)
      a.dims_log2 = static_cast<unsigned>(x);
    else
      return usage("unknown flag or bad value");
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  // 1. The outcome table: every MMLU subject file, Mixtral at cost 1, GPT-4 at cost 20.
  const fs::path dir = fs::path(a.data) / "routellm" / "mmlu";
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".csv") files.push_back(e.path());
  if (ec || files.empty()) return usage("no CSV files in <data>/routellm/mmlu (set --data)");
  std::sort(files.begin(), files.end());
  tandem::outcome_csv_options csv;
  csv.models = {weak_name, strong_name};
  csv.fixed_costs = {1.0, 20.0};
  tandem::outcome_table all;
  tandem::outcome_load_stats stats;
  for (const fs::path& f : files) {
    auto t = tandem::read_csv_file(f.string().c_str());
    if (!t) return fail(f.string().c_str(), t.error());
    if (errc e = tandem::append_outcome_csv(all, *t, csv, stats); e != errc::ok)
      return fail(f.string().c_str(), e);
  }
  // Contaminated prompts: both sides of each recorded overlap are left out.
  tandem::error_info le;
  const auto excluded =
      tandem_tools::read_prompt_list_file((dir / "contaminated_prompts.jsonl").string(), &le);
  if (!excluded) {
    char msg[512];
    tandem::format_error(le, msg, sizeof msg);
    std::fprintf(stderr, "route_queries: contaminated_prompts.jsonl: %s\n", msg);
    return 1;
  }
  const std::size_t n_excluded = tandem::remove_prompts(all, *excluded);
  auto split = tandem::split_rows(all.size(), 0.7, a.seed);
  if (!split) return fail("splitting the rows", split.error());
  const tandem::outcome_table train = tandem::subset(all, split->first);
  const tandem::outcome_table test = tandem::subset(all, split->second);
  std::printf(
      "data: %zu MMLU questions from %zu subjects, %zu contaminated left out; split 70/30 "
      "(seed %llu): %zu train, %zu held out\n",
      all.size() + n_excluded, files.size(), n_excluded, static_cast<unsigned long long>(a.seed),
      train.size(), test.size());
  std::printf("models: weak = %s (cost 1), strong = %s (cost 20); costs are this example's\n",
              weak_name, strong_name);

  // 2. The router.
  tandem::router_options ro;
  ro.predictor =
      a.ensemble ? tandem::router_predictor::ensemble : tandem::router_predictor::logistic;
  ro.ngrams.dims_log2 = a.dims_log2;
  if (!a.char_ngrams) {  // word 1-2 grams only: ten times fewer features, as good here
    ro.ngrams.char_min = 0;
    ro.ngrams.char_max = 0;
  }
  ro.l2_grid = {1e-2, 1e-3, 1e-4};
  ro.folds = 3;
  ro.seed = a.seed;
  tandem::router router;
  if (errc e = router.fit(train.prompts, train.quality, train.models, ro); e != errc::ok)
    return fail("fitting the router", e);
  std::printf(
      "router: %s over hashed TF-IDF %s (2^%u dims), L2 %.0e by %zu-fold CV; "
      "fitted in %.2f s\n\n",
      a.ensemble ? "logistic + k-NN ensemble" : "logistic regression per model",
      a.char_ngrams ? "word and character n-grams" : "word 1-2 grams", a.dims_log2,
      router.chosen_l2(), ro.folds, seconds());

  // Predicted quality of each held-out query; win = P(strong right) - P(weak right).
  const std::size_t n = test.size();
  std::vector<double> pred(2 * n), win(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (errc e = router.predict(test.prompts[i], std::span<double>(pred.data() + 2 * i, 2));
        e != errc::ok)
      return fail("predicting", e);
    win[i] = pred[2 * i + 1] - pred[2 * i];
  }
  // The threshold sends a share of the queries to GPT-4. It is calibrated on the held-out
  // queries' predicted wins, which uses no outcome (in service: on recent traffic).
  auto policy = tandem::calibrate_win_threshold(win, a.share);
  if (!policy) return fail("calibrating the threshold", policy.error());
  std::printf("policy: GPT-4 when the predicted win >= %.4f (%.0f%% of the held-out queries)\n",
              policy->threshold, 100 * a.share);
  std::printf("%-60s %8s %8s %7s  %-7s %s\n", "held-out query (first line)", "P(Mixt)", "P(GPT4)",
              "win", "route", "recorded Mixtral/GPT-4");
  for (std::size_t k = 0; k < std::min(a.show, n); ++k) {
    const std::size_t i = k * n / std::min(a.show, n);  // spread over the subjects
    std::printf("%-60s %8.3f %8.3f %+7.3f  %-7s %s/%s\n", first_line(test.prompts[i], 60).c_str(),
                pred[2 * i], pred[2 * i + 1], win[i],
                policy->route_strong(win[i]) ? "GPT-4" : "Mixtral",
                test.q(i, 0) > 0.5 ? "right" : "wrong", test.q(i, 1) > 0.5 ? "right" : "wrong");
  }

  // 3. Replay over every held-out query: the router's curve, the oracle's, random routing.
  std::vector<double> qw(n), qs(n), cw(n), cs(n), oracle(n);
  for (std::size_t i = 0; i < n; ++i) {
    qw[i] = test.q(i, 0);
    qs[i] = test.q(i, 1);
    cw[i] = test.c(i, 0);
    cs[i] = test.c(i, 1);
    oracle[i] = qs[i] - qw[i];
  }
  auto curve = tandem::two_model_curve(win, qw, qs, cw, cs);
  auto best = tandem::two_model_curve(oracle, qw, qs, cw, cs);
  if (!curve || !best) return fail("replaying", !curve ? curve.error() : best.error());
  auto summary = tandem::two_model_summary(*curve);
  if (!summary) return fail("summarising the curve", summary.error());
  const double weak_q = summary->weak_quality, strong_q = summary->strong_quality;
  const std::vector<tandem::curve_point> singles{curve->front(), curve->back()};
  auto router_aiq = tandem::aiq(*curve, 1.0, 20.0);
  auto random_aiq = tandem::aiq(singles, 1.0, 20.0);
  if (!router_aiq || !random_aiq) return fail("computing AIQ", router_aiq.error());
  std::size_t routed = 0;
  double policy_q = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const bool strong = policy->route_strong(win[i]);
    routed += strong ? 1 : 0;
    policy_q += strong ? qs[i] : qw[i];
  }
  policy_q /= static_cast<double>(n);
  const double random_at = weak_q + a.share * (strong_q - weak_q);

  std::printf("\nreplay on %zu held-out queries (quality = share answered correctly):\n", n);
  std::printf("  always Mixtral   quality %.4f  cost  1.00\n", weak_q);
  std::printf("  always GPT-4     quality %.4f  cost 20.00\n", strong_q);
  std::printf("  APGR             router %.3f   random 0.500   oracle %.3f\n", summary->apgr,
              tandem::two_model_summary(*best) ? tandem::two_model_summary(*best)->apgr : 0.0);
  std::printf("  CPT(50%%)         router %.3f   random 0.500   (share of GPT-4 calls)\n",
              summary->cpt50);
  std::printf("  AIQ              router %.4f  random %.4f  (mean quality over cost 1..20)\n",
              *router_aiq, *random_aiq);
  std::printf("  quality at %2.0f%% GPT-4 calls (cost %.2f): router %.4f  random %.4f\n",
              100 * a.share, 1 + 19 * a.share, quality_at_share(*curve, a.share), random_at);
  std::printf("  calibrated policy: %.1f%% GPT-4 calls, quality %.4f, mean cost %.2f\n",
              100.0 * static_cast<double>(routed) / static_cast<double>(n), policy_q,
              1 + 19 * static_cast<double>(routed) / static_cast<double>(n));

  // 4. Save, load, compare.
  const fs::path file =
      fs::temp_directory_path(ec) /
      ("route_queries_" +
       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".router");
  if (errc e = router.save(file.string().c_str()); e != errc::ok) return fail("saving", e);
  auto loaded = tandem::router::load(file.string().c_str());
  const auto bytes = fs::file_size(file, ec);
  fs::remove(file, ec);
  if (!loaded) return fail("loading", loaded.error());
  double max_diff = 0;
  std::vector<double> again(2);
  for (std::size_t i = 0; i < n; ++i) {
    if (errc e = loaded->predict(test.prompts[i], again); e != errc::ok)
      return fail("predicting with the loaded router", e);
    max_diff = std::max(
        {max_diff, std::abs(again[0] - pred[2 * i]), std::abs(again[1] - pred[2 * i + 1])});
  }
  std::printf(
      "\nsave/load: %llu bytes written to %s and read back; max prediction difference "
      "on %zu queries: %g (%s)\n",
      static_cast<unsigned long long>(bytes), file.filename().string().c_str(), n, max_diff,
      max_diff == 0 ? "identical" : "DIFFERENT");
  std::printf("total time: %.2f s\n", seconds());
  return max_diff == 0 ? 0 : 1;
}
