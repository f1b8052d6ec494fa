// Featurizers: hashed TF-IDF n-grams (deterministic, unit length, binary weights, min_df)
// and embeddings; bad options are named errors.
#include "tandem/router/featurizer.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "common/catch.hpp"

using tandem::errc;

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
