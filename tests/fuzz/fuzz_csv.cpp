// Fuzz target for the RFC 4180 reader: any input either fails with a named error or
// parses into a table that a quoting writer turns back into the same table.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/eval/csv.hpp"

namespace {
std::string write(const tandem::csv_table& t, char delim) {
  std::string out;
  auto row = [&](const std::vector<std::string>& fields) {
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (i) out += delim;
      out += '"';
      for (char c : fields[i]) out += c == '"' ? std::string("\"\"") : std::string(1, c);
      out += '"';
    }
    out += "\r\n";
  };
  if (!t.header.empty()) row(t.header);
  for (const auto& r : t.rows) row(r);
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  tandem::csv_options o;
  o.delimiter = (data[0] & 1) ? ';' : ',';
  o.has_header = (data[0] & 2) != 0;
  o.allow_ragged = (data[0] & 4) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto t = tandem::parse_csv(text, o);
  if (!t) {
    const auto e = t.error();
    if (e != tandem::errc::parse_error && e != tandem::errc::size_mismatch &&
        e != tandem::errc::empty_input)
      std::abort();
    return 0;
  }
  const auto again = tandem::parse_csv(write(*t, o.delimiter), o);
  if (!again || again->header != t->header || again->rows != t->rows) std::abort();
  return 0;
}
