// stream_decoder over the real sentencepiece tokenizers: each chunk is well-formed UTF-8
// and the chunks add up to decode() of the whole sequence, also for arbitrary id sequences
// full of byte tokens, control tokens and the unknown token.
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <sentencepiece_trainer.h>

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "tandem/backends/sentencepiece.hpp"
#include "tandem/core/stream_decoder.hpp"

namespace {
using tandem::errc;
using tandem::sentencepiece_tokenizer;
using tandem::token_id;

sentencepiece_tokenizer load(const char* path) {
  auto r = sentencepiece_tokenizer::load(path);
  REQUIRE(r.has_value());
  return std::move(*r);
}

bool well_formed(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const int n = tandem::detail::utf8_char_length(s.substr(i));
    if (n <= 0) return false;
    i += static_cast<std::size_t>(n);
  }
  return true;
}

// Streams `ids` one at a time; every chunk must be well-formed. Returns the concatenation.
std::string stream(const sentencepiece_tokenizer& t, const std::vector<token_id>& ids) {
  tandem::stream_decoder<sentencepiece_tokenizer> dec(t);
  std::string all;
  for (const token_id id : ids) {
    std::string chunk;
    REQUIRE(dec.push(id, chunk) == errc::ok);
    REQUIRE(well_formed(chunk));
    all += chunk;
  }
  std::string tail;
  dec.flush(tail);
  REQUIRE(well_formed(tail));
  return all + tail;
}

std::string decode(const sentencepiece_tokenizer& t, const std::vector<token_id>& ids) {
  std::string out;
  REQUIRE(t.decode(ids, out) == errc::ok);
  return out;
}
}  // namespace

TEST_CASE("sentencepiece stream: corpus and non-ASCII text stream to exactly the decoded text",
          "[backends][sentencepiece][stream_decoder]") {
  std::vector<std::string> texts = {"naïve café 日本 🙂", " leading space", "a  b",
                                    "🙂🙃", "日本語のテキスト"};
  std::ifstream f(TANDEM_FIXTURE_KJV_HELDOUT);
  for (std::string line; texts.size() < 200 && std::getline(f, line);) texts.push_back(line);
  for (const char* path : {TANDEM_FIXTURE_SPM_BPE4000, TANDEM_FIXTURE_SPM_UNIGRAM2000}) {
    const auto t = load(path);
    for (const auto& text : texts) {
      std::vector<token_id> ids;
      REQUIRE(t.encode(text, ids) == errc::ok);
      CHECK(stream(t, ids) == text);
      ids.insert(ids.begin(), t.bos_id());  // <s> first: still the same text
      ids.push_back(t.eos_id());
      CHECK(stream(t, ids) == text);
      CHECK(decode(t, ids) == text);
    }
  }
}

TEST_CASE("sentencepiece stream: a multi-byte character is held until its last byte token",
          "[backends][sentencepiece][stream_decoder]") {
  const auto t = load(TANDEM_FIXTURE_SPM_BPE4000);
  std::vector<token_id> ids;
  REQUIRE(t.encode("🙂", ids) == errc::ok);
  tandem::stream_decoder<sentencepiece_tokenizer> dec(t);
  std::string out;
  std::size_t bytes_seen = 0;
  for (const token_id id : ids) {
    REQUIRE(dec.push(id, out) == errc::ok);
    if (t.is_byte(id) && ++bytes_seen < 4) CHECK(dec.held_bytes() == bytes_seen);
  }
  CHECK(bytes_seen == 4);
  CHECK(dec.held_bytes() == 0);
  CHECK(out == "🙂");  // the dummy-prefix space was dropped
}

TEST_CASE("sentencepiece stream: random id sequences match sentencepiece's decoder",
          "[backends][sentencepiece][stream_decoder]") {
  // Byte tokens in random order make broken UTF-8 of every kind; sentencepiece writes
  // U+FFFD per bad byte, and the stream must agree chunk by chunk.
  for (const char* path : {TANDEM_FIXTURE_SPM_BPE4000, TANDEM_FIXTURE_SPM_UNIGRAM2000}) {
    const auto t = load(path);
    std::vector<token_id> bytes, others;
    for (token_id id = 0; id < static_cast<token_id>(t.vocab_size()); ++id)
      (t.is_byte(id) ? bytes : others).push_back(id);
    REQUIRE(bytes.size() == 256);
    std::mt19937 rng(1234);
    for (int round = 0; round < 400; ++round) {
      std::vector<token_id> ids(std::uniform_int_distribution<std::size_t>(0, 24)(rng));
      for (auto& id : ids) {
        const auto& pool = (rng() % 3 == 0) ? others : bytes;
        id = pool[rng() % pool.size()];
      }
      std::vector<int> raw(ids.begin(), ids.end());
      std::string want;
      REQUIRE(t.processor().Decode(raw, &want).ok());
      CHECK(decode(t, ids) == want);
      CHECK(stream(t, ids) == want);
    }
  }
}

TEST_CASE("sentencepiece stream: a bad id leaves the stream as it was",
          "[backends][sentencepiece][stream_decoder]") {
  const auto t = load(TANDEM_FIXTURE_SPM_BPE4000);
  std::vector<token_id> ids;
  REQUIRE(t.encode("日", ids) == errc::ok);
  tandem::stream_decoder<sentencepiece_tokenizer> dec(t);
  std::string out;
  REQUIRE(dec.push(ids[0], out) == errc::ok);
  REQUIRE(dec.push(ids[1], out) == errc::ok);
  const std::size_t held = dec.held_bytes();
  CHECK(dec.push(-3, out) == errc::invalid_token);
  CHECK(dec.push(4000, out) == errc::invalid_token);
  CHECK(dec.held_bytes() == held);
  for (std::size_t i = 2; i < ids.size(); ++i) REQUIRE(dec.push(ids[i], out) == errc::ok);
  dec.flush(out);
  CHECK(out == "日");
}

TEST_CASE("sentencepiece stream: decoding token by token allocates nothing once warm",
          "[backends][sentencepiece][stream_decoder]") {
  const auto t = load(TANDEM_FIXTURE_SPM_BPE4000);
  std::vector<token_id> ids;
  REQUIRE(t.encode("And God said, Let there be light: and there was light. 日本 🙂", ids) ==
          errc::ok);
  tandem::stream_decoder<sentencepiece_tokenizer> dec(t);
  std::string out;
  out.reserve(1024);
  std::string one;
  one.reserve(64);
  tandem_test::allocation_scope scope;
  for (int round = 0; round < 3; ++round) {
    for (const token_id id : ids) {
      REQUIRE(dec.push(id, out) == errc::ok);
      one.clear();
      REQUIRE(t.piece(id, one) == errc::ok);
    }
    dec.flush(out);
  }
  CHECK(scope.allocations() == 0);
  CHECK(out.size() > 100);
}

TEST_CASE("sentencepiece stream: other whitespace settings stream as sentencepiece decodes",
          "[backends][sentencepiece][stream_decoder]") {
  // Small models trained here on the held-out lines: sentencepiece's defaults (which drop
  // all leading whitespace), no dummy prefix, whitespace as suffix.
  std::vector<std::string> texts = {" x", "  two", "a  b ", " 日本 🙂", "▁ mark"};
  std::ifstream f(TANDEM_FIXTURE_KJV_HELDOUT);
  for (std::string line; texts.size() < 100 && std::getline(f, line);) texts.push_back(line);
  for (const std::string flags :
       {"", "--add_dummy_prefix=false", "--treat_whitespace_as_suffix=true",
        "--remove_extra_whitespaces=false --add_dummy_prefix=false"}) {
    INFO("trainer flags: " << flags);
    std::string blob;
    REQUIRE(sentencepiece::SentencePieceTrainer::Train(
                "--input=" TANDEM_FIXTURE_KJV_HELDOUT
                " --model_type=bpe --vocab_size=600 --byte_fallback=true --num_threads=1"
                " --minloglevel=2 " +
                    flags,
                nullptr, &blob)
                .ok());
    auto r = sentencepiece_tokenizer::from_bytes(tandem::detail::as_bytes(blob));
    REQUIRE(r.has_value());
    const auto& t = *r;
    const auto space = t.find_piece("\xE2\x96\x81");
    REQUIRE(space.has_value());
    std::mt19937 rng(99);
    for (const auto& text : texts) {
      std::vector<token_id> ids;
      REQUIRE(t.encode(text, ids) == errc::ok);
      for (int k = 0; k < 3; ++k) {
        std::string want;
        REQUIRE(t.processor().Decode(std::vector<int>(ids.begin(), ids.end()), &want).ok());
        CHECK(stream(t, ids) == want);
        // Next: lone space pieces and <s> up front, then random replacements.
        ids.insert(ids.begin(), {*space, t.bos_id(), *space});
        for (auto& id : ids)
          if (rng() % 4 == 0) id = static_cast<token_id>(rng() % t.vocab_size());
      }
    }
  }
}
