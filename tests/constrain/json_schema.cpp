// JSON Schema to tandem's regex dialect (tandem/constrain/json_schema.hpp) and its JSON
// reader (tandem/constrain/detail/json.hpp).
//
// The regexes are checked with std::wregex (ECMAScript) over code points: the dialect
// emitted here (literals, \xHH, bracket classes over code points, (?: ), | and counted
// repetition) means the same there once the pattern and the text are decoded from UTF-8.
// Instances are generated from the schemas and judged by nlohmann-json plus a schema
// validator written here, independent of the compiler under test.
#include "tandem/constrain/json_schema.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "common/catch.hpp"

using tandem::errc;
using tandem::error_info;
using tandem::json_schema_options;
using tandem::json_schema_to_regex;
using json = nlohmann::ordered_json;

namespace {

// UTF-8 to code points; nullopt when the bytes are not valid UTF-8.
std::optional<std::wstring> decode(std::string_view s) {
  std::wstring out;
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0, min = 0;
    if (b0 < 0x80) {
      n = 0;
      cp = b0;
    } else if ((b0 & 0xE0) == 0xC0) {
      n = 1, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      n = 2, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      n = 3, cp = b0 & 0x07, min = 0x10000;
    } else {
      return std::nullopt;
    }
    if (i + n >= s.size() + (n == 0 ? 1 : 0) && n > 0) return std::nullopt;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (n > 0 && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) return std::nullopt;
    out += static_cast<wchar_t>(cp);
    i += n + 1;
  }
  return out;
}

// A compiled schema regex, matched as the automaton would: the whole text, over code
// points; text that is not UTF-8 never matches.
class matcher {
 public:
  explicit matcher(const std::string& re) {
    const auto w = decode(re);
    REQUIRE(w.has_value());
    REQUIRE_NOTHROW(re_ = std::wregex(*w, std::regex::ECMAScript));
  }
  bool operator()(std::string_view text) const {
    const auto w = decode(text);
    return w && std::regex_match(*w, re_);
  }

 private:
  std::wregex re_;
};

std::string to_regex(const std::string& schema, const json_schema_options& o = {}) {
  error_info info;
  auto r = json_schema_to_regex(schema, o, &info);
  INFO(schema << " -> " << info.context());
  REQUIRE(r.has_value());
  return *r;
}

// ---- an independent validator for the subset ------------------------------------------

std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

const json& resolve(const json& root, const std::string& ref) {
  // Only "#/$defs/NAME" in the test schemas.
  return root.at("$defs").at(ref.substr(std::string("#/$defs/").size()));
}

bool has_type(const json& v, const std::string& t) {
  if (t == "null") return v.is_null();
  if (t == "boolean") return v.is_boolean();
  if (t == "string") return v.is_string();
  if (t == "array") return v.is_array();
  if (t == "object") return v.is_object();
  if (t == "number") return v.is_number();
  if (t == "integer")
    return v.is_number_integer() ||
           (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  return false;
}

bool valid(const json& s, const json& v, const json& root);

bool valid_as(const json& s, const json& v, const std::string& t, const json& root) {
  if (!has_type(v, t)) return false;
  if (t == "object") {
    const json props = s.value("properties", json::object());
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!props.contains(it.key())) return false;
      if (!valid(props.at(it.key()), it.value(), root)) return false;
    }
    for (const auto& r : s.value("required", json::array()))
      if (!v.contains(r.get<std::string>())) return false;
  }
  if (t == "array") {
    if (s.contains("minItems") && v.size() < s["minItems"].get<std::size_t>()) return false;
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<std::size_t>()) return false;
    for (const auto& e : v)
      if (!valid(s.at("items"), e, root)) return false;
  }
  if (t == "string") {
    const auto str = v.get<std::string>();
    const std::size_t n = code_points(str);
    if (s.contains("minLength") && n < s["minLength"].get<std::size_t>()) return false;
    if (s.contains("maxLength") && n > s["maxLength"].get<std::size_t>()) return false;
    if (s.contains("pattern")) {
      const std::wregex re(*decode(s["pattern"].get<std::string>()), std::regex::ECMAScript);
      if (!std::regex_search(*decode(str), re)) return false;
    }
    if (s.value("format", "") == "uuid") {
      static const std::regex uuid(
          "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
      if (!std::regex_match(str, uuid)) return false;
    }
  }
  if (t == "integer" || t == "number") {
    const double x = v.get<double>();
    if (s.contains("minimum") && x < s["minimum"].get<double>()) return false;
    if (s.contains("maximum") && x > s["maximum"].get<double>()) return false;
    if (s.contains("exclusiveMinimum") && x <= s["exclusiveMinimum"].get<double>()) return false;
    if (s.contains("exclusiveMaximum") && x >= s["exclusiveMaximum"].get<double>()) return false;
  }
  return true;
}

bool valid(const json& s, const json& v, const json& root) {
  if (s.contains("$ref")) return valid(resolve(root, s["$ref"]), v, root);
  if (s.contains("anyOf")) {
    for (const auto& b : s["anyOf"])
      if (valid(b, v, root)) return true;
    return false;
  }
  std::vector<std::string> types;
  if (s.contains("type")) {
    if (s["type"].is_array())
      for (const auto& t : s["type"]) types.push_back(t);
    else
      types.push_back(s["type"]);
  }
  if (s.contains("enum") || s.contains("const")) {
    bool found = false;
    if (s.contains("const")) found = s["const"] == v;
    for (const auto& e : s.value("enum", json::array())) found = found || e == v;
    if (!found) return false;
    if (types.empty()) return true;
  }
  for (const auto& t : types)
    if (valid_as(s, v, t, root)) return true;
  return false;
}

// ---- a generator of valid instances ----------------------------------------------------

const std::vector<std::string> char_pool = {"a",
                                            "b",
                                            "z",
                                            "Q",
                                            "0",
                                            "7",
                                            "_",
                                            "-",
                                            " ",
                                            "/",
                                            ".",
                                            "\"",
                                            "\\",
                                            "\n",
                                            "\t",
                                            "\x01",
                                            "\xc3\xa9",
                                            "\xe2\x82\xac",
                                            "\xf0\x9f\x98\x80"};

// `controls`: also U+0001, which only a \u0001 escape can write (never generated by a
// string schema without a pattern, which leaves such controls out).
std::string random_string(std::mt19937_64& rng, std::size_t len, bool controls = true) {
  std::string s;
  for (std::size_t i = 0; i < len;) {
    const std::string& c = char_pool[rng() % char_pool.size()];
    if (!controls && c == "\x01") continue;
    s += c;
    ++i;
  }
  return s;
}

json generate(const json& s, std::mt19937_64& rng, const json& root);

json generate_as(const json& s, const std::string& t, std::mt19937_64& rng, const json& root) {
  if (t == "null") return nullptr;
  if (t == "boolean") return rng() % 2 == 0;
  if (t == "object") {
    json o = json::object();
    const json req = s.value("required", json::array());
    const json props = s.value("properties", json::object());
    for (const auto& [k, sub] : props.items()) {
      const bool required = std::find(req.begin(), req.end(), k) != req.end();
      if (required || rng() % 2 == 0) o[k] = generate(sub, rng, root);
    }
    return o;
  }
  if (t == "array") {
    const std::size_t lo = s.value("minItems", std::size_t{0});
    const std::size_t hi = std::min(s.value("maxItems", lo + 3), lo + 3);
    json a = json::array();
    const std::size_t n = lo + rng() % (hi - lo + 1);
    for (std::size_t i = 0; i < n; ++i) a.push_back(generate(s["items"], rng, root));
    return a;
  }
  if (t == "string") {
    if (s.contains("pattern")) {  // the test schemas list matching strings as "examples"
      const json& ex = s.at("examples");
      return ex[rng() % ex.size()];
    }
    if (s.value("format", "") == "uuid") {
      std::string u;
      for (int i = 0; i < 36; ++i)
        u += (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : "0123456789abcdefABCDEF"[rng() % 22];
      return u;
    }
    const std::size_t lo = s.value("minLength", std::size_t{0});
    const std::size_t hi = std::min<std::size_t>(s.value("maxLength", lo + 6), lo + 6);
    return random_string(rng, lo + rng() % (hi - lo + 1), false);
  }
  // integer or number: random values around the bounds, kept when valid.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    double lo = s.value("minimum", s.value("exclusiveMinimum", -1000.0));
    double hi = s.value("maximum", s.value("exclusiveMaximum", lo + 2000.0));
    if (!s.contains("minimum") && !s.contains("exclusiveMinimum")) lo = hi - 2000.0;
    const auto span = static_cast<std::int64_t>(hi - lo);
    const std::int64_t base = static_cast<std::int64_t>(std::floor(lo));
    json v;
    if (t == "integer") {
      v = base + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(span + 2));
    } else {
      const std::int64_t eighths =
          static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(8 * span + 9));
      v = static_cast<double>(base) + static_cast<double>(eighths) / 8.0;
    }
    if (valid_as(s, v, t, root)) return v;
  }
  FAIL("no number satisfies the bounds");
  return nullptr;
}

json generate(const json& s, std::mt19937_64& rng, const json& root) {
  if (s.contains("$ref")) return generate(resolve(root, s["$ref"]), rng, root);
  if (s.contains("anyOf")) return generate(s["anyOf"][rng() % s["anyOf"].size()], rng, root);
  if (s.contains("const")) return s["const"];
  if (s.contains("enum")) {
    for (;;) {
      const json& e = s["enum"][rng() % s["enum"].size()];
      if (valid(s, e, root)) return e;
    }
  }
  std::vector<std::string> types;
  if (s["type"].is_array())
    for (const auto& t : s["type"]) types.push_back(t);
  else
    types.push_back(s["type"]);
  return generate_as(s, types[rng() % types.size()], rng, root);
}

// Random byte edits of a JSON text.
std::string mutate(std::string s, std::mt19937_64& rng) {
  static const std::string alphabet = "{}[]\",:0123456789-+.eEatrufn \\x\xc3\xa9";
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits; ++e) {
    const std::size_t at = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 4) {
      case 0:
        if (!s.empty()) s.erase(at, 1);
        break;
      case 1:
        s.insert(at, 1, alphabet[rng() % alphabet.size()]);
        break;
      case 2:
        if (!s.empty()) s[at] = alphabet[rng() % alphabet.size()];
        break;
      default: {
        const std::size_t len = 1 + rng() % 8;
        s.insert(at, s.substr(at, len));
        break;
      }
    }
  }
  return s;
}

// Schemas of the property test; string patterns carry matching "examples" for the generator.
const char* const property_schemas[] = {
    R"({"type":"object","properties":{
        "action":{"enum":["walk","talk","flee"]},
        "say":{"type":"string","maxLength":10},
        "mood":{"type":"integer","minimum":-3,"maximum":12},
        "id":{"type":"string","pattern":"^npc-[0-9]{2}$","examples":["npc-00","npc-42"]}},
      "required":["action","id"]})",
    R"({"type":"array","items":{"type":"number","minimum":-2,"exclusiveMaximum":3},
        "minItems":1,"maxItems":4})",
    R"({"$defs":{"point":{"type":"object","properties":{"x":{"type":"integer"},
                                                         "y":{"type":"integer","exclusiveMinimum":0}},
                          "required":["x","y"]}},
        "type":"object","properties":{
          "points":{"type":"array","items":{"$ref":"#/$defs/point"},"maxItems":3},
          "label":{"type":["string","null"],"minLength":1,"maxLength":4},
          "ok":{"type":"boolean"},
          "nothing":{"type":"null"}},
        "required":["points"]})",
    R"({"anyOf":[{"type":"integer","minimum":100,"maximum":199},
                 {"const":{"kind":"none","tags":["a",1,null]}},
                 {"type":"string","format":"uuid"}]})",
    R"({"type":"object","properties":{
        "a":{"type":"number"},"b":{"type":"string","minLength":2},
        "c":{"type":"string","pattern":"a\\.b|\\d+$","examples":["xa.by","a.b","12","x\"y9"]},
        "d":{"type":"array","items":{"enum":[1,"two",[3],{"four":4},true,null]}},
        "e":{"type":"integer","exclusiveMinimum":-1000000,"maximum":99999999}}})",
    R"({"type":"string","pattern":"^[^a-c\"]{2,3}$","examples":["\\\\z","\u00e9x","zz"]})",
};

// Patterns of the pattern tests (valid in both tandem's dialect and ECMAScript), and values
// tried beside random ones.
const char* const patterns[] = {"a",
                                "^a",
                                "b$",
                                "^ab*$",
                                "^[a-z_]{2,3}$",
                                "\\d+",
                                "^(?:a|\\\\|\")+$",
                                "^[^a\\n]*$",
                                "^.{1,2}$",
                                "^\\D\\W$",
                                "\\w-",
                                "^(ab|z)?\\/.$",
                                "^\\u00e9|\\x2e$",
                                "^[\\u0001-\\u001f]$",
                                "^[\u00e9-\u20ac]+$",
                                "^\\S\\s",
                                "^(?:\U0001F600){2}$",
                                "^[^\"\\\\]$"};
const char* const probes[] = {"",
                              "a",
                              "ab",
                              "\xf0\x9f\x98\x80\xf0\x9f\x98\x80",
                              "\xc3\xa9\xe2\x82\xac",
                              "a.b",
                              "\\",
                              "\"",
                              "z/x",
                              "\x01",
                              "ab_",
                              "\xc3\xa9",
                              " \n",
                              "a-",
                              ".",
                              "/a",
                              "abbb"};

}  // namespace

TEST_CASE("json_schema: generated valid instances match and invalid mutations do not",
          "[constrain][json_schema]") {
  json_schema_options o;
  o.max_string_length = 12;
  std::size_t rejected_invalid = 0, accepted_mutants = 0;
  for (const char* text : property_schemas) {
    const json schema = json::parse(text);
    const std::string re = to_regex(text, o);
    INFO("schema " << text << "\nregex " << re);
    const matcher m(re);
    std::mt19937_64 rng(0x5eed + std::string_view(text).size());
    for (int i = 0; i < 150; ++i) {
      const json inst = generate(schema, rng, schema);
      REQUIRE(valid(schema, inst, schema));
      const std::string out = inst.dump();
      INFO("instance " << out);
      CHECK(m(out));
      for (int k = 0; k < 6; ++k) {
        const std::string bad = mutate(out, rng);
        const json parsed = json::parse(bad, nullptr, false);
        const bool is_valid = !parsed.is_discarded() && valid(schema, parsed, schema);
        INFO("mutant " << bad);
        if (!is_valid) {
          CHECK_FALSE(m(bad));
          ++rejected_invalid;
        } else if (m(bad)) {
          ++accepted_mutants;
        }
      }
    }
  }
  // The mutations must have produced plenty of invalid texts for the check to mean much.
  CHECK(rejected_invalid > 2000);
  INFO("valid mutants accepted: " << accepted_mutants);
}

TEST_CASE("json_schema: integer ranges match exactly the integers between the bounds",
          "[constrain][json_schema]") {
  std::mt19937_64 rng(17);
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs = {
      {0, 0},  {0, 9},   {1, 9},    {0, 10},   {5, 5},      {-5, 5},     {-1, 0},      {-10, -1},
      {9, 10}, {10, 99}, {99, 100}, {19, 200}, {-200, -19}, {123, 4567}, {-999, 1000}, {100, 109}};
  for (int i = 0; i < 120; ++i) {
    const std::int64_t scale = std::int64_t{1} << (rng() % 14);
    const std::int64_t a =
        static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(2 * scale + 1)) - scale;
    const std::int64_t b = a + static_cast<std::int64_t>(rng() % 1500);
    pairs.emplace_back(a, b);
  }
  for (const auto& [a, b] : pairs) {
    for (int form = 0; form < 4; ++form) {
      // form 0: minimum/maximum; 1: exclusive bounds one outside; 2: only a lower bound;
      // 3: only an upper bound.
      std::string schema = R"({"type":"integer")";
      if (form == 0)
        schema += ",\"minimum\":" + std::to_string(a) + ",\"maximum\":" + std::to_string(b);
      if (form == 1)
        schema += ",\"exclusiveMinimum\":" + std::to_string(a - 1) +
                  ",\"exclusiveMaximum\":" + std::to_string(b + 1);
      if (form == 2) schema += ",\"minimum\":" + std::to_string(a);
      if (form == 3) schema += ",\"maximum\":" + std::to_string(b);
      schema += "}";
      const std::string re = to_regex(schema);
      INFO(schema << " -> " << re);
      const std::regex r(re, std::regex::ECMAScript);
      for (std::int64_t x = a - 120; x <= b + 120; ++x) {
        const bool in = (form == 3 || x >= a) && (form == 2 || x <= b);
        INFO(x);
        REQUIRE(std::regex_match(std::to_string(x), r) == in);
      }
      // Spellings JSON does not allow, or not this way.
      CHECK_FALSE(std::regex_match("-0", r));
      CHECK_FALSE(std::regex_match("0" + std::to_string(std::max<std::int64_t>(b, 1)), r));
      CHECK_FALSE(std::regex_match("+" + std::to_string(std::max<std::int64_t>(a, 1)), r));
      CHECK_FALSE(std::regex_match(std::to_string(a) + ".0", r));
    }
  }
}

TEST_CASE("json_schema: integer bounds that are not integers round inward",
          "[constrain][json_schema]") {
  const std::regex r(to_regex(R"({"type":"integer","minimum":-2.5,"exclusiveMaximum":7.0})"));
  for (int x = -10; x <= 10; ++x)
    CHECK(std::regex_match(std::to_string(x), r) == (x >= -2 && x < 7));
}

TEST_CASE("json_schema: bounded numbers match exactly the decimals between integer bounds",
          "[constrain][json_schema]") {
  struct range {
    int lo, hi;
    bool lo_set, hi_set, lo_excl, hi_excl;
  };
  const range ranges[] = {{0, 1, true, true, false, false},  {0, 1, true, true, true, true},
                          {-3, 2, true, true, false, true},  {-7, -2, true, true, true, false},
                          {5, 0, true, false, false, false}, {0, -4, false, true, false, true},
                          {-2, 0, true, true, false, false}, {-2, 0, true, true, false, true},
                          {0, 0, true, true, false, false},  {12, 130, true, true, true, true}};
  for (const range& g : ranges) {
    std::string schema = R"({"type":"number")";
    if (g.lo_set)
      schema += std::string(g.lo_excl ? ",\"exclusiveMinimum\":" : ",\"minimum\":") +
                std::to_string(g.lo);
    if (g.hi_set)
      schema += std::string(g.hi_excl ? ",\"exclusiveMaximum\":" : ",\"maximum\":") +
                std::to_string(g.hi);
    schema += "}";
    const std::string re = to_regex(schema);
    INFO(schema << " -> " << re);
    const std::regex r(re, std::regex::ECMAScript);
    for (int e = -8 * 140; e <= 8 * 140; ++e) {
      const double x = e / 8.0;
      const bool in = (!g.lo_set || (g.lo_excl ? x > g.lo : x >= g.lo)) &&
                      (!g.hi_set || (g.hi_excl ? x < g.hi : x <= g.hi));
      const std::string text = json(x).dump();  // e.g. "2.0", "-0.125"
      INFO(text);
      REQUIRE(std::regex_match(text, r) == in);
      if (e % 8 == 0) {
        const std::string integral = std::to_string(e / 8);
        REQUIRE(std::regex_match(integral, r) == in);
        REQUIRE(std::regex_match(integral + ".000", r) == in);
      }
    }
    CHECK_FALSE(std::regex_match("1e0", r));
    CHECK_FALSE(std::regex_match(".5", r));
    CHECK_FALSE(std::regex_match("1.", r));
  }
}

TEST_CASE("json_schema: a pattern constrains the decoded string, searched as ECMA-262 does",
          "[constrain][json_schema]") {
  std::mt19937_64 rng(99);
  std::size_t matched = 0, total = 0;
  for (const char* p : patterns) {
    const json schema = {{"type", "string"}, {"pattern", p}};
    const std::string re = to_regex(schema.dump());
    INFO("pattern " << p << " -> " << re);
    const matcher m(re);
    const std::wregex ecma(*decode(p), std::regex::ECMAScript);
    std::vector<std::string> values(std::begin(probes), std::end(probes));
    for (int i = 0; i < 400; ++i) values.push_back(random_string(rng, rng() % 5));
    for (const std::string& s : values) {
      const bool expect = std::regex_search(*decode(s), ecma);
      INFO("value " << json(s).dump());
      CHECK(m(json(s).dump()) == expect);
      matched += expect;
      ++total;
    }
  }
  CHECK(matched > total / 10);  // both outcomes are exercised
  CHECK(matched < total - total / 10);
}

TEST_CASE("json_schema: format date matches exactly the calendar dates, leap years included",
          "[constrain][json_schema]") {
  const std::regex r(to_regex(R"({"type":"string","format":"date"})"), std::regex::ECMAScript);
  const int years[] = {0, 4, 100, 400, 1900, 1996, 1999, 2000, 2023, 2024, 2100, 2400, 9999};
  for (const int y : years)
    for (int m = 0; m <= 13; ++m)
      for (int d = 0; d <= 32; ++d) {
        const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        const int days[] = {0, 31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        const bool in = m >= 1 && m <= 12 && d >= 1 && d <= days[m];
        char text[32];
        std::snprintf(text, sizeof text, "\"%04d-%02d-%02d\"", y, m, d);
        INFO(text);
        REQUIRE(std::regex_match(text, r) == in);
      }
  CHECK_FALSE(std::regex_match("\"2024-1-01\"", r));
  CHECK_FALSE(std::regex_match("\"24-01-01\"", r));
}

TEST_CASE("json_schema: every keyword outside the subset is unsupported and named",
          "[constrain][json_schema]") {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"type":"object","oneOf":[{"type":"null"}]})", "oneOf"},
      {R"({"allOf":[{"type":"null"}]})", "allOf"},
      {R"({"not":{"type":"null"}})", "not"},
      {R"({"type":"object","patternProperties":{}})", "patternProperties"},
      {R"({"type":"object","minProperties":1})", "minProperties"},
      {R"({"type":"array","items":{"type":"null"},"uniqueItems":true})", "uniqueItems"},
      {R"({"type":"array","items":{"type":"null"},"contains":{"type":"null"}})", "contains"},
      {R"({"type":"array","prefixItems":[]})", "prefixItems"},
      {R"({"type":"number","multipleOf":2})", "multipleOf"},
      {R"({"if":{"type":"null"},"then":{"type":"null"}})", "if"},
      {R"({"type":"object","additionalProperties":true})", "additionalProperties"},
      {R"({"type":"object","additionalProperties":{"type":"null"}})", "additionalProperties"},
      {R"({"type":"string","format":"date-time"})", "format"},
      {R"({"type":"string","pattern":"a","maxLength":3})", "pattern"},
      {R"({"type":"number","maximum":0.5})", "maximum"},
      {R"({"type":"integer","minimum":1e300})", "minimum"},
      {R"({"type":"integer","exclusiveMinimum":true})", "exclusiveMinimum"},
      {R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})", "recursive"},
      {R"({"$ref":"other.json#/x"})", "$ref"},
      {R"({"$ref":"#/$defs/a","type":"null","$defs":{"a":{"type":"null"}}})", "type"},
      {R"({"enum":[1,2],"minimum":1})", "minimum"},
      {R"({"type":"array"})", "items"},
      {R"({"description":"anything"})", "type"},
      {R"(true)", "true"},
      {R"({"type":"object","properties":{"a":{"type":"null"}},"required":["b"]})", "required"},
      {R"j({"type":"string","pattern":"(?=a)"})j", "lookaround"},
      {R"({"type":"string","pattern":"(a)\\1"})", "backreference"},
      {R"({"type":"string","pattern":"\\bword"})", "word boundar"},
      {R"({"type":"string","pattern":"a^b"})", "'^'"},
  };
  for (const auto& [schema, name] : cases) {
    error_info info;
    const auto r = json_schema_to_regex(schema, {}, &info);
    INFO(schema << ": " << info.context());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::unsupported);
    CHECK(info.code == errc::unsupported);
    CHECK(info.context().find(name) != std::string_view::npos);
    CHECK(info.line >= 1);
  }
}

TEST_CASE("json_schema: annotations are ignored and the output does not depend on them",
          "[constrain][json_schema]") {
  const std::string plain = to_regex(R"({"type":"object","properties":{"a":{"type":"boolean"}}})");
  const std::string annotated = to_regex(
      R"({"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"x","title":"T",
          "description":"d","$comment":"c","type":"object","examples":[{}],"default":{},
          "properties":{"a":{"type":"boolean","deprecated":true,"readOnly":false}}})");
  CHECK(plain == annotated);
  const matcher m(plain);
  CHECK(m("{}"));
  CHECK(m("{\"a\":true}"));
  CHECK_FALSE(m("{\"a\":1}"));
  CHECK_FALSE(m("{\"b\":true}"));
}

TEST_CASE("json_schema: malformed JSON is a parse_error with its line and column",
          "[constrain][json_schema]") {
  struct bad_text {
    const char* text;
    std::uint64_t line, column;
  };
  const bad_text cases[] = {
      {"{\"type\": \"object\",\n  \"x\" 3}", 2, 7},
      {"{\"type\": \"object\"} x", 1, 20},
      {"[1, 2,]", 1, 7},
      {"{\"a\":1,\n\"a\":2}", 2, 1},
      {R"({"b":1,"a":2,"c":3,"a":4,"b":5})", 1, 20},
      {"\"\\ud800\"", 1, 8},
      {"\"\\udc00\"", 1, 8},
      {"{\"a\": tru}", 1, 7},
      {"{\"a\": 01}", 1, 8},
      {"\"\xff\"", 1, 2},
      {"", 1, 1},
      {"\"abc", 1, 5},
      {"\"a\tb\"", 1, 3},
  };
  for (const bad_text& c : cases) {
    error_info info;
    const auto r = json_schema_to_regex(c.text, {}, &info);
    INFO(c.text << ": " << info.context());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::parse_error);
    CHECK(info.line == c.line);
    CHECK(info.column == c.column);
  }
}

TEST_CASE("json reader: values, escapes, surrogate pairs, depth limit and document order",
          "[constrain][json_schema]") {
  namespace dj = tandem::detail::json;
  const auto v =
      dj::parse(R"( {"z":[1,-2.5e1,true,false,null],"a":"x\u00e9\ud83d\ude00\n\"\\\/","m":{}} )");
  REQUIRE(v.has_value());
  REQUIRE(v->type == dj::kind::object);
  REQUIRE(v->members.size() == 3);
  CHECK(v->members[0].key == "z");
  CHECK(v->members[1].key == "a");
  const dj::value* z = v->find("z");
  REQUIRE(z != nullptr);
  REQUIRE(z->items.size() == 5);
  CHECK(z->items[1].number == -25.0);
  CHECK(z->items[1].text == "-2.5e1");
  CHECK(z->items[2].boolean);
  CHECK(z->items[4].type == dj::kind::null);
  CHECK(v->find("a")->text == "x\xc3\xa9\xf0\x9f\x98\x80\n\"\\/");
  CHECK(v->find("missing") == nullptr);
  CHECK(z->line == 1);
  CHECK(z->column == 7);

  std::string deep(70, '[');
  deep += std::string(70, ']');
  error_info info;
  CHECK(dj::parse(deep, {}, &info).error() == errc::parse_error);
  CHECK(info.context().find("nesting") != std::string_view::npos);
  dj::parse_options o;
  o.max_depth = 80;
  CHECK(dj::parse(deep, o).has_value());
}

TEST_CASE("json_schema: whitespace is allowed only where the options allow it",
          "[constrain][json_schema]") {
  const char* schema =
      R"({"type":"object","properties":{"a":{"type":"array","items":{"type":"integer"}},
                                        "b":{"type":"string","maxLength":3}},"required":["a"]})";
  const matcher compact(to_regex(schema));
  CHECK(compact(R"({"a":[1,2],"b":"x y"})"));
  CHECK_FALSE(compact(R"({"a": [1,2]})"));
  json_schema_options o;
  o.max_whitespace = 3;
  const matcher spaced(to_regex(schema, o));
  CHECK(spaced(R"({"a":[1,2],"b":"x y"})"));
  CHECK(spaced("{ \"a\" :\n[ 1 ,\t2 ] ,\r\n \"b\": \"x y\"\n}"));
  CHECK_FALSE(spaced("{    \"a\":[]}"));
  CHECK_FALSE(spaced(" {\"a\":[]}"));  // none outside the value
  CHECK_FALSE(spaced("{\"a\":[1,2],\"b\":\"x y \"}"));
}

TEST_CASE("json_schema: strings without maxLength are bounded by max_string_length",
          "[constrain][json_schema]") {
  const char* schema = R"({"type":"string","minLength":1})";
  json_schema_options o;
  o.max_string_length = 5;
  const matcher bounded(to_regex(schema, o));
  CHECK_FALSE(bounded("\"\""));
  CHECK(
      bounded("\"\\n\\t\\\"\xe2\x82\xac"
              "a\""));                  // 5 characters, one spelling each
  CHECK_FALSE(bounded("\"\\u0001\""));  // only a \u escape writes U+0001: left out
  CHECK_FALSE(bounded("\"abcdef\""));
  CHECK_FALSE(bounded("\"\\u000a\""));  // \n has the short spelling only
  CHECK_FALSE(bounded("\"\\/\""));      // '/' is written as itself
  o.max_string_length = 0;
  const matcher unbounded(to_regex(schema, o));
  CHECK(unbounded("\"" + std::string(3000, 'x') + "\""));
  CHECK(json_schema_to_regex(schema)->find("{1,128}") != std::string::npos);
}

TEST_CASE("json_schema: optional properties may be left out in any combination, in schema order",
          "[constrain][json_schema]") {
  const matcher m(to_regex(
      R"({"type":"object","properties":{"a":{"type":"null"},"b":{"type":"null"},
          "c":{"type":"null"},"d":{"type":"null"}},"required":["c"]})"));
  const char* keys = "abcd";
  for (int mask = 0; mask < 16; ++mask) {
    std::string text = "{";
    for (int k = 0; k < 4; ++k) {
      if (!(mask & (1 << k))) continue;
      if (text.size() > 1) text += ",";
      text += std::string("\"") + keys[k] + "\":null";
    }
    text += "}";
    INFO(text);
    CHECK(m(text) == ((mask & 4) != 0));
  }
  CHECK_FALSE(m(R"({"c":null,"a":null})"));
  CHECK_FALSE(m(R"({,"c":null})"));
  CHECK_FALSE(m(R"({"c":null,})"));
}

TEST_CASE("json_schema: limits give constraint_too_large and bad schemas invalid_argument",
          "[constrain][json_schema]") {
  std::string deep = R"({"type":"null"})";
  for (int i = 0; i < 40; ++i) deep = R"({"type":"object","properties":{"a":)" + deep + "}}";
  error_info info;
  CHECK(json_schema_to_regex(deep, {}, &info).error() == errc::constraint_too_large);
  json_schema_options o;
  o.max_nesting = 64;
  CHECK(json_schema_to_regex(deep, o).has_value());
  // $refs that double at each level.
  std::string defs = R"({"$defs":{"d0":{"type":"boolean"})";
  for (int i = 1; i < 30; ++i)
    defs += ",\"d" + std::to_string(i) +
            R"(":{"type":"array","items":{"anyOf":[{"$ref":"#/$defs/d)" + std::to_string(i - 1) +
            R"("},{"$ref":"#/$defs/d)" + std::to_string(i - 1) + "\"}]}}";
  defs += R"(},"$ref":"#/$defs/d29"})";
  o.max_nesting = 1000;
  CHECK(json_schema_to_regex(defs, o, &info).error() == errc::constraint_too_large);
  CHECK(info.context().find("max_regex_size") != std::string_view::npos);
  const std::string nested_groups =
      R"({"type":"string","pattern":")" + std::string(300, '(') + std::string(300, ')') + "\"}";
  CHECK(json_schema_to_regex(nested_groups).error() == errc::constraint_too_large);
  const std::string fine_groups = R"({"type":"string","pattern":")" + std::string(200, '(') + "a" +
                                  std::string(200, ')') + "\"}";
  CHECK(json_schema_to_regex(fine_groups).has_value());
  CHECK(json_schema_to_regex(R"({"type":"strnig"})").error() == errc::invalid_argument);
  CHECK(json_schema_to_regex(R"({"type":"integer","minimum":5,"maximum":4})").error() ==
        errc::invalid_argument);
  CHECK(json_schema_to_regex(R"({"$ref":"#/$defs/none"})").error() == errc::invalid_argument);
  CHECK(
      json_schema_to_regex(R"({"type":"array","items":{"type":"null"},"minItems":3,"maxItems":2})")
          .error() == errc::invalid_argument);
}

namespace {

tandem::token_vocabulary byte_vocabulary() {
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.emplace_back(1, static_cast<char>(b));
  auto vocab = tandem::token_vocabulary::from_bytes(std::move(bytes), {});
  REQUIRE(vocab.has_value());
  return std::move(*vocab);
}

// Whether the compiled constraint accepts `text`, fed one byte token at a time.
bool accepts(const tandem::compiled_constraint& c, std::string_view text) {
  tandem::constraint_state st(c);
  for (const char ch : text)
    if (st.advance(static_cast<unsigned char>(ch)) != errc::ok) return false;
  return st.can_end();
}

}  // namespace

TEST_CASE("json_schema: compile_json_schema accepts what the regex matches, byte by byte",
          "[constrain][json_schema]") {
  const auto vocab = byte_vocabulary();
  json_schema_options o;
  o.max_string_length = 12;
  for (const char* text : property_schemas) {
    const json schema = json::parse(text);
    error_info info;
    const auto c = tandem::compile_json_schema(text, vocab, o, &info);
    INFO(text << ": " << info.context());
    REQUIRE(c.has_value());
    const matcher m(to_regex(text, o));
    std::mt19937_64 rng(0xc0de + std::string_view(text).size());
    for (int i = 0; i < 60; ++i) {
      const std::string out = generate(schema, rng, schema).dump();
      INFO(out);
      CHECK(accepts(*c, out));
      for (int k = 0; k < 4; ++k) {
        const std::string bad = mutate(out, rng);
        INFO(bad);
        CHECK(accepts(*c, bad) == m(bad));
      }
    }
  }
  for (const char* p : patterns) {
    const std::string schema = json({{"type", "string"}, {"pattern", p}}).dump();
    const auto c = tandem::compile_json_schema(schema, vocab);
    INFO(schema);
    REQUIRE(c.has_value());
    const matcher m(to_regex(schema));
    std::mt19937_64 rng(0xfeed);
    std::vector<std::string> values(std::begin(probes), std::end(probes));
    for (int i = 0; i < 100; ++i) values.push_back(random_string(rng, rng() % 5));
    for (const std::string& v : values) {
      const std::string text = json(v).dump();
      INFO(text);
      CHECK(accepts(*c, text) == m(text));
    }
  }
  error_info info;
  CHECK(tandem::compile_json_schema(R"({"oneOf":[]})", vocab, {}, &info).error() ==
        errc::unsupported);
  CHECK(info.context().find("oneOf") != std::string_view::npos);
}
