// Streaming detokenization over table tokenizers: complete UTF-8 characters only, U+FFFD
// for bytes that cannot form one, the first-piece rule, errors that change nothing.
#include "tandem/core/stream_decoder.hpp"

#include <string>
#include <string_view>
#include <vector>

#include "common/catch.hpp"

namespace {
using tandem::errc;
using tandem::token_id;

// Table tokenizer: id i is pieces[i]. Text of id 0 is empty (a control token).
struct table_tokenizer {
  std::vector<std::string> pieces;
  std::size_t vocab_size() const { return pieces.size(); }
  errc encode(std::string_view, std::vector<token_id>&) const { return errc::unsupported; }
  errc decode(std::span<const token_id> ids, std::string& out) const {
    std::string s;
    for (token_id id : ids) TANDEM_TRY(piece(id, s));
    out += s;
    return errc::ok;
  }
  errc piece(token_id id, std::string& out) const {
    if (id < 0 || static_cast<std::size_t>(id) >= pieces.size()) return errc::invalid_token;
    out += pieces[static_cast<std::size_t>(id)];
    return errc::ok;
  }
};

// Adds sentencepiece's start-of-text rule: a leading space of the first visible piece is
// dropped; id 0 is a control token.
struct prefix_tokenizer : table_tokenizer {
  errc first_piece(token_id id, std::string& out) const {
    std::string s;
    TANDEM_TRY(piece(id, s));
    if (!s.empty() && s[0] == ' ') s.erase(0, 1);
    out += s;
    return errc::ok;
  }
  // drop_all: like models that remove extra whitespace, a piece that is only the dropped
  // space keeps the text at its start.
  bool drop_all = false;
  bool leaves_start(token_id id) const {
    if (id == 0) return false;
    return !(drop_all && pieces[static_cast<std::size_t>(id)] == " ");
  }
};

bool well_formed(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const int n = tandem::detail::utf8_char_length(s.substr(i));
    if (n <= 0) return false;
    i += static_cast<std::size_t>(n);
  }
  return true;
}

// Pushes every id, checking that each push appends only well-formed text; returns the
// concatenated output after a final flush.
template <class T>
std::string stream_all(const T& tok, const std::vector<token_id>& ids) {
  tandem::stream_decoder<T> dec(tok);
  std::string all;
  for (token_id id : ids) {
    std::string chunk;
    REQUIRE(dec.push(id, chunk) == errc::ok);
    CHECK(well_formed(chunk));
    all += chunk;
  }
  std::string tail;
  dec.flush(tail);
  all += tail;
  return all;
}

const std::string fffd = "\xEF\xBF\xBD";

// ids: 0 control, 1 " the", 2 "caf", 3..4 the bytes of "é", 5..8 the bytes of U+1F642,
// 9 "A", 10 a lone continuation byte.
table_tokenizer bytes_table() {
  return {{"", " the", "caf", "\xC3", "\xA9", "\xF0", "\x9F", "\x99", "\x82", "A", "\x80"}};
}
}  // namespace

static_assert(tandem::Tokenizer<table_tokenizer>);
static_assert(!tandem::HasFirstPiece<table_tokenizer>);
static_assert(tandem::HasFirstPiece<prefix_tokenizer>);

TEST_CASE("utf8: character length follows Unicode's well-formed byte table", "[core][utf8]") {
  using tandem::detail::utf8_char_length;
  CHECK(utf8_char_length("a") == 1);
  CHECK(utf8_char_length("\xC3\xA9") == 2);
  CHECK(utf8_char_length("\xE6\x97\xA5") == 3);
  CHECK(utf8_char_length("\xF0\x9F\x99\x82") == 4);
  CHECK(utf8_char_length("\xF0\x9F\x99") == 0);  // may still complete
  CHECK(utf8_char_length("\xE6") == 0);
  CHECK(utf8_char_length("\x80") == -1);              // stray continuation
  CHECK(utf8_char_length("\xC0\x80") == -1);          // overlong
  CHECK(utf8_char_length("\xE0\x80\x80") == -1);      // overlong
  CHECK(utf8_char_length("\xED\xA0\x80") == -1);      // surrogate
  CHECK(utf8_char_length("\xF4\x90\x80\x80") == -1);  // above U+10FFFF
  CHECK(utf8_char_length("\xF5") == -1);
  CHECK(utf8_char_length("\xE6\x41") == -1);  // cut by an ASCII byte
}

TEST_CASE("stream_decoder: a character split over byte tokens comes out whole",
          "[core][stream_decoder]") {
  const auto tok = bytes_table();
  tandem::stream_decoder dec(tok);
  std::string out;
  REQUIRE(dec.push(2, out) == errc::ok);
  CHECK(out == "caf");
  REQUIRE(dec.push(3, out) == errc::ok);
  CHECK(out == "caf");
  CHECK(dec.held_bytes() == 1);
  REQUIRE(dec.push(4, out) == errc::ok);
  CHECK(out == "caf\xC3\xA9");
  CHECK(dec.held_bytes() == 0);
  for (token_id id : {5, 6, 7}) REQUIRE(dec.push(id, out) == errc::ok);
  CHECK(out == "caf\xC3\xA9");
  REQUIRE(dec.push(8, out) == errc::ok);
  CHECK(out == "caf\xC3\xA9\xF0\x9F\x99\x82");
}

TEST_CASE("stream_decoder: concatenated output equals the whole decode", "[core][stream_decoder]") {
  const auto tok = bytes_table();
  const std::vector<token_id> ids{2, 3, 4, 1, 5, 6, 7, 8, 9, 0, 1};
  std::string whole;
  REQUIRE(tok.decode(ids, whole) == errc::ok);
  CHECK(stream_all(tok, ids) == whole);
}

TEST_CASE("stream_decoder: bytes that cannot form a character become one U+FFFD each",
          "[core][stream_decoder]") {
  const auto tok = bytes_table();
  CHECK(stream_all(tok, {10, 9}) == fffd + "A");
  CHECK(stream_all(tok, {3, 9}) == fffd + "A");              // lead byte cut by "A"
  CHECK(stream_all(tok, {5, 6, 2}) == fffd + fffd + "caf");  // 4-byte lead cut short
  CHECK(stream_all(tok, {3, 3, 4}) == fffd + "\xC3\xA9");
}

TEST_CASE("stream_decoder: flush ends a cut-off character with U+FFFD per byte and restarts",
          "[core][stream_decoder]") {
  const auto tok = bytes_table();
  tandem::stream_decoder dec(tok);
  std::string out;
  REQUIRE(dec.push(5, out) == errc::ok);
  REQUIRE(dec.push(6, out) == errc::ok);
  CHECK(out.empty());
  dec.flush(out);
  CHECK(out == fffd + fffd);
  CHECK(dec.held_bytes() == 0);
  CHECK(dec.at_start());
  std::string again;
  REQUIRE(dec.push(2, again) == errc::ok);
  CHECK(again == "caf");
}

TEST_CASE("stream_decoder: reset drops held bytes without writing", "[core][stream_decoder]") {
  const auto tok = bytes_table();
  tandem::stream_decoder dec(tok);
  std::string out;
  REQUIRE(dec.push(3, out) == errc::ok);
  dec.reset();
  CHECK(dec.held_bytes() == 0);
  REQUIRE(dec.push(4, out) == errc::ok);  // a lone continuation byte now
  CHECK(out == fffd);
}

TEST_CASE("stream_decoder: an invalid id is rejected and changes nothing",
          "[core][stream_decoder]") {
  const auto tok = bytes_table();
  tandem::stream_decoder dec(tok);
  std::string out = "x";
  REQUIRE(dec.push(3, out) == errc::ok);
  CHECK(dec.push(-1, out) == errc::invalid_token);
  CHECK(dec.push(static_cast<token_id>(tok.vocab_size()), out) == errc::invalid_token);
  CHECK(out == "x");
  CHECK(dec.held_bytes() == 1);
  REQUIRE(dec.push(4, out) == errc::ok);
  CHECK(out == "x\xC3\xA9");
}

TEST_CASE("stream_decoder: only the first visible piece loses its leading space",
          "[core][stream_decoder]") {
  const prefix_tokenizer tok{{{"", " the", " end"}}};
  CHECK(stream_all(tok, {1, 2}) == "the end");
  CHECK(stream_all(tok, {0, 1, 2}) == "the end");  // a control token is not visible
  CHECK(stream_all(tok, {1, 1}) == "the the");
  tandem::stream_decoder dec(tok);
  std::string out;
  REQUIRE(dec.push(0, out) == errc::ok);
  CHECK(dec.at_start());
  REQUIRE(dec.push(1, out) == errc::ok);
  CHECK_FALSE(dec.at_start());
  dec.flush(out);
  REQUIRE(dec.push(2, out) == errc::ok);  // a new text starts after flush
  CHECK(out == "theend");
}

TEST_CASE("stream_decoder: leaves_start decides when the start of a text is over",
          "[core][stream_decoder]") {
  prefix_tokenizer tok{{{"", " ", " the"}}};
  CHECK(stream_all(tok, {1, 2}) == " the");  // the lone space piece ended the start
  tok.drop_all = true;
  CHECK(stream_all(tok, {1, 2}) == "the");  // all leading whitespace dropped
  CHECK(stream_all(tok, {1, 1, 0, 2, 2}) == "the the");
}

TEST_CASE("stream_decoder: without first_piece every piece is kept as is",
          "[core][stream_decoder]") {
  const table_tokenizer tok{{"", " the", " end"}};
  CHECK(stream_all(tok, {1, 2}) == " the end");
}
