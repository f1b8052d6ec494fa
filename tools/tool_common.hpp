// Shared code of tandem's outcome-table tools (tandem-route, tandem-cascade): error
// exits, the data flags and their checks, loading and splitting the tables, exclusions,
// JSON curve points and the SVG plot (drawn with common/svg_chart.hpp). Tool code,
// not part of the library: it may exit.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/prompt_list.hpp"
#include "common/svg_chart.hpp"
#include "tandem/eval/csv.hpp"
#include "tandem/eval/outcome_table.hpp"
#include "tandem/eval/replay.hpp"

namespace tandem_tool {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

/// The tool's name for messages; each tool defines it.
const char* tool_name();

[[noreturn]] inline void die(int status, const std::string& msg) {
  std::fprintf(stderr, "%s: error: %s\n", tool_name(), msg.c_str());
  std::exit(status);
}
/// One line for a failure's details: "parse_error: data.csv: column \"a\": bad value \"x\"
/// (line 3, column 2)".
inline std::string describe(const tandem::error_info& e) {
  char text[tandem::error_info::capacity + 64];
  tandem::format_error(e, text, sizeof text);
  return text;
}
[[noreturn]] inline void usage_error(const std::string& msg) {
  die(2, msg + " (see " + std::string(tool_name()) + " --help)");
}

inline std::vector<std::string> split_list(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t p = s.find(sep, start);
    out.emplace_back(s.substr(start, p == std::string_view::npos ? s.size() - start : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

inline double parse_double_arg(const std::string& flag, const std::string& v) {
  auto r = tandem::parse_number(v);
  if (!r) usage_error(flag + " expects a number, got '" + v + "'");
  return *r;
}

/// Prints the tool's help text on stdout and exits with status 0.
[[noreturn]] inline void print_help(const char* help_text) {
  std::fputs(help_text, stdout);
  std::exit(0);
}

/// The output flags shared by the tools' eval commands.
struct output_args {
  std::optional<std::string> svg;
  std::size_t curve_points = 201;
};

/// Consumes the output flag at argv[i] (--svg, --curve-points; advancing i past its value)
/// and returns true, or returns false when argv[i] is not an output flag.
inline bool parse_output_flag(int argc, char** argv, int& i, output_args& a) {
  const std::string flag = argv[i];
  if (flag != "--svg" && flag != "--curve-points") return false;
  if (i + 1 >= argc) usage_error(flag + " needs a value");
  const std::string value = argv[++i];
  if (flag == "--svg") {
    a.svg = value;
  } else {
    const double v = parse_double_arg(flag, value);
    if (v < 0 || v != static_cast<double>(static_cast<std::size_t>(v)) || v == 1)
      usage_error("--curve-points must be 0 or an integer >= 2");
    a.curve_points = static_cast<std::size_t>(v);
  }
  return true;
}

/// The data flags shared by the tools' eval commands.
struct data_args {
  std::vector<std::string> data, train, test;
  std::vector<std::string> models;
  std::vector<std::pair<std::string, double>> costs;
  std::optional<std::string> cost_suffix;
  std::string prompt_column = "prompt";
  double train_fraction = 0.7;
  std::uint64_t seed = 0;
  std::optional<std::string> exclude;
  bool split_given = false;  ///< --train-fraction was given
};

/// Consumes the data flag at argv[i] (advancing i past its values) and returns true, or
/// returns false when argv[i] is not a data flag.
inline bool parse_data_flag(int argc, char** argv, int& i, data_args& a) {
  const std::string flag = argv[i];
  const auto value = [&]() -> std::string {
    if (i + 1 >= argc) usage_error(flag + " needs a value");
    return argv[++i];
  };
  const auto values = [&]() {
    std::vector<std::string> v;
    while (i + 1 < argc && std::string_view(argv[i + 1]).substr(0, 2) != "--")
      v.push_back(argv[++i]);
    if (v.empty()) usage_error(flag + " needs at least one path");
    return v;
  };
  if (flag == "--data") {
    for (auto& p : values()) a.data.push_back(p);
  } else if (flag == "--train") {
    for (auto& p : values()) a.train.push_back(p);
  } else if (flag == "--test") {
    for (auto& p : values()) a.test.push_back(p);
  } else if (flag == "--models") {
    a.models = split_list(value(), ',');
    for (const auto& m : a.models)
      if (m.empty()) usage_error("--models has an empty name");
  } else if (flag == "--costs") {
    for (const std::string& item : split_list(value(), ',')) {
      const std::size_t eq = item.rfind('=');
      if (eq == std::string::npos || eq == 0)
        usage_error("--costs expects NAME=COST items, got '" + item + "'");
      auto c = tandem::parse_number(std::string_view(item).substr(eq + 1));
      if (!c || *c < 0)
        usage_error("--costs: cost of '" + item.substr(0, eq) +
                    "' is not a non-negative number: '" + item.substr(eq + 1) + "'");
      a.costs.emplace_back(item.substr(0, eq), *c);
    }
  } else if (flag == "--cost-suffix") {
    a.cost_suffix = value();
  } else if (flag == "--prompt-column") {
    a.prompt_column = value();
  } else if (flag == "--train-fraction") {
    a.train_fraction = parse_double_arg(flag, value());
    if (!(a.train_fraction > 0 && a.train_fraction < 1))
      usage_error("--train-fraction must be in (0, 1)");
    a.split_given = true;
  } else if (flag == "--seed") {
    const std::string v = value();
    char* end = nullptr;
    a.seed = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || v[0] == '-')
      usage_error("--seed expects a non-negative integer");
  } else if (flag == "--exclude-prompts") {
    a.exclude = value();
  } else {
    return false;
  }
  return true;
}

/// Checks the data flags once parsed; `need_test` when an explicit split needs --test.
inline void check_data_args(const data_args& a, bool need_test) {
  if (a.models.empty()) usage_error("--models is required");
  if (a.costs.empty() == !a.cost_suffix.has_value())
    usage_error("give exactly one of --costs and --cost-suffix");
  const bool explicit_split = !a.train.empty() || !a.test.empty();
  if (explicit_split) {
    if (!a.data.empty()) usage_error("--data cannot be combined with --train/--test");
    if (a.split_given) usage_error("--train-fraction cannot be combined with --train/--test");
    if (a.train.empty() || (need_test && a.test.empty()))
      usage_error("--train and --test go together");
  } else if (a.data.empty()) {
    usage_error("--data (or --train and --test) is required");
  }
}

/// The CSV reading options of the data flags (fixed costs in --models order).
inline tandem::outcome_csv_options csv_options(const data_args& a) {
  tandem::outcome_csv_options o;
  o.prompt_column = a.prompt_column;
  o.models = a.models;
  if (a.cost_suffix) {
    o.cost_suffix = *a.cost_suffix;
  } else {
    std::map<std::string, double> given(a.costs.begin(), a.costs.end());
    for (const auto& [name, c] : a.costs)
      if (std::find(a.models.begin(), a.models.end(), name) == a.models.end())
        usage_error("--costs names '" + name + "', which is not in --models");
    for (const std::string& m : a.models) {
      auto it = given.find(m);
      if (it == given.end()) usage_error("--costs has no cost for model '" + m + "'");
      o.fixed_costs.push_back(it->second);
    }
  }
  return o;
}

inline std::vector<std::string> expand_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> in_dir;
      for (const auto& e : fs::directory_iterator(p, ec))
        if (e.is_regular_file() && e.path().extension() == ".csv")
          in_dir.push_back(e.path().string());
      if (ec) die(1, "cannot list directory '" + p + "'");
      if (in_dir.empty()) die(1, "directory '" + p + "' holds no .csv files");
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (fs::exists(p, ec)) {
      files.push_back(p);
    } else {
      die(1, "no such file or directory: '" + p + "'");
    }
  }
  return files;
}

inline tandem::outcome_table load_tables(const std::vector<std::string>& paths,
                                         const tandem::outcome_csv_options& o,
                                         tandem::outcome_load_stats& stats) {
  tandem::outcome_table t;
  t.models = o.models;
  for (const std::string& f : expand_paths(paths)) {
    tandem::error_info err;
    auto csv = tandem::read_csv_file(f, {}, &err);
    if (!csv) die(1, "cannot read CSV: " + describe(err));
    if (tandem::append_outcome_csv(t, *csv, o, stats, &err) == tandem::errc::ok) continue;
    if (err.line == 0) die(1, "'" + f + "': " + describe(err));
    die(1, "'" + f + "' data row " + std::to_string(err.line) + ": " + std::string(err.context()) +
               " (" + std::string(tandem::to_string(err.code)) + ")");
  }
  return t;
}

// The prompts named by a JSON Lines file (tandem_tools::read_prompt_list_file: the string
// values of train_prompt, eval_prompt and prompt); dies with the line and the problem.
inline std::unordered_set<std::string> read_exclusions(const std::string& path) {
  tandem::error_info err;
  auto list = tandem_tools::read_prompt_list_file(path, &err);
  if (list) return std::move(*list);
  if (err.line == 0)
    die(1, "cannot read --exclude-prompts file '" + path + "': " +
               std::string(tandem::to_string(err.code)) + " (" + std::string(err.context()) + ")");
  die(1, "'" + path + "' line " + std::to_string(err.line) + ", column " +
             std::to_string(err.column) + ": " + std::string(err.context()));
}

/// The loaded tables: the training split, the test split (empty when `split` was false)
/// and the counters.
struct loaded_tables {
  tandem::outcome_table train, test;
  tandem::outcome_load_stats stats;
  std::size_t n_excluded = 0;
};

/// Loads the tables named by the data flags, removes the excluded prompts and splits
/// them (seeded --train-fraction, or --train/--test); with `split` false every row goes
/// to `train`. Exits with a message on an empty split.
inline loaded_tables load_splits(const data_args& a, bool split) {
  const tandem::outcome_csv_options o = csv_options(a);
  loaded_tables out;
  std::unordered_set<std::string> excluded;
  if (a.exclude) excluded = read_exclusions(*a.exclude);
  if (!a.data.empty()) {
    tandem::outcome_table all = load_tables(a.data, o, out.stats);
    out.n_excluded = tandem::remove_prompts(all, excluded);
    if (!split) {
      out.train = std::move(all);
    } else {
      auto s = tandem::split_rows(all.size(), a.train_fraction, a.seed);
      if (!s)
        die(1, "cannot split " + std::to_string(all.size()) + " rows: a split would be empty");
      out.train = tandem::subset(all, s->first);
      out.test = tandem::subset(all, s->second);
    }
  } else {
    out.train = load_tables(a.train, o, out.stats);
    out.n_excluded += tandem::remove_prompts(out.train, excluded);
    if (split) {
      out.test = load_tables(a.test, o, out.stats);
      out.n_excluded += tandem::remove_prompts(out.test, excluded);
    }
  }
  if (out.train.size() == 0) die(1, "the training split is empty");
  if (split && out.test.size() == 0) die(1, "the test split is empty");
  return out;
}

inline json points_json(const std::vector<tandem::curve_point>& c, std::size_t max_points,
                        bool share) {
  json arr = json::array();
  std::vector<std::size_t> keep;
  if (max_points == 0 || c.size() <= max_points) {
    for (std::size_t i = 0; i < c.size(); ++i) keep.push_back(i);
  } else {
    for (std::size_t k = 0; k < max_points; ++k)
      keep.push_back(k * (c.size() - 1) / (max_points - 1));
    keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  }
  for (std::size_t i : keep) {
    json p;
    p["cost"] = c[i].cost;
    p["quality"] = c[i].quality;
    if (share) p["strong_share"] = c[i].strong_share;
    arr.push_back(p);
  }
  return arr;
}

inline json nullable(std::optional<double> v) { return v ? json(*v) : json(nullptr); }

/// Every model's own point on the test split, and which models are the cheapest, the
/// dearest and the best (highest quality, ties to the cheaper; first in --models order).
struct single_models {
  std::vector<tandem::curve_point> points;  ///< per model
  json models = json::array();              ///< per model: name, quality, cost
  std::size_t cheap = 0, dear = 0, best = 0;
};

inline single_models find_single_models(const tandem::outcome_table& test,
                                        const std::vector<std::string>& names) {
  const std::size_t m = names.size();
  single_models s;
  s.points.resize(m);
  for (std::size_t j = 0; j < m; ++j) {
    s.points[j] = *tandem::single_model_point(test.quality, test.cost, m, j);
    s.models.push_back(
        {{"name", names[j]}, {"quality", s.points[j].quality}, {"cost", s.points[j].cost}});
  }
  const std::vector<tandem::curve_point>& p = s.points;
  for (std::size_t j = 1; j < m; ++j) {
    if (p[j].cost < p[s.cheap].cost) s.cheap = j;
    if (p[j].cost > p[s.dear].cost) s.dear = j;
    if (p[j].quality > p[s.best].quality ||
        (p[j].quality == p[s.best].quality && p[j].cost < p[s.best].cost))
      s.best = j;
  }
  return s;
}

/// The two-model view of the test split, the weak model against the strong one: the
/// curve of escalating queries to the strong model in order of falling `escalate` (one
/// value per test row) and the oracle's curve (in order of the strong model's quality gain),
/// with their summaries (empty when a curve has no summary). With `escalation_pays_both`, an
/// escalated query pays both models; otherwise only the strong one.
struct two_model_view {
  std::vector<tandem::curve_point> curve, oracle;
  std::optional<tandem::two_model_metrics> pair, pair_oracle;
};

inline two_model_view make_two_model_view(const tandem::outcome_table& test, std::size_t weak,
                                          std::size_t strong, std::vector<double> escalate,
                                          bool escalation_pays_both) {
  const std::size_t n = test.size();
  std::vector<double> oracle(n), qw(n), qs(n), cw(n), cs(n);
  for (std::size_t i = 0; i < n; ++i) {
    qw[i] = test.q(i, weak);
    qs[i] = test.q(i, strong);
    cw[i] = test.c(i, weak);
    cs[i] = escalation_pays_both ? test.c(i, weak) + test.c(i, strong) : test.c(i, strong);
    oracle[i] = qs[i] - qw[i];
  }
  two_model_view v;
  v.curve = *tandem::two_model_curve(escalate, qw, qs, cw, cs);
  v.oracle = *tandem::two_model_curve(oracle, qw, qs, cw, cs);
  if (auto s = tandem::two_model_summary(v.curve)) v.pair = *s;
  if (auto s = tandem::two_model_summary(v.oracle)) v.pair_oracle = *s;
  return v;
}

/// The row counts of an eval command's output.
struct eval_counts {
  std::size_t n_train = 0, n_test = 0, n_dropped = 0, n_excluded = 0;
};

/// The counts, single models, two-model metrics and curve summary that open an eval
/// command's JSON output; `reach` is the curve's cost at the best single model's quality.
inline json summary_json(const eval_counts& e, const single_models& s,
                         const std::vector<std::string>& names,
                         const std::optional<tandem::two_model_metrics>& pair,
                         std::optional<double> aiq, std::optional<double> reach) {
  json out;
  out["n_train"] = e.n_train;
  out["n_test"] = e.n_test;
  out["n_dropped"] = e.n_dropped;
  out["n_excluded"] = e.n_excluded;
  out["models"] = s.models;
  out["best_single"] = {{"name", names[s.best]},
                        {"quality", s.points[s.best].quality},
                        {"cost", s.points[s.best].cost}};
  out["weak"] = names[s.cheap];
  out["strong"] = names[s.dear];
  out["apgr"] = pair ? json(pair->apgr) : json(nullptr);
  out["cpt20"] = pair ? json(pair->cpt20) : json(nullptr);
  out["cpt50"] = pair ? json(pair->cpt50) : json(nullptr);
  out["cpt80"] = pair ? json(pair->cpt80) : json(nullptr);
  out["aiq"] = nullable(aiq);
  out["cost_at_best_single_quality"] = nullable(reach);
  return out;
}

/// Writes the quality-cost chart of an eval command to `path`: the policy's curve
/// (`curve_label`), the oracle's (dashed) and each single model's point, labelled with its
/// name. Exits with a message when the file cannot be written.
inline void write_svg(const std::string& path, const std::vector<tandem::curve_point>& curve,
                      const std::vector<tandem::curve_point>& oracle,
                      const std::vector<tandem::curve_point>& singles,
                      const std::vector<std::string>& names, const char* curve_label = "router") {
  const auto to_points = [](const std::vector<tandem::curve_point>& c) {
    std::vector<tandem_tools::chart_point> out;
    out.reserve(c.size());
    for (const auto& p : c) out.push_back({p.cost, p.quality, 0.0});
    return out;
  };
  tandem_tools::chart ch;
  ch.title = std::string(curve_label) + ": quality against cost on the test split";
  ch.x.label = "mean cost per query";
  ch.y.label = "mean quality";
  ch.series.push_back(
      {curve_label, tandem_tools::series_kind::line, to_points(curve), {}, "#1f77b4", false});
  ch.series.push_back(
      {"oracle", tandem_tools::series_kind::line, to_points(oracle), {}, "#999999", true});
  ch.series.push_back({"single models", tandem_tools::series_kind::points, to_points(singles),
                       names, "#d62728", false});
  if (const tandem::errc e = tandem_tools::write_svg(ch, path.c_str()); e != tandem::errc::ok)
    die(1, "cannot write --svg file '" + path + "': " + std::string(tandem::to_string(e)));
}

}  // namespace tandem_tool
