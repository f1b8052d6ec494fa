// Test helper: a small well-formedness check of SVG documents (what tandem's chart writer
// and the tools write), independent of the writer: tags balanced and properly nested,
// names well formed, attribute values quoted and unique per element, entity references
// known, one root `<svg>` element in the SVG namespace. It also collects the names of the
// chart series (`<g class="series" data-series="NAME">`, entities decoded).
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem_test {

/// What `check_svg` found: `error` is empty for a well-formed document.
struct svg_check_result {
  std::string error;
  std::vector<std::string> series;  ///< data-series names, in document order
  std::size_t elements = 0;
};

namespace svg_check_detail {

inline bool name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' ||
         static_cast<unsigned char>(c) >= 0x80;
}
inline bool name_char(char c) {
  return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}
inline bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/// Decodes the character data `s` into `out`; returns false on a bad entity reference.
inline bool decode(std::string_view s, std::string& out) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    const std::size_t end = s.find(';', i);
    if (end == std::string_view::npos) return false;
    const std::string_view ref = s.substr(i + 1, end - i - 1);
    if (ref == "amp")
      out += '&';
    else if (ref == "lt")
      out += '<';
    else if (ref == "gt")
      out += '>';
    else if (ref == "quot")
      out += '"';
    else if (ref == "apos")
      out += '\'';
    else if (ref.size() >= 2 && ref[0] == '#') {
      const bool hex = ref[1] == 'x';
      const std::string_view digits = ref.substr(hex ? 2 : 1);
      if (digits.empty()) return false;
      for (char c : digits)
        if (!((c >= '0' && c <= '9') ||
              (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))))
          return false;
      out += '?';  // the code point itself does not matter to the checks
    } else {
      return false;
    }
    i = end;
  }
  return true;
}

}  // namespace svg_check_detail

/// Checks that `doc` is a well-formed SVG document (see the file comment).
inline svg_check_result check_svg(std::string_view doc) {
  using namespace svg_check_detail;
  svg_check_result r;
  std::vector<std::string> open;
  bool root_seen = false, root_closed = false;
  std::size_t i = 0;
  const auto fail = [&](const std::string& why) {
    r.error = why + " at byte " + std::to_string(i);
    return r;
  };
  if (doc.substr(0, 5) == "<?xml") {
    const std::size_t end = doc.find("?>");
    if (end == std::string_view::npos) return fail("unterminated XML declaration");
    i = end + 2;
  }
  while (i < doc.size()) {
    if (doc[i] != '<') {
      const std::size_t next = doc.find('<', i);
      const std::string_view text = doc.substr(i, next == std::string_view::npos ? next : next - i);
      std::string decoded;
      if (!decode(text, decoded)) return fail("bad entity reference in text");
      if (open.empty() && text.find_first_not_of(" \t\r\n") != std::string_view::npos)
        return fail("text outside the root element");
      if (next == std::string_view::npos) break;
      i = next;
      continue;
    }
    if (doc.substr(i, 4) == "<!--") {
      const std::size_t end = doc.find("-->", i + 4);
      if (end == std::string_view::npos) return fail("unterminated comment");
      i = end + 3;
      continue;
    }
    const bool closing = i + 1 < doc.size() && doc[i + 1] == '/';
    std::size_t p = i + (closing ? 2 : 1);
    const std::size_t name_begin = p;
    if (p >= doc.size() || !name_start(doc[p])) return fail("bad tag name");
    while (p < doc.size() && name_char(doc[p])) ++p;
    const std::string name(doc.substr(name_begin, p - name_begin));
    if (closing) {
      while (p < doc.size() && space(doc[p])) ++p;
      if (p >= doc.size() || doc[p] != '>') return fail("bad closing tag </" + name + ">");
      if (open.empty() || open.back() != name)
        return fail("closing tag </" + name + "> does not match <" +
                    (open.empty() ? std::string("nothing") : open.back()) + ">");
      open.pop_back();
      if (open.empty()) root_closed = true;
      i = p + 1;
      continue;
    }
    if (root_closed) return fail("a second root element <" + name + ">");
    std::set<std::string> seen;
    std::vector<std::pair<std::string, std::string>> attrs;
    bool self_closing = false;
    for (;;) {
      const std::size_t before = p;
      while (p < doc.size() && space(doc[p])) ++p;
      if (p >= doc.size()) return fail("unterminated tag <" + name + ">");
      if (doc[p] == '>') break;
      if (doc[p] == '/') {
        if (p + 1 >= doc.size() || doc[p + 1] != '>') return fail("bad '/' in <" + name + ">");
        self_closing = true;
        ++p;
        break;
      }
      if (p == before) return fail("no space before an attribute of <" + name + ">");
      const std::size_t ab = p;
      if (!name_start(doc[p])) return fail("bad attribute name in <" + name + ">");
      while (p < doc.size() && name_char(doc[p])) ++p;
      const std::string aname(doc.substr(ab, p - ab));
      while (p < doc.size() && space(doc[p])) ++p;
      if (p >= doc.size() || doc[p] != '=') return fail("attribute " + aname + " has no value");
      ++p;
      while (p < doc.size() && space(doc[p])) ++p;
      if (p >= doc.size() || (doc[p] != '"' && doc[p] != '\''))
        return fail("attribute " + aname + " is not quoted");
      const char q = doc[p];
      const std::size_t vend = doc.find(q, p + 1);
      if (vend == std::string_view::npos) return fail("unterminated value of " + aname);
      const std::string_view raw = doc.substr(p + 1, vend - p - 1);
      if (raw.find('<') != std::string_view::npos) return fail("'<' in the value of " + aname);
      std::string value;
      if (!decode(raw, value)) return fail("bad entity reference in the value of " + aname);
      if (!seen.insert(aname).second) return fail("attribute " + aname + " repeated");
      attrs.emplace_back(aname, std::move(value));
      p = vend + 1;
    }
    ++r.elements;
    if (!root_seen) {
      root_seen = true;
      bool ns = false;
      for (const auto& [k, v] : attrs)
        ns = ns || (k == "xmlns" && v == "http://www.w3.org/2000/svg");
      if (name != "svg" || !ns)
        return fail("the root is not <svg xmlns=\"http://www.w3.org/2000/svg\">");
    }
    if (name == "g") {
      bool is_series = false;
      const std::string* series_name = nullptr;
      for (const auto& [k, v] : attrs) {
        if (k == "class" && v == "series") is_series = true;
        if (k == "data-series") series_name = &v;
      }
      if (is_series && series_name != nullptr) r.series.push_back(*series_name);
    }
    if (!self_closing)
      open.push_back(name);
    else if (open.empty())
      root_closed = true;
    i = p + 1;
  }
  if (!root_seen) return fail("no root element");
  if (!open.empty()) return fail("<" + open.back() + "> is not closed");
  return r;
}

}  // namespace tandem_test
