// tandem: prompt lists in JSON Lines (one JSON object per line), such as RouteLLM's
// contaminated_prompts.jsonl, read into a set of prompts to leave out of evaluations
// (see `remove_prompts` in eval/outcome_table.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/file_io.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// Deepest nesting of arrays and objects a prompt-list line may hold (the line's own
/// object counts as level 1); deeper input is a `capacity_exceeded` error.
inline constexpr std::size_t prompt_list_max_depth = 64;

/// Why a prompt list failed to parse.
enum class prompt_list_issue : std::uint8_t {
  none = 0,           ///< no error
  not_an_object,      ///< a non-blank line does not start with `{`
  malformed_json,     ///< bad JSON syntax (a missing `:`, `,` or `}`, a bad literal or number)
  trailing_text,      ///< text after the line's closing `}`
  unterminated,       ///< a string, array or object ends with the line
  control_character,  ///< a raw control character (below 0x20) inside a string
  invalid_escape,     ///< a `\` escape other than `\" \\ \/ \b \f \n \r \t \uXXXX`
  lone_surrogate,     ///< a `\uD800`-`\uDFFF` escape that is not a proper surrogate pair
  too_deep,           ///< nesting deeper than `prompt_list_max_depth`
  no_prompt,          ///< an object with no string `train_prompt`, `eval_prompt` or `prompt`
};

/// Stable lower-case name of a prompt-list issue, e.g. "lone_surrogate". Never null.
[[nodiscard]] constexpr std::string_view to_string(prompt_list_issue i) noexcept {
  switch (i) {
    case prompt_list_issue::none:
      return "none";
    case prompt_list_issue::not_an_object:
      return "not_an_object";
    case prompt_list_issue::malformed_json:
      return "malformed_json";
    case prompt_list_issue::trailing_text:
      return "trailing_text";
    case prompt_list_issue::unterminated:
      return "unterminated";
    case prompt_list_issue::control_character:
      return "control_character";
    case prompt_list_issue::invalid_escape:
      return "invalid_escape";
    case prompt_list_issue::lone_surrogate:
      return "lone_surrogate";
    case prompt_list_issue::too_deep:
      return "too_deep";
    case prompt_list_issue::no_prompt:
      return "no_prompt";
  }
  return "unknown";
}

/// Where and why a prompt list failed to parse, for a useful message.
struct prompt_list_error {
  errc code = errc::ok;                               ///< the error returned
  prompt_list_issue issue = prompt_list_issue::none;  ///< what exactly went wrong
  std::size_t line = 0;    ///< 1-based line number, 0 when not line-specific
  std::size_t column = 0;  ///< 1-based byte offset in the line, 0 when not known
};

namespace detail {

/// A cursor over one JSON Lines line (no line break inside).
struct json_line_cursor {
  std::string_view s;
  std::size_t p = 0;
  prompt_list_issue issue = prompt_list_issue::none;

  bool at_end() const noexcept { return p >= s.size(); }
  void skip_ws() noexcept {
    while (p < s.size() && (s[p] == ' ' || s[p] == '\t' || s[p] == '\r')) ++p;
  }
  bool fail(prompt_list_issue i) noexcept {
    issue = i;
    return false;
  }

  // Four hex digits at p, advancing past them.
  bool hex4(std::uint32_t& v) noexcept {
    if (p + 4 > s.size()) return fail(prompt_list_issue::invalid_escape);
    v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = s[p + k];
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) return fail(prompt_list_issue::invalid_escape);
      v = v * 16 + static_cast<std::uint32_t>(d);
    }
    p += 4;
    return true;
  }

  static void put_utf8(std::uint32_t c, std::string& out) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }

  // A JSON string starting at the opening quote at p; unescaped into `out` when non-null.
  bool string(std::string* out) {
    ++p;  // the opening quote
    for (;;) {
      if (p >= s.size()) return fail(prompt_list_issue::unterminated);
      const char c = s[p];
      if (c == '"') {
        ++p;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return fail(prompt_list_issue::control_character);
      if (c != '\\') {
        if (out != nullptr) *out += c;
        ++p;
        continue;
      }
      ++p;
      if (p >= s.size()) return fail(prompt_list_issue::unterminated);
      const char e = s[p++];
      char plain = 0;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          plain = e;
          break;
        case 'b':
          plain = '\b';
          break;
        case 'f':
          plain = '\f';
          break;
        case 'n':
          plain = '\n';
          break;
        case 'r':
          plain = '\r';
          break;
        case 't':
          plain = '\t';
          break;
        case 'u': {
          std::uint32_t u = 0;
          if (!hex4(u)) return false;
          if (u >= 0xDC00 && u <= 0xDFFF) return fail(prompt_list_issue::lone_surrogate);
          if (u >= 0xD800 && u <= 0xDBFF) {
            if (p + 2 > s.size() || s[p] != '\\' || s[p + 1] != 'u')
              return fail(prompt_list_issue::lone_surrogate);
            p += 2;
            std::uint32_t lo = 0;
            if (!hex4(lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail(prompt_list_issue::lone_surrogate);
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
          }
          if (out != nullptr) put_utf8(u, *out);
          continue;
        }
        default:
          --p;
          return fail(prompt_list_issue::invalid_escape);
      }
      if (out != nullptr) *out += plain;
    }
  }

  // A literal (true, false, null) or a JSON number at p.
  bool scalar() noexcept {
    for (const std::string_view lit : {"true", "false", "null"})
      if (s.substr(p, lit.size()) == lit) {
        p += lit.size();
        return true;
      }
    const auto digit = [&] { return p < s.size() && s[p] >= '0' && s[p] <= '9'; };
    if (p < s.size() && s[p] == '-') ++p;
    if (!digit()) return fail(prompt_list_issue::malformed_json);
    if (s[p] == '0')
      ++p;
    else
      while (digit()) ++p;
    if (p < s.size() && s[p] == '.') {
      ++p;
      if (!digit()) return fail(prompt_list_issue::malformed_json);
      while (digit()) ++p;
    }
    if (p < s.size() && (s[p] == 'e' || s[p] == 'E')) {
      ++p;
      if (p < s.size() && (s[p] == '+' || s[p] == '-')) ++p;
      if (!digit()) return fail(prompt_list_issue::malformed_json);
      while (digit()) ++p;
    }
    return true;
  }

  // Skips any JSON value at p without recursion: `depth` is the nesting level of the
  // container holding it. A fixed stack of open brackets bounds the nesting.
  bool skip_value(std::size_t depth) {
    char stack[prompt_list_max_depth];
    std::size_t n = 0;
    bool expect_value = true;  // else: expect `,` or a closing bracket
    for (;;) {
      skip_ws();
      if (p >= s.size()) return fail(prompt_list_issue::unterminated);
      const char c = s[p];
      if (expect_value) {
        if (c == '{' || c == '[') {
          if (depth + n + 1 > prompt_list_max_depth) return fail(prompt_list_issue::too_deep);
          stack[n++] = c;
          ++p;
          skip_ws();
          if (p >= s.size()) return fail(prompt_list_issue::unterminated);
          if (s[p] == (c == '{' ? '}' : ']')) {  // empty container
            ++p;
            --n;
            expect_value = false;
          } else if (c == '{') {
            if (!member_key()) return false;
          }
          if (n == 0) return true;
          continue;
        }
        if (c == '"') {
          if (!string(nullptr)) return false;
        } else if (!scalar()) {
          return false;
        }
        if (n == 0) return true;
        expect_value = false;
        continue;
      }
      // After a value inside container stack[n - 1].
      const char open = stack[n - 1];
      if (c == ',') {
        ++p;
        if (open == '{' && !member_key()) return false;
        expect_value = true;
        continue;
      }
      if (c == (open == '{' ? '}' : ']')) {
        ++p;
        if (--n == 0) return true;
        continue;
      }
      return fail(prompt_list_issue::malformed_json);
    }
  }

  // `"key" :` inside an object being skipped (the key itself is not needed).
  bool member_key() {
    skip_ws();
    if (p >= s.size()) return fail(prompt_list_issue::unterminated);
    if (s[p] != '"') return fail(prompt_list_issue::malformed_json);
    if (!string(nullptr)) return false;
    skip_ws();
    if (p >= s.size()) return fail(prompt_list_issue::unterminated);
    if (s[p] != ':') return fail(prompt_list_issue::malformed_json);
    ++p;
    return true;
  }
};

}  // namespace detail

/// Parses a prompt list in JSON Lines: each non-blank line (spaces, tabs and a CR are
/// blank; LF or CRLF line ends; a leading UTF-8 byte-order mark is skipped) must be one
/// JSON object. The string values of its keys "train_prompt", "eval_prompt" and "prompt"
/// are collected, fully unescaped (`\uXXXX` and surrogate pairs become UTF-8); other keys,
/// and these keys with non-string values, are skipped whatever their JSON value (nesting
/// up to `prompt_list_max_depth`). An empty or all-blank text gives an empty set.
/// Returns the distinct prompts, owned by the caller.
/// Errors (also written to `error` when non-null, with the 1-based line and column and
/// the `prompt_list_issue`): `parse_error` (a line that is not a JSON object, malformed
/// JSON, text after the object, an unterminated string, a raw control character in a
/// string, an invalid escape, a lone surrogate), `capacity_exceeded` (nesting deeper than
/// `prompt_list_max_depth`), `not_found` (an object holding none of the three keys as a
/// string). Never throws; on error no set is returned.
[[nodiscard]] inline result<std::unordered_set<std::string>> parse_prompt_list(
    std::string_view jsonl, prompt_list_error* error = nullptr) {
  if (error != nullptr) *error = {};
  if (jsonl.size() >= 3 && jsonl.substr(0, 3) == "\xEF\xBB\xBF") jsonl.remove_prefix(3);
  std::unordered_set<std::string> prompts;
  std::string key, value;
  std::size_t line_no = 0;
  while (!jsonl.empty()) {
    const std::size_t nl = jsonl.find('\n');
    detail::json_line_cursor cur{jsonl.substr(0, nl)};
    jsonl = nl == std::string_view::npos ? std::string_view() : jsonl.substr(nl + 1);
    ++line_no;
    const auto fail = [&](prompt_list_issue issue) -> errc {
      const errc code = issue == prompt_list_issue::too_deep    ? errc::capacity_exceeded
                        : issue == prompt_list_issue::no_prompt ? errc::not_found
                                                                : errc::parse_error;
      if (error != nullptr) *error = {code, issue, line_no, cur.p + 1};
      return code;
    };
    cur.skip_ws();
    if (cur.at_end()) continue;  // blank line
    if (cur.s[cur.p] != '{') return fail(prompt_list_issue::not_an_object);
    ++cur.p;
    bool found = false;
    cur.skip_ws();
    if (cur.at_end()) return fail(prompt_list_issue::unterminated);
    if (cur.s[cur.p] == '}') {
      ++cur.p;
    } else {
      for (;;) {
        cur.skip_ws();
        if (cur.at_end()) return fail(prompt_list_issue::unterminated);
        if (cur.s[cur.p] != '"') return fail(prompt_list_issue::malformed_json);
        key.clear();
        if (!cur.string(&key)) return fail(cur.issue);
        cur.skip_ws();
        if (cur.at_end()) return fail(prompt_list_issue::unterminated);
        if (cur.s[cur.p] != ':') return fail(prompt_list_issue::malformed_json);
        ++cur.p;
        cur.skip_ws();
        if (cur.at_end()) return fail(prompt_list_issue::unterminated);
        const bool wanted = key == "train_prompt" || key == "eval_prompt" || key == "prompt";
        if (wanted && cur.s[cur.p] == '"') {
          value.clear();
          if (!cur.string(&value)) return fail(cur.issue);
          prompts.insert(value);
          found = true;
        } else if (!cur.skip_value(1)) {
          return fail(cur.issue);
        }
        cur.skip_ws();
        if (cur.at_end()) return fail(prompt_list_issue::unterminated);
        if (cur.s[cur.p] == ',') {
          ++cur.p;
          continue;
        }
        if (cur.s[cur.p] != '}') return fail(prompt_list_issue::malformed_json);
        ++cur.p;
        break;
      }
    }
    cur.skip_ws();
    if (!cur.at_end()) return fail(prompt_list_issue::trailing_text);
    if (!found) {
      cur.p = 0;
      return fail(prompt_list_issue::no_prompt);
    }
  }
  return prompts;
}

/// Reads and parses a prompt-list file (see `parse_prompt_list`); adds `file_not_found`
/// (cannot open) and `io_error` (a read failed), with `error->line` 0.
[[nodiscard]] inline result<std::unordered_set<std::string>> read_prompt_list_file(
    const char* path, prompt_list_error* error = nullptr) {
  if (error != nullptr) *error = {};
  auto text = detail::read_file(path);
  if (!text) {
    if (error != nullptr) error->code = text.error();
    return text.error();
  }
  return parse_prompt_list(*text, error);
}

}  // namespace tandem::inline v0
