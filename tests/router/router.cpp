// Routers: every predictor kind finds a planted signal, embedding routers, named errors,
// to_bytes / from_bytes / save / load and their errors.
#include "tandem/router/router.hpp"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/eval/replay.hpp"

using tandem::errc;

namespace {

// Synthetic outcome table with a planted signal: queries about "topology" are hard (the
// weak model usually fails, the strong one usually succeeds); queries about "cooking" are
// easy for both. Filler words are shared by all queries.
struct synthetic {
  std::vector<std::string> prompts;
  std::vector<double> quality;  // n x 2: weak, strong
  std::vector<double> hard;     // 1 for a planted hard query
};

synthetic make_table(std::size_t n, std::uint64_t seed) {
  static const char* const hard[] = {"topology", "manifold", "homotopy", "cohomology", "sheaf"};
  static const char* const easy[] = {"cooking", "recipe", "kitchen", "bread", "soup"};
  static const char* const filler[] = {"which", "of",    "the", "following", "is",
                                       "true",  "about", "a",   "question",  "answer"};
  tandem::rng g(seed);
  synthetic t;
  for (std::size_t i = 0; i < n; ++i) {
    const bool is_hard = g.uniform() < 0.4;
    std::string p;
    for (int w = 0; w < 8; ++w) {
      if (!p.empty()) p += ' ';
      if (w % 3 == 0)
        p += (is_hard ? hard : easy)[g.below(5)];
      else
        p += filler[g.below(10)];
    }
    t.prompts.push_back(p);
    t.hard.push_back(is_hard ? 1 : 0);
    const double pw = is_hard ? 0.2 : 0.9, ps = is_hard ? 0.9 : 0.95;
    t.quality.push_back(g.uniform() < pw ? 1 : 0);
    t.quality.push_back(g.uniform() < ps ? 1 : 0);
  }
  return t;
}

const std::vector<std::string> names{"weak", "strong"};

// APGR of the router's predicted win on a table (or, without a router, of a reference
// that knows which queries are hard).
double held_out_apgr(const tandem::router* r, const synthetic& test) {
  const std::size_t n = test.prompts.size();
  std::vector<double> win(n), qw(n), qs(n), cw(n, 1), cs(n, 10), q(2);
  for (std::size_t i = 0; i < n; ++i) {
    if (r != nullptr) {
      REQUIRE(r->predict(test.prompts[i], q) == errc::ok);
      win[i] = q[1] - q[0];
    } else {
      win[i] = test.hard[i];
    }
    qw[i] = test.quality[2 * i];
    qs[i] = test.quality[2 * i + 1];
  }
  auto curve = tandem::two_model_curve(win, qw, qs, cw, cs);
  REQUIRE(curve);
  auto m = tandem::two_model_summary(*curve);
  REQUIRE(m);
  return m->apgr;
}

tandem::router_options small_options(tandem::router_predictor p) {
  tandem::router_options o;
  o.predictor = p;
  o.ngrams.dims_log2 = 12;
  o.knn_ngrams.dims_log2 = 12;
  o.k_grid = {4, 16};
  o.l2_grid = {1e-2, 1e-3};
  o.joint_ngrams.dims_log2 = 12;
  o.joint_ngrams.min_df = 1;
  o.joint_l2_grid = {1e-2, 1e-3};
  o.folds = 3;
  return o;
}

}  // namespace

TEST_CASE("router: every predictor beats random routing on a planted signal",
          "[router][predictor]") {
  const synthetic train = make_table(600, 1);
  const synthetic test = make_table(400, 2);
  // The best a router can do here is to know which queries are hard (about 0.75).
  const double knows_hardness = held_out_apgr(nullptr, test);
  REQUIRE(knows_hardness > 0.7);
  for (auto kind : {tandem::router_predictor::logistic, tandem::router_predictor::knn,
                    tandem::router_predictor::factorization, tandem::router_predictor::ensemble,
                    tandem::router_predictor::joint}) {
    CAPTURE(static_cast<int>(kind));
    tandem::router r;
    REQUIRE(r.fit(train.prompts, train.quality, names, small_options(kind)) == errc::ok);
    // Random routing gives 0.5; finding the hard queries gives nearly the reference.
    CHECK(held_out_apgr(&r, test) > knows_hardness - 0.04);
  }
}

TEST_CASE("router: embedding routers read caller-supplied vectors", "[router][predictor]") {
  // One embedding dimension carries the signal.
  tandem::rng g(5);
  std::vector<tandem::sparse_vector> x(300);
  std::vector<double> q;
  for (auto& v : x) {
    const bool hard = g.uniform() < 0.5;
    const std::vector<float> e{hard ? 1.0f : 0.0f, static_cast<float>(g.uniform()), 0.5f};
    REQUIRE(tandem::embedding_features(e, false, v) == errc::ok);
    q.push_back(g.uniform() < (hard ? 0.1 : 0.9) ? 1 : 0);
    q.push_back(g.uniform() < 0.9 ? 1 : 0);
  }
  tandem::router r;
  REQUIRE(r.fit_features(x, 3, q, names, small_options(tandem::router_predictor::logistic)) ==
          errc::ok);
  std::vector<double> out(2);
  tandem::sparse_vector hard, easy;
  REQUIRE(tandem::embedding_features(std::vector<float>{1, 0.5f, 0.5f}, false, hard) == errc::ok);
  REQUIRE(tandem::embedding_features(std::vector<float>{0, 0.5f, 0.5f}, false, easy) == errc::ok);
  REQUIRE(r.predict(hard, out) == errc::ok);
  const double hard_win = out[1] - out[0];
  REQUIRE(r.predict(easy, out) == errc::ok);
  CHECK(hard_win > out[1] - out[0] + 0.3);
  CHECK(r.predict("text", out) == errc::unsupported);
}

TEST_CASE("router: bad training data is a named error", "[router][predictor]") {
  const synthetic t = make_table(50, 3);
  tandem::router r;
  auto o = small_options(tandem::router_predictor::logistic);
  CHECK(r.fit(std::vector<std::string>{}, std::vector<double>{}, names, o) == errc::empty_input);
  std::vector<double> short_q(t.quality.begin(), t.quality.end() - 1);
  CHECK(r.fit(t.prompts, short_q, names, o) == errc::size_mismatch);
  std::vector<double> bad_q = t.quality;
  bad_q[3] = 1.5;
  CHECK(r.fit(t.prompts, bad_q, names, o) == errc::invalid_argument);
  std::vector<double> one_class(t.quality.size(), 1.0);
  CHECK(r.fit(t.prompts, one_class, names, o) == errc::insufficient_data);
  CHECK_FALSE(r.fitted());
}

TEST_CASE("router: save/load round trips every predictor kind", "[router][io]") {
  const synthetic train = make_table(200, 4);
  const synthetic probe = make_table(20, 5);
  for (auto kind : {tandem::router_predictor::logistic, tandem::router_predictor::knn,
                    tandem::router_predictor::factorization, tandem::router_predictor::ensemble,
                    tandem::router_predictor::joint}) {
    CAPTURE(static_cast<int>(kind));
    tandem::router r;
    REQUIRE(r.fit(train.prompts, train.quality, names, small_options(kind)) == errc::ok);
    auto bytes = r.to_bytes();
    REQUIRE(bytes);
    auto back = tandem::router::from_bytes(*bytes);
    REQUIRE(back);
    CHECK(back->models() == names);
    std::vector<double> a(2), b(2);
    for (const std::string& p : probe.prompts) {
      REQUIRE(r.predict(p, a) == errc::ok);
      REQUIRE(back->predict(p, b) == errc::ok);
      CHECK(a == b);
    }
  }
}

TEST_CASE("router: corrupt, truncated and other-version files are rejected", "[router][io]") {
  const synthetic train = make_table(100, 6);
  tandem::router r;
  REQUIRE(r.fit(train.prompts, train.quality, names,
                small_options(tandem::router_predictor::ensemble)) == errc::ok);
  const std::vector<std::byte> good = *r.to_bytes();

  std::vector<std::byte> flipped = good;
  flipped[flipped.size() / 2] ^= std::byte{0x40};
  CHECK(tandem::router::from_bytes(flipped).error() == errc::corrupt_file);
  std::vector<std::byte> truncated(good.begin(), good.begin() + 100);
  CHECK(tandem::router::from_bytes(truncated).error() == errc::corrupt_file);
  std::vector<std::byte> magic = good;
  magic[0] = std::byte{'X'};
  CHECK(tandem::router::from_bytes(magic).error() == errc::corrupt_file);
  std::vector<std::byte> version = good;
  version[8] = std::byte{99};
  CHECK(tandem::router::from_bytes(version).error() == errc::unsupported_version);
  CHECK(tandem::router::from_bytes(std::vector<std::byte>{}).error() == errc::corrupt_file);

  tandem::error_info info;
  CHECK(tandem::router::from_bytes(version, &info).error() == errc::unsupported_version);
  CHECK(std::string(info.context()).find("version 99; this build reads version 3") !=
        std::string::npos);
  CHECK(tandem::router::from_bytes(flipped, &info).error() == errc::corrupt_file);
  CHECK(std::string(info.context()).find("checksum") != std::string::npos);

  const tandem_test::scratch_dir dir("tandem-router-");
  const std::string path = (dir.path() / "router.bin").string();
  REQUIRE(r.save(path) == errc::ok);
  auto loaded = tandem::router::load(path);
  REQUIRE(loaded);
  CHECK(*loaded->to_bytes() == good);
  CHECK(tandem::router::load("no/such/router.bin", &info).error() == errc::file_not_found);
  CHECK(std::string(info.context()).find("no/such/router.bin") != std::string::npos);
  CHECK(tandem::router{}.to_bytes().error() == errc::invalid_argument);
}

TEST_CASE("router: the joint predictor anchors to the chosen reference model", "[router][joint]") {
  const synthetic train = make_table(400, 7);
  const synthetic test = make_table(300, 8);
  auto o = small_options(tandem::router_predictor::joint);
  o.reference = 2;
  tandem::router r;
  CHECK(r.fit(train.prompts, train.quality, names, o) == errc::invalid_argument);
  CHECK_FALSE(r.fitted());
  // The strong model as the reference routes as well as the weak one.
  o.reference = 1;
  REQUIRE(r.fit(train.prompts, train.quality, names, o) == errc::ok);
  CHECK(held_out_apgr(&r, test) > held_out_apgr(nullptr, test) - 0.04);
  CHECK(r.chosen_l2() > 0);
}
