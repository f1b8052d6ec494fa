// The tools' prompt lists in JSON Lines (tools/common/prompt_list.hpp): RouteLLM's
// contaminated_prompts.jsonl shapes, full string unescaping, skipped values of any type,
// blank lines and CRLF, and every error with its line, column and description.
#include "common/prompt_list.hpp"

#include <algorithm>
#include <filesystem>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/catch.hpp"
#include "tandem/eval/outcome_table.hpp"

using tandem::errc;
using tandem::error_info;

namespace {
std::unordered_set<std::string> parse_ok(std::string_view text) {
  error_info err;
  auto r = tandem_tools::parse_prompt_list(text, &err);
  INFO(err.context() << " at line " << err.line);
  REQUIRE(r);
  CHECK(err.code == errc::ok);
  return *r;
}

error_info parse_fails(std::string_view text, errc expected) {
  error_info err;
  auto r = tandem_tools::parse_prompt_list(text, &err);
  REQUIRE_FALSE(r);
  CHECK(r.error() == expected);
  CHECK(err.code == expected);
  return err;
}
}  // namespace

TEST_CASE("prompt list: RouteLLM lines give both prompts, unescaped", "[tools][prompt_list]") {
  const auto s = parse_ok(
      R"({"train_prompt":"Say \"hi\"\nthen \u2026 stop","train_idx":12,"eval_prompt":"x\\y\/z\t","eval_idx":3})"
      "\n"
      R"({"prompt": "solo"})"
      "\n");
  CHECK(s.size() == 3);
  CHECK(s.count("Say \"hi\"\nthen \xE2\x80\xA6 stop") == 1);
  CHECK(s.count("x\\y/z\t") == 1);
  CHECK(s.count("solo") == 1);
}

TEST_CASE("prompt list: unicode escapes and surrogate pairs become UTF-8", "[tools][prompt_list]") {
  const auto s = parse_ok(R"({"prompt":"A\u00e9\u03b1\uD83D\uDE00\u0000\b\f\r"})");
  CHECK(s.count(std::string("A\xC3\xA9\xCE\xB1\xF0\x9F\x98\x80", 9) + std::string(1, '\0') +
                "\b\f\r") == 1);
  // Raw UTF-8 passes through unchanged.
  CHECK(parse_ok("{\"prompt\":\"caf\xC3\xA9\"}").count("caf\xC3\xA9") == 1);
}

TEST_CASE("prompt list: other keys and non-string prompt values are skipped whatever they hold",
          "[tools][prompt_list]") {
  const auto s =
      parse_ok(R"({"meta":{"a":[1,-2.5e+3,true,false,null,{"prompt":"nested, not taken"}],"b":{}},)"
               R"("list":[],"prompt":null,"eval_prompt":["not","a string"],"n":0,"x":"}{][\"",)"
               R"("train_prompt":"kept"})");
  CHECK(s.size() == 1);
  CHECK(s.count("kept") == 1);
  CHECK(s.count("nested, not taken") == 0);
}

TEST_CASE("prompt list: blank lines, CRLF, spaces and a byte-order mark are accepted",
          "[tools][prompt_list]") {
  const auto s = parse_ok(
      "\xEF\xBB\xBF\r\n  {\"prompt\" : \"a\" , \"eval_prompt\":\"b\"}  \r\n\n \t\r\n"
      "{\"prompt\":\"a\"}\r\n");
  CHECK(s.size() == 2);
  CHECK(s.count("a") == 1);
  CHECK(s.count("b") == 1);
  CHECK(parse_ok("").empty());
  CHECK(parse_ok("\n \r\n").empty());
  CHECK(parse_ok("{\"prompt\":\"no final line break\"}").size() == 1);
}

TEST_CASE("prompt list: every malformed line is a named error with its line number",
          "[tools][prompt_list]") {
  // `says`: a phrase the description must hold (nlohmann-json's words for bad JSON).
  struct bad {
    const char* line;
    errc code;
    const char* says;
    std::size_t column;  // 1-based byte where the problem shows (a bad token's last byte)
  };
  const std::vector<bad> cases{
      {R"(["prompt","x"])", errc::parse_error, "not a JSON object", 1},
      {R"(  "prompt")", errc::parse_error, "not a JSON object", 3},
      {R"({"prompt":"x"} extra)", errc::parse_error, "expected end of input", 16},
      {R"({"prompt":"x"}{"prompt":"y"})", errc::parse_error, "expected end of input", 15},
      {R"({"prompt":"x")", errc::parse_error, "unexpected end of input", 14},
      {R"({"prompt":"x)", errc::parse_error, "missing closing quote", 13},
      {R"({"prompt":"x\)", errc::parse_error, "forbidden character after backslash", 14},
      {R"({"a":[1,2)", errc::parse_error, "unexpected end of input", 10},
      {R"({)", errc::parse_error, "unexpected end of input", 2},
      {R"({"prompt" "x"})", errc::parse_error, "expected ':'", 13},
      {R"({"prompt":"x",})", errc::parse_error, "expected string literal", 15},
      {R"({prompt:"x"})", errc::parse_error, "invalid literal", 2},
      {R"({"prompt":"x" "eval_prompt":"y"})", errc::parse_error, "expected '}'", 27},
      {R"({"prompt":"x","a":tru})", errc::parse_error, "invalid literal", 22},
      {R"({"prompt":"x","a":01})", errc::parse_error, "expected '}'", 20},
      {R"({"prompt":"x","a":1.})", errc::parse_error, "expected digit after '.'", 21},
      {R"({"prompt":"x","a":-})", errc::parse_error, "expected digit after '-'", 20},
      {R"({"prompt":"x","a":1e})", errc::parse_error, "digit after exponent", 21},
      {R"({"prompt":"x","a":[1 2]})", errc::parse_error, "expected ']'", 22},
      {R"({"prompt":"x","a":{"k" 1}})", errc::parse_error, "expected ':'", 24},
      {R"({"prompt":"x","a":[1}})", errc::parse_error, "expected ']'", 21},
      {"{\"prompt\":\"tab\there\"}", errc::parse_error, "control character", 15},
      {R"({"prompt":"\x41"})", errc::parse_error, "forbidden character after backslash", 13},
      {R"({"prompt":"\u12G4"})", errc::parse_error, "4 hex digits", 16},
      {R"({"prompt":"\u12"})", errc::parse_error, "4 hex digits", 16},
      {R"({"a":"\q","prompt":"x"})", errc::parse_error, "forbidden character after backslash", 8},
      {R"({"prompt":"\uD83D"})", errc::parse_error, "surrogate", 18},
      {R"({"prompt":"\uD83Dx"})", errc::parse_error, "surrogate", 18},
      {R"({"prompt":"\uD83D\u0041"})", errc::parse_error, "surrogate", 23},
      {R"({"prompt":"\uDE00"})", errc::parse_error, "surrogate", 17},
      {R"({"prompt":"\uD83D\uZZZZ"})", errc::parse_error, "4 hex digits", 20},
      {"{\"prompt\":\"bad \xFF byte\"}", errc::parse_error, "ill-formed UTF-8", 16},
      {R"({})", errc::not_found, "no string train_prompt, eval_prompt or prompt", 1},
      {R"({"train_idx":1,"eval_idx":2})", errc::not_found, "no string train_prompt", 1},
      {R"({"prompt":7})", errc::not_found, "no string train_prompt", 1},
  };
  for (const bad& b : cases) {
    INFO(b.line);
    // The bad line is line 3, after a good line and a blank one.
    const std::string text =
        std::string("{\"prompt\":\"ok\"}\n\n") + b.line + "\n{\"prompt\":\"z\"}\n";
    const error_info err = parse_fails(text, b.code);
    INFO(err.context());
    CHECK(err.context().find(b.says) != std::string_view::npos);
    CHECK(err.line == 3);
    CHECK(err.column == b.column);
  }
}

TEST_CASE("prompt list: nesting is limited to 64 levels, never overflowing the stack",
          "[tools][prompt_list]") {
  const auto nested = [](std::size_t levels) {  // the line's object is level 1
    std::string v = std::string(levels - 1, '[') + std::string(levels - 1, ']');
    return "{\"a\":" + v + ",\"prompt\":\"p\"}";
  };
  CHECK(parse_ok(nested(64)).size() == 1);
  const error_info err = parse_fails(nested(65), errc::capacity_exceeded);
  CHECK(err.context() == "nested deeper than 64 levels");
  CHECK(err.line == 1);
  CHECK(err.column == 6 + 63);  // the 64th '[' opens level 65
  // A million open brackets is the same named error, not a crash.
  parse_fails("{\"a\":" + std::string(1000000, '[') + "}", errc::capacity_exceeded);
  std::string objects = "{\"a\":";
  for (int i = 0; i < 100000; ++i) objects += "{\"k\":";
  parse_fails(objects, errc::capacity_exceeded);
}

TEST_CASE("prompt list: a missing file is file_not_found", "[tools][prompt_list]") {
  error_info err;
  auto r = tandem_tools::read_prompt_list_file("/nonexistent/tandem/prompts.jsonl", &err);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::file_not_found);
  CHECK(err.code == errc::file_not_found);
  CHECK(err.line == 0);
  CHECK(err.context().find("/nonexistent/tandem/prompts.jsonl") != std::string_view::npos);
}

TEST_CASE("prompt list: the bundled MMLU contaminated prompts remove 4 rows from the MMLU tables",
          "[tools][prompt_list]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(TANDEM_DATA_DIR) / "routellm" / "mmlu";
  error_info err;
  auto excluded =
      tandem_tools::read_prompt_list_file((dir / "contaminated_prompts.jsonl").string(), &err);
  REQUIRE(excluded);
  CHECK(excluded->size() == 9);  // 5 lines, two prompts each, one prompt twice

  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".csv") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == 46);
  tandem::outcome_csv_options o;
  o.models = {"mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"};
  o.fixed_costs = {1.0, 20.0};
  tandem::outcome_table all;
  tandem::outcome_load_stats stats;
  for (const fs::path& f : files) {
    auto t = tandem::read_csv_file(f.string().c_str());
    REQUIRE(t);
    REQUIRE(tandem::append_outcome_csv(all, *t, o, stats) == errc::ok);
  }
  const std::size_t before = all.size();
  CHECK(tandem::remove_prompts(all, *excluded) == 4);
  CHECK(all.size() == before - 4);

  auto gsm8k = tandem_tools::read_prompt_list_file(
      (fs::path(TANDEM_DATA_DIR) / "routellm" / "gsm8k" / "contaminated_prompts.jsonl").string());
  REQUIRE(gsm8k);
  CHECK(gsm8k->size() == 20);
}
