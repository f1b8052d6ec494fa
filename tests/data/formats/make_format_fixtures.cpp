// Writes the file-format fixtures of tests/data/formats/ into the directory given as its
// only argument: one file per format (a calibrator of each kind, an order-2 n-gram model,
// a cascade policy) and, next to each, a ".expected" text file with the behaviour the
// writing code showed (calibrated probabilities, next-token logits, decisions, every
// number in hexadecimal floating point, so exact). The tests load the committed files
// with today's code and compare against those expectations, so a format change that
// breaks old files, or changes what they mean, fails a test.
//
// The committed *.v1.* files were written by this program before the formats moved onto
// core/detail/bytes.hpp (see README.md); running it now writes the current versions, named
// after them (ngram_order2.v2.bin).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/backends/ngram_model.hpp"
#include "tandem/cascade/policy.hpp"
#include "tandem/confidence/calibration.hpp"
#include "tandem/core/detail/bytes.hpp"

namespace {

// 60 scores in (0, 1) with labels that agree with them more often than not.
void calibration_data(std::vector<double>& scores, std::vector<int>& labels) {
  for (int i = 0; i < 60; ++i) {
    const double s = ((i * 37) % 60 + 0.5) / 60.0;
    scores.push_back(s);
    labels.push_back((i * 7919) % 100 < static_cast<int>(s * 100.0) ? 1 : 0);
  }
}

bool write_text(const std::string& path, const std::string& text) {
  return tandem::detail::write_file(path, std::string_view(text)) == tandem::errc::ok;
}

// ".v<version>" for a fixture file name.
std::string v(std::uint32_t version) { return ".v" + std::to_string(version); }

std::string hex(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

bool calibrators(const std::string& dir) {
  std::vector<double> scores;
  std::vector<int> labels;
  calibration_data(scores, labels);
  const tandem::calibration_options options{tandem::score_scale::probability, 4};
  for (const auto method :
       {tandem::calibration_method::temperature, tandem::calibration_method::platt,
        tandem::calibration_method::isotonic, tandem::calibration_method::histogram}) {
    const auto c = tandem::calibrator::fit(method, scores, labels, options);
    if (!c) return false;
    const std::string base = dir + "/calibrator_" + std::string(to_string(method));
    if (c->save(base + v(tandem::calibrator::file_version) + ".bin") != tandem::errc::ok)
      return false;
    // "score probability" for 21 scores from 0 to 1.
    std::string expected;
    for (int i = 0; i <= 20; ++i) {
      const double s = i / 20.0;
      const auto p = c->apply(s);
      if (!p) return false;
      expected += hex(s) + " " + hex(*p) + "\n";
    }
    if (!write_text(base + ".expected", expected)) return false;
  }
  return true;
}

bool ngram(const std::string& dir) {
  using tandem::token_id;
  const std::vector<std::vector<token_id>> sentences = {
      {2, 3, 4, 5}, {2, 3, 6}, {7, 8, 4, 5, 9}, {2, 10, 11}, {3, 4, 5, 6, 7}, {11, 10, 2, 3}};
  auto builder = tandem::ngram_builder::create(tandem::ngram_options{2, 12, 0, 1});
  if (!builder || builder->add_sentences(sentences) != tandem::errc::ok) return false;
  const auto model = builder->build();
  if (!model || model->save(dir + "/ngram_order2" + v(tandem::ngram_format_version) + ".bin") !=
                    tandem::errc::ok)
    return false;
  // "k t1 .. tk | logit_0 .. logit_11": the session's logits after the context t1 .. tk.
  const std::vector<std::vector<token_id>> contexts = {
      {0}, {0, 2}, {0, 2, 3}, {0, 7, 8, 4}, {11, 9}};
  std::string expected;
  for (const auto& context : contexts) {
    tandem::ngram_session s(*model);
    if (s.append(context) != tandem::errc::ok) return false;
    expected += std::to_string(context.size());
    for (const token_id t : context) expected += " " + std::to_string(t);
    expected += " |";
    for (const float l : s.logits()) expected += " " + hex(l);
    expected += "\n";
  }
  return write_text(dir + "/ngram_order2.expected", expected);
}

bool cascade(const std::string& dir) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  tandem::cascade_policy p;
  p.order = {2, 0, 1};
  p.accept = {0.8125, 0.6, -inf};
  p.abstain_below = {-inf, 0.1, -inf};
  if (p.save(dir + "/cascade_policy" + v(tandem::cascade_policy::file_version) + ".txt") !=
      tandem::errc::ok)
    return false;
  // "rank score decision" over a grid of scores.
  std::string expected;
  for (std::size_t rank = 0; rank < p.order.size(); ++rank)
    for (int i = 0; i <= 10; ++i) {
      const double s = i / 10.0;
      expected += std::to_string(rank) + " " + hex(s) + " " +
                  std::string(to_string(p.decide(rank, s))) + "\n";
    }
  return write_text(dir + "/cascade_policy.expected", expected);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  if (!calibrators(dir) || !ngram(dir) || !cascade(dir)) {
    std::fprintf(stderr, "make_format_fixtures: failed\n");
    return 1;
  }
  return 0;
}
