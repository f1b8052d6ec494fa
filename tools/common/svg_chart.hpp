// tandem tools: a small SVG chart writer for evaluation plots: quality-cost curves,
// reliability diagrams, acceptance and speedup charts. Linear axes with "nice" ticks, a
// legend, lines, markers, points, bars and a y = x reference line. Tool code for tandem's
// tools, benchmarks and tests (target tandem_tool_common), not part of the library; it
// uses only tandem's core (file writing, UTF-8 checking). The same chart always renders to
// the same bytes.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/stream_decoder.hpp"

namespace tandem_tools {

using tandem::errc;
using tandem::result;

/// How a chart series is drawn.
enum class series_kind : std::uint8_t {
  line,          ///< a polyline through the points in the order given
  line_markers,  ///< a polyline with a circle at each point
  points,        ///< circles only (a scatter plot)
  bars,          ///< a bar from y = 0 (or the axis end nearest 0) up or down to each point
  diagonal,      ///< the reference line y = x across the plot; the series' points are ignored
};

/// One data point. `width` is used by bars only: the bar's width in x units, 0 for the
/// automatic width (0.8 of the smallest gap between the series' x values, or 0.8 when the
/// series has one distinct x).
struct chart_point {
  double x = 0.0;      ///< position on the x axis
  double y = 0.0;      ///< position on the y axis
  double width = 0.0;  ///< bars only: width in x units (0: automatic)
};

/// A named series. The name is shown in the legend and written as the `data-series`
/// attribute of the series' `<g class="series">` element, so users and tests can find it.
struct chart_series {
  std::string name;                      ///< non-empty, unique within the chart
  series_kind kind = series_kind::line;  ///< how the series is drawn
  std::vector<chart_point> points;       ///< in drawing order
  std::vector<std::string> labels;       ///< empty, or one text per point (empty: none)
  std::string color;                     ///< any SVG colour; empty takes the palette's next
  bool dashed = false;                   ///< dashed stroke (lines and the diagonal)
};

/// A linear axis. A bound left empty is taken from the data and rounded outwards to a
/// tick; a bound given is kept as is (points beyond it are clipped, not counted).
struct chart_axis {
  std::string label;          ///< shown under (x) or beside (y) the axis
  std::optional<double> min;  ///< lower bound; empty: from the data
  std::optional<double> max;  ///< upper bound; empty: from the data
};

/// A whole chart: what `render_svg` draws. Sizes are in SVG user units (pixels).
struct chart {
  std::string title;                 ///< shown above the plot and as the SVG title element
  chart_axis x;                      ///< the horizontal axis
  chart_axis y;                      ///< the vertical axis
  std::vector<chart_series> series;  ///< drawn in order, later ones on top
  double width = 640.0;              ///< of the whole picture, legend included
  double height = 420.0;             ///< of the whole picture
};

/// What rendering saw besides the picture.
struct svg_render_info {
  /// Points left out because x, y or a bar's width was NaN or infinite (each series'
  /// group also carries its own count as `data-skipped`). A line joins the finite
  /// neighbours of a skipped point.
  std::size_t skipped_points = 0;
};

/// Tick values for a linear axis over [lo, hi]: the multiples of a step of 1, 2 or 5
/// times a power of ten that lie in [lo, hi], with the smallest such step that gives at
/// most `max_ticks` ticks. Errors: `invalid_argument` (a bound not finite, lo >= hi, a
/// range too narrow to tick (under 1e-12 of its magnitude), max_ticks < 2).
[[nodiscard]] inline result<std::vector<double>> nice_ticks(double lo, double hi,
                                                            std::size_t max_ticks = 6);

/// Renders `c` as a standalone SVG document (UTF-8, `<svg xmlns=...>` root) that the
/// caller owns. All text (title, axis labels, series names, point labels, colours) is
/// XML-escaped; control characters and invalid UTF-8 bytes become U+FFFD. Non-finite
/// values are skipped and counted (`info`, when given, receives the count), never an
/// error. Errors: `empty_input` (no series, or an axis bound left empty with no finite
/// point to take it from), `invalid_argument` (an empty or repeated series name, a
/// negative bar width, a non-finite or reversed axis bound, a size too small for the plot
/// area, a range too narrow to tick), `size_mismatch` (labels neither empty nor one per
/// point). On error `info` is left unchanged.
[[nodiscard]] inline result<std::string> render_svg(const chart& c,
                                                    svg_render_info* info = nullptr);

/// Renders `c` (see `render_svg`) and writes it to `out`, which the caller owns and keeps
/// open. Errors: those of `render_svg` (nothing is written), `io_error` (a short write).
[[nodiscard]] inline errc write_svg(const chart& c, std::FILE* out,
                                    svg_render_info* info = nullptr) {
  TANDEM_ASSERT(out != nullptr, "write_svg: null FILE*");
  auto svg = render_svg(c, info);
  if (!svg) return svg.error();
  if (std::fwrite(svg->data(), 1, svg->size(), out) != svg->size()) return errc::io_error;
  return std::fflush(out) == 0 ? errc::ok : errc::io_error;
}

/// Renders `c` (see `render_svg`) and writes it to the file `path`, replacing it.
/// Errors: those of `render_svg` (the file is not touched), `io_error` (cannot open,
/// write or close; a partial file may remain).
[[nodiscard]] inline errc write_svg(const chart& c, const char* path,
                                    svg_render_info* info = nullptr) {
  TANDEM_ASSERT(path != nullptr, "write_svg: null path");
  auto svg = render_svg(c, info);
  if (!svg) return svg.error();
  return tandem::detail::write_file(path, std::string_view(*svg));
}

namespace detail {

/// Appends `s` with XML's five special characters escaped; control characters (other than
/// tab, LF, CR), U+FFFE, U+FFFF and bytes that are not well-formed UTF-8 (one U+FFFD per
/// byte, as tandem's streaming detokenizer writes them) become U+FFFD.
inline void append_xml_escaped(std::string& out, std::string_view s) {
  using tandem::detail::utf8_replacement;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&apos;";
          break;
        default:
          if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            out += utf8_replacement;
          else
            out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A well-formed character (the text ends here: an incomplete one is not), other than
    // XML's two non-characters U+FFFE and U+FFFF (EF BF BE, EF BF BF).
    const int n = tandem::detail::utf8_char_length(s.substr(i));
    const std::string_view ch = s.substr(i, n > 0 ? static_cast<std::size_t>(n) : 1);
    if (n > 0 && ch != "\xEF\xBF\xBE" && ch != "\xEF\xBF\xBF") {
      out.append(ch);
      i += ch.size();
    } else {
      out += utf8_replacement;
      ++i;
    }
  }
}

/// `s` XML-escaped (see `append_xml_escaped`).
inline std::string xml_escaped(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_xml_escaped(out, s);
  return out;
}

/// Appends `v` in fixed notation with `decimals` digits after the point, independent of
/// the C locale; a value that rounds to zero is written without a minus sign.
inline void append_fixed(std::string& out, double v, int decimals) {
  char buf[128];
  v = std::clamp(v, -1e15, 1e15);  // pixel coordinates far outside the plot are clipped
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  if (!text.empty() && text.front() == '-' &&
      text.find_first_not_of("-0.") == std::string_view::npos)
    text.remove_prefix(1);
  out.append(text);
}

/// A step of 1, 2 or 5 times 10^exponent.
struct tick_step {
  double step = 1.0;
  int exponent = 0;
  int mantissa = 1;
};

inline std::optional<tick_step> nice_step(double lo, double hi, std::size_t max_ticks) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi) || max_ticks < 2) return {};
  const double span = hi - lo;
  if (!std::isfinite(span) || span < 1e-12 * std::max(std::fabs(lo), std::fabs(hi))) return {};
  const double raw = span / static_cast<double>(max_ticks - 1);
  int e = static_cast<int>(std::floor(std::log10(raw)));
  for (int round = 0; round < 3; ++round, ++e) {
    for (int m : {1, 2, 5}) {
      const double step = m * std::pow(10.0, e);
      const double k0 = std::ceil(lo / step - 1e-9), k1 = std::floor(hi / step + 1e-9);
      if (k1 - k0 + 1 <= static_cast<double>(max_ticks)) return tick_step{step, e, m};
    }
  }
  return {};
}

/// The multiples of `s` in [lo, hi]. Each is computed as (k m) / 10^-e for a negative
/// exponent, so 3 x 0.2 comes out as the double nearest 0.6, as printed.
inline std::vector<double> ticks_of(double lo, double hi, const tick_step& s) {
  std::vector<double> out;
  const double k0 = std::ceil(lo / s.step - 1e-9), k1 = std::floor(hi / s.step + 1e-9);
  const double scale = std::pow(10.0, std::abs(s.exponent));
  for (double k = k0; k <= k1; k += 1.0) {
    const double km = k * s.mantissa;
    const double v = s.exponent >= 0 ? km * scale : km / scale;
    out.push_back(v == 0.0 ? 0.0 : v);
  }
  return out;
}

/// A resolved axis: its range, ticks and the decimals of its tick labels.
struct axis_layout {
  double lo = 0.0, hi = 1.0;
  std::vector<double> ticks;
  int decimals = 0;
};

/// Resolves an axis from its given bounds and the finite data range [dlo, dhi] (`have`
/// false when there is no finite data).
inline errc layout_axis(const chart_axis& a, bool have, double dlo, double dhi, axis_layout& out) {
  constexpr std::size_t max_ticks = 7;
  if ((a.min && !std::isfinite(*a.min)) || (a.max && !std::isfinite(*a.max)))
    return errc::invalid_argument;
  if ((!a.min || !a.max) && !have) return errc::empty_input;
  double lo = a.min ? *a.min : dlo, hi = a.max ? *a.max : dhi;
  if (a.min && a.max) {
    if (!(lo < hi)) return errc::invalid_argument;
  } else if (!(lo < hi)) {
    // One value (or a given bound beyond the data): widen the free side(s).
    const double pad = std::max({std::fabs(lo), std::fabs(hi), 1.0}) * 0.1;
    if (!a.min) lo = std::min(lo, hi) - pad;
    if (!a.max) hi = std::max(lo, hi) + pad;
  }
  auto s = nice_step(lo, hi, max_ticks);
  if (!s) return errc::invalid_argument;
  if (!a.min) lo = std::floor(lo / s->step + 1e-9) * s->step;
  if (!a.max) hi = std::ceil(hi / s->step - 1e-9) * s->step;
  out.lo = lo;
  out.hi = hi;
  out.ticks = ticks_of(lo, hi, *s);
  out.decimals = std::clamp(-s->exponent, 0, 15);
  return errc::ok;
}

/// Number of code points in a UTF-8 text (bytes that do not continue a sequence).
inline std::size_t utf8_length(std::string_view s) noexcept {
  std::size_t n = 0;
  for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0u) != 0x80u ? 1 : 0;
  return n;
}

inline bool finite_point(const chart_point& p) noexcept {
  return std::isfinite(p.x) && std::isfinite(p.y) && std::isfinite(p.width);
}

/// The width of each bar of a bars series, in x units (NaN for a skipped point).
inline std::vector<double> bar_widths(const chart_series& s) {
  std::vector<double> xs;
  for (const auto& p : s.points)
    if (finite_point(p)) xs.push_back(p.x);
  std::sort(xs.begin(), xs.end());
  double gap = 0.0;
  for (std::size_t i = 1; i < xs.size(); ++i) {
    const double d = xs[i] - xs[i - 1];
    if (d > 0 && (gap == 0.0 || d < gap)) gap = d;
  }
  const double automatic = 0.8 * (gap > 0 ? gap : 1.0);
  std::vector<double> w;
  w.reserve(s.points.size());
  for (const auto& p : s.points)
    w.push_back(!finite_point(p) ? std::nan("") : p.width > 0 ? p.width : automatic);
  return w;
}

inline constexpr std::string_view chart_palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                     "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                                     "#bcbd22", "#17becf"};

inline std::string_view kind_name(series_kind k) noexcept {
  switch (k) {
    case series_kind::line:
      return "line";
    case series_kind::line_markers:
      return "line_markers";
    case series_kind::points:
      return "points";
    case series_kind::bars:
      return "bars";
    case series_kind::diagonal:
      return "diagonal";
  }
  return "line";
}

/// Appends ` name="value"` with the value formatted in fixed notation.
inline void attr(std::string& out, std::string_view name, double v, int decimals = 2) {
  out += ' ';
  out.append(name);
  out += "=\"";
  append_fixed(out, v, decimals);
  out += '"';
}

/// Appends the ends of a line: ` x1="..." y1="..." x2="..." y2="..."`.
inline void attr_ends(std::string& out, double x1, double y1, double x2, double y2) {
  attr(out, "x1", x1);
  attr(out, "y1", y1);
  attr(out, "x2", x2);
  attr(out, "y2", y2);
}

/// Appends ` name="value"` with the value XML-escaped.
inline void attr(std::string& out, std::string_view name, std::string_view v) {
  out += ' ';
  out.append(name);
  out += "=\"";
  append_xml_escaped(out, v);
  out += '"';
}

}  // namespace detail

inline result<std::vector<double>> nice_ticks(double lo, double hi, std::size_t max_ticks) {
  auto s = detail::nice_step(lo, hi, max_ticks);
  if (!s) return errc::invalid_argument;
  return detail::ticks_of(lo, hi, *s);
}

inline result<std::string> render_svg(const chart& c, svg_render_info* info) {
  using detail::attr;
  // ---- Validate, count what is skipped, and find the data range.
  if (c.series.empty()) return errc::empty_input;
  if (!std::isfinite(c.width) || !std::isfinite(c.height)) return errc::invalid_argument;
  std::size_t skipped = 0, longest_name = 0;
  bool have_x = false, have_y = false;
  double x_lo = 0, x_hi = 0, y_lo = 0, y_hi = 0;
  const auto take = [](bool& have, double& lo, double& hi, double v) {
    lo = have ? std::min(lo, v) : v;
    hi = have ? std::max(hi, v) : v;
    have = true;
  };
  std::vector<std::vector<double>> widths(c.series.size());
  std::vector<std::size_t> skipped_in(c.series.size(), 0);
  for (std::size_t i = 0; i < c.series.size(); ++i) {
    const chart_series& s = c.series[i];
    if (s.name.empty()) return errc::invalid_argument;
    for (std::size_t j = 0; j < i; ++j)
      if (c.series[j].name == s.name) return errc::invalid_argument;
    if (!s.labels.empty() && s.labels.size() != s.points.size()) return errc::size_mismatch;
    longest_name = std::max(longest_name, detail::utf8_length(s.name));
    if (s.kind == series_kind::diagonal) continue;
    for (const auto& p : s.points) {
      if (s.kind == series_kind::bars && p.width < 0) return errc::invalid_argument;
      if (!detail::finite_point(p)) ++skipped_in[i];
    }
    skipped += skipped_in[i];
    if (s.kind == series_kind::bars) widths[i] = detail::bar_widths(s);
    for (std::size_t k = 0; k < s.points.size(); ++k) {
      const chart_point& p = s.points[k];
      if (!detail::finite_point(p)) continue;
      if (s.kind == series_kind::bars) {
        take(have_x, x_lo, x_hi, p.x - widths[i][k] / 2);
        take(have_x, x_lo, x_hi, p.x + widths[i][k] / 2);
        take(have_y, y_lo, y_hi, 0.0);
      } else {
        take(have_x, x_lo, x_hi, p.x);
      }
      take(have_y, y_lo, y_hi, p.y);
    }
  }
  detail::axis_layout ax, ay;
  if (auto e = detail::layout_axis(c.x, have_x, x_lo, x_hi, ax); e != errc::ok) return e;
  if (auto e = detail::layout_axis(c.y, have_y, y_lo, y_hi, ay); e != errc::ok) return e;

  // ---- Layout: the plot area, with the legend to its right.
  const double top = c.title.empty() ? 16.0 : 40.0, bottom = 48.0, left = 64.0;
  const double right = 40.0 + 7.0 * static_cast<double>(longest_name);
  const double px0 = left, px1 = c.width - right, py0 = top, py1 = c.height - bottom;
  if (!(px1 - px0 >= 40.0) || !(py1 - py0 >= 40.0)) return errc::invalid_argument;
  const auto X = [&](double v) { return px0 + (v - ax.lo) / (ax.hi - ax.lo) * (px1 - px0); };
  const auto Y = [&](double v) { return py1 - (v - ay.lo) / (ay.hi - ay.lo) * (py1 - py0); };

  std::string out;
  out.reserve(4096);
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"";
  attr(out, "width", c.width, 0);
  attr(out, "height", c.height, 0);
  out += " viewBox=\"0 0 ";
  detail::append_fixed(out, c.width, 0);
  out += ' ';
  detail::append_fixed(out, c.height, 0);
  out += "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  if (!c.title.empty()) {
    out += "<title>";
    detail::append_xml_escaped(out, c.title);
    out += "</title>\n";
  }
  out += "<defs><clipPath id=\"tandem-plot-area\"><rect";
  attr(out, "x", px0);
  attr(out, "y", py0);
  attr(out, "width", px1 - px0);
  attr(out, "height", py1 - py0);
  out += "/></clipPath></defs>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!c.title.empty()) {
    out += "<text class=\"title\"";
    attr(out, "x", c.width / 2);
    out += " y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">";
    detail::append_xml_escaped(out, c.title);
    out += "</text>\n";
  }

  // ---- Axes: grid lines, ticks, tick labels, the axis line and its label.
  out += "<g class=\"axis\" data-axis=\"x\">\n";
  for (double t : ax.ticks) {
    out += "<line stroke=\"#e6e6e6\"";
    detail::attr_ends(out, X(t), py0, X(t), py1 + 5);
    out += "/><text text-anchor=\"middle\"";
    attr(out, "x", X(t));
    attr(out, "y", py1 + 18);
    out += '>';
    detail::append_fixed(out, t, ax.decimals);
    out += "</text>\n";
  }
  out += "<line stroke=\"black\"";
  detail::attr_ends(out, px0, py1, px1, py1);
  out += "/>\n<text class=\"label\" text-anchor=\"middle\"";
  attr(out, "x", (px0 + px1) / 2);
  attr(out, "y", c.height - 10);
  out += '>';
  detail::append_xml_escaped(out, c.x.label);
  out += "</text>\n</g>\n<g class=\"axis\" data-axis=\"y\">\n";
  for (double t : ay.ticks) {
    out += "<line stroke=\"#e6e6e6\"";
    detail::attr_ends(out, px0 - 5, Y(t), px1, Y(t));
    out += "/><text text-anchor=\"end\"";
    attr(out, "x", px0 - 8);
    attr(out, "y", Y(t) + 4);
    out += '>';
    detail::append_fixed(out, t, ay.decimals);
    out += "</text>\n";
  }
  out += "<line stroke=\"black\"";
  detail::attr_ends(out, px0, py0, px0, py1);
  out += "/>\n<text class=\"label\" text-anchor=\"middle\"";
  const double ly = (py0 + py1) / 2;
  out += " transform=\"rotate(-90 16 ";
  detail::append_fixed(out, ly, 2);
  out += ")\" x=\"16\"";
  attr(out, "y", ly);
  out += '>';
  detail::append_xml_escaped(out, c.y.label);
  out += "</text>\n</g>\n";

  // ---- Series, each in its own group; shapes are clipped to the plot area.
  const auto color_of = [&](std::size_t i) -> std::string_view {
    const auto& s = c.series[i];
    if (!s.color.empty()) return s.color;
    return detail::chart_palette[i % std::size(detail::chart_palette)];
  };
  const auto circle = [&](double cx, double cy, double r, std::string_view color) {
    out += "<circle";
    attr(out, "cx", cx);
    attr(out, "cy", cy);
    attr(out, "r", r, 1);
    attr(out, "fill", color);
    out += "/>";
  };
  for (std::size_t i = 0; i < c.series.size(); ++i) {
    const chart_series& s = c.series[i];
    const std::string_view color = color_of(i);
    out += "<g class=\"series\"";
    attr(out, "data-series", s.name);
    attr(out, "data-kind", detail::kind_name(s.kind));
    if (skipped_in[i] > 0) attr(out, "data-skipped", static_cast<double>(skipped_in[i]), 0);
    out += ">\n<g clip-path=\"url(#tandem-plot-area)\">";
    const bool has_line = s.kind == series_kind::line || s.kind == series_kind::line_markers;
    if (has_line) {
      out += "<polyline fill=\"none\" stroke-width=\"2\"";
      attr(out, "stroke", color);
      if (s.dashed) out += " stroke-dasharray=\"6 4\"";
      out += " points=\"";
      bool first = true;
      for (const auto& p : s.points) {
        if (!detail::finite_point(p)) continue;
        if (!first) out += ' ';
        first = false;
        detail::append_fixed(out, X(p.x), 2);
        out += ',';
        detail::append_fixed(out, Y(p.y), 2);
      }
      out += "\"/>";
    }
    if (s.kind == series_kind::bars) {
      const double base = Y(std::clamp(0.0, ay.lo, ay.hi));
      for (std::size_t k = 0; k < s.points.size(); ++k) {
        const chart_point& p = s.points[k];
        if (!detail::finite_point(p)) continue;
        const double xa = X(p.x - widths[i][k] / 2), xb = X(p.x + widths[i][k] / 2);
        const double yv = Y(p.y);
        out += "<rect fill-opacity=\"0.75\" stroke=\"white\"";
        attr(out, "fill", color);
        attr(out, "x", xa);
        attr(out, "y", std::min(yv, base));
        attr(out, "width", xb - xa);
        attr(out, "height", std::fabs(base - yv));
        out += "/>";
      }
    }
    if (s.kind == series_kind::diagonal) {
      const double d0 = std::max(ax.lo, ay.lo), d1 = std::min(ax.hi, ay.hi);
      if (d0 < d1) {
        out += "<line stroke-width=\"1.5\"";
        attr(out, "stroke", color);
        if (s.dashed) out += " stroke-dasharray=\"6 4\"";
        detail::attr_ends(out, X(d0), Y(d0), X(d1), Y(d1));
        out += "/>";
      }
    }
    out += "</g>\n";
    // Markers and labels are not clipped (a marker on the axis' end stays whole); those of
    // points outside the axes' ranges are not drawn.
    const auto in_range = [&](const chart_point& p) {
      return detail::finite_point(p) && p.x >= ax.lo && p.x <= ax.hi && p.y >= ay.lo &&
             p.y <= ay.hi;
    };
    if (s.kind == series_kind::line_markers || s.kind == series_kind::points) {
      for (const auto& p : s.points)
        if (in_range(p)) circle(X(p.x), Y(p.y), s.kind == series_kind::points ? 4.0 : 3.0, color);
    }
    if (!s.labels.empty() && s.kind != series_kind::diagonal) {
      for (std::size_t k = 0; k < s.points.size(); ++k) {
        const chart_point& p = s.points[k];
        if (s.labels[k].empty() || !in_range(p)) continue;
        if (s.kind == series_kind::bars) {
          out += "<text text-anchor=\"middle\" font-size=\"10\"";
          attr(out, "x", X(p.x));
          attr(out, "y", Y(std::max(p.y, 0.0)) - 4);
        } else if (X(p.x) > (px0 + px1) / 2) {  // right half: the text ends left of the point
          out += "<text text-anchor=\"end\" font-size=\"11\"";
          attr(out, "x", X(p.x) - 6);
          attr(out, "y", Y(p.y) - 6);
        } else {
          out += "<text font-size=\"11\"";
          attr(out, "x", X(p.x) + 6);
          attr(out, "y", Y(p.y) - 6);
        }
        out += '>';
        detail::append_xml_escaped(out, s.labels[k]);
        out += "</text>\n";
      }
    }
    out += "</g>\n";
  }

  // ---- Legend, right of the plot area.
  out += "<g class=\"legend\">\n";
  for (std::size_t i = 0; i < c.series.size(); ++i) {
    const chart_series& s = c.series[i];
    const std::string_view color = color_of(i);
    const double lx = px1 + 14, yy = py0 + 8 + 18.0 * static_cast<double>(i);
    out += "<g class=\"legend-entry\">";
    if (s.kind == series_kind::bars) {
      out += "<rect fill-opacity=\"0.75\"";
      attr(out, "fill", color);
      attr(out, "x", lx + 4);
      attr(out, "y", yy - 6);
      out += " width=\"12\" height=\"12\"/>";
    } else if (s.kind == series_kind::points) {
      circle(lx + 10, yy, 4.0, color);
    } else {
      out += "<line stroke-width=\"2\"";
      attr(out, "stroke", color);
      if (s.dashed) out += " stroke-dasharray=\"6 4\"";
      detail::attr_ends(out, lx, yy, lx + 20, yy);
      out += "/>";
      if (s.kind == series_kind::line_markers) circle(lx + 10, yy, 3.0, color);
    }
    out += "<text";
    attr(out, "x", lx + 26);
    attr(out, "y", yy + 4);
    out += '>';
    detail::append_xml_escaped(out, s.name);
    out += "</text></g>\n";
  }
  out += "</g>\n</svg>\n";
  if (info != nullptr) info->skipped_points = skipped;
  return out;
}

}  // namespace tandem_tools
