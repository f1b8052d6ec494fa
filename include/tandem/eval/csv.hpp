// tandem: an RFC 4180 CSV reader (quoted fields with delimiters, line breaks and doubled
// quotes), plus strict parsers for the numbers and 0/1 labels such tables hold.
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tandem/core/config.hpp"
#include "tandem/core/detail/ascii.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0 {

/// Settings of the CSV reader.
struct csv_options {
  char delimiter = ',';       ///< field separator; must not be a double quote, CR or LF
  bool has_header = true;     ///< the first record names the columns
  bool allow_ragged = false;  ///< accept records whose field count differs from the first
};

/// Streaming RFC 4180 reader over a caller-owned text (the text must outlive the reader).
/// Accepts LF, CRLF and lone CR line ends, a leading UTF-8 byte-order mark, and quoted
/// fields holding delimiters, line breaks and doubled quotes (`""` is one `"`). A quote
/// inside an unquoted field, text after a closing quote, or an unterminated quoted field
/// is a `parse_error`; the reader then stays at the failing record.
class csv_reader {
 public:
  /// Reads from `text`; `delimiter` must not be a double quote, CR or LF (precondition).
  explicit csv_reader(std::string_view text, char delimiter = ',') noexcept
      : text_(text), delim_(delimiter) {
    TANDEM_ASSERT(delimiter != '"' && delimiter != '\r' && delimiter != '\n',
                  "csv_reader: invalid delimiter");
    if (text_.size() >= 3 && text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
  }

  /// Reads the next record into `fields` (cleared first; its capacity is reused).
  /// Returns true when a record was read, false at the end of the text (a final line
  /// break does not start an empty record), or `parse_error` for malformed input (then
  /// `fields` holds the fields read so far and the reader does not advance).
  /// Blank lines in the middle of the text read as a record with one empty field.
  [[nodiscard]] result<bool> next(std::vector<std::string>& fields) {
    fields.clear();
    if (pos_ >= text_.size()) return false;
    std::size_t p = pos_;
    std::string field;
    for (;;) {
      field.clear();
      if (p < text_.size() && text_[p] == '"') {
        ++p;
        for (;;) {
          if (p >= text_.size()) return errc::parse_error;  // unterminated quote
          const char c = text_[p];
          if (c == '"') {
            if (p + 1 < text_.size() && text_[p + 1] == '"') {
              field.push_back('"');
              p += 2;
            } else {
              ++p;
              break;
            }
          } else {
            field.push_back(c);
            ++p;
          }
        }
        if (p < text_.size() && text_[p] != delim_ && text_[p] != '\n' && text_[p] != '\r')
          return errc::parse_error;  // text after the closing quote
      } else {
        while (p < text_.size() && text_[p] != delim_ && text_[p] != '\n' && text_[p] != '\r') {
          if (text_[p] == '"') return errc::parse_error;  // quote inside an unquoted field
          field.push_back(text_[p]);
          ++p;
        }
      }
      fields.push_back(field);
      if (p >= text_.size()) break;
      if (text_[p] == delim_) {
        ++p;
        continue;
      }
      if (text_[p] == '\r') ++p;
      if (p < text_.size() && text_[p] == '\n') ++p;
      break;
    }
    pos_ = p;
    ++records_;
    return true;
  }

  /// Number of records read so far.
  [[nodiscard]] std::size_t records() const noexcept { return records_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t records_ = 0;
  char delim_;
};

/// A parsed CSV table; owns its strings.
struct csv_table {
  std::vector<std::string> header;             ///< column names (empty without a header)
  std::vector<std::vector<std::string>> rows;  ///< data records

  /// Index of the column named `name` (exact match), or `not_found`.
  [[nodiscard]] result<std::size_t> column(std::string_view name) const {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    return errc::not_found;
  }
};

/// Parses a whole CSV text into a table the caller owns. A header with no data rows is a
/// valid (empty) table; blank lines (a record that is one empty field) are skipped.
/// Errors, with details in `*info` when not null (`line`: the 1-based record, the header
/// included; `column`: the 1-based field): `empty_input` (the text holds no record at
/// all), `parse_error` (malformed quoting), `size_mismatch` (a record whose field count
/// differs from the first record's, unless `allow_ragged`), `invalid_argument` (a
/// delimiter that is a double quote, CR or LF).
[[nodiscard]] inline result<csv_table> parse_csv(std::string_view text,
                                                 const csv_options& options = {},
                                                 error_info* info = nullptr) {
  if (options.delimiter == '"' || options.delimiter == '\r' || options.delimiter == '\n')
    return detail::fail(info, errc::invalid_argument,
                        "CSV delimiter is a double quote or a line break");
  csv_reader reader(text, options.delimiter);
  csv_table table;
  std::vector<std::string> fields;
  std::size_t width = 0;
  bool first = true;
  for (;;) {
    auto r = reader.next(fields);
    if (!r)
      return detail::fail_at(info, r.error(), reader.records() + 1, fields.size() + 1,
                             "CSV record %zu: malformed quoting in field %zu", reader.records() + 1,
                             fields.size() + 1);
    if (!*r) break;
    if (fields.size() == 1 && fields[0].empty()) continue;
    if (first) {
      width = fields.size();
      first = false;
      if (options.has_header) {
        table.header = fields;
        continue;
      }
    } else if (!options.allow_ragged && fields.size() != width) {
      return detail::fail_at(info, errc::size_mismatch, reader.records(), 0,
                             "CSV record %zu has %zu fields, the first record %zu",
                             reader.records(), fields.size(), width);
    }
    table.rows.push_back(fields);
  }
  if (first) return detail::fail(info, errc::empty_input, "CSV text without a record");
  return table;
}

/// Reads a whole file into a string. Errors, with details (the path) in `*info` when not
/// null: `file_not_found`, `invalid_argument` (a directory), `io_error`.
[[nodiscard]] inline result<std::string> read_text_file(std::string_view path,
                                                        error_info* info = nullptr) {
  return detail::read_text_file(path, info);
}

/// Parses a CSV file (see `parse_csv`); adds the errors of `read_text_file`. The details of
/// a parse error name the path first.
[[nodiscard]] inline result<csv_table> read_csv_file(std::string_view path,
                                                     const csv_options& options = {},
                                                     error_info* info = nullptr) {
  return detail::parse_file(path, info, [&options](std::span<const std::byte> b, error_info* i) {
    return parse_csv(detail::as_text(b), options, i);
  });
}

namespace detail {
inline std::string_view trim_ascii(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace detail

/// Parses a whole field as a finite decimal number (surrounding spaces allowed).
/// Errors: `parse_error` (empty, trailing text, not a number), `non_finite` (nan/inf).
[[nodiscard]] inline result<double> parse_number(std::string_view field) noexcept {
  field = detail::trim_ascii(field);
  if (!field.empty() && field.front() == '+') field.remove_prefix(1);
  if (field.empty()) return errc::parse_error;
  double v = 0.0;
  const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (ec == std::errc::result_out_of_range) return errc::non_finite;
  if (ec != std::errc{} || ptr != field.data() + field.size()) return errc::parse_error;
  if (!std::isfinite(v)) return errc::non_finite;
  return v;
}

/// Parses a 0/1 label: "0"/"1", "true"/"false" (any case), "0.0"/"1.0". Returns 0 or 1.
/// Errors: `parse_error` for anything else.
[[nodiscard]] inline result<int> parse_label(std::string_view field) noexcept {
  field = detail::trim_ascii(field);
  if (field == "1" || field == "1.0" || detail::iequals_ascii(field, "true")) return 1;
  if (field == "0" || field == "0.0" || detail::iequals_ascii(field, "false")) return 0;
  return errc::parse_error;
}

}  // namespace tandem::inline v0
