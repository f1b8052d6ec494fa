// eval_confidence: how well tandem's confidence estimators predict correctness.
//
// 1. gsm8k (RouteLLM outcome table): the learned evaluator is trained on a seeded 70% of
//    (question, weak model's response) and predicts whether the weak model was right on
//    the other 30% (contaminated prompts left out). Calibrators are fitted on 5-fold
//    out-of-fold predictions of the training part and applied to the test part.
// 2. KJV next-phrase task: a word-level Kneser-Ney 4-gram model trained on the corpus's
//    train split completes held-out verses (the next 1, 2 or 3 words after the first half of
//    each verse, greedy); the white-box estimators of the greedy completion and the
//    consistency estimators over k = 5 and 10 samples (temperature 1) score it.
//
// Prints one JSON object per case on stdout, a table on stderr. With --svg DIR, writes the
// gsm8k reliability diagrams of the first seed, raw and after each calibrator, one chart
// per feature set (DIR/gsm8k_reliability_<features>.svg).
//   eval_confidence [--routellm DIR] [--kjv DIR] [--seeds N] [--items N] [--svg DIR]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/svg_chart.hpp"
#include "tandem/backends/ngram_model.hpp"
#include "tandem/confidence.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/eval/csv.hpp"

namespace {

using tandem::errc;

struct summary {
  double auroc = NAN, auprc = NAN, prr = NAN, ece = NAN, brier = NAN;
};

summary judge(const std::vector<double>& s, const std::vector<int>& y, bool probabilities) {
  summary r;
  if (auto v = tandem::auroc(s, y)) r.auroc = *v;
  if (auto v = tandem::auprc(s, y)) r.auprc = *v;
  if (auto v = tandem::prediction_rejection_ratio(s, y)) r.prr = *v;
  if (probabilities) {
    if (auto v = tandem::expected_calibration_error(s, y, 10)) r.ece = *v;
    if (auto v = tandem::brier_score(s, y)) r.brier = *v;
  }
  return r;
}

void shuffle(std::vector<std::size_t>& v, tandem::rng& g) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[g.below(i)]);
}

std::size_t count_words(std::string_view s) {
  std::size_t n = 0;
  bool in = false;
  for (char c : s) {
    const bool w = c != ' ' && c != '\n' && c != '\t' && c != '\r';
    n += (w && !in) ? 1 : 0;
    in = w;
  }
  return n;
}

// ---- gsm8k -----------------------------------------------------------------------------

struct gsm_row {
  std::string question, answer;
  // Dense "answer shape" features: log(1 + x) of the answer's words, lines, numbers and
  // '=' signs, whether it has a "####" final-answer line, log(1 + question bytes).
  std::vector<double> shape;
  int label = 0;
};

std::vector<double> shape_of(std::string_view q, std::string_view a) {
  double lines = 1, numbers = 0, equals = 0;
  bool in_number = false;
  for (char c : a) {
    lines += c == '\n' ? 1 : 0;
    equals += c == '=' ? 1 : 0;
    const bool digit = c >= '0' && c <= '9';
    numbers += digit && !in_number ? 1 : 0;
    in_number = digit;
  }
  return {std::log1p(static_cast<double>(count_words(a))),
          std::log1p(lines),
          std::log1p(numbers),
          std::log1p(equals),
          a.find("####") != std::string_view::npos ? 1.0 : 0.0,
          std::log1p(static_cast<double>(q.size()))};
}

enum class feature_set { text_length, shape_only, text_shape };

/// Adds the reliability curve of `scores` (10 equal-width bins; each non-empty bin's mean
/// confidence against its accuracy) to `chart` as series `name`.
void add_reliability_series(tandem_tools::chart& chart, const std::string& name,
                            const std::vector<double>& scores, const std::vector<int>& labels) {
  tandem_tools::chart_series s{name, tandem_tools::series_kind::line_markers, {}, {}, {}, false};
  if (const auto bins = tandem::reliability_diagram(scores, labels, 10))
    for (const auto& b : *bins)
      if (b.count > 0) s.points.push_back({b.mean_confidence, b.accuracy, 0.0});
  chart.series.push_back(std::move(s));
}

/// Writes `chart`, with the diagonal of perfect calibration added, to
/// DIR/gsm8k_reliability_<features>.svg (creating DIR); returns false (with a message) on failure.
bool write_reliability_chart(tandem_tools::chart chart, const std::string& dir,
                             const char* features) {
  chart.title = std::string("gsm8k: reliability of the learned evaluator (") + features + ")";
  chart.x.label = "confidence (bin mean, 10 equal-width bins)";
  chart.y.label = "accuracy of the weak model";
  chart.x.min = chart.y.min = 0.0;
  chart.x.max = chart.y.max = 1.0;
  chart.series.push_back(
      {"perfect calibration", tandem_tools::series_kind::diagonal, {}, {}, "#999999", true});
  std::string file = features;
  std::replace(file.begin(), file.end(), '+', '_');
  const std::string path = dir + "/gsm8k_reliability_" + file + ".svg";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);  // a failure shows as io_error below
  if (const auto e = tandem_tools::write_svg(chart, path.c_str()); e != errc::ok) {
    std::fprintf(stderr, "eval_confidence: cannot write %s: %s\n", path.c_str(),
                 std::string(tandem::to_string(e)).c_str());
    return false;
  }
  std::fprintf(stderr, "eval_confidence: wrote %s\n", path.c_str());
  return true;
}

int run_gsm8k(const std::string& dir, int seeds, const std::string& svg_dir) {
  auto table = tandem::read_csv_file((dir + "/gsm8k/gsm8k_responses.csv").c_str());
  if (!table) {
    std::fprintf(stderr, "gsm8k: cannot read the table: %s\n",
                 std::string(tandem::to_string(table.error())).c_str());
    return 1;
  }
  const std::string weak = "mistralai/Mixtral-8x7B-Instruct-v0.1";
  const auto qc = table->column("prompt"), lc = table->column(weak),
             rc = table->column(weak + "_response");
  if (!qc || !lc || !rc) return 1;
  std::unordered_set<std::size_t> contaminated;
  if (auto jl = tandem::read_text_file((dir + "/gsm8k/contaminated_prompts.jsonl").c_str())) {
    std::size_t p = 0;
    while ((p = jl->find("\"eval_idx\":", p)) != std::string::npos) {
      p += 11;
      contaminated.insert(std::strtoull(jl->c_str() + p, nullptr, 10));
    }
  }
  std::vector<gsm_row> rows;
  for (std::size_t r = 0; r < table->rows.size(); ++r) {
    if (contaminated.count(r)) continue;
    const auto y = tandem::parse_label(table->rows[r][*lc]);
    if (!y) return 1;
    gsm_row row{table->rows[r][*qc], table->rows[r][*rc], {}, *y};
    row.shape = shape_of(row.question, row.answer);
    rows.push_back(std::move(row));
  }
  std::fprintf(stderr, "gsm8k: %zu rows (%zu contaminated left out)\n", rows.size(),
               contaminated.size());

  // text: hashed n-grams of question and answer; dense: the answer's word count only
  // (text_length) or all shape features.
  auto features_of = [&](std::size_t i, feature_set fs) {
    return fs == feature_set::text_length ? std::span<const double>(rows[i].shape.data(), 1)
                                          : std::span<const double>(rows[i].shape);
  };
  auto q_of = [&](std::size_t i, feature_set fs) {
    return fs == feature_set::shape_only ? std::string_view() : std::string_view(rows[i].question);
  };
  auto a_of = [&](std::size_t i, feature_set fs) {
    return fs == feature_set::shape_only ? std::string_view() : std::string_view(rows[i].answer);
  };
  auto examples_of = [&](const std::vector<std::size_t>& idx, feature_set fs) {
    std::vector<tandem::learned_example> ex;
    for (std::size_t i : idx)
      ex.push_back({q_of(i, fs), a_of(i, fs), features_of(i, fs), rows[i].label});
    return ex;
  };
  auto predict = [&](const tandem::learned_evaluator& m, std::size_t i, feature_set fs) {
    return *m.predict(q_of(i, fs), a_of(i, fs), features_of(i, fs));
  };

  std::fprintf(stderr, "%-6s %-11s %7s %7s %7s %7s %8s %8s %8s %8s\n", "seed", "model", "l2",
               "auroc", "prr", "ece", "ece_temp", "ece_platt", "ece_iso", "ece_hist");
  const char* method_names[] = {"temperature", "platt", "isotonic", "histogram"};
  const tandem::calibration_method methods[] = {
      tandem::calibration_method::temperature, tandem::calibration_method::platt,
      tandem::calibration_method::isotonic, tandem::calibration_method::histogram};
  // Per feature set: sums over seeds of auroc, prr, ece and the four calibrated ECEs.
  double totals[3][7] = {};
  for (int seed = 1; seed <= seeds; ++seed) {
    tandem::rng g(static_cast<std::uint64_t>(seed));
    std::vector<std::size_t> order(rows.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    shuffle(order, g);
    const std::size_t n_train = order.size() * 7 / 10;
    const std::vector<std::size_t> train(order.begin(), order.begin() + static_cast<long>(n_train));
    const std::vector<std::size_t> test(order.begin() + static_cast<long>(n_train), order.end());

    for (const feature_set text :
         {feature_set::text_length, feature_set::shape_only, feature_set::text_shape}) {
      // 5-fold out-of-fold predictions on the training part choose l2 and feed the calibrators.
      const double grid[] = {1e-4, 1e-3, 1e-2, 3e-2};
      double best_auc = -1, best_l2 = 1e-3;
      std::vector<double> best_oof;
      for (double l2 : grid) {
        std::vector<double> oof(train.size());
        for (std::size_t f = 0; f < 5; ++f) {
          std::vector<std::size_t> in, out;
          for (std::size_t k = 0; k < train.size(); ++k)
            (k % 5 == f ? out : in).push_back(train[k]);
          tandem::learned_options o;
          o.l2 = l2;
          const auto m = tandem::learned_evaluator::train(examples_of(in, text), o);
          if (!m) return 1;
          for (std::size_t k = 0; k < train.size(); ++k)
            if (k % 5 == f) oof[k] = predict(*m, train[k], text);
        }
        std::vector<int> y;
        for (std::size_t i : train) y.push_back(rows[i].label);
        const double auc = *tandem::auroc(oof, y);
        if (auc > best_auc) {
          best_auc = auc;
          best_l2 = l2;
          best_oof = oof;
        }
      }
      tandem::learned_options o;
      o.l2 = best_l2;
      const auto m = tandem::learned_evaluator::train(examples_of(train, text), o);
      if (!m) return 1;
      std::vector<double> p;
      std::vector<int> y, y_train;
      for (std::size_t i : test) {
        p.push_back(predict(*m, i, text));
        y.push_back(rows[i].label);
      }
      for (std::size_t i : train) y_train.push_back(rows[i].label);
      const summary raw = judge(p, y, true);
      const bool chart = !svg_dir.empty() && seed == 1;
      tandem_tools::chart reliability;
      if (chart) add_reliability_series(reliability, "raw", p, y);
      double ece_after[4];
      for (int k = 0; k < 4; ++k) {
        const auto c = tandem::calibrator::fit(methods[k], best_oof, y_train);
        std::vector<double> q(p.size());
        if (!c || c->apply(p, q) != errc::ok) return 1;
        ece_after[k] = *tandem::expected_calibration_error(q, y, 10);
        if (chart) add_reliability_series(reliability, method_names[k], q, y);
      }
      const char* name = text == feature_set::text_length  ? "text+length"
                         : text == feature_set::shape_only ? "shape_only"
                                                           : "text+shape";
      if (chart && !write_reliability_chart(std::move(reliability), svg_dir, name)) return 1;
      std::printf(
          "{\"bench\":\"eval_confidence\",\"case\":\"gsm8k_learned\",\"features\":\"%s\","
          "\"seed\":%d,\"n_train\":%zu,\"n_test\":%zu,\"test_accuracy\":%.4f,\"l2\":%g,"
          "\"auroc\":%.4f,\"auprc\":%.4f,\"prr\":%.4f,\"brier\":%.4f,\"ece\":%.4f,\"ece_bins\":10",
          name, seed, train.size(), test.size(),
          static_cast<double>(std::count(y.begin(), y.end(), 1)) / static_cast<double>(y.size()),
          best_l2, raw.auroc, raw.auprc, raw.prr, raw.brier, raw.ece);
      for (int k = 0; k < 4; ++k) std::printf(",\"ece_%s\":%.4f", method_names[k], ece_after[k]);
      std::printf("}\n");
      double* t = totals[static_cast<int>(text)];
      t[0] += raw.auroc;
      t[1] += raw.prr;
      t[2] += raw.ece;
      for (int k = 0; k < 4; ++k) t[3 + k] += ece_after[k];
      std::fprintf(stderr, "%-6d %-11.11s %7g %7.4f %7.4f %7.4f %8.4f %8.4f %8.4f %8.4f\n", seed,
                   name, best_l2, raw.auroc, raw.prr, raw.ece, ece_after[0], ece_after[1],
                   ece_after[2], ece_after[3]);
    }
  }
  const char* set_names[] = {"text+length", "shape_only", "text+shape"};
  for (int fs = 0; seeds > 0 && fs < 3; ++fs) {
    const double* t = totals[fs];
    const double n = seeds;
    std::printf(
        "{\"bench\":\"eval_confidence\",\"case\":\"gsm8k_learned_mean\",\"features\":\"%s\","
        "\"seeds\":%d,\"auroc\":%.4f,\"prr\":%.4f,\"ece\":%.4f,\"ece_bins\":10,"
        "\"ece_temperature\":%.4f,\"ece_platt\":%.4f,\"ece_isotonic\":%.4f,"
        "\"ece_histogram\":%.4f}\n",
        set_names[fs], seeds, t[0] / n, t[1] / n, t[2] / n, t[3] / n, t[4] / n, t[5] / n, t[6] / n);
    std::fprintf(stderr, "%-6s %-11s %7s %7.4f %7.4f %7.4f %8.4f %8.4f %8.4f %8.4f\n", "mean",
                 set_names[fs], "", t[0] / n, t[1] / n, t[2] / n, t[3] / n, t[4] / n, t[5] / n,
                 t[6] / n);
  }
  return 0;
}

// ---- KJV next-phrase task ----------------------------------------------------------------

void words_of(std::string_view line, std::vector<std::string>& out) {
  out.clear();
  std::string w;
  for (char c : line) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '\'') {
      w.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    } else if (!w.empty()) {
      out.push_back(w);
      w.clear();
    }
  }
  if (!w.empty()) out.push_back(w);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t p = 0;
  while (p < text.size()) {
    std::size_t e = text.find('\n', p);
    if (e == std::string::npos) e = text.size();
    if (e > p) out.push_back(text.substr(p, e - p));
    p = e + 1;
  }
  return out;
}

int run_kjv(const std::string& dir, std::size_t max_items) {
  if (max_items == 0) return 0;
  auto train_text = tandem::read_text_file((dir + "/train.txt").c_str());
  auto held_text = tandem::read_text_file((dir + "/heldout.txt").c_str());
  if (!train_text || !held_text) {
    std::fprintf(stderr, "kjv: cannot read %s\n", dir.c_str());
    return 1;
  }
  std::vector<std::string> w;
  std::unordered_map<std::string, std::size_t> counts;
  const auto train_lines = lines_of(*train_text);
  for (const auto& l : train_lines) {
    words_of(l, w);
    for (const auto& x : w) ++counts[x];
  }
  // Vocabulary: words seen at least twice; 0 = <unk>, 1 = <s>, 2 = </s>.
  std::vector<std::string> vocab{"<unk>", "<s>", "</s>"};
  std::vector<std::string> sorted_words;
  for (const auto& [k, c] : counts)
    if (c >= 2) sorted_words.push_back(k);
  std::sort(sorted_words.begin(), sorted_words.end());
  std::unordered_map<std::string, tandem::token_id> id;
  for (const auto& x : sorted_words) {
    id[x] = static_cast<tandem::token_id>(vocab.size());
    vocab.push_back(x);
  }
  auto encode = [&](const std::vector<std::string>& ws) {
    std::vector<tandem::token_id> t;
    for (const auto& x : ws) {
      const auto it = id.find(x);
      t.push_back(it == id.end() ? 0 : it->second);
    }
    return t;
  };
  tandem::ngram_options params;
  params.order = 4;
  params.vocab_size = vocab.size();
  params.bos = 1;
  params.eos = 2;
  auto builder = tandem::ngram_builder::create(params);
  if (!builder) return 1;
  for (const auto& l : train_lines) {
    words_of(l, w);
    if (builder->add_sentence(encode(w)) != errc::ok) return 1;
  }
  const auto model = builder->build();
  if (!model) return 1;
  std::fprintf(stderr, "kjv: vocabulary %zu words, 4-gram model built\n", vocab.size());

  const auto held_lines = lines_of(*held_text);
  tandem::ngram_session session(*model);
  tandem::rng g(2024);
  std::vector<double> margins;
  for (const std::size_t span : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
    // Scores per estimator, one per item; correctness of the greedy phrase.
    std::vector<int> correct;
    std::vector<std::vector<double>> wb(9);
    const char* cons_names[] = {"greedy_agreement", "majority_share", "mean_rouge_l",
                                "semantic_sets",    "degree",         "eccentricity",
                                "eigenvalues"};
    std::vector<std::vector<double>> cons5(7), cons10(7);
    std::size_t items = 0;
    for (const auto& line : held_lines) {
      if (items >= max_items) break;
      words_of(line, w);
      if (w.size() < 8) continue;
      const auto tokens = encode(w);
      const std::size_t cut = (w.size() + 1) / 2;
      if (cut + span > tokens.size()) continue;
      bool unk = false;
      for (std::size_t k = cut; k < cut + span; ++k) unk = unk || tokens[k] == 0;
      if (unk) continue;
      ++items;
      std::vector<tandem::token_id> prompt{1};
      prompt.insert(prompt.end(), tokens.begin(), tokens.begin() + static_cast<long>(cut));
      while (session.size() > 0) (void)session.rewind(session.size());
      if (session.append(prompt) != errc::ok) return 1;
      // Greedy phrase with its completion record and per-token margins.
      tandem::completion c;
      margins.clear();
      for (std::size_t k = 0; k < span; ++k) {
        const auto lg = session.logits();
        const auto best =
            static_cast<tandem::token_id>(std::max_element(lg.begin(), lg.end()) - lg.begin());
        double h = 0.0;
        for (float l : lg)
          if (std::isfinite(l)) h -= std::exp(static_cast<double>(l)) * l;
        c.tokens.push_back(best);
        c.logprobs.push_back(lg[static_cast<std::size_t>(best)]);
        c.entropies.push_back(static_cast<float>(h));
        margins.push_back(*tandem::top2_margin(lg));
        if (session.append(std::span<const tandem::token_id>(&best, 1)) != errc::ok) return 1;
      }
      (void)session.rewind(span);
      const bool ok =
          std::equal(c.tokens.begin(), c.tokens.end(), tokens.begin() + static_cast<long>(cut));
      correct.push_back(ok ? 1 : 0);
      const auto s = tandem::score_white_box(c, 0.1, margins);
      if (!s) return 1;
      for (int e = 0; e < 9; ++e)
        wb[static_cast<std::size_t>(e)].push_back(
            tandem::confidence_of(*s, static_cast<tandem::white_box_estimator>(e)));
      // k samples at temperature 1.
      std::vector<std::string> samples;
      for (int k = 0; k < 10; ++k) {
        std::string text;
        for (std::size_t j = 0; j < span; ++j) {
          const auto lg = session.logits();
          double u = g.uniform(), acc = 0.0;
          tandem::token_id pick = static_cast<tandem::token_id>(lg.size() - 1);
          for (std::size_t v = 0; v < lg.size(); ++v) {
            acc += std::exp(static_cast<double>(lg[v]));
            if (u < acc) {
              pick = static_cast<tandem::token_id>(v);
              break;
            }
          }
          if (j) text += ' ';
          text += vocab[static_cast<std::size_t>(pick)];
          if (session.append(std::span<const tandem::token_id>(&pick, 1)) != errc::ok) return 1;
        }
        (void)session.rewind(span);
        samples.push_back(text);
      }
      // The greedy answer's share among the samples is the vote that scores it.
      std::string greedy;
      for (std::size_t j = 0; j < span; ++j)
        greedy += (j ? " " : "") + vocab[static_cast<std::size_t>(c.tokens[j])];
      for (const std::size_t k : {std::size_t{5}, std::size_t{10}}) {
        const std::span<const std::string> sub(samples.data(), k);
        const auto cs = tandem::score_consistency(sub, tandem::normalize_answer);
        if (!cs) return 1;
        const double agree = static_cast<double>(std::count(sub.begin(), sub.end(), greedy)) /
                             static_cast<double>(k);
        auto& dst = k == 5 ? cons5 : cons10;
        dst[0].push_back(agree);
        dst[1].push_back(cs->vote.share);
        dst[2].push_back(cs->mean_similarity);
        dst[3].push_back(-static_cast<double>(cs->graph.semantic_sets));
        dst[4].push_back(-cs->graph.degree);
        dst[5].push_back(-cs->graph.eccentricity);
        dst[6].push_back(-cs->graph.eigenvalues);
      }
    }
    const double acc = static_cast<double>(std::count(correct.begin(), correct.end(), 1)) /
                       static_cast<double>(correct.size());
    std::fprintf(stderr, "kjv next %zu word(s): %zu items, greedy accuracy %.4f\n", span,
                 correct.size(), acc);
    for (int e = 0; e < 9; ++e) {
      const auto name = tandem::to_string(static_cast<tandem::white_box_estimator>(e));
      const summary r = judge(wb[static_cast<std::size_t>(e)], correct, false);
      std::printf(
          "{\"bench\":\"eval_confidence\",\"case\":\"kjv_next_%zu\",\"estimator\":\"%s\","
          "\"kind\":\"white_box\",\"n\":%zu,\"accuracy\":%.4f,\"auroc\":%.4f,\"prr\":%.4f}\n",
          span, std::string(name).c_str(), correct.size(), acc, r.auroc, r.prr);
      std::fprintf(stderr, "  %-24s auroc %.4f prr %.4f\n", std::string(name).c_str(), r.auroc,
                   r.prr);
    }
    for (const std::size_t k : {std::size_t{5}, std::size_t{10}}) {
      auto& src = k == 5 ? cons5 : cons10;
      for (int e = 0; e < 7; ++e) {
        const summary r = judge(src[static_cast<std::size_t>(e)], correct, false);
        std::printf(
            "{\"bench\":\"eval_confidence\",\"case\":\"kjv_next_%zu\",\"estimator\":\"%s\","
            "\"kind\":\"consistency\",\"k\":%zu,\"n\":%zu,\"accuracy\":%.4f,\"auroc\":%.4f,"
            "\"prr\":%.4f}\n",
            span, cons_names[e], k, correct.size(), acc, r.auroc, r.prr);
        std::fprintf(stderr, "  k=%-2zu %-19s auroc %.4f prr %.4f\n", k, cons_names[e], r.auroc,
                     r.prr);
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string routellm = "../shared/data/routellm";
#ifdef TANDEM_DATA_DIR
  std::string kjv = TANDEM_DATA_DIR "/kjv";
#else
  std::string kjv = "data/kjv";
#endif
  int seeds = 5;
  std::size_t items = 3000;
  std::string svg_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view k = argv[i];
    if (k == "--routellm")
      routellm = argv[i + 1];
    else if (k == "--kjv")
      kjv = argv[i + 1];
    else if (k == "--seeds")
      seeds = std::atoi(argv[i + 1]);
    else if (k == "--items")
      items = static_cast<std::size_t>(std::atoll(argv[i + 1]));
    else if (k == "--svg")
      svg_dir = argv[i + 1];
    else {
      std::fprintf(stderr,
                   "usage: eval_confidence [--routellm DIR] [--kjv DIR] [--seeds N] [--items N] "
                   "[--svg DIR]\n");
      return 2;
    }
  }
  if (run_gsm8k(routellm, seeds, svg_dir) != 0) return 1;
  return run_kjv(kjv, items);
}
