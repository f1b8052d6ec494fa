// Fuzz target for stream_decoder: the input is cut into a table of pieces (arbitrary bytes)
// and a sequence of ids into that table (some invalid). Checks that every chunk the
// decoder appends is well-formed UTF-8, that invalid ids change nothing, and that the
// chunks add up to the sanitized whole text (U+FFFD per byte outside a well-formed
// character), with and without the first-piece rule.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/core/stream_decoder.hpp"

namespace {
using tandem::errc;
using tandem::token_id;

struct table_tokenizer {
  std::vector<std::string> pieces;
  std::size_t vocab_size() const { return pieces.size(); }
  errc encode(std::string_view, std::vector<token_id>&) const { return errc::unsupported; }
  errc decode(std::span<const token_id>, std::string&) const { return errc::unsupported; }
  errc piece(token_id id, std::string& out) const {
    if (id < 0 || static_cast<std::size_t>(id) >= pieces.size()) return errc::invalid_token;
    out += pieces[static_cast<std::size_t>(id)];
    return errc::ok;
  }
};

// Piece 0 is a control token; the first visible piece loses a leading space.
struct prefix_tokenizer : table_tokenizer {
  errc first_piece(token_id id, std::string& out) const {
    std::string s;
    if (const errc e = piece(id, s); e != errc::ok) return e;
    if (!s.empty() && s[0] == ' ') s.erase(0, 1);
    out += s;
    return errc::ok;
  }
  bool leaves_start(token_id id) const { return id != 0; }
};

void check(bool cond) {
  if (!cond) std::abort();
}

bool well_formed(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const int n = tandem::detail::utf8_char_length(s.substr(i));
    if (n <= 0) return false;
    i += static_cast<std::size_t>(n);
  }
  return true;
}

template <class T>
void run(const T& tok, const std::vector<token_id>& ids, bool first_rule) {
  tandem::stream_decoder<T> dec(tok, 8);
  std::string streamed, raw;
  bool at_start = true;
  for (const token_id id : ids) {
    std::string chunk = "!";
    const std::size_t held = dec.held_bytes();
    const errc e = dec.push(id, chunk);
    if (e != errc::ok) {
      check(e == errc::invalid_token && chunk == "!" && dec.held_bytes() == held);
      continue;
    }
    check(dec.held_bytes() <= 3 && well_formed(chunk));
    streamed += chunk.substr(1);
    std::string p;
    check(tok.piece(id, p) == errc::ok);
    if (first_rule && at_start && !p.empty() && p[0] == ' ') p.erase(0, 1);
    if (!first_rule || id != 0) at_start = false;
    raw += p;
  }
  std::string tail;
  dec.flush(tail);
  check(well_formed(tail) && dec.held_bytes() == 0);
  streamed += tail;
  std::string want;
  check(tandem::detail::utf8_append_sanitized(raw, want, true) == raw.size());
  check(streamed == want);
}
}  // namespace

// Input: pieces separated by 0xFF, then after a 0xFE byte, one id per byte (id = byte - 8,
// so a few are negative and some exceed the table).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t split = in.find('\xFE');
  const std::string_view table = in.substr(0, split);
  prefix_tokenizer tok;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = table.find('\xFF', start);
    tok.pieces.emplace_back(table.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  std::vector<token_id> ids;
  if (split != std::string_view::npos)
    for (const char c : in.substr(split + 1)) ids.push_back(static_cast<unsigned char>(c) - 8);
  run(static_cast<const table_tokenizer&>(tok), ids, false);
  run(tok, ids, true);
  return 0;
}
