// The tools' JSON conversation reader (tools/common/chat_messages.hpp): the message list
// shapes it takes, every named error with its description or position, and random
// corruptions of a valid list, which must parse or fail with a named error.
#include "common/chat_messages.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "tandem/core/rng.hpp"

using tandem::chat_message;
using tandem::chat_role;
using tandem::errc;
using tandem::error_info;

namespace {

std::vector<chat_message> parse_ok(std::string_view text) {
  error_info err;
  auto r = tandem_tools::parse_chat_messages(text, &err);
  INFO(err.context());
  REQUIRE(r.has_value());
  CHECK(err.code == errc::ok);
  return *r;
}

error_info parse_fails(std::string_view text, errc expected) {
  error_info err;
  auto r = tandem_tools::parse_chat_messages(text, &err);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == expected);
  CHECK(err.code == expected);
  CHECK_FALSE(err.context().empty());
  return err;
}

bool has(const error_info& e, std::string_view s) {
  return e.context().find(s) != std::string_view::npos;
}

const char* const k_valid =
    R"([{"role":"system","content":"Answer briefly."},
 {"content":"Who begat Isaac?","role":"user"},
 {"role":"assistant","content":"Abraham \u2014 \"the father\"\n"},
 {"role":"tool","content":"{\"k\": 1}"},
 {"role":"user","content":""}])";

}  // namespace

TEST_CASE("chat messages: a message list gives roles and unescaped contents in order",
          "[tools][chat_messages]") {
  const auto m = parse_ok(k_valid);
  REQUIRE(m.size() == 5);
  CHECK(m[0] == chat_message{chat_role::system, "Answer briefly."});
  CHECK(m[1] == chat_message{chat_role::user, "Who begat Isaac?"});
  CHECK(m[2] == chat_message{chat_role::assistant, "Abraham \xE2\x80\x94 \"the father\"\n"});
  CHECK(m[3] == chat_message{chat_role::tool, "{\"k\": 1}"});
  CHECK(m[4] == chat_message{chat_role::user, ""});
  // A byte-order mark and surrounding white space are accepted.
  CHECK(parse_ok("\xEF\xBB\xBF \n[ {\"role\":\"user\",\"content\":\"x\"} ]\r\n").size() == 1);
}

TEST_CASE("chat messages: malformed JSON is a parse_error at its line and column",
          "[tools][chat_messages]") {
  auto e = parse_fails("[{\"role\":\"user\",\n \"content\": nope}]", errc::parse_error);
  CHECK(e.line == 2);
  CHECK(e.column >= 12);
  e = parse_fails("[{\"role\":\"user\",\"content\":\"x\"}", errc::parse_error);  // unclosed
  CHECK(e.line == 1);
  e = parse_fails("[{\"role\":\"user\",\"content\":\"\xC3\x28\"}]", errc::parse_error);  // UTF-8
  CHECK(e.line == 1);
  parse_fails("[{\"role\":\"user\",\"content\":\"x\"}] trailing", errc::parse_error);
  parse_fails("", errc::parse_error);
  parse_fails("[{\"role\":\"user\",\"content\":\"\\ud800\"}]", errc::parse_error);
}

TEST_CASE("chat messages: a wrong shape is a named error naming the message",
          "[tools][chat_messages]") {
  CHECK(
      has(parse_fails(R"({"role":"user","content":"x"})", errc::parse_error), "not a JSON array"));
  CHECK(has(parse_fails(R"("hello")", errc::parse_error), "not a JSON array"));
  CHECK(has(parse_fails(R"([{"role":"user","content":"x"}, 3])", errc::parse_error),
            "message 2 is a number"));
  CHECK(has(parse_fails(R"([["user","x"]])", errc::parse_error), "message 1 is an array"));
  CHECK(has(parse_fails(R"([{"role":"bot","content":"x"}])", errc::parse_error),
            "message 1: unknown role 'bot'"));
  CHECK(has(parse_fails(R"([{"role":"User","content":"x"}])", errc::parse_error), "unknown role"));
  CHECK(has(parse_fails(R"([{"role":1,"content":"x"}])", errc::parse_error), "role is a number"));
  CHECK(has(parse_fails(R"([{"role":"user","content":null}])", errc::parse_error),
            "content is null"));
  CHECK(has(parse_fails(R"([{"role":"user","content":["a"]}])", errc::parse_error),
            "content is an array"));
  CHECK(has(parse_fails(R"([{"role":"user","content":{"text":"a"}}])", errc::parse_error),
            "content is an object"));
  CHECK(has(parse_fails(R"([{"role":"user","contnet":"x"}])", errc::parse_error),
            "unknown key 'contnet'"));
  CHECK(has(parse_fails(R"([{"role":"user","role":"system","content":"x"}])", errc::parse_error),
            "repeated key 'role'"));
  CHECK(has(parse_fails(R"([{"role":"user","content":"x"},{"content":"y"}])", errc::not_found),
            "message 2: no role"));
  CHECK(has(parse_fails(R"([{"role":"user"}])", errc::not_found), "message 1: no content"));
  CHECK(has(parse_fails("[]", errc::empty_input), "no messages"));
  CHECK(has(parse_fails(" [ ] ", errc::empty_input), "no messages"));
}

TEST_CASE("chat messages: files are read, a missing one is file_not_found",
          "[tools][chat_messages]") {
  tandem_test::scratch_dir dir("tandem-chat-messages-");
  const auto path = (dir.path() / "chat.json").string();
  {
    std::ofstream f(path, std::ios::binary);
    f << k_valid;
  }
  auto m = tandem_tools::read_chat_messages_file(path);
  REQUIRE(m.has_value());
  CHECK(m->size() == 5);
  error_info err;
  const auto missing = (dir.path() / "none.json").string();
  CHECK(tandem_tools::read_chat_messages_file(missing, &err).error() == errc::file_not_found);
  CHECK(err.code == errc::file_not_found);
  CHECK(has(err, "none.json"));
}

TEST_CASE("chat messages: corrupted lists parse or fail with a named error, never crash",
          "[tools][chat_messages]") {
  const std::string valid = k_valid;
  const std::string alphabet = "[]{}\",:\\ nu0tfe\x80\xC3\xFFroleuserconta";
  tandem::rng gen(20261205);
  std::size_t ok = 0, failed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s = valid;
    const int edits = 1 + static_cast<int>(gen.uniform() * 4);
    for (int k = 0; k < edits && !s.empty(); ++k) {
      const std::size_t at =
          static_cast<std::size_t>(gen.uniform() * static_cast<double>(s.size()));
      const double what = gen.uniform();
      const char c = alphabet[static_cast<std::size_t>(gen.uniform() * alphabet.size())];
      if (what < 0.3)
        s[at] = c;
      else if (what < 0.6)
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), c);
      else if (what < 0.9)
        s.erase(at, 1);
      else
        s.resize(at);
    }
    error_info err;
    auto r = tandem_tools::parse_chat_messages(s, &err);
    if (r.has_value()) {
      ++ok;
      CHECK(err.code == errc::ok);
      CHECK_FALSE(r->empty());
    } else {
      ++failed;
      CHECK(err.code == r.error());
      CHECK((r.error() == errc::parse_error || r.error() == errc::not_found ||
             r.error() == errc::empty_input));
      CHECK_FALSE(err.context().empty());
    }
  }
  CHECK(failed > 1000);  // the corruptions do break most lists
  CHECK(ok > 0);         // and some (inside a content) leave a valid one
}
