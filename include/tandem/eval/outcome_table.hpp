// tandem: outcome tables (per query, per model: recorded quality in [0, 1] and cost), read
// from CSV files, filtered and split for replaying routers and cascades offline.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/eval/csv.hpp"

namespace tandem::inline v0 {

/// Queries with each model's recorded quality and cost, row-major n x m. Owns its data.
struct outcome_table {
  std::vector<std::string> models;   ///< model names (the quality columns), m
  std::vector<std::string> prompts;  ///< query texts, n
  std::vector<double> quality;       ///< n x m, each in [0, 1]
  std::vector<double> cost;          ///< n x m, each finite and >= 0

  /// Number of queries.
  [[nodiscard]] std::size_t size() const noexcept { return prompts.size(); }
  /// Number of models.
  [[nodiscard]] std::size_t num_models() const noexcept { return models.size(); }
  /// Quality of query i on model j. Precondition: i < size(), j < num_models().
  [[nodiscard]] double q(std::size_t i, std::size_t j) const noexcept {
    TANDEM_ASSERT(i < size() && j < num_models(), "outcome_table::q out of range");
    return quality[i * models.size() + j];
  }
  /// Cost of query i on model j. Precondition: i < size(), j < num_models().
  [[nodiscard]] double c(std::size_t i, std::size_t j) const noexcept {
    TANDEM_ASSERT(i < size() && j < num_models(), "outcome_table::c out of range");
    return cost[i * models.size() + j];
  }
};

/// How to read an outcome table from CSV columns.
struct outcome_csv_options {
  std::string prompt_column = "prompt";  ///< the query text column
  std::vector<std::string> models;       ///< quality columns, one per model
  /// Fixed cost per model (same order as `models`), or empty to read per-row costs from
  /// the column `<model><cost_suffix>`.
  std::vector<double> fixed_costs;
  std::string cost_suffix;  ///< used when fixed_costs is empty
};

/// Counters of a load.
struct outcome_load_stats {
  std::size_t rows = 0;     ///< data rows seen
  std::size_t dropped = 0;  ///< rows dropped for an empty cell in a used column
};

/// Parses a quality cell: True/true/False/false (any case), or a number in [0, 1] (so 1/0).
/// Errors: parse_error (not a boolean or number), non_finite, invalid_argument (a number
/// outside [0, 1]).
[[nodiscard]] inline result<double> parse_quality(std::string_view cell) noexcept {
  const std::string_view t = detail::trim_ascii(cell);
  if (detail::iequals_ascii(t, "true")) return 1.0;
  if (detail::iequals_ascii(t, "false")) return 0.0;
  auto v = parse_number(t);
  if (!v) return v.error();
  if (*v < 0.0 || *v > 1.0) return errc::invalid_argument;
  return *v;
}

/// Appends the rows of a parsed CSV table to `table`, whose `models` must equal
/// `options.models` (set it when the table is empty). Rows with an empty (after trimming
/// spaces) cell in a used column are skipped and counted in `stats.dropped`.
/// Errors: invalid_argument (no models, duplicate models, fixed_costs of the wrong size or
/// negative/non-finite, a mismatching table.models, a quality outside [0, 1], a negative
/// cost), not_found (a missing column), parse_error (a non-numeric quality or cost),
/// non_finite. Details in `*info` when not null: for a bad cell, `line` is its 1-based data
/// row (the header not counted), `column` its 1-based column index, and the text names the
/// column and quotes the cell ("column \"b_cost\": bad value \"cheap\""); a missing column
/// is named in the text. On error `table` keeps the rows appended before the failing row;
/// `stats` counts them.
[[nodiscard]] inline errc append_outcome_csv(outcome_table& table, const csv_table& csv,
                                             const outcome_csv_options& options,
                                             outcome_load_stats& stats,
                                             error_info* info = nullptr) {
  const auto bad_option = [&](const char* what) {
    return detail::fail(info, errc::invalid_argument, "outcome table options: %s", what);
  };
  const auto missing = [&](const std::string& column) {
    return detail::fail(info, errc::not_found, "no column \"%s\"", column.c_str());
  };
  const auto bad_cell = [&](errc e, const std::string& column, std::size_t row, std::size_t index,
                            std::string_view cell) {
    constexpr std::size_t shown = 64;  // of the cell; the rest is cut
    return detail::fail_at(info, e, row, index + 1, "column \"%s\": bad value \"%.*s\"",
                           column.c_str(), static_cast<int>(std::min(cell.size(), shown)),
                           cell.data());
  };
  const std::size_t m = options.models.size();
  if (m == 0) return bad_option("no models");
  for (std::size_t a = 0; a < m; ++a)
    for (std::size_t b = a + 1; b < m; ++b)
      if (options.models[a] == options.models[b])
        return detail::fail(info, errc::invalid_argument,
                            "outcome table options: model \"%s\" named twice",
                            options.models[a].c_str());
  const bool fixed = !options.fixed_costs.empty();
  if (fixed && options.fixed_costs.size() != m)
    return bad_option("fixed_costs and models differ in size");
  for (double c : options.fixed_costs)
    if (!std::isfinite(c) || c < 0) return bad_option("a negative or non-finite fixed cost");
  if (table.models.empty() && table.prompts.empty()) table.models = options.models;
  if (table.models != options.models) return bad_option("models differ from the table's");

  auto pc = csv.column(options.prompt_column);
  if (!pc) return missing(options.prompt_column);
  std::vector<std::size_t> qcol(m), ccol(m);
  for (std::size_t j = 0; j < m; ++j) {
    auto q = csv.column(options.models[j]);
    if (!q) return missing(options.models[j]);
    qcol[j] = *q;
    if (!fixed) {
      const std::string name = options.models[j] + options.cost_suffix;
      auto c = csv.column(name);
      if (!c) return missing(name);
      ccol[j] = *c;
    }
  }
  std::vector<double> qrow(m), crow(m);
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    const std::vector<std::string>& row = csv.rows[r];
    ++stats.rows;
    const auto cell = [&](std::size_t col) -> std::string_view {
      return col < row.size() ? std::string_view(row[col]) : std::string_view();
    };
    bool empty = detail::trim_ascii(cell(*pc)).empty();
    for (std::size_t j = 0; j < m && !empty; ++j)
      empty = detail::trim_ascii(cell(qcol[j])).empty() ||
              (!fixed && detail::trim_ascii(cell(ccol[j])).empty());
    if (empty) {
      ++stats.dropped;
      continue;
    }
    for (std::size_t j = 0; j < m; ++j) {
      auto q = parse_quality(cell(qcol[j]));
      if (!q) return bad_cell(q.error(), options.models[j], r + 1, qcol[j], cell(qcol[j]));
      qrow[j] = *q;
      if (fixed) {
        crow[j] = options.fixed_costs[j];
      } else {
        auto c = parse_number(cell(ccol[j]));
        if (!c || *c < 0)
          return bad_cell(c ? errc::invalid_argument : c.error(),
                          options.models[j] + options.cost_suffix, r + 1, ccol[j], cell(ccol[j]));
        crow[j] = *c;
      }
    }
    table.prompts.emplace_back(cell(*pc));
    table.quality.insert(table.quality.end(), qrow.begin(), qrow.end());
    table.cost.insert(table.cost.end(), crow.begin(), crow.end());
  }
  return errc::ok;
}

/// The rows of `table` at `rows` (in that order), as a new table. Precondition: every
/// index < table.size().
[[nodiscard]] inline outcome_table subset(const outcome_table& table,
                                          const std::vector<std::size_t>& rows) {
  outcome_table out;
  out.models = table.models;
  const std::size_t m = table.num_models();
  out.prompts.reserve(rows.size());
  out.quality.reserve(rows.size() * m);
  out.cost.reserve(rows.size() * m);
  for (std::size_t i : rows) {
    TANDEM_ASSERT(i < table.size(), "subset: row out of range");
    out.prompts.push_back(table.prompts[i]);
    out.quality.insert(out.quality.end(),
                       table.quality.begin() + static_cast<std::ptrdiff_t>(i * m),
                       table.quality.begin() + static_cast<std::ptrdiff_t>((i + 1) * m));
    out.cost.insert(out.cost.end(), table.cost.begin() + static_cast<std::ptrdiff_t>(i * m),
                    table.cost.begin() + static_cast<std::ptrdiff_t>((i + 1) * m));
  }
  return out;
}

/// Removes the rows whose prompt is in `prompts`; returns how many were removed.
inline std::size_t remove_prompts(outcome_table& table,
                                  const std::unordered_set<std::string>& prompts) {
  std::vector<std::size_t> keep;
  keep.reserve(table.size());
  for (std::size_t i = 0; i < table.size(); ++i)
    if (prompts.find(table.prompts[i]) == prompts.end()) keep.push_back(i);
  const std::size_t removed = table.size() - keep.size();
  if (removed > 0) table = subset(table, keep);
  return removed;
}

/// A seeded random split of n rows: round(train_fraction * n) rows go to the first
/// (training) list, the rest to the second (test); each list is in increasing order.
/// Errors: invalid_argument (train_fraction outside (0, 1) or NaN), empty_input (a split
/// would be empty).
[[nodiscard]] inline result<std::pair<std::vector<std::size_t>, std::vector<std::size_t>>>
split_rows(std::size_t n, double train_fraction, std::uint64_t seed) {
  if (!(train_fraction > 0.0 && train_fraction < 1.0)) return errc::invalid_argument;
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  rng g(seed);
  for (std::size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[g.below(i)]);
  const auto n_train = static_cast<std::size_t>(train_fraction * static_cast<double>(n) + 0.5);
  if (n_train == 0 || n_train >= n) return errc::empty_input;
  std::vector<std::size_t> train(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n_train));
  std::vector<std::size_t> test(idx.begin() + static_cast<std::ptrdiff_t>(n_train), idx.end());
  std::sort(train.begin(), train.end());
  std::sort(test.begin(), test.end());
  return std::pair{std::move(train), std::move(test)};
}

}  // namespace tandem::inline v0
