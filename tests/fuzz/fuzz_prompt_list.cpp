// Fuzz target for the tools' JSON Lines prompt-list reader (tools/common/prompt_list.hpp):
// any input either fails with a named error, a line number and a description, or parses
// into a set of prompts that an escaping writer turns back into the same set.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unordered_set>

#include "common/prompt_list.hpp"

namespace {
// One JSON Lines line per prompt, alternating the three keys, control characters escaped.
std::string write(const std::unordered_set<std::string>& prompts) {
  static constexpr const char* keys[] = {"prompt", "train_prompt", "eval_prompt"};
  std::string out;
  std::size_t k = 0;
  for (const std::string& p : prompts) {
    out += "{\"idx\":[1,{\"x\":null}],\"";
    out += keys[k++ % 3];
    out += "\":\"";
    for (const char c : p) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      } else {
        out += c;
      }
    }
    out += "\"}\r\n";
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  tandem::error_info err;
  const auto r = tandem_tools::parse_prompt_list(text, &err);
  if (!r) {
    const auto e = r.error();
    if (e != tandem::errc::parse_error && e != tandem::errc::not_found &&
        e != tandem::errc::capacity_exceeded)
      std::abort();  // an unexpected error value
    if (err.code != e || err.line == 0 || err.column == 0 || err.context().empty())
      std::abort();  // the error report does not match
    return 0;
  }
  if (err.code != tandem::errc::ok) std::abort();
  const auto again = tandem_tools::parse_prompt_list(write(*r));
  if (!again || *again != *r) std::abort();  // the round trip changed the set
  return 0;
}
