// calibrate_confidence: learns to tell a small model's right answers from its wrong ones,
// calibrates that score into a probability, and uses it to decide "answer or escalate".
//
// The data are the bundled RouteLLM GSM8K table: 1,319 grade-school maths questions, the
// answer Mixtral-8x7B (the weak model) gave to each, and whether it was right; also
// whether GPT-4 (the strong model) was right. Prompts that overlap the routers' training
// data in the original project (contaminated_prompts.jsonl) are left out, then a seeded
// split makes three parts: 50% to fit the evaluator, 20% to fit the calibrators, 30% to
// test.
//
// 1. The learned evaluator (confidence/learned.hpp): logistic regression over hashed word
//    1-2 grams of the question and of Mixtral's answer, plus three answer-shape features
//    (log word count, log count of numbers, whether it ends in a number). Its output is a
//    probability, but not a calibrated one: with the weak penalty used here (--l2 1e-4),
//    fitted on 650 examples, it ranks answers well and is overconfident.
// 2. Calibrators fitted on the calibration split (confidence/calibration.hpp):
//    temperature scaling, Platt scaling, isotonic regression and histogram binning.
//    For each, on the test split: AUROC (ranking, higher is better), ECE (10 equal-width
//    bins) and Brier score (lower is better), and a text reliability table.
// 3. Answer or escalate: keep Mixtral's answer when the calibrated probability that it is
//    right reaches --threshold, else ask GPT-4. Costs are this example's: 1 per Mixtral
//    call, 20 per GPT-4 call; an escalated question pays both.
//
//   calibrate_confidence [--data DIR] [--seed N] [--threshold X] [--l2 X]
//                        [--method temperature|platt|isotonic|histogram]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "tandem/confidence/calibration.hpp"
#include "tandem/confidence/learned.hpp"
#include "tandem/confidence/metrics.hpp"
#include "tandem/eval/csv.hpp"
#include "tandem/eval/outcome_table.hpp"

namespace {

using tandem::errc;

constexpr const char* weak_name = "mistralai/Mixtral-8x7B-Instruct-v0.1";
constexpr const char* strong_name = "gpt-4-1106-preview";
constexpr std::size_t n_features = 3;

struct args {
  std::string data = TANDEM_EXAMPLE_DATA_DIR;
  std::uint64_t seed = 0;
  double threshold = 0.5, l2 = 1e-4;
  tandem::calibration_method method = tandem::calibration_method::isotonic;
};

int usage(const char* why) {
  std::fprintf(stderr, "calibrate_confidence: %s\n", why);
  std::fprintf(stderr,
               "usage: calibrate_confidence [--data DIR] [--seed N] [--threshold X] [--l2 X]\n"
               "         [--method temperature|platt|isotonic|histogram]\n");
  return 2;
}

int fail(const char* what, errc e) {
  std::fprintf(stderr, "calibrate_confidence: %s: %s\n", what, tandem::to_string(e).data());
  return 1;
}

bool parse_number(const char* s, double& out) {
  char* end = nullptr;
  out = std::strtod(s, &end);
  return end != s && *end == '\0' && std::isfinite(out);
}

// One question: text, Mixtral's answer, and who was right.
struct item {
  std::string question, answer;
  int weak_right = 0, strong_right = 0;
  double features[n_features] = {};
};

// Answer-shape features: log(1 + words), log(1 + numbers), ends in a number (0/1).
void shape(std::string_view s, double* out) {
  std::size_t words = 0, numbers = 0;
  bool in_word = false, in_number = false, ends_number = false;
  for (char c : s) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    const bool digit = c >= '0' && c <= '9';
    if (!space && !in_word) ++words;
    in_word = !space;
    if (digit && !in_number) ++numbers;
    in_number = digit || (in_number && (c == '.' || c == ','));
    if (!space) ends_number = digit || (ends_number && (c == '.' || c == '*' || c == '$'));
  }
  out[0] = std::log1p(static_cast<double>(words));
  out[1] = std::log1p(static_cast<double>(numbers));
  out[2] = ends_number ? 1.0 : 0.0;
}

// The string value of "key" in one line of contaminated_prompts.jsonl (flat JSON objects),
// unescaped; false when absent or malformed. \u escapes become UTF-8.
bool json_string_field(std::string_view line, std::string_view key, std::string& out) {
  const std::string pattern = "\"" + std::string(key) + "\":";
  std::size_t p = line.find(pattern);
  if (p == std::string_view::npos) return false;
  p += pattern.size();
  while (p < line.size() && line[p] == ' ') ++p;
  if (p >= line.size() || line[p] != '"') return false;
  out.clear();
  const auto hex4 = [&](std::size_t at, std::uint32_t& v) {
    if (at + 4 > line.size()) return false;
    v = 0;
    for (std::size_t k = at; k < at + 4; ++k) {
      const char c = line[k];
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) return false;
      v = v * 16 + static_cast<std::uint32_t>(d);
    }
    return true;
  };
  for (++p; p < line.size(); ++p) {
    const char c = line[p];
    if (c == '"') return true;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++p >= line.size()) return false;
    const char e = line[p];
    if (e == 'n') {
      out += '\n';
    } else if (e == 't') {
      out += '\t';
    } else if (e == 'r') {
      out += '\r';
    } else if (e == 'u') {
      std::uint32_t v = 0, lo = 0;
      if (!hex4(p + 1, v)) return false;
      p += 4;
      if (v >= 0xD800 && v < 0xDC00 && p + 2 < line.size() && line[p + 1] == '\\' &&
          line[p + 2] == 'u' && hex4(p + 3, lo) && lo >= 0xDC00 && lo < 0xE000) {
        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      }
      const auto byte = [&](std::uint32_t b) { out += static_cast<char>(b); };
      if (v < 0x80) {
        byte(v);
      } else if (v < 0x800) {
        byte(0xC0 | (v >> 6));
        byte(0x80 | (v & 0x3F));
      } else if (v < 0x10000) {
        byte(0xE0 | (v >> 12));
        byte(0x80 | ((v >> 6) & 0x3F));
        byte(0x80 | (v & 0x3F));
      } else {
        byte(0xF0 | (v >> 18));
        byte(0x80 | ((v >> 12) & 0x3F));
        byte(0x80 | ((v >> 6) & 0x3F));
        byte(0x80 | (v & 0x3F));
      }
    } else {
      out += e;  // \" \\ \/ (\b and \f do not occur in these files)
    }
  }
  return false;
}

// The rows of `rows` at `idx`.
std::vector<item> pick(const std::vector<item>& rows, const std::vector<std::size_t>& idx) {
  std::vector<item> out;
  out.reserve(idx.size());
  for (std::size_t i : idx) out.push_back(rows[i]);
  return out;
}

struct figures {
  double auroc = 0, ece = 0, brier = 0;
};

tandem::result<figures> measure(std::span<const double> p, std::span<const int> y) {
  auto auc = tandem::auroc(p, y);
  auto ece = tandem::expected_calibration_error(p, y, 10);
  auto brier = tandem::brier_score(p, y);
  if (!auc) return auc.error();
  if (!ece) return ece.error();
  if (!brier) return brier.error();
  return figures{*auc, *ece, *brier};
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return usage("every flag takes a value");
    const std::string_view v = argv[++i];
    double x = 0.0;
    if (flag == "--data")
      a.data = v;
    else if (flag == "--method" && v == "temperature")
      a.method = tandem::calibration_method::temperature;
    else if (flag == "--method" && v == "platt")
      a.method = tandem::calibration_method::platt;
    else if (flag == "--method" && v == "isotonic")
      a.method = tandem::calibration_method::isotonic;
    else if (flag == "--method" && v == "histogram")
      a.method = tandem::calibration_method::histogram;
    else if (!parse_number(argv[i], x))
      return usage("unknown flag or bad value");
    else if (flag == "--seed" && x >= 0)
      a.seed = static_cast<std::uint64_t>(x);
    else if (flag == "--threshold" && x >= 0 && x <= 1)
      a.threshold = x;
    else if (flag == "--l2" && x >= 0)
      a.l2 = x;
    else
      return usage("unknown flag or bad value");
  }
  const auto t0 = std::chrono::steady_clock::now();

  // The table: question, Mixtral's answer, both models' correctness.
  const std::string dir = a.data + "/routellm/gsm8k";
  auto csv = tandem::read_csv_file((dir + "/gsm8k_responses.csv").c_str());
  if (!csv) return fail("reading gsm8k_responses.csv (set --data)", csv.error());
  auto cq = csv->column("prompt"), cw = csv->column(weak_name), cs = csv->column(strong_name);
  auto ca = csv->column(std::string(weak_name) + "_response");
  if (!cq || !cw || !cs || !ca) return fail("gsm8k_responses.csv", errc::not_found);
  std::unordered_set<std::string> excluded;
  {
    auto text = tandem::read_text_file((dir + "/contaminated_prompts.jsonl").c_str());
    if (!text) return fail("contaminated_prompts.jsonl", text.error());
    std::string_view rest = *text;
    std::string s;
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      const std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      for (const char* key : {"eval_prompt", "train_prompt"})
        if (json_string_field(line, key, s)) excluded.insert(s);
    }
  }
  std::vector<item> rows;
  std::size_t n_excluded = 0;
  for (const auto& r : csv->rows) {
    if (excluded.count(r[*cq]) != 0) {
      ++n_excluded;
      continue;
    }
    auto w = tandem::parse_quality(r[*cw]);
    auto s = tandem::parse_quality(r[*cs]);
    if (!w || !s) return fail("a correctness cell", !w ? w.error() : s.error());
    item it{r[*cq], r[*ca], *w >= 0.5 ? 1 : 0, *s >= 0.5 ? 1 : 0};
    shape(it.answer, it.features);
    rows.push_back(std::move(it));
  }
  // 50% evaluator, then the other half split 40/60 into calibration and test.
  auto first = tandem::split_rows(rows.size(), 0.5, a.seed);
  if (!first) return fail("splitting", first.error());
  auto second = tandem::split_rows(first->second.size(), 0.4, a.seed + 1);
  if (!second) return fail("splitting", second.error());
  std::vector<std::size_t> cal_idx, test_idx;
  for (std::size_t k : second->first) cal_idx.push_back(first->second[k]);
  for (std::size_t k : second->second) test_idx.push_back(first->second[k]);
  const std::vector<item> train = pick(rows, first->first), cal = pick(rows, cal_idx),
                          test = pick(rows, test_idx);
  const auto rate = [](const std::vector<item>& v, int item::*who) {
    double s = 0;
    for (const item& it : v) s += it.*who;
    return s / static_cast<double>(v.size());
  };
  std::printf(
      "data: %zu GSM8K questions, %zu contaminated left out; split (seed %llu): %zu fit the "
      "evaluator, %zu the calibrators, %zu test\n",
      rows.size() + n_excluded, n_excluded, static_cast<unsigned long long>(a.seed), train.size(),
      cal.size(), test.size());
  std::printf("weak model %s right on %.1f%% of the test questions; strong %s on %.1f%%\n\n",
              weak_name, 100 * rate(test, &item::weak_right), strong_name,
              100 * rate(test, &item::strong_right));

  // 1. The learned evaluator.
  std::vector<tandem::learned_example> ex;
  for (const item& it : train) ex.push_back({it.question, it.answer, it.features, it.weak_right});
  tandem::learned_options lo;
  lo.l2 = a.l2;
  auto evaluator = tandem::learned_evaluator::train(ex, lo);
  if (!evaluator) return fail("training the evaluator", evaluator.error());
  const auto scores = [&](const std::vector<item>& v, std::vector<double>& p, std::vector<int>& y) {
    for (const item& it : v) {
      auto s = evaluator->predict(it.question, it.answer, it.features);
      if (!s) return s.error();
      p.push_back(*s);
      y.push_back(it.weak_right);
    }
    return errc::ok;
  };
  std::vector<double> p_cal, p_test;
  std::vector<int> y_cal, y_test;
  if (errc e = scores(cal, p_cal, y_cal); e != errc::ok) return fail("scoring", e);
  if (errc e = scores(test, p_test, y_test); e != errc::ok) return fail("scoring", e);
  std::printf(
      "evaluator: logistic regression on question + answer word 1-2 grams and %zu shape "
      "features, L2 %g, %zu non-zero n-gram weights\n\n",
      n_features, a.l2, evaluator->nonzero_weights());

  // 2. Calibrators, fitted on the calibration split, measured on the test split.
  auto raw = measure(p_test, y_test);
  if (!raw) return fail("measuring", raw.error());
  std::printf("%-22s %7s %7s %7s\n", "test split", "AUROC", "ECE", "Brier");
  std::printf("%-22s %7.3f %7.3f %7.3f\n", "raw evaluator", raw->auroc, raw->ece, raw->brier);
  std::vector<double> chosen;
  const tandem::calibration_method methods[] = {
      tandem::calibration_method::temperature, tandem::calibration_method::platt,
      tandem::calibration_method::isotonic, tandem::calibration_method::histogram};
  for (const auto m : methods) {
    auto c = tandem::calibrator::fit(m, p_cal, y_cal);
    if (!c) return fail("fitting a calibrator", c.error());
    std::vector<double> q(p_test.size());
    if (errc e = c->apply(p_test, q); e != errc::ok) return fail("calibrating", e);
    auto f = measure(q, y_test);
    if (!f) return fail("measuring", f.error());
    std::string name = "+ " + std::string(tandem::to_string(m));
    if (m == tandem::calibration_method::temperature) {
      char buf[32];
      std::snprintf(buf, sizeof buf, " (T=%.2f)", c->temperature());
      name += buf;
    }
    std::printf("%-22s %7.3f %7.3f %7.3f\n", name.c_str(), f->auroc, f->ece, f->brier);
    if (m == a.method) chosen = q;
  }

  // Reliability tables: per confidence bin, how often the weak model was actually right.
  auto before = tandem::reliability_diagram(p_test, y_test, 10);
  auto after = tandem::reliability_diagram(chosen, y_test, 10);
  if (!before || !after) return fail("reliability diagram", errc::invalid_argument);
  std::printf("\nreliability on the test split (conf = mean predicted, acc = share right):\n");
  std::printf("%-10s | %-25s | after %s\n", "bin", "raw evaluator",
              tandem::to_string(a.method).data());
  for (std::size_t b = 0; b < before->size(); ++b) {
    const auto cell = [](const tandem::reliability_bin& r) {
      char buf[40];
      if (r.count == 0)
        std::snprintf(buf, sizeof buf, "n=%3zu", r.count);
      else
        std::snprintf(buf, sizeof buf, "n=%3zu conf %.2f acc %.2f", r.count, r.mean_confidence,
                      r.accuracy);
      return std::string(buf);
    };
    std::printf("[%.1f, %.1f%c | %-25s | %s\n", (*before)[b].lower, (*before)[b].upper,
                b + 1 == before->size() ? ']' : ')', cell((*before)[b]).c_str(),
                cell((*after)[b]).c_str());
  }

  // 3. Answer or escalate with the calibrated score.
  std::size_t kept = 0, kept_right = 0;
  double quality = 0, promised = 0;
  for (std::size_t i = 0; i < test.size(); ++i) {
    if (chosen[i] >= a.threshold) {
      ++kept;
      kept_right += static_cast<std::size_t>(test[i].weak_right);
      promised += chosen[i];
      quality += test[i].weak_right;
    } else {
      quality += test[i].strong_right;
    }
  }
  const double n = static_cast<double>(test.size());
  const double esc = 1.0 - static_cast<double>(kept) / n;
  const double wq = rate(test, &item::weak_right), sq = rate(test, &item::strong_right);
  std::printf("\nanswer or escalate at calibrated P(right) >= %.2f (%s):\n", a.threshold,
              tandem::to_string(a.method).data());
  std::printf(
      "  kept %zu of %zu Mixtral answers (%.1f%%): %.1f%% right, %.1f%% expected from the scores\n",
      kept, test.size(), 100.0 * static_cast<double>(kept) / n,
      kept ? 100.0 * static_cast<double>(kept_right) / static_cast<double>(kept) : 0.0,
      kept ? 100.0 * promised / static_cast<double>(kept) : 0.0);
  std::printf("  %-28s quality %.3f  mean cost %5.2f\n", "cascade (escalated pay 1+20)",
              quality / n, 1.0 + 20.0 * esc);
  std::printf("  %-28s quality %.3f  mean cost %5.2f\n", "random escalation, same rate",
              wq + esc * (sq - wq), 1.0 + 20.0 * esc);
  std::printf("  %-28s quality %.3f  mean cost %5.2f\n", "always Mixtral", wq, 1.0);
  std::printf("  %-28s quality %.3f  mean cost %5.2f\n", "always GPT-4", sq, 20.0);
  std::printf("total time: %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}
