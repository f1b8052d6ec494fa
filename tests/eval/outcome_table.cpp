// Outcome tables from CSV: quality cells, fixed and per-row costs, dropped rows, named
// errors for missing columns and bad cells, seeded splits.
#include "tandem/eval/outcome_table.hpp"

#include <algorithm>
#include <string>
#include <unordered_set>

#include "common/catch.hpp"

using tandem::errc;

namespace {
tandem::csv_table csv(std::string_view text) {
  auto t = tandem::parse_csv(text);
  REQUIRE(t);
  return *t;
}
}  // namespace

TEST_CASE("outcome table: quality cells accept booleans, 0/1 and floats in the unit interval",
          "[eval][outcome]") {
  CHECK(tandem::parse_quality("True").value() == 1.0);
  CHECK(tandem::parse_quality("false").value() == 0.0);
  CHECK(tandem::parse_quality("1").value() == 1.0);
  CHECK(tandem::parse_quality("0").value() == 0.0);
  CHECK(tandem::parse_quality(" 0.25 ").value() == 0.25);
  CHECK(tandem::parse_quality("yes").error() == errc::parse_error);
  CHECK(tandem::parse_quality("1.5").error() == errc::invalid_argument);
  CHECK(tandem::parse_quality("-0.1").error() == errc::invalid_argument);
}

TEST_CASE("outcome table: fixed costs, and rows with an empty used cell are dropped and counted",
          "[eval][outcome]") {
  const auto t =
      csv("prompt,weak,strong,unused\n"
          "\"What is 2+2?\nA. 4\",True,True,\n"
          "q2,False,1,x\n"
          "q3,,True,x\n"
          ",True,True,x\n"
          "q5,0.5,false,\n");
  tandem::outcome_table table;
  tandem::outcome_load_stats stats;
  tandem::outcome_csv_options o;
  o.models = {"weak", "strong"};
  o.fixed_costs = {1, 20};
  REQUIRE(tandem::append_outcome_csv(table, t, o, stats) == errc::ok);
  CHECK(stats.rows == 5);
  CHECK(stats.dropped == 2);
  REQUIRE(table.size() == 3);
  CHECK(table.prompts[0] == "What is 2+2?\nA. 4");
  CHECK(table.q(1, 0) == 0.0);
  CHECK(table.q(1, 1) == 1.0);
  CHECK(table.q(2, 0) == 0.5);
  CHECK(table.c(2, 1) == 20.0);
  // A second file appends rows.
  REQUIRE(tandem::append_outcome_csv(table, t, o, stats) == errc::ok);
  CHECK(table.size() == 6);
}

TEST_CASE("outcome table: per-row costs come from <model><suffix> columns", "[eval][outcome]") {
  const auto t = csv("prompt,a,b,a_cost,b_cost\nq1,1,0,0.5,3\nq2,0,1,0.25,\n");
  tandem::outcome_table table;
  tandem::outcome_load_stats stats;
  tandem::outcome_csv_options o;
  o.models = {"a", "b"};
  o.cost_suffix = "_cost";
  REQUIRE(tandem::append_outcome_csv(table, t, o, stats) == errc::ok);
  REQUIRE(table.size() == 1);  // q2 has an empty cost
  CHECK(stats.dropped == 1);
  CHECK(table.c(0, 0) == 0.5);
  CHECK(table.c(0, 1) == 3.0);
}

TEST_CASE("outcome table: missing columns and bad cells are named errors", "[eval][outcome]") {
  tandem::outcome_table table;
  tandem::outcome_load_stats stats;
  tandem::error_info err;
  tandem::outcome_csv_options o;
  o.models = {"a", "b"};
  o.cost_suffix = "_cost";

  CHECK(tandem::append_outcome_csv(table, csv("prompt,a,b,a_cost\nq,1,0,1\n"), o, stats, &err) ==
        errc::not_found);
  CHECK(err.context() == "no column \"b_cost\"");
  CHECK(err.line == 0);
  CHECK(tandem::append_outcome_csv(table, csv("text,a,b,a_cost,b_cost\nq,1,0,1,1\n"), o, stats,
                                   &err) == errc::not_found);
  CHECK(err.context() == "no column \"prompt\"");

  CHECK(tandem::append_outcome_csv(table, csv("prompt,a,b,a_cost,b_cost\nq,1,0,1,cheap\n"), o,
                                   stats, &err) == errc::parse_error);
  CHECK(err.code == errc::parse_error);
  CHECK(err.context() == "column \"b_cost\": bad value \"cheap\"");
  CHECK(err.line == 1);
  CHECK(err.column == 5);
  CHECK(tandem::append_outcome_csv(table, csv("prompt,a,b,a_cost,b_cost\nq,1,0,-1,1\n"), o, stats,
                                   &err) == errc::invalid_argument);
  CHECK(err.context() == "column \"a_cost\": bad value \"-1\"");
  CHECK(err.column == 4);
  CHECK(tandem::append_outcome_csv(table,
                                   csv("prompt,a,b,a_cost,b_cost\nq,1,0,1,1\nr,maybe,0,1,1\n"), o,
                                   stats, &err) == errc::parse_error);
  CHECK(err.context() == "column \"a\": bad value \"maybe\"");
  CHECK(err.line == 2);
  CHECK(err.column == 2);
  table = {};

  tandem::outcome_csv_options bad = o;
  bad.models = {"a", "a"};
  CHECK(tandem::append_outcome_csv(table, csv("prompt,a\nq,1\n"), bad, stats) ==
        errc::invalid_argument);
  bad.models = {"a", "b"};
  bad.fixed_costs = {1};
  CHECK(tandem::append_outcome_csv(table, csv("prompt,a,b\nq,1,0\n"), bad, stats) ==
        errc::invalid_argument);
  CHECK(table.size() == 0);
}

TEST_CASE("outcome table: seeded splits are disjoint, complete and reproducible",
          "[eval][outcome]") {
  auto a = tandem::split_rows(100, 0.7, 0);
  auto b = tandem::split_rows(100, 0.7, 0);
  auto c = tandem::split_rows(100, 0.7, 1);
  REQUIRE(a);
  CHECK(a->first.size() == 70);
  CHECK(a->second.size() == 30);
  CHECK(a->first == b->first);
  CHECK(a->first != c->first);
  std::vector<std::size_t> all = a->first;
  all.insert(all.end(), a->second.begin(), a->second.end());
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i < 100; ++i) CHECK(all[i] == i);

  CHECK(tandem::split_rows(1, 0.7, 0).error() == errc::empty_input);
  CHECK(tandem::split_rows(10, 0.99, 0).error() == errc::empty_input);
  CHECK(tandem::split_rows(10, 1.0, 0).error() == errc::invalid_argument);
  CHECK(tandem::split_rows(10, 0.0, 0).error() == errc::invalid_argument);
}

TEST_CASE("outcome table: excluded prompts are removed", "[eval][outcome]") {
  tandem::outcome_table table;
  tandem::outcome_load_stats stats;
  tandem::outcome_csv_options o;
  o.models = {"a"};
  o.fixed_costs = {1};
  REQUIRE(tandem::append_outcome_csv(table, csv("prompt,a\nx,1\ny,0\nz,1\n"), o, stats) ==
          errc::ok);
  CHECK(tandem::remove_prompts(table, {"y", "w"}) == 1);
  REQUIRE(table.size() == 2);
  CHECK(table.prompts[1] == "z");
  CHECK(table.q(1, 0) == 1.0);
}
