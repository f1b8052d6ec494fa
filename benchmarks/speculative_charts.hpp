// bench_speculative's charts (--svg DIR), kept apart from the benchmark so a test can
// build them from made-up figures: speedup against draft length (achieved beside the cost
// model's prediction, one pair of series per acceptance rate) and acceptance by draft
// position. Benchmark code, not part of the library.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "common/svg_chart.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/speculative/decoder.hpp"

namespace tandem_bench {

/// One synthetic case's figures, as the benchmark measured them.
struct speculative_case {
  std::string shape;                           ///< the cost model's shape, e.g. "flat"
  std::string policy;                          ///< e.g. "fixed4", "adaptive"
  bool fixed_length = false;                   ///< a fixed draft length policy
  double agree = 0.0;                          ///< the synthetic pair's agreement rate
  double mean_draft_length = 0.0;              ///< draft tokens per verification round
  double speedup = 0.0;                        ///< achieved, over target-only
  double theory_speedup = 0.0;                 ///< the cost model's prediction
  std::vector<double> acceptance_by_position;  ///< [i]: acceptance at draft position i + 1
};

/// The case's figures from the decoder's statistics (positions never drafted are left
/// out of `acceptance_by_position`).
inline speculative_case make_speculative_case(std::string shape, std::string policy,
                                              bool fixed_length, double agree, double speedup,
                                              double theory_speedup,
                                              const tandem::speculative_stats& st) {
  speculative_case c;
  c.shape = std::move(shape);
  c.policy = std::move(policy);
  c.fixed_length = fixed_length;
  c.agree = agree;
  c.speedup = speedup;
  c.theory_speedup = theory_speedup;
  c.mean_draft_length =
      st.rounds == 0 ? 0.0 : static_cast<double>(st.drafted) / static_cast<double>(st.rounds);
  for (std::size_t i = 0; i < st.drafted_at.size() && st.drafted_at[i] > 0; ++i)
    c.acceptance_by_position.push_back(st.acceptance_at(i));
  return c;
}

inline constexpr std::string_view chart_colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c",
                                                    "#d62728", "#9467bd", "#8c564b"};

inline std::string agree_name(double agree) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "a=%.2f", agree);
  return buf;
}

/// The distinct values of `field` over `cases`, in order of first appearance.
template <class T>
std::vector<T> distinct(const std::vector<speculative_case>& cases, T speculative_case::*field) {
  std::vector<T> out;
  for (const auto& c : cases)
    if (std::find(out.begin(), out.end(), c.*field) == out.end()) out.push_back(c.*field);
  return out;
}

/// The cases of one cost-model shape.
inline std::vector<speculative_case> of_shape(const std::vector<speculative_case>& cases,
                                              const std::string& shape) {
  std::vector<speculative_case> out;
  for (const auto& c : cases)
    if (c.shape == shape) out.push_back(c);
  return out;
}

/// Speedup against mean draft length: per acceptance rate, the fixed-length policies'
/// achieved speedups (solid) and the cost model's predictions (dashed) in one colour, the
/// other policies as labelled points; a dashed grey line marks no speedup (1x). `cases`
/// are those of one cost-model shape (see `of_shape`).
inline tandem_tools::chart speedup_chart(const std::vector<speculative_case>& cases) {
  tandem_tools::chart ch;
  ch.title = "speculative decoding: speedup against draft length (synthetic, " +
             (cases.empty() ? std::string("no cases") : cases.front().shape) + " cost model)";
  ch.x.label = "mean draft length (draft tokens per round)";
  ch.y.label = "speedup over target-only";
  ch.x.min = 0.0;
  ch.y.min = 0.0;
  ch.width = 760;
  double longest = 1.0;
  for (const auto& c : cases) longest = std::max(longest, c.mean_draft_length);
  ch.series.push_back({"no speedup (1x)",
                       tandem_tools::series_kind::line,
                       {{0.0, 1.0, 0.0}, {longest, 1.0, 0.0}},
                       {},
                       "#999999",
                       true});
  const std::vector<double> agree = distinct(cases, &speculative_case::agree);
  for (std::size_t k = 0; k < agree.size(); ++k) {
    const std::string color(chart_colors[k % std::size(chart_colors)]);
    std::vector<const speculative_case*> fixed;
    tandem_tools::chart_series others{agree_name(agree[k]) + " other policies",
                                      tandem_tools::series_kind::points,
                                      {},
                                      {},
                                      color,
                                      false};
    for (const auto& c : cases) {
      if (c.agree != agree[k]) continue;
      if (c.fixed_length) {
        fixed.push_back(&c);
      } else {
        others.points.push_back({c.mean_draft_length, c.speedup, 0.0});
        others.labels.push_back(c.policy);
      }
    }
    std::stable_sort(fixed.begin(), fixed.end(), [](const auto* a, const auto* b) {
      return a->mean_draft_length < b->mean_draft_length;
    });
    tandem_tools::chart_series achieved{agree_name(agree[k]) + " achieved",
                                        tandem_tools::series_kind::line_markers,
                                        {},
                                        {},
                                        color,
                                        false};
    tandem_tools::chart_series theory{
        agree_name(agree[k]) + " theory", tandem_tools::series_kind::line, {}, {}, color, true};
    for (const auto* c : fixed) {
      achieved.points.push_back({c->mean_draft_length, c->speedup, 0.0});
      theory.points.push_back({c->mean_draft_length, c->theory_speedup, 0.0});
    }
    if (!fixed.empty()) {
      ch.series.push_back(std::move(achieved));
      ch.series.push_back(std::move(theory));
    }
    if (!others.points.empty()) ch.series.push_back(std::move(others));
  }
  return ch;
}

/// Acceptance rate by draft position: per acceptance rate, the fixed-length case that
/// drafted the most positions (any case when none is fixed-length; the first of equals). `cases`
/// are those of one cost-model shape.
inline tandem_tools::chart acceptance_chart(const std::vector<speculative_case>& cases) {
  tandem_tools::chart ch;
  ch.title = "speculative decoding: acceptance by draft position (synthetic pair)";
  ch.x.label = "draft position";
  ch.y.label = "acceptance rate at the position";
  ch.y.min = 0.0;
  ch.y.max = 1.0;
  for (double a : distinct(cases, &speculative_case::agree)) {
    // Fixed-length policies draft every position in every round: their figures rest on
    // the most rounds.
    const auto rank = [](const speculative_case& c) {
      return std::pair{c.fixed_length, c.acceptance_by_position.size()};
    };
    const speculative_case* best = nullptr;
    for (const auto& c : cases)
      if (c.agree == a && (best == nullptr || rank(c) > rank(*best))) best = &c;
    tandem_tools::chart_series s{agree_name(a) + " (" + best->policy + ")",
                                 tandem_tools::series_kind::line_markers,
                                 {},
                                 {},
                                 {},
                                 false};
    for (std::size_t i = 0; i < best->acceptance_by_position.size(); ++i)
      s.points.push_back({static_cast<double>(i + 1), best->acceptance_by_position[i], 0.0});
    ch.series.push_back(std::move(s));
  }
  return ch;
}

/// Writes, per cost-model shape, `dir`/speculative_speedup_<shape>.svg and
/// `dir`/speculative_acceptance_<shape>.svg, creating `dir` when needed; prints each path
/// written, or what failed, on stderr. Returns false on a failure.
inline bool write_speculative_charts(const std::string& dir,
                                     const std::vector<speculative_case>& cases) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  for (const std::string& shape : distinct(cases, &speculative_case::shape)) {
    const auto these = of_shape(cases, shape);
    for (const auto& [name, ch] : {std::pair{"speedup", speedup_chart(these)},
                                   std::pair{"acceptance", acceptance_chart(these)}}) {
      const std::string path = dir + "/speculative_" + name + "_" + shape + ".svg";
      if (const auto e = tandem_tools::write_svg(ch, path.c_str()); e != tandem::errc::ok) {
        std::fprintf(stderr, "bench_speculative: cannot write %s: %s\n", path.c_str(),
                     std::string(tandem::to_string(e)).c_str());
        return false;
      }
      std::fprintf(stderr, "bench_speculative: wrote %s\n", path.c_str());
    }
  }
  return true;
}

}  // namespace tandem_bench
