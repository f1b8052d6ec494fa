// The built-in n-gram model: modified Kneser-Ney estimates (by hand and against a direct
// map-based computation), normalised distributions, the session's LanguageModel contract
// (the public conformance suite, bit for bit), the binary file format and its rejection of
// damaged files, and named errors.
#include "tandem/backends/ngram_model.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/rng.hpp"

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "common/format_fixtures.hpp"
#include "common/frame_checksum.hpp"
#include "common/scratch_dir.hpp"
#include "tandem/testing/catch2.hpp"

#ifndef TANDEM_DATA_DIR
#error "TANDEM_DATA_DIR must name the repository's data/ folder"
#endif

namespace {
using tandem::errc;
using tandem::ngram_builder;
using tandem::ngram_model;
using tandem::ngram_options;
using tandem::ngram_session;
using tandem::token_id;
using sentences = std::vector<std::vector<token_id>>;

static_assert(tandem::LanguageModel<ngram_session>);
static_assert(tandem::Rewindable<ngram_session>);
static_assert(tandem::Scoring<ngram_session>);
static_assert(tandem::has_context_length_v<ngram_session>);

constexpr token_id bos = 0;
constexpr token_id eos = 1;

ngram_model train(const sentences& data, std::size_t order, std::size_t vocab,
                  std::optional<token_id> b = bos, std::optional<token_id> e = eos) {
  auto builder = ngram_builder::create(ngram_options{order, vocab, b, e});
  REQUIRE(builder.has_value());
  REQUIRE(builder->add_sentences(data) == errc::ok);
  auto m = builder->build();
  REQUIRE(m.has_value());
  return std::move(m).value();
}

std::vector<std::string> read_lines(const std::string& name, std::size_t max_lines) {
  std::ifstream in(std::string(TANDEM_DATA_DIR) + "/kjv/" + name);
  REQUIRE(in.good());
  std::vector<std::string> lines;
  std::string line;
  while (lines.size() < max_lines && std::getline(in, line)) lines.push_back(line);
  return lines;
}

// Words split on spaces; ids from the training lines (0 BOS, 1 EOS, 2 unknown word).
struct word_corpus {
  sentences train, heldout;
  std::size_t vocab = 3;
};

word_corpus kjv_words(std::size_t train_lines, std::size_t heldout_lines) {
  std::unordered_map<std::string, token_id> ids;
  word_corpus c;
  auto encode = [&](const std::string& line, bool grow) {
    std::vector<token_id> out;
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      auto it = ids.find(w);
      if (it != ids.end())
        out.push_back(it->second);
      else if (grow)
        out.push_back(ids[w] = static_cast<token_id>(c.vocab++));
      else
        out.push_back(2);
    }
    return out;
  };
  for (const auto& l : read_lines("train.txt", train_lines)) c.train.push_back(encode(l, true));
  for (const auto& l : read_lines("heldout.txt", heldout_lines))
    c.heldout.push_back(encode(l, false));
  return c;
}

// Bytes of each line; 256 is BOS, 257 EOS.
sentences kjv_bytes(const std::string& name, std::size_t lines) {
  sentences out;
  for (const auto& l : read_lines(name, lines)) {
    std::vector<token_id> s;
    for (unsigned char ch : l) s.push_back(ch);
    out.push_back(std::move(s));
  }
  return out;
}

double sum_exp(std::span<const float> logits) {
  double s = 0;
  for (float x : logits) s += std::exp(static_cast<double>(x));
  return s;
}

// Interpolated modified Kneser-Ney written directly from its definition over ordered maps
// of n-grams: an independent check of the flat-array model.
class reference_kn {
 public:
  reference_kn(const sentences& data, std::size_t order, std::size_t vocab, token_id b, token_id e)
      : order_(order), vocab_(vocab), bos_(b), a_(order + 1), d_(order + 1) {
    std::vector<std::map<std::vector<token_id>, double>> raw(order + 2), start(order + 1);
    for (const auto& s : data) {
      std::vector<token_id> seq;
      if (b >= 0) seq.push_back(b);
      seq.insert(seq.end(), s.begin(), s.end());
      if (e >= 0) seq.push_back(e);
      for (std::size_t i = 0; i < seq.size(); ++i) {
        for (std::size_t n = 1; n <= order && i + n <= seq.size(); ++n) {
          std::vector<token_id> g(seq.begin() + i, seq.begin() + i + n);
          raw[n][g] += 1;
          if (i == 0) start[n][g] += 1;
        }
      }
    }
    a_[order] = raw[order];
    for (std::size_t n = 1; n < order; ++n) {
      for (const auto& [g, c] : raw[n]) a_[n][g] = start[n].count(g) ? start[n][g] : 0.0;
      for (const auto& [g, c] : raw[n + 1])
        a_[n][std::vector<token_id>(g.begin() + 1, g.end())] += 1;
    }
    for (std::size_t n = 1; n <= order; ++n) {
      std::array<double, 5> cc{};
      for (const auto& [g, c] : a_[n]) {
        if (n == 1 && g[0] == bos_) continue;
        if (c <= 4) cc[static_cast<std::size_t>(c)] += 1;
      }
      d_[n] = {0.5, 1.0, 1.5};
      if (cc[1] > 0 && cc[2] > 0) {
        const double y = cc[1] / (cc[1] + 2 * cc[2]);
        const double est[3] = {1 - 2 * y * cc[2] / cc[1], 2 - 3 * y * cc[3] / cc[2],
                               cc[3] > 0 ? 3 - 4 * y * cc[4] / cc[3] : -1};
        for (int k = 0; k < 3; ++k)
          if (est[k] > 0 && est[k] <= k + 1) d_[n][k] = est[k];
      }
    }
  }

  double discount(std::size_t n, double count) const {
    return d_[n][static_cast<std::size_t>(std::min(count, 3.0)) - 1];
  }

  double prob(std::vector<token_id> ctx, token_id w) const {
    if (ctx.size() > order_ - 1) ctx.erase(ctx.begin(), ctx.end() - (order_ - 1));
    return p(ctx.size() + 1, ctx, w);
  }

 private:
  double p(std::size_t n, std::vector<token_id> h, token_id w) const {
    if (n == 1) {
      if (w == bos_) return 0.0;
      double sum = 0, mass = 0, own = 0;
      for (const auto& [g, c] : a_[1]) {
        if (g[0] == bos_) continue;
        sum += c;
        mass += discount(1, c);
        if (g[0] == w) own = c - discount(1, c);
      }
      const double predicted = static_cast<double>(vocab_) - (bos_ >= 0 ? 1 : 0);
      return own / sum + mass / sum / predicted;
    }
    const std::vector<token_id> shorter(h.begin() + 1, h.end());
    double sum = 0, mass = 0, own = 0;
    for (auto it = a_[n].lower_bound(h); it != a_[n].end(); ++it) {
      if (!std::equal(h.begin(), h.end(), it->first.begin())) break;
      sum += it->second;
      mass += discount(n, it->second);
      if (it->first.back() == w) own = it->second - discount(n, it->second);
    }
    const double lower = p(n - 1, shorter, w);
    if (sum == 0) return lower;
    return own / sum + mass / sum * lower;
  }

  std::size_t order_, vocab_;
  token_id bos_;
  std::vector<std::map<std::vector<token_id>, double>> a_;
  std::vector<std::array<double, 3>> d_;
};

}  // namespace

TEST_CASE("ngram: hand-computed modified Kneser-Ney probabilities on a four-sentence corpus",
          "[backends][ngram]") {
  // Tokens: 0 <s>, 1 </s>, 2 a, 3 b, 4 c. Sentences: "a b", "a b", "a c", "b c".
  const sentences data{{2, 3}, {2, 3}, {2, 4}, {3, 4}};
  const ngram_model m = train(data, 2, 5);
  REQUIRE(m.ngram_count(1) == 5);
  REQUIRE(m.ngram_count(2) == 7);

  // Bigram counts: <s>a 3, ab 2, b</s> 2, c</s> 2, ac 1, <s>b 1, bc 1: n1 = 3, n2 = 3,
  // n3 = 1, n4 = 0, so Y = 1/3, D1 = 1/3, D2 = 5/3, D3+ = 3.
  CHECK(m.discount(2, 1) == Approx(1.0 / 3));
  CHECK(m.discount(2, 2) == Approx(5.0 / 3));
  CHECK(m.discount(2, 3) == Approx(3.0));
  // Continuation counts: a 1 (<s>), b 2 (<s>, a), c 2 (a, b), </s> 2 (b, c): n1 = 1,
  // n2 = 3, n3 = 0: Y = 1/7, D1 = 1/7, D2 = 2, and D3+ undefined (n3 = 0): fallback 1.5.
  CHECK(m.discount(1, 1) == Approx(1.0 / 7));
  CHECK(m.discount(1, 2) == Approx(2.0));
  CHECK(m.discount(1, 3) == Approx(1.5));

  // P_1: total 7, gamma = (1/7 + 3 * 2) / 7 = 43/49 spread over the 4 predictable tokens.
  const double u = 43.0 / 49 / 4;
  const double p1_a = (1 - 1.0 / 7) / 7 + u;
  const double p1_b = u, p1_c = u, p1_eos = u;
  CHECK(p1_a + p1_b + p1_c + p1_eos == Approx(1.0));
  auto lp = [&](std::vector<token_id> ctx, token_id w) { return m.log_prob(ctx, w).value(); };
  CHECK(lp({}, 2) == Approx(std::log(p1_a)));
  CHECK(lp({}, 3) == Approx(std::log(p1_b)));
  CHECK(lp({}, 0) == -std::numeric_limits<double>::infinity());
  // After "a": continuations b (2), c (1): total 3, gamma = (1/3 + 5/3) / 3 = 2/3.
  CHECK(lp({2}, 3) == Approx(std::log((2 - 5.0 / 3) / 3 + 2.0 / 3 * p1_b)));
  CHECK(lp({2}, 4) == Approx(std::log((1 - 1.0 / 3) / 3 + 2.0 / 3 * p1_c)));
  CHECK(lp({2}, 2) == Approx(std::log(2.0 / 3 * p1_a)));
  CHECK(lp({2}, 1) == Approx(std::log(2.0 / 3 * p1_eos)));
  // After <s>: a (3, discounted by D3+ = 3 to nothing), b (1): total 4, gamma = 5/6.
  CHECK(lp({0}, 2) == Approx(std::log(5.0 / 6 * p1_a)));
  CHECK(lp({0}, 3) == Approx(std::log((1 - 1.0 / 3) / 4 + 5.0 / 6 * p1_b)));
  // After c: </s> (2): gamma = (5/3) / 2 = 5/6.
  CHECK(lp({4}, 1) == Approx(std::log((2 - 5.0 / 3) / 2 + 5.0 / 6 * p1_eos)));
  // </s> was never continued: its context passes P_1 through; longer contexts are cut.
  CHECK(lp({1}, 2) == Approx(std::log(p1_a)));
  CHECK(lp({3, 2}, 3) == Approx(lp({2}, 3)));

  // The sentence "a c": P(a|<s>) P(c|a) P(</s>|c).
  const auto s = m.score_sentence(std::vector<token_id>{2, 4});
  REQUIRE(s.has_value());
  CHECK(s->tokens == 3);
  CHECK(s->log_prob == Approx(lp({0}, 2) + lp({2}, 4) + lp({4}, 1)));
}

TEST_CASE("ngram: log_prob equals a direct map-based modified Kneser-Ney on KJV words",
          "[backends][ngram]") {
  const word_corpus c = kjv_words(300, 40);
  for (std::size_t order : {1u, 3u, 4u}) {
    for (bool markers : {true, false}) {
      CAPTURE(order, markers);
      const token_id b = markers ? bos : -1, e = markers ? eos : -1;
      const ngram_model m =
          train(c.train, order, c.vocab, markers ? std::optional<token_id>(b) : std::nullopt,
                markers ? std::optional<token_id>(e) : std::nullopt);
      const reference_kn ref(c.train, order, c.vocab, b, e);
      for (std::size_t n = 1; n <= order; ++n)
        for (std::size_t k = 1; k <= 3; ++k)
          CHECK(m.discount(n, k) == Approx(ref.discount(n, static_cast<double>(k))));
      tandem::rng r(order);
      // Contexts from training and held-out sentences; the true next token and random ones.
      for (std::size_t si = 0; si < c.heldout.size(); ++si) {
        const auto& s = si % 2 ? c.heldout[si] : c.train[si * 7];
        std::vector<token_id> ctx;
        if (markers) ctx.push_back(bos);
        for (token_id t : s) {
          for (token_id w : {t, static_cast<token_id>(r.below(c.vocab))}) {
            const double want = ref.prob(ctx, w);
            const auto got = m.log_prob(ctx, w);
            REQUIRE(got.has_value());
            CHECK(std::exp(*got) == Approx(want).epsilon(1e-5));
          }
          ctx.push_back(t);
        }
      }
    }
  }
}

TEST_CASE("ngram: every next-token distribution sums to one and matches log_prob",
          "[backends][ngram]") {
  const word_corpus c = kjv_words(2000, 60);
  for (std::size_t order : {1u, 2u, 4u, 6u}) {
    CAPTURE(order);
    const ngram_model m = train(c.train, order, c.vocab);
    ngram_session s(m);
    CHECK(sum_exp(s.logits()) == Approx(1.0).epsilon(1e-4));
    tandem::rng r(42);
    std::size_t checked = 0;
    for (std::size_t si = 0; si < c.heldout.size(); ++si) {
      // Held-out and training sentences: both unseen and well-known contexts.
      const auto& sent = si % 2 ? c.heldout[si] : c.train[si * 11];
      s.reset();
      REQUIRE(s.append(std::vector<token_id>{bos}) == errc::ok);
      for (token_id t : sent) {
        const auto logits = s.logits();
        REQUIRE(logits.size() == c.vocab);
        REQUIRE(sum_exp(logits) == Approx(1.0).epsilon(1e-4));
        CHECK(logits[bos] == -std::numeric_limits<float>::infinity());
        for (token_id w : {t, eos, static_cast<token_id>(r.below(c.vocab))}) {
          const double want = m.log_prob(s.tokens(), w).value();
          CHECK(logits[static_cast<std::size_t>(w)] == Approx(want).margin(1e-4));
        }
        ++checked;
        REQUIRE(s.append(std::span<const token_id>(&t, 1)) == errc::ok);
      }
    }
    CHECK(checked > 1000);
  }

  // Without sentence markers every token, token 0 included, has probability mass.
  const ngram_model plain = train(c.train, 3, c.vocab, std::nullopt, std::nullopt);
  ngram_session s(plain);
  for (std::size_t si = 0; si < 20; ++si) {
    s.reset();
    for (token_id t : c.heldout[si]) {
      REQUIRE(s.append(std::span<const token_id>(&t, 1)) == errc::ok);
      REQUIRE(sum_exp(s.logits()) == Approx(1.0).epsilon(1e-4));
      CHECK(std::isfinite(s.logits()[0]));
    }
  }
}

TEST_CASE("ngram: higher orders have lower held-out perplexity on KJV", "[backends][ngram]") {
  // Bytes, so that there is no unknown token and long contexts pay off.
  const sentences train_set = kjv_bytes("train.txt", 3000);
  const sentences heldout = kjv_bytes("heldout.txt", 300);
  double previous = 1e30;
  for (std::size_t order : {1u, 2u, 3u, 4u, 6u}) {
    CAPTURE(order);
    const ngram_model m = train(train_set, order, 258, 256, 257);
    const auto ppl = m.perplexity(heldout);
    REQUIRE(ppl.has_value());
    UNSCOPED_INFO("order " << order << " perplexity " << *ppl);
    CHECK(*ppl < previous * 0.95);
    previous = *ppl;
  }
  CHECK(previous < 4.0);
}

TEST_CASE("ngram: sessions pass the conformance suite, bit for bit", "[backends][ngram]") {
  const word_corpus c = kjv_words(1000, 5);
  // Real text: a training sentence (seen contexts) then a held-out one (backing off).
  std::vector<token_id> text{bos};
  text.insert(text.end(), c.train[3].begin(), c.train[3].end());
  text.insert(text.end(), c.heldout[2].begin(), c.heldout[2].end());
  REQUIRE(text.size() > 12);
  for (std::size_t order : {1u, 4u, 5u}) {
    CAPTURE(order);
    const ngram_model m = train(c.train, order, c.vocab);
    // A short context, so that the overflow check runs.
    const auto make = [&] { return ngram_session(m, 256); };
    tandem::conformance_options opts;
    opts.tolerance = tandem::conformance_tolerance::exact();
    opts.tokens = text;
    TANDEM_CHECK_CONFORMANCE(tandem::check_language_model(make, opts));
    opts.tokens = {};  // and random ids: unseen contexts everywhere
    TANDEM_CHECK_CONFORMANCE(tandem::check_language_model(make, opts));
  }
}

TEST_CASE("ngram: after rewind the logits are those of the shorter context", "[backends][ngram]") {
  // The conformance suite leaves logits() after rewind unspecified; ngram_session
  // recomputes them.
  const word_corpus c = kjv_words(1000, 5);
  const ngram_model m = train(c.train, 4, c.vocab);
  std::vector<token_id> text{bos};
  text.insert(text.end(), c.train[3].begin(), c.train[3].end());
  ngram_session s(m);
  REQUIRE(s.append(text) == errc::ok);
  for (std::size_t n : {1u, 3u}) {
    CAPTURE(n);
    REQUIRE(s.rewind(n) == errc::ok);
    ngram_session prefix(m);
    REQUIRE(prefix.append(std::span<const token_id>(text).first(s.size())) == errc::ok);
    CHECK(std::ranges::equal(s.logits(), prefix.logits()));
    CHECK(std::ranges::equal(s.tokens(), prefix.tokens()));
  }
  REQUIRE(s.rewind(s.size()) == errc::ok);
  const ngram_session empty(m);
  CHECK(std::ranges::equal(s.logits(), empty.logits()));
}

TEST_CASE("ngram: empty spans are rejected with empty_input and change nothing",
          "[backends][ngram]") {
  const ngram_model m = train(sentences{{2, 3, 4}, {3, 4}}, 3, 6);
  ngram_session s(m);
  REQUIRE(s.append(std::vector<token_id>{bos, 2}) == errc::ok);
  const std::vector<float> before(s.logits().begin(), s.logits().end());
  CHECK(s.append({}) == errc::empty_input);
  CHECK(s.score({}, {}) == errc::empty_input);
  CHECK(s.size() == 2);
  CHECK(std::ranges::equal(s.logits(), before));
}

TEST_CASE("ngram: a warm session allocates nothing per token", "[backends][ngram]") {
  const word_corpus c = kjv_words(500, 5);
  const ngram_model m = train(c.train, 4, c.vocab);
  ngram_session s(m, 256);
  std::vector<float> rows(3 * m.vocab_size());
  const std::vector<token_id> three(c.train[1].begin(), c.train[1].begin() + 3);
  tandem_test::allocation_scope scope;
  for (token_id t : c.train[0]) REQUIRE(s.append(std::span<const token_id>(&t, 1)) == errc::ok);
  REQUIRE(s.score(three, rows) == errc::ok);
  REQUIRE(s.rewind(2) == errc::ok);
  (void)m.log_prob(s.tokens(), 5);
  CHECK(scope.allocations() == 0);
  // The context is bounded by context_length().
  const std::vector<token_id> many(256 - s.size() + 1, 5);
  scope.restart();
  CHECK(s.append(many) == errc::context_overflow);
  CHECK(s.append(std::span(many).first(many.size() - 1)) == errc::ok);
  CHECK(s.size() == s.context_length());
  CHECK(scope.allocations() == 0);
}

TEST_CASE("ngram: save and load round-trip exactly", "[backends][ngram]") {
  const word_corpus c = kjv_words(800, 20);
  for (std::size_t order : {1u, 3u, 6u}) {
    CAPTURE(order);
    const ngram_model m = train(c.train, order, c.vocab);
    const tandem_test::scratch_dir dir("tandem-ngram-");
    const std::string path = (dir.path() / "model.bin").string();
    REQUIRE(m.save(path) == errc::ok);
    auto loaded = ngram_model::load(path);
    REQUIRE(loaded.has_value());
    const auto from_mem = ngram_model::from_bytes(m.to_bytes());
    REQUIRE(from_mem.has_value());
    CHECK(loaded->to_bytes() == m.to_bytes());
    CHECK(loaded->order() == order);
    CHECK(loaded->vocab_size() == c.vocab);
    CHECK(loaded->bos() == bos);
    CHECK(loaded->eos() == eos);
    for (std::size_t n = 1; n <= order; ++n) CHECK(loaded->ngram_count(n) == m.ngram_count(n));

    ngram_session a(m), b(*loaded), d(*from_mem);
    for (std::size_t si = 0; si < 10; ++si) {
      std::vector<token_id> text{bos};
      text.insert(text.end(), c.heldout[si].begin(), c.heldout[si].end());
      a.reset();
      b.reset();
      d.reset();
      for (token_id t : text) {
        const std::span<const token_id> one(&t, 1);
        REQUIRE(
            (a.append(one) == errc::ok && b.append(one) == errc::ok && d.append(one) == errc::ok));
        REQUIRE(std::ranges::equal(a.logits(), b.logits()));
        REQUIRE(std::ranges::equal(a.logits(), d.logits()));
      }
    }
    CHECK(loaded->perplexity(c.heldout).value() == m.perplexity(c.heldout).value());
  }
}

TEST_CASE("ngram: truncated, bit-flipped and hostile files are rejected with named errors",
          "[backends][ngram]") {
  const sentences data{{2, 3, 4}, {2, 3}, {4, 4, 2}, {3}};
  const ngram_model m = train(data, 3, 6);
  const std::vector<std::byte> good = m.to_bytes();
  REQUIRE(ngram_model::from_bytes(good).has_value());

  for (std::size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    CHECK(ngram_model::from_bytes(std::span(good).first(n)).error() == errc::corrupt_file);
  }
  auto longer = good;
  longer.push_back(std::byte{0});
  CHECK(ngram_model::from_bytes(longer).error() == errc::corrupt_file);

  for (std::size_t i = 0; i < good.size(); ++i) {
    for (int bit : {0, 3, 7}) {
      CAPTURE(i, bit);
      auto bad = good;
      bad[i] ^= std::byte{static_cast<unsigned char>(1u << bit)};
      const errc e = ngram_model::from_bytes(bad).error();
      // Bytes 8..11 hold the format version (2: no flip of bits 0, 3, 7 makes it 1).
      CHECK(e == (i >= 8 && i < 12 ? errc::unsupported_version : errc::corrupt_file));
    }
  }

  // A forged file whose checksum is right but whose sizes claim billions of n-grams.
  auto forge = [](std::vector<std::byte> bytes, std::size_t offset, std::uint64_t value,
                  std::size_t width) {
    for (std::size_t i = 0; i < width; ++i)
      bytes[offset + i] = static_cast<std::byte>((value >> (8 * i)) & 0xff);
    return tandem_test::with_frame_checksum(std::move(bytes));
  };
  // Payload offsets: order 20, vocab 24, n-gram counts from 44.
  CHECK(ngram_model::from_bytes(forge(good, 44, 0xffffffffull, 8)).error() == errc::corrupt_file);
  CHECK(ngram_model::from_bytes(forge(good, 44 + 8, 1ull << 40, 8)).error() == errc::corrupt_file);
  tandem::error_info info;
  CHECK(ngram_model::from_bytes(forge(good, 20, 200, 4), &info).error() == errc::corrupt_file);
  CHECK(info.context().find("order 200") != std::string_view::npos);
  CHECK(ngram_model::from_bytes(forge(good, 24, 0x7fffffff, 4)).error() ==
        errc::corrupt_file);  // vocab
  CHECK(ngram_model::from_bytes(forge(good, 24, 3, 4)).error() == errc::corrupt_file);
  CHECK(ngram_model::from_bytes(forge(good, 8, 3, 4), &info).error() == errc::unsupported_version);
  CHECK(info.context().find("version 3; this build reads version 2") != std::string_view::npos);
  REQUIRE(ngram_model::from_bytes(forge(good, 44, m.ngram_count(1), 8)).has_value());

  const tandem_test::scratch_dir dir("tandem-ngram-");
  const std::string missing = (dir.path() / "does-not-exist").string();
  CHECK(ngram_model::load(missing, &info).error() == errc::file_not_found);
  CHECK(info.context().find(missing) != std::string_view::npos);
  CHECK(ngram_model::load(dir.path().string()).error() == errc::invalid_argument);
  CHECK(m.save((dir.path() / "no-such-dir" / "model.bin").string(), &info) == errc::io_error);
  CHECK(info.context().find("no-such-dir") != std::string_view::npos);
  // An error found in a file's contents names the file.
  const std::string damaged = (dir.path() / "damaged.bin").string();
  REQUIRE(tandem::detail::write_file(damaged, std::span(good).first(good.size() - 1)) == errc::ok);
  CHECK(ngram_model::load(damaged, &info).error() == errc::corrupt_file);
  CHECK(info.context().find(damaged + ": ") == 0);
}

TEST_CASE("ngram: a version 1 file loads and gives the logits it gave when written",
          "[backends][ngram]") {
  const auto m = ngram_model::load(tandem_test::format_fixture("ngram_order2.v1.bin"));
  REQUIRE(m);
  CHECK(m->order() == 2);
  CHECK(m->vocab_size() == 12);
  const auto expected = tandem_test::format_fixture_lines("ngram_order2.expected");
  REQUIRE(expected.size() == 5);
  for (const auto& line : expected) {
    // "k t1 .. tk | logit_0 .. logit_11"
    REQUIRE(line.size() > 2);
    const std::size_t k = std::stoul(line[0]);
    REQUIRE(line.size() == 1 + k + 1 + m->vocab_size());
    std::vector<token_id> context;
    for (std::size_t i = 0; i < k; ++i) context.push_back(std::stoi(line[1 + i]));
    CAPTURE(context);
    ngram_session s(*m);
    REQUIRE(s.append(context) == errc::ok);
    for (std::size_t w = 0; w < m->vocab_size(); ++w)
      CHECK(s.logits()[w] == static_cast<float>(tandem_test::hex_double(line[k + 2 + w])));
  }
  // Saved again, it is a current-version file with the same tables.
  const auto again = ngram_model::from_bytes(m->to_bytes());
  REQUIRE(again);
  ngram_session a(*m), b(*again);
  CHECK(std::ranges::equal(a.logits(), b.logits()));
}

TEST_CASE("ngram: damaged version 1 files are refused with named errors", "[backends][ngram]") {
  const auto good = tandem_test::format_fixture_bytes("ngram_order2.v1.bin");
  REQUIRE(ngram_model::from_bytes(good));
  for (std::size_t n = 0; n < good.size(); n += 5)
    CHECK(ngram_model::from_bytes(std::span(good).first(n)).error() == errc::corrupt_file);
  auto flipped = good;
  flipped[40] ^= std::byte{0x10};
  CHECK(ngram_model::from_bytes(flipped).error() == errc::corrupt_file);
  auto flags = good;
  flags[12] = std::byte{1};
  CHECK(ngram_model::from_bytes(tandem_test::with_ngram_v1_checksum(flags)).error() ==
        errc::corrupt_file);
  // A well-formed file with a bad table behind a right checksum.
  auto order = good;
  order[24] = std::byte{9};
  tandem::error_info info;
  CHECK(ngram_model::from_bytes(tandem_test::with_ngram_v1_checksum(order), &info).error() ==
        errc::corrupt_file);
  CHECK(info.context().find("order 9") != std::string_view::npos);
}

TEST_CASE("ngram: a file whose n-grams are not nested still gives normalised distributions",
          "[backends][ngram]") {
  // A built model nests its n-grams (every trigram's last two tokens form a bigram); a
  // file need not. Turn the last trigram's token into 5, which was never seen, so that
  // the trigram has no bigram suffix.
  const sentences data{{2, 3, 4}, {2, 3}, {4, 4, 2}, {3}};
  const ngram_model m = train(data, 3, 6);
  const std::size_t n0 = m.ngram_count(1), n1 = m.ngram_count(2), n2 = m.ngram_count(3);
  const std::size_t last_trigram =
      44 + 3 * 8 + 3 * 12 + 4 * (4 * n0 + 1) + 4 * (4 * n1 + 1) + 4 * (n2 - 1);
  auto bytes = m.to_bytes();
  REQUIRE(bytes[last_trigram] < std::byte{5});
  bytes[last_trigram] = std::byte{5};
  const auto loaded = ngram_model::from_bytes(tandem_test::with_frame_checksum(std::move(bytes)));
  REQUIRE(loaded.has_value());

  ngram_session s(*loaded);
  std::size_t differs = 0;
  for (token_id x = 0; x < 6; ++x) {
    for (token_id h = 0; h < 6; ++h) {
      CAPTURE(x, h);
      s.reset();
      const std::vector<token_id> ctx{x, h};
      REQUIRE(s.append(ctx) == errc::ok);
      CHECK(sum_exp(s.logits()) == Approx(1.0).epsilon(1e-5));
      for (token_id w = 0; w < 6; ++w)
        CHECK(s.logits()[static_cast<std::size_t>(w)] ==
              Approx(loaded->log_prob(ctx, w).value()).margin(1e-5));
      differs += loaded->log_prob(ctx, 5).value() != m.log_prob(ctx, 5).value();
    }
  }
  CHECK(differs == 1);
}

TEST_CASE("ngram: token ids outside the vocabulary are rejected with invalid_token",
          "[backends][ngram]") {
  auto builder = ngram_builder::create(ngram_options{3, 6, bos, eos});
  REQUIRE(builder.has_value());
  CHECK(builder->add_sentence(std::vector<token_id>{2, 6}) == errc::invalid_token);
  CHECK(builder->add_sentence(std::vector<token_id>{2, -1}) == errc::invalid_token);
  CHECK(builder->add_sentence(std::vector<token_id>{2, bos, 3}) == errc::invalid_token);
  CHECK(builder->add_sentences(sentences{{2}, {3, 9}, {4}}) == errc::invalid_token);
  CHECK(builder->sentence_count() == 1);
  CHECK(builder->token_count() == 3);
  builder = ngram_builder::create(ngram_options{3, 6, bos, eos});
  REQUIRE(builder.has_value());
  REQUIRE(builder->add_sentence(std::vector<token_id>{2, 3, 4}) == errc::ok);
  CHECK(builder->token_count() == 5);
  const ngram_model m = builder->build().value();

  CHECK(m.log_prob(std::vector<token_id>{2}, 6).error() == errc::invalid_token);
  CHECK(m.log_prob(std::vector<token_id>{-3}, 2).error() == errc::invalid_token);
  CHECK(m.score_sentence(std::vector<token_id>{2, 9}).error() == errc::invalid_token);
  CHECK(m.score_sentence(std::vector<token_id>{bos}).error() == errc::invalid_token);
  CHECK(m.perplexity(sentences{{2, 3}, {7}}).error() == errc::invalid_token);

  // Sessions: the conformance suite's invalid_token_changes_nothing.
}

TEST_CASE("ngram: bad parameters and empty data are rejected with named errors",
          "[backends][ngram]") {
  using P = ngram_options;
  CHECK(ngram_builder::create(P{0, 10, {}, {}}).error() == errc::invalid_argument);
  CHECK(ngram_builder::create(P{tandem::ngram_max_order + 1, 10, {}, {}}).error() ==
        errc::invalid_argument);
  CHECK(ngram_builder::create(P{3, 0, {}, {}}).error() == errc::invalid_argument);
  CHECK(ngram_builder::create(P{3, tandem::ngram_max_vocab + 1, {}, {}}).error() ==
        errc::invalid_argument);
  CHECK(ngram_builder::create(P{3, 10, 4, 4}).error() == errc::invalid_argument);
  CHECK(ngram_builder::create(P{3, 1, 0, {}}).error() == errc::invalid_argument);
  CHECK(ngram_builder::create(P{3, 10, 10, {}}).error() == errc::invalid_token);
  CHECK(ngram_builder::create(P{3, 10, {}, -2}).error() == errc::invalid_token);
  CHECK(ngram_builder::create(P{tandem::ngram_max_order, 10, 0, 1}).has_value());

  auto empty = ngram_builder::create(P{3, 10, {}, {}});
  REQUIRE(empty.has_value());
  CHECK(empty->build().error() == errc::insufficient_data);
  REQUIRE(empty->add_sentence({}) == errc::ok);
  CHECK(empty->sentence_count() == 0);
  CHECK(empty->build().error() == errc::insufficient_data);

  // An empty sentence between markers still teaches "<s> </s>".
  auto markers = ngram_builder::create(P{2, 4, bos, eos});
  REQUIRE(markers.has_value());
  REQUIRE(markers->add_sentence({}) == errc::ok);
  const auto m = markers->build();
  REQUIRE(m.has_value());
  CHECK(m->log_prob(std::vector<token_id>{bos}, eos).value() > std::log(0.5));
  CHECK(m->perplexity(sentences{{}}).has_value());

  // Without EOS an empty held-out sentence predicts nothing.
  auto plain = ngram_builder::create(P{2, 4, {}, {}});
  REQUIRE(plain->add_sentence(std::vector<token_id>{1, 2, 3}) == errc::ok);
  const auto pm = plain->build();
  REQUIRE(pm.has_value());
  CHECK(pm->score_sentence({}).error() == errc::empty_input);
  CHECK(pm->perplexity(sentences{{}, {}}).error() == errc::empty_input);
}

TEST_CASE("ngram: a multi-sequence session passes the multi-sequence conformance suite",
          "[backends][ngram][multi_sequence]") {
  const word_corpus c = kjv_words(1000, 5);
  const ngram_model m = train(c.train, 4, c.vocab);
  tandem::multi_sequence_conformance_options opts;
  opts.tolerance = tandem::conformance_tolerance::exact();
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    CAPTURE(seed);
    opts.seed = seed;
    TANDEM_CHECK_CONFORMANCE(
        tandem::check_multi_sequence_model([&] { return tandem::ngram_multi_session(m, 4, 64); },
                                           [&] { return ngram_session(m); }, opts));
  }
}

TEST_CASE("ngram: a warm multi-sequence session allocates nothing",
          "[backends][ngram][multi_sequence]") {
  const word_corpus c = kjv_words(1000, 5);
  const ngram_model m = train(c.train, 3, c.vocab);
  tandem::ngram_multi_session ms(m, 4, 128);
  const token_id a[3] = {1, 2, 3}, b[2] = {4, 5};
  tandem_test::allocation_scope scope;
  for (int round = 0; round < 3; ++round) {
    const tandem::seq_id s0 = *ms.open();
    const tandem::seq_id s1 = *ms.open();
    const tandem::seq_tokens batch[2] = {{s0, a}, {s1, b}};
    REQUIRE(ms.append(batch) == errc::ok);
    const tandem::seq_id f = *ms.fork(s0);
    REQUIRE(ms.rewind(f, 1) == errc::ok);
    REQUIRE((ms.close(s0) == errc::ok && ms.close(s1) == errc::ok && ms.close(f) == errc::ok));
  }
  CHECK(scope.allocations() == 0);
}
