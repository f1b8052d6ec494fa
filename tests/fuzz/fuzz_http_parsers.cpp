// Fuzz target for the HTTP client's parsers (tandem/backends/detail/http_client.hpp) and the
// JSON writer. The first byte picks a split point; the rest is a response head, a chunked
// body, an event stream and a string to escape, all at once. Checks: only documented
// failures; the same result whether the input comes whole or split in two (chunked body,
// event stream); a parsed head's status in 100..599; an escaped string reads back as the
// input with invalid UTF-8 replaced.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/backends/detail/http_client.hpp"
#include "tandem/core/detail/json.hpp"
#include "tandem/core/detail/json_writer.hpp"
#include "tandem/core/stream_decoder.hpp"

namespace {
namespace h = tandem::detail::http;

void check(bool ok) {
  if (!ok) std::abort();
}

struct chunked_run {
  h::failure f = h::failure::none;
  bool done = false;
  std::string body;
};

chunked_run run_chunked(std::string_view in, std::size_t cut) {
  chunked_run r;
  h::chunked_decoder d;
  const auto sink = [&r](const char* p, std::size_t n) {
    r.body.append(p, n);
    return true;
  };
  cut = std::min(cut, in.size());
  r.f = d.feed(in.substr(0, cut), sink);
  if (r.f == h::failure::none) r.f = d.feed(in.substr(cut), sink);
  r.done = d.done();
  return r;
}

using events = std::vector<std::pair<std::string, bool>>;

std::pair<h::failure, events> run_sse(std::string_view in, std::size_t cut) {
  h::sse_parser p;
  events got;
  const auto on = [&got](std::string_view d, bool e) {
    got.emplace_back(std::string(d), e);
    return true;
  };
  cut = std::min(cut, in.size());
  h::failure f = p.feed(in.substr(0, cut), on);
  if (f == h::failure::none) f = p.feed(in.substr(cut), on);
  if (f == h::failure::none) p.finish(on);
  return {f, got};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t cut = data[0];
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  h::response_head head;
  const h::failure hf = h::parse_response_head(in, head);
  check(hf == h::failure::none || hf == h::failure::bad_status_line ||
        hf == h::failure::bad_header || hf == h::failure::bad_content_length ||
        hf == h::failure::unsupported_coding || hf == h::failure::head_too_large ||
        hf == h::failure::too_many_headers);
  if (hf == h::failure::none) check(head.status >= 100 && head.status <= 599);
  const std::size_t end = h::find_head_end(in);
  check(end == std::string_view::npos || (end >= 2 && end <= in.size()));

  const chunked_run whole = run_chunked(in, in.size());
  const chunked_run split = run_chunked(in, cut);
  check(whole.f == h::failure::none || whole.f == h::failure::bad_chunk ||
        whole.f == h::failure::chunk_line_too_long);
  check(whole.f == split.f && whole.done == split.done);
  if (whole.f == h::failure::none) check(whole.body == split.body);
  check(whole.body.size() <= in.size());

  const auto sse_whole = run_sse(in, in.size());
  const auto sse_split = run_sse(in, cut);
  check(sse_whole.first == h::failure::none || sse_whole.first == h::failure::sse_line_too_long ||
        sse_whole.first == h::failure::sse_event_too_large);
  check(sse_whole == sse_split);

  std::string escaped;
  tandem::detail::json::write_string(escaped, in);
  const auto back = tandem::detail::json::parse(escaped);
  check(back.has_value());
  std::string expected;
  (void)tandem::detail::utf8_append_sanitized(in, expected, true);
  check(back->text == expected);
  return 0;
}
