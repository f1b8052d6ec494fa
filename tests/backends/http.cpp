// Tests of the HTTP generator against an in-process server whose answers each test sets:
// option and URL validation, response parsing, named errors, retries, timeouts, streams.
#include "tandem/backends/http.hpp"
#include "tandem/tandem.hpp"

// The fake server's request bodies are decoded, and its answers built, with nlohmann-json
// (a test-only dependency: the header no longer includes it).
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "backends/http_test_util.hpp"
#include "common/catch.hpp"
#include "common/test_constraint.hpp"
#include "tandem/confidence/white_box.hpp"

namespace {

using tandem::errc;
using tandem::finish_reason;
using tandem::http_endpoint;
using tandem::http_generator;
using tandem::http_options;
using tandem_test::fake_server;
using json = nlohmann::json;

http_options fast_options(const std::string& url) {
  http_options o;
  o.base_url = url;
  o.connect_timeout = std::chrono::milliseconds(500);
  o.read_timeout = std::chrono::milliseconds(2000);
  o.backoff_initial = std::chrono::milliseconds(1);
  o.backoff_max = std::chrono::milliseconds(5);
  return o;
}

http_generator make(const http_options& o) {
  auto g = http_generator::create(o);
  REQUIRE(g.has_value());
  return std::move(*g);
}

tandem::generate_request request(std::string_view prompt = "In the beginning") {
  tandem::generate_request r;
  r.prompt = prompt;
  r.options.max_tokens = 3;
  return r;
}

const char* k_completion = R"({"choices":[{"text":" God created","index":0,
  "logprobs":{"content":[{"id":7,"token":" God","logprob":-0.5},{"id":9,"token":" created","logprob":-1.25}]},
  "finish_reason":"length"}],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}})";

std::string sse(const std::vector<std::string>& events, bool done = true) {
  std::string s;
  for (const auto& e : events) s += "data: " + e + "\n\n";
  if (done) s += "data: [DONE]\n\n";
  return s;
}

std::string chunk(std::string_view text, int id, double lp, const char* finish = nullptr) {
  json j;
  j["choices"] = json::array(
      {json{{"text", text},
            {"index", 0},
            {"logprobs",
             {{"content", json::array({json{{"id", id}, {"token", text}, {"logprob", lp}}})}}},
            {"finish_reason", finish ? json(finish) : json(nullptr)}}});
  return j.dump();
}

std::vector<std::string> three_chunks() {
  return {chunk(" a", 1, -0.1), chunk(" b", 2, -0.2), chunk(" c", 3, -0.3, "stop"),
          R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}})"};
}

}  // namespace

TEST_CASE("http: create accepts http and https base URLs with a path prefix", "[backends][http]") {
  auto g = http_generator::create(fast_options("http://127.0.0.1:8080/v1/"));
  REQUIRE(g.has_value());
  CHECK(g->endpoint_path() == "/v1/completions");
  CHECK_FALSE(g->uses_tls());
  auto o = fast_options("http://localhost");
  o.endpoint = http_endpoint::chat_completions;
  auto chat = http_generator::create(o);
  REQUIRE(chat.has_value());
  CHECK(chat->endpoint_path() == "/chat/completions");
  CHECK(http_generator::create(fast_options("http://[::1]:9000/v1")).has_value());
  auto tls = http_generator::create(fast_options("https://api.example.com/v1"));
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  REQUIRE(tls.has_value());
  CHECK(tls->uses_tls());
#else
  REQUIRE_FALSE(tls.has_value());
  CHECK(tls.error() == errc::unsupported);
#endif
}

TEST_CASE("http: create rejects malformed base URLs with invalid_argument", "[backends][http]") {
  for (const char* bad : {"", "127.0.0.1:8080", "ftp://host/v1", "http://", "http://:80",
                          "http://host:", "http://host:0", "http://host:65536", "http://host:8x",
                          "http://user:pw@host/v1", "http://host/v1?x=1", "http://host/v1#f",
                          "http://ho st/v1", "http://host//v1", "http://[::1/v1"}) {
    INFO(bad);
    auto g = http_generator::create(fast_options(bad));
    REQUIRE_FALSE(g.has_value());
    CHECK(g.error() == errc::invalid_argument);
  }
}

TEST_CASE("http: create rejects out-of-domain options", "[backends][http]") {
  const auto bad = [](auto mutate) {
    auto o = fast_options("http://127.0.0.1:1/v1");
    mutate(o);
    auto g = http_generator::create(o);
    return !g.has_value() && g.error() == errc::invalid_argument;
  };
  CHECK(bad([](http_options& o) { o.connect_timeout = std::chrono::milliseconds(0); }));
  CHECK(bad([](http_options& o) { o.read_timeout = std::chrono::milliseconds(-1); }));
  CHECK(bad([](http_options& o) { o.max_retries = 17; }));
  CHECK(bad([](http_options& o) { o.backoff_max = std::chrono::milliseconds(0); }));
  CHECK(bad([](http_options& o) { o.price_per_input_token = -1.0; }));
  CHECK(bad([](http_options& o) { o.price_per_output_token = std::nan(""); }));
  CHECK(bad([](http_options& o) { o.top_logprobs = 21; }));
  CHECK(bad([](http_options& o) { o.api_key = "key\r\nX-Evil: 1"; }));
  // The details name the option at fault, never the key's value.
  auto o = fast_options("http://127.0.0.1:1/v1");
  o.api_key = "sk-hidden\n";
  tandem::error_info info;
  REQUIRE(http_generator::create(o, &info).error() == errc::invalid_argument);
  CHECK(info.context().find("api_key") != std::string_view::npos);
  CHECK(info.context().find("sk-hidden") == std::string_view::npos);
  o = fast_options("http://127.0.0.1:1/v1");
  o.max_retries = 17;
  REQUIRE(http_generator::create(o, &info).error() == errc::invalid_argument);
  CHECK(info.context().find("max_retries") != std::string_view::npos);
}

TEST_CASE("http: requests outside the domain are named errors and send nothing",
          "[backends][http]") {
  fake_server fs;
  std::atomic<int> hits{0};
  fs.server.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.set_content(k_completion, "application/json");
  });
  fs.start();
  auto g = make(fast_options(fs.url()));
  auto r = request();
  r.prompt = "";
  CHECK(g.generate(r).error() == errc::empty_input);
  r = request();
  r.options.max_tokens = 0;
  CHECK(g.generate(r).error() == errc::invalid_argument);
  r = request();
  r.sampling.temperature = -0.5f;
  CHECK(g.generate(r).error() == errc::invalid_temperature);
  r = request();
  r.sampling.top_p = 0.0f;
  CHECK(g.generate(r).error() == errc::invalid_argument);
  r = request();
  const tandem::token_id eos[] = {2};
  r.options.stop_tokens = eos;
  CHECK(g.generate(r).error() == errc::unsupported);
  CHECK(g.last_error().code == errc::unsupported);
  CHECK(g.last_error().context().find("stop token ids") != std::string_view::npos);
  r = request();
  tandem_test::token_set_constraint only_a(8, {1});
  r.options.constraint = only_a;
  CHECK(g.generate(r).error() == errc::unsupported);  // never silently unconstrained
  CHECK(g.last_error().context().find("constraint") != std::string_view::npos);
  CHECK(g.last_attempts() == 0);
  CHECK(hits == 0);
}

TEST_CASE("http: a completion carries text, log-probabilities, token ids, usage and cost",
          "[backends][http]") {
  fake_server fs;
  json seen;
  std::string auth;
  fs.server.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    seen = json::parse(req.body);
    auth = req.get_header_value("Authorization");
    res.set_content(k_completion, "application/json");
  });
  fs.start();
  auto o = fast_options(fs.url());
  o.model = "big";
  o.api_key = "sk-secret";
  o.price_per_input_token = 0.5;
  o.price_per_output_token = 2.0;
  auto g = make(o);
  auto r = request();
  const std::string_view stops[] = {"\n\n", "Amen"};
  r.options.stop_strings = stops;
  r.sampling.temperature = 0.7f;
  r.sampling.top_p = 0.9f;
  r.sampling.seed = 42;
  auto c = g.generate(r);
  REQUIRE(c.has_value());
  CHECK(c->text == " God created");
  CHECK(c->tokens == std::vector<tandem::token_id>{7, 9});
  REQUIRE(c->logprobs.size() == 2);
  CHECK(c->logprobs[0] == -0.5f);
  CHECK(c->logprobs[1] == -1.25f);
  CHECK(c->finish == finish_reason::length);
  CHECK(c->prompt_tokens == 4);
  CHECK(c->cost == Approx(4 * 0.5 + 2 * 2.0));
  CHECK(auth == "Bearer sk-secret");
  CHECK(seen["model"] == "big");
  CHECK(seen["prompt"] == "In the beginning");
  CHECK(seen["max_tokens"] == 3);
  CHECK(seen["seed"] == 42);
  CHECK(seen["stop"] == json::array({"\n\n", "Amen"}));
  CHECK(seen["top_p"].get<double>() == Approx(0.9));
  CHECK(seen["logprobs"] == 1);
  CHECK_FALSE(seen.contains("stream"));
  CHECK(g.last_error().code == errc::ok);
  // The white-box estimators work on the remote answer.
  auto s = tandem::score_white_box(*c);
  REQUIRE(s.has_value());
  CHECK(s->mean_logprob == Approx(-0.875));
}

TEST_CASE("http: legacy completions log-probabilities and chat messages are understood",
          "[backends][http]") {
  fake_server fs;
  json chat_seen;
  fs.server.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(
        R"({"choices":[{"text":"xy","logprobs":{"tokens":["x","y"],"token_logprobs":[-0.1,-0.2]},
      "finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}})",
        "application/json");
  });
  fs.server.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) {
    chat_seen = json::parse(req.body);
    res.set_content(R"({"choices":[{"message":{"role":"assistant","content":"hi"},
      "logprobs":{"content":[{"token":"hi","logprob":-0.3}]},"finish_reason":"stop"}],
      "usage":{"prompt_tokens":9,"completion_tokens":1}})",
                    "application/json");
  });
  fs.start();
  auto legacy = make(fast_options(fs.url())).generate(request());
  REQUIRE(legacy.has_value());
  CHECK(legacy->text == "xy");
  CHECK(legacy->tokens.empty());  // the server reported no ids
  REQUIRE(legacy->logprobs.size() == 2);
  CHECK(legacy->logprobs[1] == -0.2f);
  CHECK(legacy->finish == finish_reason::stop_token);

  auto o = fast_options(fs.url());
  o.endpoint = http_endpoint::chat_completions;
  o.top_logprobs = 3;
  auto c = make(o).generate(request());
  REQUIRE(c.has_value());
  CHECK(c->text == "hi");
  CHECK(c->logprobs == std::vector<float>{-0.3f});
  CHECK(c->prompt_tokens == 9);
  CHECK(chat_seen["messages"] == json::parse(R"([{"role":"user","content":"In the beginning"}])"));
  CHECK(chat_seen["logprobs"] == true);
  CHECK(chat_seen["top_logprobs"] == 3);
}

TEST_CASE("http: chat sends the whole message list to /v1/chat/completions", "[backends][http]") {
  fake_server fs;
  json seen;
  int requests = 0;
  fs.server.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) {
    ++requests;
    seen = json::parse(req.body);
    res.set_content(R"({"choices":[{"message":{"role":"assistant","content":"Jacob"},
      "finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":1}})",
                    "application/json");
  });
  fs.start();
  auto o = fast_options(fs.url());
  o.endpoint = http_endpoint::chat_completions;
  auto g = make(o);
  const std::vector<tandem::chat_message> history{
      {tandem::chat_role::system, "Answer with one name."},
      {tandem::chat_role::user, "Who begat Isaac?"},
      {tandem::chat_role::assistant, "Abraham"},
      {tandem::chat_role::user, "And Isaac begat \"whom\"?\n"}};
  tandem::generate_request req = request("");
  auto c = g.chat(history, req);
  REQUIRE(c.has_value());
  CHECK(c->text == "Jacob");
  CHECK(c->prompt_tokens == 21);
  REQUIRE(seen["messages"].is_array());
  REQUIRE(seen["messages"].size() == history.size());
  for (std::size_t i = 0; i < history.size(); ++i) {
    CAPTURE(i);
    CHECK(seen["messages"][i]["role"] == std::string(tandem::to_string(history[i].role)));
    CHECK(seen["messages"][i]["content"] == history[i].content);
    CHECK(seen["messages"][i].size() == 2);
  }
  CHECK(seen["max_tokens"] == 3);

  // Refused before anything is sent.
  CHECK(g.chat({}, req).error() == errc::empty_input);
  CHECK(g.chat(history, request("also a prompt")).error() == errc::invalid_argument);
  CHECK(g.last_error().code == errc::invalid_argument);
  auto plain = make(fast_options(fs.url()));  // the completions endpoint
  CHECK(plain.chat(history, req).error() == errc::unsupported);
  CHECK(plain.last_error().context().find("chat_completions") != std::string_view::npos);
  CHECK(requests == 1);
}

TEST_CASE("http: a 4xx answer is an http_error with the server's message, not retried",
          "[backends][http]") {
  fake_server fs;
  std::atomic<int> hits{0};
  fs.server.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    ++hits;
    res.status = 401;
    // A careless server echoes the credentials back.
    res.set_content(
        R"({"error":{"message":"bad key )" + req.get_header_value("Authorization") + R"("}})",
        "application/json");
  });
  fs.start();
  auto o = fast_options(fs.url());
  o.api_key = "sk-topsecret";
  auto g = make(o);
  auto c = g.generate(request());
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error() == errc::http_error);
  CHECK(hits == 1);
  CHECK(g.last_status() == 401);
  CHECK(g.last_error().context().find("bad key") != std::string::npos);
  CHECK(g.last_error().context().find("sk-topsecret") == std::string::npos);
}

TEST_CASE("http: 5xx and 429 are retried with backoff, a bounded number of times",
          "[backends][http]") {
  fake_server fs;
  std::atomic<int> hits{0};
  std::atomic<int> fail_first{0};
  fs.server.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    const int n = ++hits;
    if (n <= fail_first) {
      res.status = n % 2 ? 503 : 429;
      res.set_content(R"({"error":"busy"})", "application/json");
      return;
    }
    res.set_content(k_completion, "application/json");
  });
  fs.start();
  auto o = fast_options(fs.url());
  o.max_retries = 3;
  auto g = make(o);
  fail_first = 2;
  auto ok = g.generate(request());
  REQUIRE(ok.has_value());
  CHECK(ok->text == " God created");
  CHECK(g.last_attempts() == 3);

  hits = 0;
  fail_first = 100;
  auto bad = g.generate(request());
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error() == errc::http_error);
  CHECK(hits == 4);
  CHECK(g.last_attempts() == 4);
  CHECK(g.last_error().context().find("busy") != std::string::npos);
}

TEST_CASE("http: malformed JSON and missing fields are named errors", "[backends][http]") {
  fake_server fs;
  std::string body;
  fs.server.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "application/json");
  });
  fs.start();
  auto g = make(fast_options(fs.url()));
  body = "{\"choices\": [";
  CHECK(g.generate(request()).error() == errc::parse_error);
  body = R"({"object":"text_completion"})";
  CHECK(g.generate(request()).error() == errc::not_found);
  body = R"({"choices":[{"index":0}]})";
  CHECK(g.generate(request()).error() == errc::not_found);
  body = R"({"choices":[{"text":"a","logprobs":{"content":[{"token":"a"}]}}]})";
  CHECK(g.generate(request()).error() == errc::not_found);
  body = R"({"choices":"nope"})";
  CHECK(g.generate(request()).error() == errc::parse_error);
}

TEST_CASE("http: an unreachable host is a network_error after the bounded retries",
          "[backends][http]") {
  auto o = fast_options("http://127.0.0.1:" + std::to_string(tandem_test::free_port()) + "/v1");
  o.max_retries = 2;
  auto g = make(o);
  auto c = g.generate(request());
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error() == errc::network_error);
  CHECK(g.last_attempts() == 3);
}

TEST_CASE("http: a server that accepts and never answers is a timeout", "[backends][http]") {
  tandem_test::silent_port silent;
  auto o = fast_options("http://127.0.0.1:" + std::to_string(silent.port) + "/v1");
  o.read_timeout = std::chrono::milliseconds(300);
  auto g = make(o);
  const auto t0 = std::chrono::steady_clock::now();
  auto c = g.generate(request());
  const auto waited = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error() == errc::timeout);
  CHECK(g.last_attempts() == 1);  // a timeout is not retried
  CHECK(waited >= std::chrono::milliseconds(250));
  CHECK(waited < std::chrono::seconds(5));
}

TEST_CASE("http: a stream reports each token to the callback and matches the record",
          "[backends][http]") {
  fake_server fs;
  json seen;
  fs.server.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    seen = json::parse(req.body);
    res.set_content(sse(three_chunks()), "text/event-stream");
  });
  fs.start();
  auto o = fast_options(fs.url());
  o.price_per_output_token = 1.0;
  auto g = make(o);
  std::vector<std::string> pieces;
  std::vector<std::size_t> indices;
  auto cb = [&](const tandem::token_event& e) {
    pieces.emplace_back(e.piece);
    indices.push_back(e.index);
    return tandem::control::proceed;
  };
  auto r = request();
  r.on_token = tandem::token_callback(cb);
  auto c = g.generate(r);
  REQUIRE(c.has_value());
  CHECK(seen["stream"] == true);
  CHECK(seen["stream_options"]["include_usage"] == true);
  CHECK(c->text == " a b c");
  CHECK(pieces == std::vector<std::string>{" a", " b", " c"});
  CHECK(indices == std::vector<std::size_t>{0, 1, 2});
  CHECK(c->tokens == std::vector<tandem::token_id>{1, 2, 3});
  CHECK(c->logprobs == std::vector<float>{-0.1f, -0.2f, -0.3f});
  CHECK(c->finish == finish_reason::stop_token);
  CHECK(c->prompt_tokens == 5);
  CHECK(c->cost == Approx(3.0));
}

TEST_CASE("http: the callback cancels a stream and keeps the text so far", "[backends][http]") {
  fake_server fs;
  fs.server.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(sse(three_chunks()), "text/event-stream");
  });
  fs.start();
  auto g = make(fast_options(fs.url()));
  int seen = 0;
  auto cb = [&](const tandem::token_event&) {
    return ++seen == 2 ? tandem::control::stop : tandem::control::proceed;
  };
  auto r = request();
  r.on_token = tandem::token_callback(cb);
  auto c = g.generate(r);
  REQUIRE(c.has_value());
  CHECK(seen == 2);
  CHECK(c->finish == finish_reason::cancelled);
  CHECK(c->error == errc::ok);
  CHECK(c->text == " a b");
  CHECK(c->logprobs.size() == 2);
}

TEST_CASE("http: a stream cut in the middle returns the partial text with finish error",
          "[backends][http]") {
  fake_server fs;
  fs.server.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/event-stream", [](std::size_t, httplib::DataSink& sink) {
      const std::string part = sse({chunk(" a", 1, -0.1), chunk(" b", 2, -0.2)}, false);
      sink.write(part.data(), part.size());
      return false;  // the connection drops without the end of the stream
    });
  });
  fs.start();
  auto o = fast_options(fs.url());
  o.stream = true;
  auto g = make(o);
  auto c = g.generate(request());
  REQUIRE(c.has_value());
  CHECK(c->finish == finish_reason::error);
  CHECK(c->error == errc::network_error);
  CHECK(c->text == " a b");
  CHECK(c->logprobs.size() == 2);
  CHECK(g.last_error().code == errc::network_error);
  CHECK(g.last_attempts() == 1);  // text reached the caller: no retry
}

TEST_CASE("http: a malformed or error event in a stream is a named error with the partial text",
          "[backends][http]") {
  fake_server fs;
  std::string body;
  fs.server.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "text/event-stream");
  });
  fs.start();
  auto o = fast_options(fs.url());
  o.stream = true;
  auto g = make(o);
  body = sse({chunk(" a", 1, -0.1), "{not json"});
  auto c = g.generate(request());
  REQUIRE(c.has_value());
  CHECK(c->finish == finish_reason::error);
  CHECK(c->error == errc::parse_error);
  CHECK(c->text == " a");

  body = sse({chunk(" a", 1, -0.1)}, false) + "error: {\"message\":\"slot crashed\"}\n\n";
  c = g.generate(request());
  REQUIRE(c.has_value());
  CHECK(c->error == errc::http_error);
  CHECK(g.last_error().context().find("slot crashed") != std::string::npos);
}

TEST_CASE("http: a streamed request that fails with 5xx is an http_error with the message",
          "[backends][http]") {
  fake_server fs;
  std::atomic<int> hits{0};
  fs.server.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.status = 500;
    res.set_content(R"({"error":{"code":500,"message":"model exploded"}})", "application/json");
  });
  fs.start();
  auto o = fast_options(fs.url());
  o.stream = true;
  o.max_retries = 1;
  auto g = make(o);
  auto c = g.generate(request());
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error() == errc::http_error);
  CHECK(hits == 2);
  CHECK(g.last_status() == 500);
  CHECK(g.last_error().context().find("model exploded") != std::string::npos);
}

TEST_CASE("http: a passed deadline ends a slow request with finish deadline", "[backends][http]") {
  tandem_test::silent_port silent;
  auto o = fast_options("http://127.0.0.1:" + std::to_string(silent.port) + "/v1");
  o.read_timeout = std::chrono::milliseconds(5000);
  auto g = make(o);
  auto r = request();
  r.options.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  const auto t0 = std::chrono::steady_clock::now();
  auto c = g.generate(r);
  INFO(std::string(g.last_error().context()));
  REQUIRE(c.has_value());
  CHECK(c->finish == finish_reason::deadline);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}

TEST_CASE("http: request bodies are byte for byte what nlohmann-json writes for them",
          "[backends][http]") {
  // nlohmann-json wrote them before tandem had its own writer: keys sorted, floats widened
  // to double in their shortest form, controls escaped, UTF-8 and invalid bytes replaced.
  fake_server fs;
  std::vector<std::string> bodies;
  const auto answer = [&](const httplib::Request& req, httplib::Response& res) {
    bodies.push_back(req.body);
    res.set_content(
        R"({"choices":[{"text":"x","message":{"content":"x"},"finish_reason":"stop"}]})",
        "application/json");
  };
  fs.server.Post("/v1/completions", answer);
  fs.server.Post("/v1/chat/completions", answer);
  fs.start();
  const std::string_view stops[] = {"\x01\x1f\"\\/", "\xc3\xa9\xe2\x82\xac", "a\xffz"};
  auto r = request("line\n\ttab \x7f \xf0\x9f\x98\x80 bad\xc3");
  r.options.stop_strings = stops;
  r.options.record_logprobs = true;
  r.sampling.temperature = 0.7f;
  r.sampling.top_p = 0.95f;
  r.sampling.top_k = 40;
  r.sampling.min_p = 0.05f;
  r.sampling.seed = 18446744073709551615u;
  for (const auto endpoint : {http_endpoint::completions, http_endpoint::chat_completions}) {
    auto o = fast_options(fs.url());
    o.endpoint = endpoint;
    o.model = "m\xc3\xa9";
    o.top_logprobs = 3;
    auto g = make(o);
    REQUIRE(g.generate(r).has_value());
    o.stream = true;
    auto streamed = make(o);
    (void)streamed.generate(r);  // the answer is no stream; only the body matters here
  }
  auto plain = make(fast_options(fs.url()));
  REQUIRE(plain.generate(request("\x01")).has_value());
  REQUIRE(bodies.size() == 5);
  for (const std::string& body : bodies) {
    INFO(body);
    const json j = json::parse(body);
    CHECK(body == j.dump());
  }
  CHECK(json::parse(bodies[4])["temperature"].is_number_float());
}
