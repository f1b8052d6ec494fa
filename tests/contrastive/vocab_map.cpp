// Tests of vocabulary maps on small hand-written vocabularies: normalisation of space
// markers and byte tokens, tie rules, coverage, logits mapping.
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "common/catch.hpp"
#include "tandem/contrastive/vocab_map.hpp"

namespace {

using tandem::errc;
using tandem::piece_kind;
using tandem::token_id;
using tandem::token_piece;

struct vocab {
  std::vector<std::string> pieces;
  std::vector<piece_kind> kinds;
  auto source() const {
    return [this](token_id id) -> tandem::result<token_piece> {
      if (id < 0 || static_cast<std::size_t>(id) >= pieces.size()) return errc::invalid_token;
      return token_piece{pieces[static_cast<std::size_t>(id)], kinds[static_cast<std::size_t>(id)]};
    };
  }
  std::size_t size() const { return pieces.size(); }
};

}  // namespace

TEST_CASE("vocab map: pieces normalise to the text they stand for", "[contrastive][vocab_map]") {
  std::string out;
  REQUIRE(tandem::normalize_piece(tandem::piece_style::sentencepiece, "\xE2\x96\x81the", out));
  CHECK(out == " the");
  REQUIRE(tandem::normalize_piece(tandem::piece_style::byte_level, "\xC4\xA0the", out));  // U+0120
  CHECK(out == " the");
  REQUIRE(tandem::normalize_piece(tandem::piece_style::byte_level, "\xC4\x8A", out));  // U+010A
  CHECK(out == "\n");
  // Byte-level "Ã©" is the two bytes of "é".
  REQUIRE(tandem::normalize_piece(tandem::piece_style::byte_level, "\xC3\x83\xC2\xA9", out));
  CHECK(out == "\xC3\xA9");
  CHECK(!tandem::normalize_piece(tandem::piece_style::byte_level, "\xE2\x96\x81", out));
  REQUIRE(tandem::normalize_piece(tandem::piece_style::plain, "\xE2\x96\x81x", out));
  CHECK(out == "\xE2\x96\x81x");
}

TEST_CASE("vocab map: a sentencepiece and a byte-level vocabulary match by text",
          "[contrastive][vocab_map]") {
  const vocab spm{
      {"<unk>", "<s>", "\xE2\x96\x81the", "cat", "<0x41>", "A", "<0x0A>", "\xE2\x96\x81"},
      {piece_kind::special, piece_kind::special, piece_kind::text, piece_kind::text,
       piece_kind::byte, piece_kind::text, piece_kind::byte, piece_kind::text}};
  const vocab bl{{"<s>", "cat", "\xC4\xA0the", "A", "\xC4\x8A", "\xC4\xA0", "dog"},
                 {piece_kind::special, piece_kind::text, piece_kind::text, piece_kind::text,
                  piece_kind::text, piece_kind::text, piece_kind::text}};
  auto m = tandem::vocab_map::build(spm.size(), spm.source(), tandem::piece_style::sentencepiece,
                                    bl.size(), bl.source(), tandem::piece_style::byte_level);
  REQUIRE(m);
  CHECK(m->map_token(0).error() == errc::not_found);  // <unk>: no special of that name
  CHECK(*m->map_token(1) == 0);                       // <s>
  CHECK(*m->map_token(2) == 2);                       // " the"
  CHECK(*m->map_token(3) == 1);                       // cat
  CHECK(*m->map_token(4) == 3);                       // byte 0x41 -> "A" (no byte token there)
  CHECK(*m->map_token(5) == 3);                       // "A"
  CHECK(*m->map_token(6) == 4);                       // byte 0x0A -> "\n"
  CHECK(*m->map_token(7) == 5);                       // " "
  CHECK(m->map_token(8).error() == errc::invalid_token);
  CHECK(m->map_token(-1).error() == errc::invalid_token);

  const auto back = m->reversed();
  CHECK(*back.map_token(3) == 5);  // "A" prefers the text piece "A" over the byte token
  CHECK(back.map_token(6).error() == errc::not_found);  // dog

  const auto c = m->coverage();
  CHECK(c.from_size == 8);
  CHECK(c.to_size == 7);
  CHECK(c.mapped == 7);
  CHECK(c.mapped_byte == 2);
  CHECK(c.mapped_special == 1);
  CHECK(c.mapped_text == 4);
  CHECK(c.reached == 6);
  CHECK(c.round_trips == 6);  // all but the byte token 0x41, which comes back as "A"
  CHECK(c.fraction() == Approx(7.0 / 8.0));
}

TEST_CASE("vocab map: logits follow tokens, missing entries are -inf", "[contrastive][vocab_map]") {
  const vocab a{{"x", "y", "z"}, {piece_kind::text, piece_kind::text, piece_kind::text}};
  const vocab b{{"z", "x"}, {piece_kind::text, piece_kind::text}};
  auto m = tandem::vocab_map::build(a.size(), a.source(), tandem::piece_style::plain, b.size(),
                                    b.source(), tandem::piece_style::plain);
  REQUIRE(m);
  const std::vector<float> over_b{0.5f, -2.0f};
  std::vector<float> over_a(3, 7.0f);
  REQUIRE(m->map_logits(over_b, over_a) == errc::ok);
  CHECK(over_a[0] == -2.0f);
  CHECK(over_a[1] == -std::numeric_limits<float>::infinity());
  CHECK(over_a[2] == 0.5f);
  std::vector<float> wrong(2);
  CHECK(m->map_logits(over_b, wrong) == errc::size_mismatch);
  std::vector<token_id> ids(2);
  CHECK(m->map_tokens(std::vector<token_id>{0, 2}, ids) == errc::ok);
  CHECK(ids == std::vector<token_id>{1, 0});
  CHECK(m->map_tokens(std::vector<token_id>{0, 1}, ids) == errc::not_found);
}

TEST_CASE("vocab map: bad sources give named errors", "[contrastive][vocab_map]") {
  const vocab a{{"x"}, {piece_kind::text}};
  auto failing = [](token_id) -> tandem::result<token_piece> { return errc::io_error; };
  CHECK(tandem::vocab_map::build(1, a.source(), tandem::piece_style::plain, 1, failing,
                                 tandem::piece_style::plain)
            .error() == errc::io_error);
  CHECK(tandem::vocab_map::build(0, a.source(), tandem::piece_style::plain, 1, a.source(),
                                 tandem::piece_style::plain)
            .error() == errc::empty_input);
}
