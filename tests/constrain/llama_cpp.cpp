// Constraints over a llama.cpp vocabulary (a tiny GGUF model with the built-in
// sentencepiece-style vocabulary): token bytes, the mask against brute force on random
// states, and the tokenizer's own tokens of matching text.
#include <tandem/backends/llama_cpp.hpp>
#include <tandem/constrain.hpp>

#include <random>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "common/tiny_gguf.hpp"
#include "constrain/helpers.hpp"

namespace {

struct fixture {
  tandem::llama_model_handle model;
  tandem::token_vocabulary vocab;
  tandem::token_id eos;
};

fixture& tiny() {
  static tandem_test::scratch_dir dir("tandem-constrain-llama-");
  static fixture f = [] {
    tandem::llama_quiet_logs(true);
    tandem::tools::tiny_llama_config cfg;
    cfg.seed = 3;
    const std::string path = tandem_test::write_tiny_gguf(dir.path(), "tiny.gguf", cfg);
    auto m = tandem::llama_model_handle::load(path, {.vocab_only = true});
    REQUIRE(m.has_value());
    const tandem::llama_tokenizer tok(*m);
    const tandem::token_id eos = *tok.eos();
    const tandem::token_id ends[] = {eos};
    auto v = tandem::token_vocabulary::from_tokenizer(tok, ends);
    REQUIRE(v.has_value());
    return fixture{std::move(m).value(), std::move(v).value(), eos};
  }();
  return f;
}

}  // namespace

TEST_CASE("constrain over llama.cpp: token bytes render pieces without special tokens",
          "[constrain][llama_cpp]") {
  static_assert(tandem::ByteTokenizer<tandem::llama_tokenizer>);
  fixture& f = tiny();
  const tandem::llama_tokenizer tok(f.model);
  std::size_t single_bytes = 0;
  for (std::size_t i = 0; i < f.vocab.size(); ++i) {
    const auto id = static_cast<tandem::token_id>(i);
    const std::string_view text = *tok.token_text(id);
    INFO("token " << i << " '" << text << "'");
    if (tok.is_control(id) || text == "<unk>") {
      CHECK(f.vocab.bytes(id).empty());
    } else if (text.size() == 6 && text.starts_with("<0x")) {
      REQUIRE(f.vocab.bytes(id).size() == 1);
      CHECK(static_cast<unsigned char>(f.vocab.bytes(id)[0]) ==
            std::stoul(std::string(text.substr(3, 2)), nullptr, 16));
      ++single_bytes;
    } else {
      std::string piece;
      REQUIRE(tok.piece(id, piece) == tandem::errc::ok);
      CHECK(f.vocab.bytes(id) == piece);
      CHECK_FALSE(piece.empty());
    }
  }
  CHECK(single_bytes == 256);
  CHECK(f.vocab.is_end(f.eos));
  std::string out;
  CHECK(tok.token_bytes(-1, out) == tandem::errc::invalid_token);
}

TEST_CASE("constrain over llama.cpp: the mask equals brute force on random states",
          "[constrain][llama_cpp]") {
  fixture& f = tiny();
  for (const char* pattern :
       {" ?(the|and|lord)( (the|and|lord|[a-z]))*\\.", "[^\\n]{0,6}\\u00e9"}) {
    INFO("pattern " << pattern);
    tandem_test::check_random_states(tandem_test::must_compile(pattern, f.vocab), f.vocab, 29, 8,
                                     10);
  }
}

TEST_CASE("constrain over llama.cpp: the tokenizer's own tokens of a match are accepted",
          "[constrain][llama_cpp]") {
  fixture& f = tiny();
  const tandem::llama_tokenizer tok(f.model);
  const auto cc =
      tandem_test::must_compile(" ?(the|and|lord)( (the|and|lord|[a-z]+))*\\.", f.vocab);
  tandem::constraint_state st(cc);
  for (const char* text : {"the lord and thy house.", "and the people of israel."}) {
    INFO(text);
    std::vector<tandem::token_id> ids;
    REQUIRE(tok.encode(text, ids) == tandem::errc::ok);
    st.reset();
    for (const tandem::token_id t : ids) REQUIRE(st.advance(t) == tandem::errc::ok);
    CHECK(st.can_end());
    CHECK(st.allows(f.eos));
    CHECK(st.is_complete());
  }
}
