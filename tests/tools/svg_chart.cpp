// The tools' SVG chart writer (tools/common/svg_chart.hpp): nice ticks, escaping, one
// findable group per series, points where the axes put them, non-finite values skipped
// and counted, named errors, well-formed output.
#include "common/svg_chart.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/rng.hpp"

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "common/svg_check.hpp"

using tandem::errc;
using tandem_tools::chart;
using tandem_tools::chart_series;
using tandem_tools::series_kind;

namespace {

chart two_series_chart() {
  chart c;
  c.title = "quality vs cost";
  c.x.label = "mean cost";
  c.y.label = "mean quality";
  chart_series curve{"router", series_kind::line, {{1, 0.5}, {5, 0.7}, {20, 0.8}}, {}, {}, false};
  chart_series singles{
      "single models", series_kind::points, {{1, 0.5}, {20, 0.8}}, {"weak", "strong"}, {}, false};
  c.series = {curve, singles};
  return c;
}

void set_bounds(chart& c, double x_min, double x_max, double y_min, double y_max) {
  c.x.min = x_min;
  c.x.max = x_max;
  c.y.min = y_min;
  c.y.max = y_max;
}

// The value of the first attribute opening with `start` (e.g. ` x="`) after `from`.
std::string value_after(const std::string& doc, std::size_t from, const std::string& start) {
  const std::size_t p = doc.find(start, from);
  if (from == std::string::npos || p == std::string::npos) return "(none)";
  return doc.substr(p + start.size(), doc.find('"', p + start.size()) - p - start.size());
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("svg chart: nice ticks are 1, 2 or 5 times a power of ten", "[eval][svg]") {
  CHECK(*tandem_tools::nice_ticks(0.0, 1.0) == std::vector<double>{0.0, 0.2, 0.4, 0.6, 0.8, 1.0});
  CHECK(*tandem_tools::nice_ticks(0.0, 10.0, 3) == std::vector<double>{0.0, 5.0, 10.0});
  CHECK(*tandem_tools::nice_ticks(-3.0, 17.0) == std::vector<double>{0.0, 5.0, 10.0, 15.0});
  CHECK(*tandem_tools::nice_ticks(0.42, 0.87) == std::vector<double>{0.5, 0.6, 0.7, 0.8});
  CHECK(*tandem_tools::nice_ticks(-0.3, 0.05, 8) ==
        std::vector<double>{-0.3, -0.25, -0.2, -0.15, -0.1, -0.05, 0.0, 0.05});
  const auto big = *tandem_tools::nice_ticks(0.0, 3e6, 4);
  CHECK(big == std::vector<double>{0.0, 1e6, 2e6, 3e6});
}

TEST_CASE("svg chart: nice ticks reject a bad range with a named error", "[eval][svg]") {
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(tandem_tools::nice_ticks(1.0, 1.0).error() == errc::invalid_argument);
  CHECK(tandem_tools::nice_ticks(2.0, 1.0).error() == errc::invalid_argument);
  CHECK(tandem_tools::nice_ticks(0.0, inf).error() == errc::invalid_argument);
  CHECK(tandem_tools::nice_ticks(std::nan(""), 1.0).error() == errc::invalid_argument);
  CHECK(tandem_tools::nice_ticks(0.0, 1.0, 1).error() == errc::invalid_argument);
}

TEST_CASE("svg chart: each series is a group found by its name, with a legend entry",
          "[eval][svg]") {
  const auto svg = tandem_tools::render_svg(two_series_chart());
  REQUIRE(svg);
  const auto check = tandem_test::check_svg(*svg);
  INFO(*svg);
  REQUIRE(check.error.empty());
  CHECK(check.series == std::vector<std::string>{"router", "single models"});
  CHECK(count(*svg, "<g class=\"legend-entry\">") == 2);
  CHECK(count(*svg, "<polyline") == 1);
  CHECK(count(*svg, "<circle") == 2 + 1);  // two points and the legend's marker
  CHECK(svg->find(">weak</text>") != std::string::npos);
  CHECK(svg->find("<title>quality vs cost</title>") != std::string::npos);
  CHECK(svg->find(">mean quality</text>") != std::string::npos);
}

TEST_CASE("svg chart: points and ticks are drawn where the axes put them in the plot area",
          "[eval][svg]") {
  chart c = two_series_chart();
  set_bounds(c, 0, 25, 0.25, 1);
  const auto svg = tandem_tools::render_svg(c);
  REQUIRE(svg);
  INFO(*svg);
  // The plot area is the clip rectangle; x grows rightwards from its left edge, y upwards
  // from its bottom edge.
  const std::size_t area = svg->find("<clipPath");
  REQUIRE(area != std::string::npos);
  const double x0 = std::stod(value_after(*svg, area, " x=\""));
  const double y0 = std::stod(value_after(*svg, area, " y=\""));
  const double w = std::stod(value_after(*svg, area, " width=\""));
  const double h = std::stod(value_after(*svg, area, " height=\""));
  REQUIRE(w > 0);
  REQUIRE(h > 0);
  const auto fixed = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return std::string(buf);
  };
  const auto px = [&](double x) { return fixed(x0 + x / 25.0 * w); };
  const auto py = [&](double y) { return fixed(y0 + h - (y - 0.25) / 0.75 * h); };
  CHECK(value_after(*svg, svg->find("data-series=\"router\""), "points=\"") ==
        px(1) + "," + py(0.5) + " " + px(5) + "," + py(0.7) + " " + px(20) + "," + py(0.8));
  const std::size_t singles = svg->find("data-series=\"single models\"");
  const std::size_t first = svg->find("<circle", singles), second = svg->find("<circle", first + 1);
  CHECK(value_after(*svg, first, " cx=\"") == px(1));
  CHECK(value_after(*svg, first, " cy=\"") == py(0.5));
  CHECK(value_after(*svg, second, " cx=\"") == px(20));
  CHECK(value_after(*svg, second, " cy=\"") == py(0.8));
  // Ticks every 5 on x (0 to 25, the last one at the area's right edge), every 0.2 on y
  // (0.4 to 1; a label's baseline is 4 below its tick).
  const std::size_t x_axis = svg->find("data-axis=\"x\""), y_axis = svg->find("data-axis=\"y\"");
  const std::size_t x_last = svg->rfind("<text", svg->find(">25</text>", x_axis));
  CHECK(count(svg->substr(x_axis, y_axis - x_axis), "</text>") == 6 + 1);  // ticks, label
  CHECK(value_after(*svg, x_last, " x=\"") == fixed(x0 + w));
  const std::size_t y_low = svg->rfind("<text", svg->find(">0.4</text>", y_axis));
  CHECK(value_after(*svg, y_low, " y=\"") == fixed(y0 + h - 0.15 / 0.75 * h + 4));
}

TEST_CASE("svg chart: text is XML-escaped and invalid UTF-8 is replaced", "[eval][svg]") {
  CHECK(tandem_tools::detail::xml_escaped("a<b & \"c\" 'd'>") ==
        "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  CHECK(tandem_tools::detail::xml_escaped("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(tandem_tools::detail::xml_escaped("bad\xFF\x01") == "bad\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(tandem_tools::detail::xml_escaped("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  chart c = two_series_chart();
  c.title = "<script>&";
  c.x.label = "cost \"$\"";
  c.series[0].name = "a</g><g class=\"series\" data-series=\"fake\">";
  c.series[1].labels[0] = "x & y";
  c.series[1].color = "red\" onload=\"alert(1)";
  const auto svg = tandem_tools::render_svg(c);
  REQUIRE(svg);
  const auto check = tandem_test::check_svg(*svg);
  INFO(*svg);
  REQUIRE(check.error.empty());
  CHECK(check.series == std::vector<std::string>{"a</g><g class=\"series\" data-series=\"fake\">",
                                                 "single models"});
  CHECK(svg->find("<script>") == std::string::npos);
  CHECK(svg->find("onload=\"") == std::string::npos);  // the quote stays escaped
  CHECK(svg->find("&lt;script&gt;&amp;") != std::string::npos);
}

TEST_CASE("svg chart: non-finite values are skipped and counted, never drawn", "[eval][svg]") {
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  chart c;
  c.series = {{"s", series_kind::line_markers, {{0, 0}, {nan, 1}, {1, inf}, {2, 2}}, {}, {}, false},
              {"b", series_kind::bars, {{0, 1}, {1, nan}}, {}, {}, false}};
  tandem_tools::svg_render_info info;
  const auto svg = tandem_tools::render_svg(c, &info);
  REQUIRE(svg);
  CHECK(info.skipped_points == 3);
  CHECK(tandem_test::check_svg(*svg).error.empty());
  CHECK(svg->find("data-series=\"s\" data-kind=\"line_markers\" data-skipped=\"2\"") !=
        std::string::npos);
  CHECK(svg->find("data-series=\"b\" data-kind=\"bars\" data-skipped=\"1\"") != std::string::npos);
  CHECK(svg->find("nan") == std::string::npos);
  CHECK(svg->find("inf") == std::string::npos);
  CHECK(count(*svg, "<circle") == 2 + 1);  // the finite points and the legend's marker
}

TEST_CASE("svg chart: an empty or unplottable chart is a named error", "[eval][svg]") {
  chart c;
  CHECK(tandem_tools::render_svg(c).error() == errc::empty_input);
  c.series = {{"only nan", series_kind::line, {{std::nan(""), 1}}, {}, {}, false}};
  tandem_tools::svg_render_info info;
  info.skipped_points = 99;
  CHECK(tandem_tools::render_svg(c, &info).error() == errc::empty_input);
  CHECK(info.skipped_points == 99);  // left unchanged on error
  // A reference line alone needs both axes' ranges.
  c.series = {{"perfect calibration", series_kind::diagonal, {}, {}, {}, true}};
  CHECK(tandem_tools::render_svg(c).error() == errc::empty_input);
  set_bounds(c, 0, 1, 0, 1);
  const auto svg = tandem_tools::render_svg(c);
  REQUIRE(svg);
  CHECK(count(*svg, "stroke-dasharray") == 2);  // the diagonal and its legend entry
}

TEST_CASE("svg chart: bad names, labels, bounds and sizes are named errors", "[eval][svg]") {
  chart c = two_series_chart();
  c.series[1].name = "router";
  CHECK(tandem_tools::render_svg(c).error() == errc::invalid_argument);
  c = two_series_chart();
  c.series[0].name.clear();
  CHECK(tandem_tools::render_svg(c).error() == errc::invalid_argument);
  c = two_series_chart();
  c.series[1].labels.pop_back();
  CHECK(tandem_tools::render_svg(c).error() == errc::size_mismatch);
  c = two_series_chart();
  c.x.min = 5;
  c.x.max = 5;
  CHECK(tandem_tools::render_svg(c).error() == errc::invalid_argument);
  c = two_series_chart();
  c.y.max = std::numeric_limits<double>::infinity();
  CHECK(tandem_tools::render_svg(c).error() == errc::invalid_argument);
  c = two_series_chart();
  c.width = 50;
  CHECK(tandem_tools::render_svg(c).error() == errc::invalid_argument);
  c = two_series_chart();
  c.series[1].kind = series_kind::bars;
  c.series[1].points[0].width = -1;
  CHECK(tandem_tools::render_svg(c).error() == errc::invalid_argument);
}

TEST_CASE("svg chart: bars span their width from zero and the axes round out to ticks",
          "[eval][svg]") {
  chart c;
  c.series = {
      {"acc", series_kind::bars, {{0.25, 0.5, 0.5}, {0.75, 1.0, 0.5}}, {}, "#123456", false},
      {"y = x", series_kind::diagonal, {}, {}, {}, true}};
  const auto svg = tandem_tools::render_svg(c);
  REQUIRE(svg);
  INFO(*svg);
  REQUIRE(tandem_test::check_svg(*svg).error.empty());
  // x spans [0, 1] from the bars' edges, y [0, 1] from zero and the tallest bar.
  CHECK(svg->find(">0.0</text>") != std::string::npos);
  CHECK(svg->find(">1.0</text>") != std::string::npos);
  CHECK(count(*svg, "fill=\"#123456\"") == 3);  // two bars and the legend swatch
  CHECK(svg->find("data-series=\"y = x\" data-kind=\"diagonal\">\n<g clip-path=\"url(#tandem-"
                  "plot-area)\"><line") != std::string::npos);
}

TEST_CASE("svg chart: write_svg writes the rendered bytes, or io_error", "[eval][svg]") {
  tandem_test::scratch_dir dir("tandem-svg-");
  const std::string path = (dir.path() / "chart.svg").string();
  REQUIRE(tandem_tools::write_svg(two_series_chart(), path.c_str()) == errc::ok);
  CHECK(*tandem::detail::read_text_file(path) == *tandem_tools::render_svg(two_series_chart()));
  const std::string missing = (dir.path() / "no" / "such" / "dir.svg").string();
  CHECK(tandem_tools::write_svg(two_series_chart(), missing.c_str()) == errc::io_error);
  CHECK(tandem_tools::write_svg(chart{}, path.c_str()) == errc::empty_input);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  CHECK(tandem_tools::write_svg(two_series_chart(), f) == errc::ok);
  std::fclose(f);
  CHECK(*tandem::detail::read_text_file(path) == *tandem_tools::render_svg(two_series_chart()));
}

TEST_CASE("svg chart: seeded random charts render to well-formed SVG or a named error",
          "[eval][svg]") {
  // Values of every magnitude and kind (NaN, infinities, denormals, huge), names of random
  // bytes: each chart either renders to a well-formed document or returns a named error.
  tandem::rng r(7);
  const double specials[] = {std::nan(""),
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             1e-310,
                             -1e300,
                             1e300,
                             0.0,
                             -0.0,
                             1.0};
  const auto value = [&]() {
    const std::uint64_t k = r() % 4;
    if (k == 0) return specials[r() % std::size(specials)];
    const double u = static_cast<double>(r() >> 11) * 0x1.0p-53;
    return k == 1 ? u : (u - 0.5) * std::pow(10.0, static_cast<double>(r() % 12));
  };
  const auto text = [&]() {
    std::string s;
    const std::size_t n = r() % 12;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<char>(r() % 256);
    return s;
  };
  std::size_t rendered = 0;
  for (int trial = 0; trial < 300; ++trial) {
    chart c;
    c.title = text();
    c.x.label = text();
    if (r() % 4 == 0) c.y.min = value();
    if (r() % 4 == 0) c.y.max = value();
    const std::size_t ns = r() % 4;
    for (std::size_t i = 0; i < ns; ++i) {
      chart_series s;
      s.name = text() + std::to_string(i);
      s.kind = static_cast<series_kind>(r() % 5);
      const std::size_t np = r() % 6;
      for (std::size_t k = 0; k < np; ++k) s.points.push_back({value(), value(), 0.0});
      if (r() % 2 == 0)
        for (std::size_t k = 0; k < np; ++k) s.labels.push_back(text());
      c.series.push_back(s);
    }
    const auto svg = tandem_tools::render_svg(c);
    if (!svg) {
      const errc e = svg.error();
      CHECK((e == errc::empty_input || e == errc::invalid_argument));
      continue;
    }
    ++rendered;
    const auto check = tandem_test::check_svg(*svg);
    INFO(*svg);
    REQUIRE(check.error.empty());
    CHECK(check.series.size() == c.series.size());
  }
  CHECK(rendered > 50);
}
