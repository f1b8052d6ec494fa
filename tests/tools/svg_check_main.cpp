// svg_check FILE [SERIES...]: exits 0 when FILE is a well-formed SVG document
// (tests/common/svg_check.hpp) holding a chart series named SERIES for each one given;
// otherwise prints what is wrong and exits 1. Used by the tools' --svg tests.
#include <cstdio>
#include <string>

#include "tandem/core/detail/bytes.hpp"

#include "common/svg_check.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: svg_check FILE [SERIES...]\n");
    return 2;
  }
  const auto text = tandem::detail::read_text_file(argv[1]);
  if (!text) {
    std::fprintf(stderr, "svg_check: cannot read '%s'\n", argv[1]);
    return 1;
  }
  const auto r = tandem_test::check_svg(*text);
  if (!r.error.empty()) {
    std::fprintf(stderr, "svg_check: '%s' is not well-formed: %s\n", argv[1], r.error.c_str());
    return 1;
  }
  int status = 0;
  for (int i = 2; i < argc; ++i) {
    bool found = false;
    for (const auto& s : r.series) found = found || s == argv[i];
    if (!found) {
      std::fprintf(stderr, "svg_check: '%s' has no series named '%s'\n", argv[1], argv[i]);
      status = 1;
    }
  }
  if (status == 0)
    std::printf("svg_check: ok: %zu elements, %zu series\n", r.elements, r.series.size());
  return status;
}
