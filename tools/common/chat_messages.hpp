// tandem tools: a conversation read from JSON, `[{"role": "user", "content": "..."}, ...]`
// (the "messages" of the OpenAI chat API), into tandem chat messages (core/chat.hpp), for
// tools such as `tandem-generate --chat FILE`. Tool code (target tandem_tool_common), not
// part of the library: parsed by nlohmann-json's SAX reader, which never throws on bad
// input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/core/chat.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem_tools {

namespace detail {

/// nlohmann-json SAX handler for a message list: builds the messages and stops at the
/// first problem, recording it (the message's 1-based index, the error and its text).
struct chat_messages_reader {
  std::vector<tandem::chat_message> messages;
  std::size_t depth = 0;                  ///< open arrays and objects
  int field = -1;                         ///< the key whose value comes next: 0 role, 1 content
  bool have_role = false;                 ///< the current message has a role
  bool have_content = false;              ///< the current message has a content
  tandem::errc error = tandem::errc::ok;  ///< the problem found, ok when none
  std::string error_text;                 ///< its description
  std::size_t error_byte = 0;             ///< 1-based byte of a syntax error, 0 when none

  bool refuse(tandem::errc e, std::string text) {
    error = e;
    error_text = std::move(text);
    return false;
  }
  std::string where() const { return "message " + std::to_string(messages.size()); }
  bool value(const char* type) {
    if (depth == 0) return refuse(tandem::errc::parse_error, "not a JSON array of messages");
    if (depth == 1)
      return refuse(tandem::errc::parse_error, "message " + std::to_string(messages.size() + 1) +
                                                   " is " + type + ", not an object");
    return refuse(tandem::errc::parse_error, where() + ": " + (field == 0 ? "role" : "content") +
                                                 " is " + type + ", not a string");
  }

  bool null() { return value("null"); }
  bool boolean(bool) { return value("a boolean"); }
  bool number_integer(nlohmann::json::number_integer_t) { return value("a number"); }
  bool number_unsigned(nlohmann::json::number_unsigned_t) { return value("a number"); }
  bool number_float(nlohmann::json::number_float_t, const std::string&) {
    return value("a number");
  }
  bool binary(nlohmann::json::binary_t&) { return value("binary"); }
  bool string(std::string& s) {
    if (depth != 2) return value("a string");
    tandem::chat_message& m = messages.back();
    if (field == 0) {
      auto r = tandem::parse_chat_role(s);
      if (!r)
        return refuse(tandem::errc::parse_error, where() + ": unknown role '" + s.substr(0, 40) +
                                                     "' (system, user, assistant or tool)");
      m.role = *r;
      have_role = true;
    } else {
      m.content = std::move(s);
      have_content = true;
    }
    return true;
  }
  bool start_object(std::size_t) {
    if (depth != 1) return value("an object");
    ++depth;
    messages.emplace_back();
    have_role = have_content = false;
    return true;
  }
  bool start_array(std::size_t) {
    if (depth != 0) return value("an array");
    ++depth;
    return true;
  }
  bool key(std::string& k) {
    if (k == "role" || k == "content") {
      const int which = k == "role" ? 0 : 1;
      if ((which == 0 && have_role) || (which == 1 && have_content))
        return refuse(tandem::errc::parse_error, where() + ": repeated key '" + k + "'");
      field = which;
      return true;
    }
    return refuse(tandem::errc::parse_error, where() + ": unknown key '" + k.substr(0, 40) +
                                                 "' (a message has role and content)");
  }
  bool end_object() {
    --depth;
    if (!have_role) return refuse(tandem::errc::not_found, where() + ": no role");
    if (!have_content) return refuse(tandem::errc::not_found, where() + ": no content");
    return true;
  }
  bool end_array() { return --depth, true; }
  bool parse_error(std::size_t byte, const std::string&, const nlohmann::json::exception& e) {
    error = tandem::errc::parse_error;
    error_byte = byte;
    error_text = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 9: syntax error ..."
    if (const std::size_t k = error_text.find(": "); k != std::string::npos)
      error_text.erase(0, k + 2);
    return false;
  }
};

}  // namespace detail

/// Parses a conversation in JSON: one array of message objects, each with exactly the
/// string keys "role" (system, user, assistant or tool) and "content" (any UTF-8 text,
/// fully unescaped), oldest first. A leading UTF-8 byte-order mark is skipped. Returns the
/// messages, owned by the caller.
/// Errors (also written to `info` when non-null, with a description naming the 1-based
/// message): `parse_error` (malformed JSON or UTF-8, with the 1-based line and byte column
/// where nlohmann-json stopped; not an array; an element that is not an object; a role or
/// content that is not a string; an unknown role; an unknown or repeated key), `not_found`
/// (a message without role or content), `empty_input` (an empty array). On error no
/// messages are returned.
[[nodiscard]] inline tandem::result<std::vector<tandem::chat_message>> parse_chat_messages(
    std::string_view json, tandem::error_info* info = nullptr) {
  using tandem::errc;
  if (info != nullptr) info->clear();
  if (json.substr(0, 3) == "\xEF\xBB\xBF") json.remove_prefix(3);
  detail::chat_messages_reader reader;
  if (!nlohmann::json::sax_parse(json.begin(), json.end(), &reader)) {
    if (reader.error_byte != 0) {
      // The line and column of the byte nlohmann-json stopped at.
      std::uint64_t line = 1, column = 1;
      for (std::size_t i = 0; i + 1 < reader.error_byte && i < json.size(); ++i) {
        if (json[i] == '\n') {
          ++line;
          column = 1;
        } else {
          ++column;
        }
      }
      return tandem::detail::fail_at(info, errc::parse_error, line, column, "%s",
                                     reader.error_text.c_str());
    }
    return tandem::detail::fail(info, reader.error, "%s", reader.error_text.c_str());
  }
  if (reader.messages.empty()) return tandem::detail::fail(info, errc::empty_input, "no messages");
  return std::move(reader.messages);
}

/// Reads and parses a conversation file (see `parse_chat_messages`); adds the errors of
/// reading it (`file_not_found`, `io_error`), with the path in the details.
[[nodiscard]] inline tandem::result<std::vector<tandem::chat_message>> read_chat_messages_file(
    std::string_view path, tandem::error_info* info = nullptr) {
  auto text = tandem::detail::read_text_file(path, info);
  if (!text) return text.error();
  return parse_chat_messages(*text, info);
}

}  // namespace tandem_tools
