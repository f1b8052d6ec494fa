// tandem-confidence: judges and calibrates a confidence score stored in a CSV file.
//
//   tandem-confidence eval FILE [--score COL] [--label COL] [--bins N] [--equal-mass]
//                                [--calibrator FILE] [--svg OUT]
//       prints one JSON object: n, positives, auroc, auprc, prr, aurc, brier, ece,
//       ece_bins, ece_binning (brier and ece are null when scores are not in [0, 1];
//       ranking metrics are null for one-class data).
//   tandem-confidence fit FILE --method temperature|platt|isotonic|histogram --out FILE
//                             [--score COL] [--label COL] [--bins N] [--scale probability|logit]
//       fits a calibrator on FILE and saves it; prints a JSON summary.
//
// Columns default to "score" and "label"; labels are 0/1 or true/false. Exit status 0 on
// success, 1 on bad data, 2 on bad usage.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/svg_chart.hpp"
#include "tandem/confidence/calibration.hpp"
#include "tandem/confidence/metrics.hpp"
#include "tandem/eval/csv.hpp"

namespace {

struct args {
  std::string command, file, score = "score", label = "label", calibrator, svg, out;
  std::string method, scale = "probability";
  std::size_t bins = 10;
  bool equal_mass = false;
};

int usage(const char* why) {
  std::fprintf(stderr,
               "tandem-confidence: %s\n"
               "usage: tandem-confidence eval FILE [--score COL] [--label COL] [--bins N]\n"
               "                          [--equal-mass] [--calibrator FILE] [--svg OUT]\n"
               "       tandem-confidence fit FILE --method temperature|platt|isotonic|histogram\n"
               "                          --out FILE [--score COL] [--label COL] [--bins N]\n"
               "                          [--scale probability|logit]\n",
               why);
  return 2;
}

int fail(const char* what, tandem::errc e) {
  std::fprintf(stderr, "tandem-confidence: %s: %s\n", what,
               std::string(tandem::to_string(e)).c_str());
  return 1;
}

int fail(const char* what, const tandem::error_info& info) {
  char text[tandem::error_info::capacity + 64];
  tandem::format_error(info, text, sizeof text);
  std::fprintf(stderr, "tandem-confidence: %s: %s\n", what, text);
  return 1;
}

bool parse_args(int argc, char** argv, args& a) {
  if (argc < 3) return false;
  a.command = argv[1];
  a.file = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string_view k = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string tmp;
    if (k == "--score") {
      if (!value(a.score)) return false;
    } else if (k == "--label") {
      if (!value(a.label)) return false;
    } else if (k == "--calibrator") {
      if (!value(a.calibrator)) return false;
    } else if (k == "--svg") {
      if (!value(a.svg)) return false;
    } else if (k == "--out") {
      if (!value(a.out)) return false;
    } else if (k == "--method") {
      if (!value(a.method)) return false;
    } else if (k == "--scale") {
      if (!value(a.scale)) return false;
    } else if (k == "--bins") {
      if (!value(tmp)) return false;
      const auto n = tandem::parse_number(tmp);
      if (!n || *n < 1 || *n > 1e6 || *n != std::floor(*n)) return false;
      a.bins = static_cast<std::size_t>(*n);
    } else if (k == "--equal-mass") {
      a.equal_mass = true;
    } else {
      return false;
    }
  }
  return true;
}

/// Reads the score and label columns. Prints the failing row on error.
tandem::errc read_columns(const args& a, std::vector<double>& scores, std::vector<int>& labels) {
  auto table = tandem::read_csv_file(a.file.c_str());
  if (!table) return table.error();
  const auto sc = table->column(a.score), lc = table->column(a.label);
  if (!sc || !lc) {
    std::fprintf(stderr, "tandem-confidence: column '%s' not found\n",
                 (!sc ? a.score : a.label).c_str());
    return tandem::errc::not_found;
  }
  for (std::size_t r = 0; r < table->rows.size(); ++r) {
    const auto s = tandem::parse_number(table->rows[r][*sc]);
    const auto y = tandem::parse_label(table->rows[r][*lc]);
    if (!s || !y) {
      std::fprintf(stderr, "tandem-confidence: bad %s on data row %zu\n", !s ? "score" : "label",
                   r + 1);
      return !s ? s.error() : y.error();
    }
    scores.push_back(*s);
    labels.push_back(*y);
  }
  if (scores.empty()) return tandem::errc::empty_input;
  return tandem::errc::ok;
}

void print_number(const char* key, const tandem::result<double>& v, bool last = false) {
  if (v)
    std::printf("\"%s\":%.6f", key, *v);
  else
    std::printf("\"%s\":null", key);
  std::printf(last ? "" : ",");
}

/// A reliability diagram: bars of accuracy per bin (spanning the bin, labelled with its
/// item count), each bin's mean confidence against its accuracy, and the diagonal of
/// perfect calibration. Empty bins are left out.
tandem::errc write_svg(const std::string& path, const std::vector<tandem::reliability_bin>& bins,
                       double ece, bool equal_mass) {
  tandem_tools::chart c;
  char title[96];
  std::snprintf(title, sizeof title, "reliability diagram: ECE %.4f (%zu %s bins)", ece,
                bins.size(), equal_mass ? "equal-mass" : "equal-width");
  c.title = title;
  c.x.label = "confidence";
  c.y.label = "accuracy";
  c.x.min = c.y.min = 0.0;
  c.x.max = c.y.max = 1.0;
  tandem_tools::chart_series bars{
      "accuracy per bin", tandem_tools::series_kind::bars, {}, {}, "#4a7ebb", false};
  tandem_tools::chart_series means{
      "bin means", tandem_tools::series_kind::line_markers, {}, {}, "#222222", false};
  for (const auto& b : bins) {
    if (b.count == 0) continue;
    bars.points.push_back({(b.lower + b.upper) / 2, b.accuracy, b.upper - b.lower});
    bars.labels.push_back("n=" + std::to_string(b.count));
    means.points.push_back({b.mean_confidence, b.accuracy, 0.0});
  }
  c.series = {
      std::move(bars),
      std::move(means),
      {"perfect calibration", tandem_tools::series_kind::diagonal, {}, {}, "#cc3333", true}};
  return tandem_tools::write_svg(c, path.c_str());
}

int run_eval(const args& a) {
  std::vector<double> scores;
  std::vector<int> labels;
  if (const auto e = read_columns(a, scores, labels); e != tandem::errc::ok)
    return fail("reading data", e);
  if (!a.calibrator.empty()) {
    tandem::error_info info;
    const auto c = tandem::calibrator::load(a.calibrator, &info);
    if (!c) return fail("loading calibrator", info);
    std::vector<double> calibrated(scores.size());
    if (const auto e = c->apply(scores, calibrated); e != tandem::errc::ok)
      return fail("applying calibrator", e);
    scores.swap(calibrated);
  }
  const auto layout = a.equal_mass ? tandem::binning::equal_mass : tandem::binning::equal_width;
  std::size_t pos = 0;
  for (int y : labels) pos += static_cast<std::size_t>(y);
  const auto ece = tandem::expected_calibration_error(scores, labels, a.bins, layout);
  std::printf("{\"n\":%zu,\"positives\":%zu,", scores.size(), pos);
  print_number("auroc", tandem::auroc(scores, labels));
  print_number("auprc", tandem::auprc(scores, labels));
  print_number("prr", tandem::prediction_rejection_ratio(scores, labels));
  const auto rc = tandem::risk_coverage_curve(scores, labels);
  print_number("aurc", rc ? tandem::result<double>(rc->area) : tandem::result<double>(rc.error()));
  print_number("brier", tandem::brier_score(scores, labels));
  print_number("ece", ece);
  std::printf("\"ece_bins\":%zu,\"ece_binning\":\"%s\",\"calibrated\":%s}\n", a.bins,
              a.equal_mass ? "equal_mass" : "equal_width", a.calibrator.empty() ? "false" : "true");
  if (!a.svg.empty()) {
    const auto diagram = tandem::reliability_diagram(scores, labels, a.bins, layout);
    if (!diagram) return fail("reliability diagram", diagram.error());
    if (const auto e = write_svg(a.svg, *diagram, *ece, a.equal_mass); e != tandem::errc::ok)
      return fail("writing svg", e);
  }
  return 0;
}

int run_fit(const args& a) {
  tandem::calibration_method method{};
  if (a.method == "temperature")
    method = tandem::calibration_method::temperature;
  else if (a.method == "platt")
    method = tandem::calibration_method::platt;
  else if (a.method == "isotonic")
    method = tandem::calibration_method::isotonic;
  else if (a.method == "histogram")
    method = tandem::calibration_method::histogram;
  else
    return usage("fit needs --method temperature|platt|isotonic|histogram");
  if (a.out.empty()) return usage("fit needs --out FILE");
  tandem::calibration_options o;
  o.bins = a.bins;
  if (a.scale == "logit")
    o.scale = tandem::score_scale::logit;
  else if (a.scale != "probability")
    return usage("--scale is probability or logit");
  std::vector<double> scores;
  std::vector<int> labels;
  if (const auto e = read_columns(a, scores, labels); e != tandem::errc::ok)
    return fail("reading data", e);
  const auto c = tandem::calibrator::fit(method, scores, labels, o);
  if (!c) return fail("fitting", c.error());
  tandem::error_info info;
  if (c->save(a.out, &info) != tandem::errc::ok) return fail("saving", info);
  std::printf("{\"method\":\"%s\",\"n\":%zu", a.method.c_str(), scores.size());
  if (method == tandem::calibration_method::temperature)
    std::printf(",\"temperature\":%.6f", c->temperature());
  if (method == tandem::calibration_method::platt)
    std::printf(",\"a\":%.6f,\"b\":%.6f", c->platt_a(), c->platt_b());
  std::printf("}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  if (!parse_args(argc, argv, a)) return usage("bad arguments");
  if (a.command == "eval") return run_eval(a);
  if (a.command == "fit") return run_fit(a);
  return usage("the command is eval or fit");
}
