// tandem tools: prompt lists in JSON Lines (one JSON object per line), such as RouteLLM's
// contaminated_prompts.jsonl, read into a set of prompts to leave out of evaluations (see
// `remove_prompts` in tandem/eval/outcome_table.hpp). Tool code for tandem's tools,
// examples and tests (target tandem_tool_common), not part of the library: each line is
// parsed by nlohmann-json's SAX reader, which never throws on bad input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem_tools {

/// Deepest nesting of arrays and objects a prompt-list line may hold (the line's own
/// object counts as level 1); deeper input is a `capacity_exceeded` error.
inline constexpr std::size_t prompt_list_max_depth = 64;

namespace detail {

/// nlohmann-json SAX handler for one line: collects the string values of the keys
/// "train_prompt", "eval_prompt" and "prompt" of the line's object into `prompts` and
/// stops at the first problem, recording it.
struct prompt_line_reader {
  explicit prompt_line_reader(std::unordered_set<std::string>& into) : prompts(into) {}

  std::unordered_set<std::string>& prompts;  ///< where the prompts go
  std::size_t depth = 0;                     ///< open arrays and objects
  bool wanted_key = false;     ///< the value that follows belongs to one of the three keys
  bool found = false;          ///< a prompt was taken from this line
  bool too_deep = false;       ///< stopped at a container past `prompt_list_max_depth`
  bool not_object = false;     ///< the line's value is not an object
  std::size_t error_byte = 0;  ///< 1-based byte of a syntax error, 0 when none
  std::string error_text;      ///< nlohmann-json's description of it

  bool scalar() {
    wanted_key = false;
    return depth != 0 || (not_object = true, false);
  }
  bool enter() {
    wanted_key = false;
    if (depth == prompt_list_max_depth) return too_deep = true, false;
    ++depth;
    return true;
  }

  bool null() { return scalar(); }
  bool boolean(bool) { return scalar(); }
  bool number_integer(nlohmann::json::number_integer_t) { return scalar(); }
  bool number_unsigned(nlohmann::json::number_unsigned_t) { return scalar(); }
  bool number_float(nlohmann::json::number_float_t, const std::string&) { return scalar(); }
  bool binary(nlohmann::json::binary_t&) { return scalar(); }
  bool string(std::string& s) {
    if (depth == 1 && wanted_key) {
      prompts.insert(std::move(s));
      found = true;
    }
    return scalar();
  }
  bool start_object(std::size_t) { return enter(); }
  bool start_array(std::size_t) { return depth == 0 ? scalar() : enter(); }
  bool key(std::string& k) {
    wanted_key = depth == 1 && (k == "train_prompt" || k == "eval_prompt" || k == "prompt");
    return true;
  }
  bool end_object() { return --depth, true; }
  bool end_array() { return --depth, true; }
  bool parse_error(std::size_t byte, const std::string&, const nlohmann::json::exception& e) {
    error_byte = byte;
    error_text = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 9: syntax error ..."
    if (const std::size_t k = error_text.find(": "); k != std::string::npos)
      error_text.erase(0, k + 2);
    return false;
  }
};

/// 1-based byte of the bracket that opens level `prompt_list_max_depth + 1` in `line`, a
/// line valid JSON up to that bracket (strings are skipped); 1 when there is none.
inline std::size_t too_deep_column(std::string_view line) noexcept {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > prompt_list_max_depth) return i + 1;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return 1;
}

}  // namespace detail

/// Parses a prompt list in JSON Lines: each non-blank line (spaces, tabs and a CR are
/// blank; LF or CRLF line ends; a leading UTF-8 byte-order mark is skipped) must be one
/// JSON object. The string values of its keys "train_prompt", "eval_prompt" and "prompt"
/// are collected, fully unescaped (`\uXXXX` and surrogate pairs become UTF-8); other keys,
/// and these keys with non-string values, are skipped whatever their JSON value (nesting
/// up to `prompt_list_max_depth`). An empty or all-blank text gives an empty set.
/// Returns the distinct prompts, owned by the caller.
/// Errors (also written to `info` when non-null, with the 1-based line, the 1-based byte
/// column where the problem shows (for bad JSON the last byte nlohmann-json read: the end
/// of the offending token) and a description, nlohmann-json's for bad JSON): `parse_error`
/// (a line that is not a JSON object, malformed JSON or UTF-8, text after the object, an
/// unterminated string, a raw control character in a string, an invalid escape, a lone
/// surrogate),
/// `capacity_exceeded` (nesting deeper than `prompt_list_max_depth`), `not_found` (an
/// object holding none of the three keys as a string). On error no set is returned.
[[nodiscard]] inline tandem::result<std::unordered_set<std::string>> parse_prompt_list(
    std::string_view jsonl, tandem::error_info* info = nullptr) {
  using tandem::errc;
  using tandem::detail::fail_at;
  if (info != nullptr) info->clear();
  if (jsonl.substr(0, 3) == "\xEF\xBB\xBF") jsonl.remove_prefix(3);
  std::unordered_set<std::string> prompts;
  std::size_t line_no = 0;
  while (!jsonl.empty()) {
    const std::size_t nl = jsonl.find('\n');
    const std::string_view line = jsonl.substr(0, nl);
    jsonl = nl == std::string_view::npos ? std::string_view() : jsonl.substr(nl + 1);
    ++line_no;
    const std::size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) continue;  // blank line
    detail::prompt_line_reader reader(prompts);
    if (nlohmann::json::sax_parse(line.begin(), line.end(), &reader)) {
      if (!reader.found)
        return fail_at(info, errc::not_found, line_no, 1,
                       "no string train_prompt, eval_prompt or prompt");
      continue;
    }
    if (reader.not_object)
      return fail_at(info, errc::parse_error, line_no, first + 1, "not a JSON object");
    if (reader.too_deep)
      return fail_at(info, errc::capacity_exceeded, line_no, detail::too_deep_column(line),
                     "nested deeper than %zu levels", prompt_list_max_depth);
    return fail_at(info, errc::parse_error, line_no, reader.error_byte, "%s",
                   reader.error_text.c_str());
  }
  return prompts;
}

/// Reads and parses a prompt-list file (see `parse_prompt_list`); adds the errors of
/// reading it (`file_not_found`, `io_error`), with `info->line` 0 and the path in its text.
[[nodiscard]] inline tandem::result<std::unordered_set<std::string>> read_prompt_list_file(
    std::string_view path, tandem::error_info* info = nullptr) {
  auto text = tandem::detail::read_text_file(path, info);
  if (!text) return text.error();
  return parse_prompt_list(*text, info);
}

}  // namespace tandem_tools
