// Fuzz target for the tools' JSON conversation reader (tools/common/chat_messages.hpp): any
// input either fails with a named error and a description, or parses into messages that
// an escaping writer turns back into the same messages.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/chat_messages.hpp"

namespace {
// The messages as a JSON array, keys in alternating order, control characters escaped.
std::string write(const std::vector<tandem::chat_message>& messages) {
  std::string out = "[";
  bool content_first = false;
  for (const tandem::chat_message& m : messages) {
    if (out.size() > 1) out += ",\n";
    std::string content = "\"content\":\"";
    for (const char c : m.content) {
      if (c == '"' || c == '\\') {
        content += '\\';
        content += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        content += buf;
      } else {
        content += c;
      }
    }
    content += '"';
    const std::string role = "\"role\":\"" + std::string(tandem::to_string(m.role)) + "\"";
    out += "{" + (content_first ? content + "," + role : role + "," + content) + "}";
    content_first = !content_first;
  }
  return out + "]";
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  tandem::error_info err;
  const auto r = tandem_tools::parse_chat_messages(text, &err);
  if (!r) {
    const auto e = r.error();
    if (e != tandem::errc::parse_error && e != tandem::errc::not_found &&
        e != tandem::errc::empty_input)
      std::abort();                                            // an unexpected error value
    if (err.code != e || err.context().empty()) std::abort();  // the report does not match
    return 0;
  }
  if (err.code != tandem::errc::ok || r->empty()) std::abort();
  const auto again = tandem_tools::parse_chat_messages(write(*r));
  if (!again || *again != *r) std::abort();  // the round trip changed the messages
  return 0;
}
