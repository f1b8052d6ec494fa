// bench_speculative's charts (benchmarks/speculative_charts.hpp), built from made-up
// figures: the series a reader looks for are there, well-formed, in the right places.
#include "speculative_charts.hpp"

#include <string>
#include <vector>

#include "tandem/core/detail/bytes.hpp"

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "common/svg_check.hpp"

namespace {

std::vector<tandem_bench::speculative_case> made_up_cases() {
  std::vector<tandem_bench::speculative_case> out;
  for (double a : {0.9, 0.0}) {
    for (int n : {2, 4, 8}) {
      tandem::speculative_stats st;
      st.rounds = 10;
      st.drafted = static_cast<std::size_t>(10 * n);
      for (int i = 0; i < n; ++i) {
        st.drafted_at[static_cast<std::size_t>(i)] = 10;
        st.accepted_at[static_cast<std::size_t>(i)] = a > 0 ? 9 : 0;
      }
      out.push_back(tandem_bench::make_speculative_case("flat", "fixed" + std::to_string(n), true,
                                                        a, 1.0 + a * n / 4, 1.1 + a * n / 4, st));
    }
    tandem::speculative_stats st;
    st.rounds = 4;
    st.drafted = 10;
    st.drafted_at[0] = 4;
    st.accepted_at[0] = 2;
    out.push_back(tandem_bench::make_speculative_case("flat", "adaptive", false, a, 1.2, 1.3, st));
  }
  return out;
}

}  // namespace

TEST_CASE("speculative charts: speedup has achieved and theory per acceptance rate",
          "[eval][svg][speculative]") {
  const auto cases = made_up_cases();
  CHECK(cases[2].mean_draft_length == 8.0);
  CHECK(cases[2].acceptance_by_position == std::vector<double>(8, 0.9));
  const auto svg = tandem_tools::render_svg(tandem_bench::speedup_chart(cases));
  REQUIRE(svg);
  const auto check = tandem_test::check_svg(*svg);
  REQUIRE(check.error.empty());
  CHECK(check.series == std::vector<std::string>{"no speedup (1x)", "a=0.90 achieved",
                                                 "a=0.90 theory", "a=0.90 other policies",
                                                 "a=0.00 achieved", "a=0.00 theory",
                                                 "a=0.00 other policies"});
  CHECK(svg->find(">adaptive</text>") != std::string::npos);
}

TEST_CASE("speculative charts: acceptance by position uses the longest drafts",
          "[eval][svg][speculative]") {
  const auto ch = tandem_bench::acceptance_chart(made_up_cases());
  REQUIRE(ch.series.size() == 2);
  CHECK(ch.series[0].name == "a=0.90 (fixed8)");
  REQUIRE(ch.series[0].points.size() == 8);
  CHECK(ch.series[0].points[7].x == 8.0);
  CHECK(ch.series[0].points[7].y == Approx(0.9));
  const auto svg = tandem_tools::render_svg(ch);
  REQUIRE(svg);
  CHECK(tandem_test::check_svg(*svg).error.empty());
}

TEST_CASE("speculative charts: --svg writes both charts per cost-model shape",
          "[eval][svg][speculative]") {
  auto cases = made_up_cases();
  for (auto c : made_up_cases()) {
    c.shape = "steep";
    cases.push_back(c);
  }
  tandem_test::scratch_dir dir("tandem-spec-charts-");
  const std::string out = (dir.path() / "charts").string();  // created by the writer
  REQUIRE(tandem_bench::write_speculative_charts(out, cases));
  for (const char* name :
       {"speedup_flat", "acceptance_flat", "speedup_steep", "acceptance_steep"}) {
    const auto text = tandem::detail::read_text_file(out + "/speculative_" + name + ".svg");
    INFO(name);
    REQUIRE(text);
    CHECK(tandem_test::check_svg(*text).error.empty());
  }
}
