// Tests of the streaming-safe text buffer: stop strings across pieces, UTF-8 hold-back.
#include "tandem/core/text_stream.hpp"

#include <string>
#include <string_view>
#include <vector>

#include "common/catch.hpp"

namespace {
using tandem::errc;
using tandem::text_stream;
using namespace std::string_view_literals;

// Feeds pieces, collecting what is released (the flush included unless stopped).
struct run_result {
  std::vector<std::string> released;
  std::string text;
  bool stopped = false;
};
run_result run(std::vector<std::string_view> pieces, std::vector<std::string_view> stops) {
  run_result r;
  text_stream s;
  REQUIRE(s.start(r.text, stops) == errc::ok);
  for (std::string_view p : pieces) {
    const auto step = s.push(p);
    r.released.emplace_back(step.released);
    if (step.stopped) {
      r.stopped = true;
      return r;
    }
  }
  r.released.emplace_back(s.flush());
  return r;
}
std::string concat(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x;
  return s;
}
}  // namespace

TEST_CASE("text_stream: a stop string split over two pieces truncates the text before it",
          "[core][text_stream]") {
  const auto r = run({"a", "ST", "OP", "b"}, {"STOP"});
  CHECK(r.stopped);
  CHECK(r.text == "a");
  CHECK(r.released == std::vector<std::string>{"a", "", ""});
}

TEST_CASE("text_stream: a held stop-string prefix is released once it cannot match",
          "[core][text_stream]") {
  const auto r = run({"a", "ST", "b"}, {"STOP"});
  CHECK_FALSE(r.stopped);
  CHECK(r.released == std::vector<std::string>{"a", "", "STb", ""});
  CHECK(concat(r.released) == r.text);
}

TEST_CASE("text_stream: the earliest of several stop strings wins", "[core][text_stream]") {
  const auto r = run({"xxTOPyy"}, {"yy", "TOP"});
  CHECK(r.stopped);
  CHECK(r.text == "xx");
}

TEST_CASE("text_stream: a stop string inside one piece cuts the rest of the piece",
          "[core][text_stream]") {
  const auto r = run({"ab", "cSTOPde"}, {"STOP"});
  CHECK(r.stopped);
  CHECK(r.text == "abc");
  CHECK(concat(r.released) == "abc");
}

TEST_CASE("text_stream: an incomplete UTF-8 character is held until complete",
          "[core][text_stream]") {
  const auto r = run({"a\xC3", "\xA9", "\xF0\x9F", "\x98", "\x80"}, {});
  CHECK(r.released == std::vector<std::string>{"a", "\xC3\xA9", "", "", "\xF0\x9F\x98\x80", ""});
}

TEST_CASE("text_stream: flush releases held text even when it is incomplete",
          "[core][text_stream]") {
  const auto r = run({"x", "S", "\xE2\x82"}, {"SA"});
  CHECK(r.released == std::vector<std::string>{"x", "", "S", "\xE2\x82"});
  CHECK(concat(r.released) == r.text);
}

TEST_CASE("text_stream: malformed bytes are never held", "[core][text_stream]") {
  const auto r = run({"a\x80", "\xFF", "\xC0"}, {});
  CHECK(r.released == std::vector<std::string>{"a\x80", "\xFF", "\xC0", ""});
}

TEST_CASE("text_stream: incomplete UTF-8 suffix lengths", "[core][text_stream]") {
  using tandem::utf8_incomplete_suffix;
  CHECK(utf8_incomplete_suffix("") == 0);
  CHECK(utf8_incomplete_suffix("abc") == 0);
  CHECK(utf8_incomplete_suffix("a\xC3") == 1);
  CHECK(utf8_incomplete_suffix("\xC3\xA9") == 0);
  CHECK(utf8_incomplete_suffix("\xE2\x82") == 2);
  CHECK(utf8_incomplete_suffix("\xE2\x82\xAC") == 0);
  CHECK(utf8_incomplete_suffix("\xF0\x9F\x98") == 3);
  CHECK(utf8_incomplete_suffix("\xF0\x9F\x98\x80") == 0);
  CHECK(utf8_incomplete_suffix("\x80\x80\x80") == 0);
}

TEST_CASE("text_stream: an empty stop string is rejected", "[core][text_stream]") {
  std::string text;
  text_stream s;
  const std::string_view stops[] = {"ok", ""};
  CHECK(s.start(text, stops) == errc::invalid_argument);
}

TEST_CASE("text_stream: text already in the buffer is not searched or released",
          "[core][text_stream]") {
  std::string text = "prefix STOP";
  text_stream s;
  const std::string_view stops[] = {"STOP"};
  REQUIRE(s.start(text, stops) == errc::ok);
  const auto step = s.push(" more");
  CHECK_FALSE(step.stopped);
  CHECK(step.released == " more");
  CHECK(text == "prefix STOP more");
}

TEST_CASE("text_stream: update examines text appended directly to the buffer",
          "[core][text_stream]") {
  std::string text;
  text_stream s;
  const std::string_view stops[] = {"end"};
  REQUIRE(s.start(text, stops) == errc::ok);
  text += "the e";
  auto step = s.update();
  CHECK(step.released == "the ");
  CHECK(s.held() == 1);
  text += "nd";
  step = s.update();
  CHECK(step.stopped);
  CHECK(text == "the ");
}
