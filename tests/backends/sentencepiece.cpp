// The sentencepiece adapter on the fixture tokenizers trained at build time from the KJV
// corpus: loading and its errors, special tokens, exact round trips, pieces, bad ids.
#include "tandem/backends/sentencepiece.hpp"

#include <cstddef>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"

namespace {
using tandem::errc;
using tandem::sentencepiece_tokenizer;
using tandem::token_id;

const sentencepiece_tokenizer& bpe() {
  static const sentencepiece_tokenizer t =
      *sentencepiece_tokenizer::load(TANDEM_FIXTURE_SPM_BPE4000);
  return t;
}
const sentencepiece_tokenizer& unigram() {
  static const sentencepiece_tokenizer t =
      *sentencepiece_tokenizer::load(TANDEM_FIXTURE_SPM_UNIGRAM2000);
  return t;
}

std::vector<std::byte> read_file(const std::string& path) {
  auto bytes = tandem::detail::read_file(path);
  REQUIRE(bytes.has_value());
  return std::move(bytes).value();
}

std::vector<std::string> heldout_lines(std::size_t n) {
  std::ifstream f(TANDEM_FIXTURE_KJV_HELDOUT);
  std::vector<std::string> lines;
  for (std::string line; lines.size() < n && std::getline(f, line);) lines.push_back(line);
  return lines;
}

std::string round_trip(const sentencepiece_tokenizer& t, const std::string& text) {
  std::vector<token_id> ids;
  REQUIRE(t.encode(text, ids) == errc::ok);
  std::string out;
  REQUIRE(t.decode(ids, out) == errc::ok);
  return out;
}

const char* const non_ascii[] = {"naïve café 日本 🙂", "Ünïcödé ☃ — ∑ x²", "日本語のテキスト",
                                 "emoji 🙂🙃👍🏽 end",
                                 "mixed: God said, «Let there be light» ✓"};
}  // namespace

TEST_CASE("sentencepiece: the fixture models load with their vocabulary sizes",
          "[backends][sentencepiece]") {
  auto a = sentencepiece_tokenizer::load(TANDEM_FIXTURE_SPM_BPE4000);
  REQUIRE(a.has_value());
  CHECK(a->vocab_size() == 4000);
  auto b = sentencepiece_tokenizer::load(TANDEM_FIXTURE_SPM_UNIGRAM2000);
  REQUIRE(b.has_value());
  CHECK(b->vocab_size() == 2000);
}

TEST_CASE("sentencepiece: a missing model file is file_not_found", "[backends][sentencepiece]") {
  tandem::error_info info;
  const auto r = sentencepiece_tokenizer::load("/nonexistent/dir/no.model", &info);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::file_not_found);
  CHECK(info.context().find("/nonexistent/dir/no.model") != std::string_view::npos);
}

TEST_CASE("sentencepiece: corrupt or truncated model files are corrupt_file",
          "[backends][sentencepiece]") {
  const std::vector<std::byte> good = read_file(TANDEM_FIXTURE_SPM_BPE4000);
  REQUIRE(good.size() > 1000);
  const tandem_test::scratch_dir dir("tandem-spm-");
  auto file_with = [&](const char* name, std::span<const std::byte> bytes) {
    const std::string path = (dir.path() / name).string();
    REQUIRE(tandem::detail::write_file(path, bytes) == errc::ok);
    return path;
  };
  tandem::error_info info;
  const std::string garbage =
      file_with("garbage.model", tandem::detail::as_bytes("this is not a sentencepiece model"));
  CHECK(sentencepiece_tokenizer::load(garbage, &info).error() == errc::corrupt_file);
  CHECK(info.context().find(garbage + ": not a sentencepiece model") == 0);
  const std::string truncated =
      file_with("truncated.model", std::span(good).first(good.size() / 2));
  CHECK(sentencepiece_tokenizer::load(truncated).error() == errc::corrupt_file);
  const std::string empty = file_with("empty.model", {});
  CHECK(sentencepiece_tokenizer::load(empty).error() == errc::corrupt_file);
  CHECK(sentencepiece_tokenizer::load(dir.path().string()).error() == errc::invalid_argument);
  CHECK(sentencepiece_tokenizer::from_bytes({}, &info).error() == errc::corrupt_file);
  CHECK(info.context() == "empty sentencepiece model");
  CHECK(sentencepiece_tokenizer::from_bytes(std::span(good).first(good.size() - 1)).error() ==
        errc::corrupt_file);
}

TEST_CASE("sentencepiece: a model loads from its serialized bytes and tokenizes the same",
          "[backends][sentencepiece]") {
  auto t = sentencepiece_tokenizer::from_bytes(read_file(TANDEM_FIXTURE_SPM_BPE4000));
  REQUIRE(t.has_value());
  CHECK(t->vocab_size() == bpe().vocab_size());
  std::vector<token_id> a, b;
  REQUIRE(t->encode("And God said, Let there be light", a) == errc::ok);
  REQUIRE(bpe().encode("And God said, Let there be light", b) == errc::ok);
  CHECK(a == b);
}

TEST_CASE("sentencepiece: special token ids are reported, -1 when absent",
          "[backends][sentencepiece]") {
  CHECK(bpe().unk_id() == 0);
  CHECK(bpe().bos_id() == 1);
  CHECK(bpe().eos_id() == 2);
  CHECK(bpe().pad_id() == -1);
  CHECK(unigram().pad_id() == 3);
  CHECK(bpe().is_control(bpe().bos_id()));
  CHECK(bpe().is_control(bpe().eos_id()));
  CHECK(unigram().is_control(unigram().pad_id()));
  CHECK(bpe().is_unknown(bpe().unk_id()));
  CHECK_FALSE(bpe().is_control(bpe().unk_id()));
  std::string out;
  REQUIRE(bpe().piece(bpe().bos_id(), out) == errc::ok);
  REQUIRE(bpe().piece(bpe().eos_id(), out) == errc::ok);
  CHECK(out.empty());  // control tokens are invisible
  REQUIRE(bpe().piece(bpe().unk_id(), out) == errc::ok);
  CHECK(out == " \xE2\x81\x87 ");  // sentencepiece's default unknown surface
}

TEST_CASE("sentencepiece: encode adds no <s> or </s> and appends to the ids",
          "[backends][sentencepiece]") {
  std::vector<token_id> ids{bpe().bos_id()};
  REQUIRE(bpe().encode("In the beginning", ids) == errc::ok);
  REQUIRE(ids.size() > 1);
  CHECK(ids[0] == bpe().bos_id());
  for (std::size_t i = 1; i < ids.size(); ++i) {
    CHECK_FALSE(bpe().is_control(ids[i]));
    CHECK(bpe().contains(ids[i]));
  }
  const std::size_t n = ids.size();
  REQUIRE(bpe().encode("", ids) == errc::ok);
  CHECK(ids.size() == n);
}

TEST_CASE("sentencepiece: held-out corpus lines round-trip exactly", "[backends][sentencepiece]") {
  const auto lines = heldout_lines(300);
  REQUIRE(lines.size() == 300);
  for (const auto* t : {&bpe(), &unigram()}) {
    std::size_t tokens = 0, bytes = 0;
    for (const auto& line : lines) {
      std::vector<token_id> ids;
      REQUIRE(t->encode(line, ids) == errc::ok);
      std::string out;
      REQUIRE(t->decode(ids, out) == errc::ok);
      CHECK(out == line);
      tokens += ids.size();
      bytes += line.size();
    }
    // A trained tokenizer compresses English: well under one token per 2 bytes.
    CHECK(tokens * 2 < bytes);
  }
}

TEST_CASE("sentencepiece: non-ASCII text round-trips exactly through byte tokens",
          "[backends][sentencepiece]") {
  for (const auto* t : {&bpe(), &unigram()}) {
    for (const std::string text : non_ascii) CHECK(round_trip(*t, text) == text);
  }
  std::vector<token_id> ids;
  REQUIRE(bpe().encode("日本 🙂", ids) == errc::ok);
  std::size_t byte_tokens = 0;
  std::string raw;
  for (token_id id : ids) {
    if (bpe().is_byte(id)) ++byte_tokens;
    REQUIRE(bpe().piece(id, raw) == errc::ok);
  }
  CHECK(byte_tokens == 10);      // 3 + 3 + 4 UTF-8 bytes unseen in the KJV corpus
  CHECK(raw == " 日本 🙂");  // pieces keep the dummy-prefix space
}

TEST_CASE("sentencepiece: whitespace is kept exactly", "[backends][sentencepiece]") {
  for (const std::string text :
       {"  two leading", "inner  double", "trailing ", "tab\there", "line\nbreak", " "})
    CHECK(round_trip(bpe(), text) == text);
}

TEST_CASE("sentencepiece: decode agrees with sentencepiece's own decoder",
          "[backends][sentencepiece]") {
  std::vector<int> ids;
  for (token_id id = 0; id < 300; ++id) ids.push_back((id * 37) % 4000);
  std::string want;
  REQUIRE(bpe().processor().Decode(ids, &want).ok());
  std::string got;
  REQUIRE(bpe().decode(std::vector<token_id>(ids.begin(), ids.end()), got) == errc::ok);
  CHECK(got == want);
}

TEST_CASE("sentencepiece: piece turns the word mark into a space and byte tokens into bytes",
          "[backends][sentencepiece]") {
  const auto the = bpe().find_piece("\xE2\x96\x81the");
  REQUIRE(the.has_value());
  std::string out;
  REQUIRE(bpe().piece(*the, out) == errc::ok);
  CHECK(out == " the");
  out.clear();
  REQUIRE(bpe().first_piece(*the, out) == errc::ok);
  CHECK(out == "the");
  CHECK(*bpe().raw_piece(*the) == "\xE2\x96\x81the");

  const auto e6 = bpe().find_piece("<0xE6>");
  REQUIRE(e6.has_value());
  CHECK(bpe().is_byte(*e6));
  CHECK_FALSE(bpe().is_byte(*the));
  out.clear();
  REQUIRE(bpe().piece(*e6, out) == errc::ok);
  CHECK(out == "\xE6");
  out.clear();
  REQUIRE(bpe().first_piece(*e6, out) == errc::ok);
  CHECK(out == "\xE6");
  CHECK(bpe().find_piece("no such piece").error() == errc::not_found);
  CHECK(*bpe().find_piece("<unk>") == bpe().unk_id());
}

TEST_CASE("sentencepiece: ids outside the vocabulary are invalid_token and change nothing",
          "[backends][sentencepiece]") {
  const token_id bad[] = {-1, 4000, 1 << 30};
  for (const token_id id : bad) {
    std::string out = "keep";
    CHECK(bpe().piece(id, out) == errc::invalid_token);
    CHECK(bpe().first_piece(id, out) == errc::invalid_token);
    const std::vector<token_id> ids{5, id, 6};
    CHECK(bpe().decode(ids, out) == errc::invalid_token);
    CHECK(out == "keep");
    CHECK(bpe().raw_piece(id).error() == errc::invalid_token);
    CHECK_FALSE(bpe().is_byte(id));
    CHECK_FALSE(bpe().is_control(id));
    CHECK_FALSE(bpe().is_unknown(id));
    CHECK_FALSE(bpe().contains(id));
  }
  CHECK(unigram().contains(1999));
  CHECK_FALSE(unigram().contains(2000));
}

TEST_CASE("sentencepiece: a moved-from tokenizer's successor keeps working",
          "[backends][sentencepiece]") {
  auto r = sentencepiece_tokenizer::load(TANDEM_FIXTURE_SPM_UNIGRAM2000);
  REQUIRE(r.has_value());
  sentencepiece_tokenizer t = std::move(*r);
  CHECK(round_trip(t, "naïve café 日本 🙂") == "naïve café 日本 🙂");
}
