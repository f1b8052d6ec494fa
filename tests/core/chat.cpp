// Chat messages and the incremental chat session (core/chat.hpp) over a mock model and a
// table-driven mock template.
#include "tandem/core/chat.hpp"

#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/mock_model.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"

namespace {

using tandem::chat_message;
using tandem::chat_role;
using tandem::errc;
using tandem::token_id;
using tandem_test::mock_model;
using tandem_test::mock_options;

constexpr token_id bos = 1, end_of_turn = 5;
constexpr std::size_t vocab = 64;

token_id role_token(chat_role r) { return 2 + static_cast<token_id>(r == chat_role::assistant); }
token_id char_token(char c) {
  return 10 + static_cast<token_id>(static_cast<unsigned char>(c) % 50);
}

// A mock chat template: BOS, then per message its role token, one token per character of
// its content and an end-of-turn token; the generation prompt is the assistant role token.
// With `brief_history`, an assistant message that is not the last one keeps only its first
// two characters (as templates that drop earlier turns' reasoning do), so a new turn
// changes tokens the model already holds.
struct mock_template {
  bool brief_history = false;

  errc render(std::span<const chat_message> messages, bool gen, std::vector<token_id>& out) const {
    out.push_back(bos);
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const chat_message& m = messages[i];
      if (m.role == chat_role::tool) return errc::unsupported;
      out.push_back(role_token(m.role));
      std::string_view text = m.content;
      if (brief_history && m.role == chat_role::assistant && i + 1 < messages.size())
        text = text.substr(0, 2);
      for (const char c : text) out.push_back(char_token(c));
      out.push_back(end_of_turn);
    }
    if (gen) out.push_back(role_token(chat_role::assistant));
    return errc::ok;
  }
};
static_assert(tandem::ChatRenderer<mock_template>);

std::vector<token_id> render(const mock_template& t, const std::vector<chat_message>& h) {
  std::vector<token_id> out;
  REQUIRE(t.render(h, true, out) == errc::ok);
  return out;
}

// Generates a reply of up to `n` tokens through the session and returns it as text that
// the mock template renders to the same tokens (characters whose token is the generated one).
std::string reply(tandem::chat_session<mock_model, mock_template>& s,
                  std::span<const token_id> prompt, std::size_t n) {
  tandem::greedy_sampler g;
  tandem::completion c;
  tandem::generation_options o;
  o.max_tokens = n;
  REQUIRE(tandem::continue_generation(s, g, prompt, o, c) == errc::ok);
  std::string text;
  for (const token_id t : c.tokens) text += static_cast<char>(t + 40);  // (t + 40) % 50 == t - 10
  return text;
}

// A mock model, the mock template and a chat session over them.
struct chat_fixture {
  explicit chat_fixture(mock_options mo = {})
      : model([&] {
          mo.vocab = vocab;
          return mock_model(mo);
        }()) {}
  mock_model model;
  mock_template tmpl;
  tandem::chat_session<mock_model, mock_template> session{model, tmpl};
};

}  // namespace

TEST_CASE("chat: roles have their template names and parse back", "[chat]") {
  for (const chat_role r :
       {chat_role::system, chat_role::user, chat_role::assistant, chat_role::tool}) {
    auto p = tandem::parse_chat_role(tandem::to_string(r));
    REQUIRE(p.has_value());
    CHECK(*p == r);
  }
  CHECK(tandem::to_string(chat_role::assistant) == "assistant");
  CHECK(tandem::parse_chat_role("Assistant").error() == errc::not_found);
  CHECK(tandem::parse_chat_role("").error() == errc::not_found);
}

TEST_CASE("chat: each turn leaves the model holding the whole history rendered afresh", "[chat]") {
  for (const bool brief : {false, true}) {
    CAPTURE(brief);
    mock_options mo;
    // Favourite next token: 10 + (last + 3) % 40, a character token; never the end token.
    mo.successor.resize(vocab);
    for (std::size_t t = 0; t < vocab; ++t)
      mo.successor[t] = static_cast<token_id>(10 + (t + 3) % 40);
    chat_fixture f(mo);
    auto& [model, tmpl, session] = f;
    tmpl.brief_history = brief;

    std::vector<chat_message> history{{chat_role::system, "be brief"}, {chat_role::user, "hi"}};
    std::size_t full_prefill = 0;  // what prefilling every turn afresh would cost
    for (int turn = 0; turn < 4; ++turn) {
      CAPTURE(turn);
      auto rest = session.prepare(history);
      REQUIRE(rest.has_value());
      REQUIRE(!rest->empty());
      const std::vector<token_id> fresh = render(tmpl, history);
      full_prefill += fresh.size();
      CHECK(session.stats().last_prefill == rest->size());
      CHECK(session.stats().last_reused + rest->size() == fresh.size());
      const std::string text = reply(session, *rest, 6);
      // Up to the reply, the model holds exactly the fresh rendering.
      REQUIRE(model.tokens().size() >= fresh.size());
      CHECK(std::vector<token_id>(
                model.tokens().begin(),
                model.tokens().begin() + static_cast<std::ptrdiff_t>(fresh.size())) == fresh);
      CHECK(std::vector<token_id>(session.tokens().begin(), session.tokens().end()) ==
            std::vector<token_id>(model.tokens().begin(), model.tokens().end()));
      history.push_back({chat_role::assistant, text});
      history.push_back({chat_role::user, "more " + std::to_string(turn)});
    }
    // The last turn's rendering, fed whole, equals what the model holds.
    auto rest = session.prepare(history);
    REQUIRE(rest.has_value());
    REQUIRE(session.append(*rest) == errc::ok);
    const std::vector<token_id> fresh = render(tmpl, history);
    full_prefill += fresh.size();
    CHECK(std::vector<token_id>(model.tokens().begin(), model.tokens().end()) == fresh);

    const tandem::chat_stats& st = session.stats();
    CHECK(st.turns == 5);
    CHECK(st.prefill_tokens + st.reused_tokens == full_prefill);
    // Each later turn reuses the earlier ones: most of the history is not prefilled again.
    CHECK(st.reused_tokens > st.prefill_tokens);
    if (brief)
      CHECK(st.rewound_tokens > 0);  // earlier replies were shortened by the template
    else
      CHECK(st.rewound_tokens == 0);  // the replies' tokens are exactly their rendering
  }
}

TEST_CASE("chat: replaying the same history reprefills only its last token", "[chat]") {
  chat_fixture f;
  auto& [model, tmpl, session] = f;
  const std::vector<chat_message> history{{chat_role::user, "hello"}};
  auto first = session.prepare(history);
  REQUIRE(first.has_value());
  const std::size_t n = first->size();
  REQUIRE(session.append(*first) == errc::ok);
  auto again = session.prepare(history);
  REQUIRE(again.has_value());
  CHECK(again->size() == 1);
  CHECK(session.stats().last_reused == n - 1);
  CHECK(session.stats().last_rewound == 1);
  CHECK(model.size() == n - 1);
}

TEST_CASE("chat: the first turn drops tokens the model held before the session", "[chat]") {
  chat_fixture f;
  auto& [model, tmpl, session] = f;
  const token_id junk[] = {7, 8, 9};
  REQUIRE(model.append(junk) == errc::ok);
  const std::vector<chat_message> history{{chat_role::user, "x"}};
  auto rest = session.prepare(history);
  REQUIRE(rest.has_value());
  CHECK(model.size() == 0);
  CHECK(session.stats().last_rewound == 3);
  CHECK(session.stats().last_reused == 0);
}

TEST_CASE("chat: a session refuses bad input and a model changed behind its back", "[chat]") {
  chat_fixture f;
  auto& [model, tmpl, session] = f;

  CHECK(session.prepare({}).error() == errc::empty_input);
  CHECK(session.last_error().code == errc::empty_input);

  const std::vector<chat_message> tool{{chat_role::tool, "{}"}};
  CHECK(session.prepare(tool).error() == errc::unsupported);
  CHECK(model.size() == 0);

  const std::vector<chat_message> history{{chat_role::user, "hi"}};
  auto rest = session.prepare(history);
  REQUIRE(rest.has_value());
  REQUIRE(session.append(*rest) == errc::ok);
  const token_id extra[] = {3};
  REQUIRE(model.append(extra) == errc::ok);  // not through the session
  const std::size_t held = model.size();
  CHECK(session.prepare(history).error() == errc::out_of_sync);
  CHECK(model.size() == held);
  CHECK(session.last_error().context().find("knows of") != std::string_view::npos);
  CHECK(session.stats().turns == 1);
}
