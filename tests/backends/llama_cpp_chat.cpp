// Chat templates through llama.cpp (backends/llama_cpp_chat.hpp) on tiny random-weight GGUF
// models that carry a ChatML or a Llama-3 template, written at test time by
// tools/gguf_writer.hpp (the code of `tandem-make-gguf --chat-template`).
#include "tandem/backends/llama_cpp_chat.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "common/tiny_gguf.hpp"
#include "gguf_writer.hpp"
#include "tandem/core/chat.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

namespace {

using tandem::chat_message;
using tandem::chat_role;
using tandem::errc;
using tandem::token_id;
namespace fs = std::filesystem;
namespace tt = tandem::tools;

const fs::path& scratch() {
  static tandem_test::scratch_dir dir("tandem-llama-chat-test-");
  return dir.path();
}

// A tiny model over the built-in vocabulary; `style` adds a chat template and its special
// tokens, `text` (when not empty) is written as the template verbatim instead.
tandem::llama_model_handle load_model(const std::string& name, const tt::vocab_spec& vocab) {
  tandem::llama_quiet_logs(false);
  tt::tiny_llama_config cfg;
  cfg.seed = 11;
  const std::string path = tandem_test::write_tiny_gguf(scratch(), name, cfg, vocab);
  auto m = tandem::llama_model_handle::load(path);
  REQUIRE(m.has_value());
  return std::move(*m);
}

tt::vocab_spec vocab_with(tt::chat_template_style style) {
  tt::vocab_spec v = tt::builtin_vocab();
  tt::ensure_byte_tokens(v);
  tt::add_chat_template(v, style);
  return v;
}

const tandem::llama_model_handle& chatml_model() {
  static tandem::llama_model_handle m =
      load_model("chatml.gguf", vocab_with(tt::chat_template_style::chatml));
  return m;
}

const tandem::llama_model_handle& llama3_model() {
  static tandem::llama_model_handle m =
      load_model("llama3.gguf", vocab_with(tt::chat_template_style::llama3));
  return m;
}

token_id id_of(const tandem::llama_model_handle& m, std::string_view text) {
  const tandem::llama_tokenizer tok(m);
  for (std::size_t i = 0; i < tok.vocab_size(); ++i) {
    auto t = tok.token_text(static_cast<token_id>(i));
    if (t.has_value() && *t == text) return static_cast<token_id>(i);
  }
  return tandem::no_token;
}

tandem::llama_session make_session(const tandem::llama_model_handle& m) {
  tandem::llama_session_options o;
  o.threads = 1;
  o.context_size = 512;
  auto s = tandem::llama_session::create(m, o);
  REQUIRE(s.has_value());
  return std::move(*s);
}

}  // namespace

TEST_CASE("llama chat: the built-in templates of this llama.cpp are named", "[llama_chat]") {
  const auto names = tandem::llama_builtin_chat_templates();
  const std::set<std::string_view> distinct(names.begin(), names.end());
  CHECK(distinct.size() == names.size());
  CHECK(names.size() >= 20);
  for (const char* expected : {"chatml", "llama3", "gemma", "mistral-v7", "phi3"})
    CHECK(distinct.count(expected) == 1);
  // Every name is accepted as an explicit template.
  for (const std::string_view n : names) {
    CAPTURE(n);
    CHECK(tandem::llama_chat_template::create(chatml_model(), n).has_value());
  }
}

TEST_CASE("llama chat: a ChatML model renders its own template with special tokens",
          "[llama_chat]") {
  const auto& m = chatml_model();
  auto t = tandem::llama_chat_template::from_model(m);
  REQUIRE(t.has_value());
  CHECK(t->source() == tt::chat_template_text(tt::chat_template_style::chatml));

  const std::vector<chat_message> chat{{chat_role::system, "be brief"},
                                       {chat_role::user, "the lord"}};
  std::string text;
  REQUIRE(t->render_text(chat, true, text) == errc::ok);
  CHECK(text ==
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nthe lord<|im_end|>\n"
        "<|im_start|>assistant\n");
  std::string no_prompt;
  REQUIRE(t->render_text(chat, false, no_prompt) == errc::ok);
  CHECK(no_prompt + "<|im_start|>assistant\n" == text);

  std::vector<token_id> ids;
  REQUIRE(t->render(chat, true, ids) == errc::ok);
  const token_id start = id_of(m, "<|im_start|>"), end = id_of(m, "<|im_end|>");
  REQUIRE(start != tandem::no_token);
  REQUIRE(end != tandem::no_token);
  CHECK(ids.front() == tandem::llama_tokenizer(m).bos().value());
  CHECK(std::count(ids.begin(), ids.end(), start) == 3);
  CHECK(std::count(ids.begin(), ids.end(), end) == 2);

  // The end of turn ends a chat generation.
  const auto stops = t->stop_tokens();
  CHECK(std::find(stops.begin(), stops.end(), end) != stops.end());
  CHECK(std::find(stops.begin(), stops.end(), tandem::llama_tokenizer(m).eos().value()) !=
        stops.end());
  CHECK(std::find(stops.begin(), stops.end(), start) == stops.end());
}

TEST_CASE("llama chat: a Llama-3 model renders its own template and stops at <|eot_id|>",
          "[llama_chat]") {
  const auto& m = llama3_model();
  auto t = tandem::llama_chat_template::from_model(m);
  REQUIRE(t.has_value());
  const std::vector<chat_message> chat{{chat_role::user, " and he said "}};
  std::string text;
  REQUIRE(t->render_text(chat, true, text) == errc::ok);
  CHECK(text ==
        "<|start_header_id|>user<|end_header_id|>\n\nand he said<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
  const token_id eot = id_of(m, "<|eot_id|>");
  REQUIRE(eot != tandem::no_token);
  CHECK(tandem::llama_tokenizer(m).eot().value() == eot);
  const auto stops = t->stop_tokens();
  CHECK(std::find(stops.begin(), stops.end(), eot) != stops.end());
  std::vector<token_id> ids;
  REQUIRE(t->render(chat, true, ids) == errc::ok);
  CHECK(std::count(ids.begin(), ids.end(), eot) == 1);
  CHECK(std::count(ids.begin(), ids.end(), id_of(m, "<|start_header_id|>")) == 2);
}

TEST_CASE("llama chat: a model without a known template is an error, never a fallback",
          "[llama_chat]") {
  tandem::error_info info;
  {
    const auto m = load_model("plain.gguf", [] {
      tt::vocab_spec v = tt::builtin_vocab();
      tt::ensure_byte_tokens(v);
      return v;
    }());
    auto t = tandem::llama_chat_template::from_model(m, &info);
    CHECK(t.error() == errc::unknown_template);
    CHECK(info.code == errc::unknown_template);
    CHECK(info.context().find("no tokenizer.chat_template") != std::string_view::npos);
    // An explicit built-in name is the way out.
    auto named = tandem::llama_chat_template::create(m, "chatml");
    REQUIRE(named.has_value());
    std::string text;
    REQUIRE(named->render_text(std::vector<chat_message>{{chat_role::user, "hi"}}, false, text) ==
            errc::ok);
    CHECK(text == "<|im_start|>user\nhi<|im_end|>\n");
  }
  {
    tt::vocab_spec v = tt::builtin_vocab();
    tt::ensure_byte_tokens(v);
    v.chat_template = "{% for m in messages %}<<{{ m.content }}>>{% endfor %}";
    const auto m = load_model("odd.gguf", v);
    info.clear();
    auto t = tandem::llama_chat_template::from_model(m, &info);
    CHECK(t.error() == errc::unknown_template);
    CHECK(info.context().find("does not recognise") != std::string_view::npos);
    CHECK(info.context().find("{% for m in messages") != std::string_view::npos);
  }
  CHECK(tandem::llama_chat_template::create(chatml_model(), "no-such-template").error() ==
        errc::unknown_template);
  CHECK(tandem::llama_chat_template::create(chatml_model(), "").error() == errc::invalid_argument);
  auto t = tandem::llama_chat_template::from_model(chatml_model());
  REQUIRE(t.has_value());
  std::vector<token_id> ids;
  CHECK(t->render({}, true, ids) == errc::empty_input);
  CHECK(t->render(std::vector<chat_message>{{chat_role::user, std::string("a\0b", 3)}}, true,
                  ids) == errc::invalid_argument);
  CHECK(ids.empty());
}

TEST_CASE("llama chat: a chat session keeps the history in the KV cache across turns",
          "[llama_chat]") {
  for (const bool llama3 : {false, true}) {
    CAPTURE(llama3);
    const auto& m = llama3 ? llama3_model() : chatml_model();
    auto tmpl = tandem::llama_chat_template::from_model(m);
    REQUIRE(tmpl.has_value());
    auto model = make_session(m);
    tandem::chat_session<tandem::llama_session, tandem::llama_chat_template> chat(model, *tmpl);
    const tandem::llama_tokenizer tok(m);

    std::vector<chat_message> history{{chat_role::system, "thou shalt answer"},
                                      {chat_role::user, "who is the king"}};
    std::size_t fresh_total = 0;
    for (int turn = 0; turn < 3; ++turn) {
      CAPTURE(turn);
      auto rest = chat.prepare(history);
      REQUIRE(rest.has_value());
      std::vector<token_id> fresh;
      REQUIRE(tmpl->render(history, true, fresh) == errc::ok);
      fresh_total += fresh.size();
      if (turn > 0) CHECK(chat.stats().last_reused > 0);

      // Feed the rest as the reply's prompt; stop at the end of turn.
      tandem::greedy_sampler g;
      tandem::completion c;
      tandem::generation_options o;
      o.max_tokens = 8;
      o.stop_tokens = tmpl->stop_tokens();
      REQUIRE(tandem::continue_generation(chat, tok, g, *rest, o, c) == errc::ok);
      for (const token_id x : c.tokens) CHECK_FALSE(tok.is_eog(x));

      // Up to the reply the session holds exactly the fresh rendering...
      REQUIRE(chat.tokens().size() >= fresh.size());
      CHECK(std::equal(fresh.begin(), fresh.end(), chat.tokens().begin()));
      CHECK(chat.tokens().size() == model.size());
      // ... and the KV cache computes what a fresh prefill of those tokens computes. The
      // cache was filled in other chunks (prompts, then one token at a time) and llama.cpp
      // keeps K and V in F16, so the logits round differently: up to about 7e-3 relative
      // here. A cache that differs in one early token (the control) is off by far more.
      const auto fresh_logits = [&](std::span<const token_id> ids) {
        auto s = make_session(m);
        REQUIRE(s.append(ids) == errc::ok);
        return std::vector<float>(s.logits().begin(), s.logits().end());
      };
      const auto distance = [&](std::span<const float> b) {
        const auto a = model.logits();
        REQUIRE(a.size() == b.size());
        float worst = 0.0f;  // largest |a - b| / (1 + |b|)
        for (std::size_t i = 0; i < a.size(); ++i)
          worst = std::max(worst, std::fabs(a[i] - b[i]) / (1.0f + std::fabs(b[i])));
        return worst;
      };
      std::vector<token_id> ids(chat.tokens().begin(), chat.tokens().end());
      CHECK(distance(fresh_logits(ids)) < 2e-2f);
      ids[3] = ids[3] == 100 ? 101 : 100;
      CHECK(distance(fresh_logits(ids)) > 1e-1f);

      history.push_back({chat_role::assistant, c.text});
      history.push_back({chat_role::user, "and the land " + std::to_string(turn)});
    }
    const tandem::chat_stats& st = chat.stats();
    CHECK(st.turns == 3);
    CHECK(st.prefill_tokens + st.reused_tokens == fresh_total);
    CHECK(st.reused_tokens > st.prefill_tokens);  // later turns reuse the history
  }
}
