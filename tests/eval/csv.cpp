// RFC 4180 CSV reader: quoting rules, line ends, malformed input, and a seeded round trip
// of random fields through a writer.
#include "tandem/eval/csv.hpp"

#include <string>
#include <vector>

#include "tandem/core/rng.hpp"

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"

using tandem::errc;

TEST_CASE("csv: quoted fields keep delimiters, line breaks and doubled quotes", "[eval][csv]") {
  const auto t = tandem::parse_csv(
      "prompt,ok,response\n"
      "\"a, b\",True,\"line 1\nline 2\"\r\n"
      "\"say \"\"hi\"\"\",False,\n");
  REQUIRE(t);
  REQUIRE(t->header == std::vector<std::string>{"prompt", "ok", "response"});
  REQUIRE(t->rows.size() == 2);
  CHECK(t->rows[0][0] == "a, b");
  CHECK(t->rows[0][2] == "line 1\nline 2");
  CHECK(t->rows[1][0] == "say \"hi\"");
  CHECK(t->rows[1][2].empty());
  CHECK(*t->column("response") == 2);
  CHECK(t->column("missing").error() == errc::not_found);
}

TEST_CASE("csv: byte-order mark, CR line ends and blank lines", "[eval][csv]") {
  const auto t = tandem::parse_csv("\xEF\xBB\xBFx,y\r1,2\r\n\n3,4");
  REQUIRE(t);
  CHECK(t->header[0] == "x");
  REQUIRE(t->rows.size() == 2);
  CHECK(t->rows[1][1] == "4");
  tandem::csv_options no_header;
  no_header.has_header = false;
  CHECK(tandem::parse_csv("1;2\n", {';', false, false})->rows[0][1] == "2");
}

TEST_CASE("csv: malformed input gets named errors", "[eval][csv]") {
  CHECK(tandem::parse_csv("").error() == errc::empty_input);
  CHECK(tandem::parse_csv("a,b\n\"open").error() == errc::parse_error);
  CHECK(tandem::parse_csv("a,b\nx\"y,2").error() == errc::parse_error);
  CHECK(tandem::parse_csv("a,b\n\"x\"y,2").error() == errc::parse_error);
  CHECK(tandem::parse_csv("a,b\n1,2,3").error() == errc::size_mismatch);
  tandem::csv_options ragged;
  ragged.allow_ragged = true;
  CHECK(tandem::parse_csv("a,b\n1,2,3", ragged)->rows[0].size() == 3);
  CHECK(tandem::parse_csv("a\n", {'"', true, false}).error() == errc::invalid_argument);
  CHECK(tandem::read_csv_file("no/such/file.csv").error() == errc::file_not_found);
}

TEST_CASE("csv: error details give the record and the field", "[eval][csv]") {
  tandem::error_info info;
  CHECK(tandem::parse_csv("a,b\n1,2\n3,\"x\"y\n", {}, &info).error() == errc::parse_error);
  CHECK(info.line == 3);
  CHECK(info.column == 2);
  CHECK(tandem::parse_csv("a,b\n1,2\n1,2,3\n", {}, &info).error() == errc::size_mismatch);
  CHECK(info.line == 3);
  CHECK(info.context().find("3 fields") != std::string_view::npos);
  CHECK(tandem::read_csv_file("no/such/file.csv", {}, &info).error() == errc::file_not_found);
  CHECK(info.context().find("no/such/file.csv") != std::string_view::npos);
  const tandem_test::scratch_dir dir("tandem-csv-");
  const std::string path = (dir.path() / "ragged.csv").string();
  REQUIRE(tandem::detail::write_file(path, std::string_view("a,b\n1\n")) == errc::ok);
  CHECK(tandem::read_csv_file(path, {}, &info).error() == errc::size_mismatch);
  CHECK(info.context().find(path + ": CSV record 2") == 0);
  CHECK(info.line == 2);
  CHECK(tandem::read_text_file(dir.path().string(), &info).error() == errc::invalid_argument);
}

TEST_CASE("csv: numbers and labels parse strictly", "[eval][csv]") {
  CHECK(*tandem::parse_number(" 0.25 ") == 0.25);
  CHECK(*tandem::parse_number("-3e2") == -300.0);
  CHECK(*tandem::parse_number("+1") == 1.0);
  CHECK(tandem::parse_number("").error() == errc::parse_error);
  CHECK(tandem::parse_number("1.5x").error() == errc::parse_error);
  CHECK(tandem::parse_number("nan").error() == errc::non_finite);
  CHECK(tandem::parse_number("1e999").error() == errc::non_finite);
  CHECK(*tandem::parse_label("True") == 1);
  CHECK(*tandem::parse_label("0") == 0);
  CHECK(*tandem::parse_label("false") == 0);
  CHECK(tandem::parse_label("2").error() == errc::parse_error);
  CHECK(tandem::parse_label("yes").error() == errc::parse_error);
}

TEST_CASE("csv: random fields survive a write-read round trip", "[eval][csv][fuzz]") {
  const char alphabet[] = {'a', 'b', ',', '"', '\n', '\r', ' ', 'z', '\t'};
  tandem::rng g(9);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t cols = 1 + g.below(4), rows = 1 + g.below(5);
    std::vector<std::vector<std::string>> table(rows, std::vector<std::string>(cols));
    std::string text;
    for (auto& row : table) {
      for (std::size_t c = 0; c < cols; ++c) {
        auto& f = row[c];
        const auto len = g.below(6);
        for (std::uint64_t k = 0; k < len; ++k) f.push_back(alphabet[g.below(sizeof alphabet)]);
        if (cols == 1 && f.empty()) f = "x";  // a lone empty field is a blank line
        if (c) text += ',';
        text += '"';
        for (char ch : f) text += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        text += '"';
      }
      text += g.below(2) ? "\r\n" : "\n";
    }
    tandem::csv_options o;
    o.has_header = false;
    const auto t = tandem::parse_csv(text, o);
    REQUIRE(t);
    CHECK(t->rows == table);
  }
}
