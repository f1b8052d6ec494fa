// Routers: featurizers, predictors that find a planted signal, policies, save/load.
#include "tandem/router/router.hpp"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/eval/replay.hpp"
#include "tandem/router/policy.hpp"

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

TEST_CASE("featurizer: TF-IDF vectors are deterministic, sorted and unit length",
          "[router][featurizer]") {
  tandem::tfidf_featurizer f;
  REQUIRE(f.configure({}) == errc::ok);
  const std::vector<std::string> corpus{"The cat sat.", "A dog ran!", "the cat ran"};
  REQUIRE(f.fit(corpus) == errc::ok);
  tandem::sparse_vector a, b, c;
  f.transform("THE  cat sat.", a);
  f.transform("the cat sat.", b);
  f.transform("", c);
  CHECK(a.index == b.index);  // case and runs of spaces do not matter
  CHECK(a.value == b.value);
  CHECK(c.nnz() == 0);
  CHECK(tandem::dot(a, a) == Approx(1.0));
  for (std::size_t i = 1; i < a.nnz(); ++i) CHECK(a.index[i] > a.index[i - 1]);
  tandem::sparse_vector d;
  f.transform("a dog ran", d);
  CHECK(tandem::dot(a, d) < tandem::dot(a, b));
}

TEST_CASE("featurizer: bad options, an empty corpus and bad embeddings are named errors",
          "[router][featurizer]") {
  tandem::tfidf_featurizer f;
  tandem::featurizer_options o;
  o.dims_log2 = 40;
  CHECK(f.configure(o) == errc::invalid_argument);
  o = {};
  o.word_min = 3;
  o.word_max = 2;
  CHECK(f.configure(o) == errc::invalid_argument);
  o = {};
  o.word_min = o.word_max = o.char_min = o.char_max = 0;
  CHECK(f.configure(o) == errc::invalid_argument);
  CHECK(f.configure({}) == errc::ok);
  CHECK(f.fit(std::vector<std::string>{}) == errc::empty_input);
  CHECK_FALSE(f.fitted());

  tandem::sparse_vector v;
  const std::vector<float> e{3, 4};
  REQUIRE(tandem::embedding_features(e, true, v) == errc::ok);
  CHECK(v.value[0] == Approx(0.6f));
  const std::vector<float> bad{1, std::nanf("")};
  CHECK(tandem::embedding_features(bad, true, v) == errc::non_finite);
  CHECK(tandem::embedding_features(std::vector<float>{}, true, v) == errc::empty_input);
}

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

  const std::string path = "tandem_router_roundtrip.bin";
  REQUIRE(r.save(path.c_str()) == errc::ok);
  auto loaded = tandem::router::load(path.c_str());
  REQUIRE(loaded);
  CHECK(*loaded->to_bytes() == good);
  std::remove(path.c_str());
  CHECK(tandem::router::load("no/such/router.bin").error() == errc::file_not_found);
  CHECK(tandem::router{}.to_bytes().error() == errc::invalid_argument);
}

TEST_CASE("policy: lambda trades predicted quality against cost", "[router][policy]") {
  const std::vector<double> q{0.6, 0.8, 0.85};
  const std::vector<double> c{1, 5, 20};
  CHECK(tandem::pick_model(q, c, 0.0).value() == 2);
  CHECK(tandem::pick_model(q, c, 0.004).value() == 1);  // 0.78 vs 0.775 vs 0.596
  CHECK(tandem::pick_model(q, c, 1.0).value() == 0);
  CHECK(tandem::pick_model(q, c, INFINITY).value() == 0);
  CHECK(tandem::pick_model(q, c, -1).error() == errc::invalid_argument);
  CHECK(tandem::pick_model(std::vector<double>{}, std::vector<double>{}, 0).error() ==
        errc::empty_input);
  CHECK(tandem::pick_model(q, std::vector<double>{1, 2}, 0).error() == errc::size_mismatch);
}

TEST_CASE("policy: the win threshold is calibrated to a share of strong calls",
          "[router][policy]") {
  const std::vector<double> wins{0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.6, 0.4, 0.8, 0.0};
  auto p = tandem::calibrate_win_threshold(wins, 0.3);
  REQUIRE(p);
  int strong = 0;
  for (double w : wins) strong += p->route_strong(w) ? 1 : 0;
  CHECK(strong == 3);
  CHECK(p->threshold == 0.7);
  CHECK_FALSE(tandem::calibrate_win_threshold(wins, 0.0)->route_strong(1e9));
  CHECK(tandem::calibrate_win_threshold(wins, 1.0)->route_strong(-1e9));
  // Ties move together: never above the target share.
  const std::vector<double> tied{0.5, 0.5, 0.5, 0.1};
  auto t = tandem::calibrate_win_threshold(tied, 0.5);
  int n = 0;
  for (double w : tied) n += t->route_strong(w) ? 1 : 0;
  CHECK(n == 0);
  CHECK(tandem::calibrate_win_threshold(wins, 1.5).error() == errc::invalid_argument);
  CHECK(tandem::calibrate_win_threshold(std::vector<double>{}, 0.5).error() == errc::empty_input);
}

TEST_CASE("logistic regression: fits soft labels and rejects one-class data",
          "[router][logistic]") {
  std::vector<tandem::sparse_vector> x(2);
  x[0].index = {0};
  x[0].value = {1};
  x[1].index = {1};
  x[1].value = {1};
  tandem::logistic_regression lr;
  const std::vector<double> y{0.8, 0.2};
  tandem::logistic_options o;
  o.l2 = 0;
  REQUIRE(lr.fit(x, y, 2, o) == errc::ok);
  CHECK(lr.predict(x[0]) == Approx(0.8).margin(1e-3));
  CHECK(lr.predict(x[1]) == Approx(0.2).margin(1e-3));
  CHECK(lr.fit(x, std::vector<double>{1, 1}, 2, o) == errc::insufficient_data);
  CHECK(lr.fit(x, std::vector<double>{1, 2}, 2, o) == errc::invalid_argument);
  CHECK(lr.fit(x, y, 1, o) == errc::invalid_argument);  // index 1 outside dims 1
}

TEST_CASE("featurizer: binary term weights ignore repeats and min_df drops one-off n-grams",
          "[router][featurizer]") {
  tandem::featurizer_options o;
  o.char_min = o.char_max = 0;  // words only
  o.word_max = 1;
  o.binary_tf = true;
  tandem::tfidf_featurizer f;
  REQUIRE(f.configure(o) == errc::ok);
  const std::vector<std::string> corpus{"red blue", "red green", "blue green", "red rare"};
  REQUIRE(f.fit(corpus) == errc::ok);
  tandem::sparse_vector once, twice;
  f.transform("red blue", once);
  f.transform("red red red blue", twice);
  CHECK(once.index == twice.index);
  CHECK(once.value == twice.value);  // a repeated word weighs no more

  o.min_df = 2;
  REQUIRE(f.configure(o) == errc::ok);
  REQUIRE(f.fit(corpus) == errc::ok);
  tandem::sparse_vector rare, common;
  f.transform("rare", rare);
  f.transform("green", common);
  CHECK(rare.nnz() == 0);  // seen in one training query only: dropped
  CHECK(common.nnz() == 1);
  o.min_df = 0;
  CHECK(f.configure(o) == errc::invalid_argument);
}

TEST_CASE("joint logistic: offsets learn what sets a model apart from its reference",
          "[router][joint]") {
  // Feature 0 marks hard queries (every model fails more often); feature 1 marks queries
  // only model 2 solves. Model 1 behaves like the reference, model 0.
  tandem::rng g(11);
  std::vector<tandem::sparse_vector> x(600);
  std::vector<double> y;
  for (auto& v : x) {
    const bool hard = g.uniform() < 0.5, special = g.uniform() < 0.3;
    v.index = {hard ? 0u : 2u};
    v.value = {1.0f};
    if (special) {
      v.index.push_back(3);
      v.value.push_back(1.0f);
      if (hard) {
        v.index = {0, 1, 3};
        v.value = {1, 1, 1};
      }
    }
    const double base = hard ? 0.2 : 0.9;
    y.push_back(g.uniform() < base ? 1 : 0);
    y.push_back(g.uniform() < base ? 1 : 0);
    y.push_back(g.uniform() < (hard && special ? 0.95 : base) ? 1 : 0);
  }
  tandem::joint_logistic jl;
  tandem::logistic_options o;
  o.l2 = 1e-3;
  REQUIRE(jl.fit(x, y, 3, 0, 4, o) == errc::ok);
  CHECK(jl.reference() == 0);
  CHECK(jl.models() == 3);
  std::vector<double> p(3);
  REQUIRE(jl.predict(x[0], p) == errc::ok);
  tandem::sparse_vector hard_special, easy;
  hard_special.index = {0, 1, 3};
  hard_special.value = {1, 1, 1};
  easy.index = {2};
  easy.value = {1};
  REQUIRE(jl.predict(hard_special, p) == errc::ok);
  CHECK(p[2] - p[0] > 0.4);            // the planted gain of model 2
  CHECK(std::abs(p[1] - p[0]) < 0.1);  // model 1 adds nothing over the reference
  REQUIRE(jl.predict(easy, p) == errc::ok);
  CHECK(p[0] > 0.8);
  CHECK(std::abs(p[2] - p[0]) < 0.1);

  // Bad input is a named error and keeps the fitted weights.
  CHECK(jl.fit(x, y, 3, 3, 4, o) == errc::invalid_argument);  // reference out of range
  CHECK(jl.fit(x, y, 2, 0, 4, o) == errc::size_mismatch);
  std::vector<double> flat(y.size(), 1.0);
  CHECK(jl.fit(x, flat, 3, 0, 4, o) == errc::insufficient_data);
  o.l2 = -1;
  CHECK(jl.fit(x, y, 3, 0, 4, o) == errc::invalid_argument);
  CHECK(jl.fitted());
  std::vector<double> two(2);
  CHECK(jl.predict(easy, two) == errc::size_mismatch);
  tandem::sparse_vector outside;
  outside.index = {4};
  outside.value = {1};
  CHECK(jl.predict(outside, p) == errc::invalid_argument);
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
