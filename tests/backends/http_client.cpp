// Tests of the HTTP client under the HTTP generator (tandem/backends/detail/http_client.hpp)
// and of the JSON writer it sends with: the parsers fed split at every byte, and the
// exchange against scripted raw-socket servers (slow, cut, oversized, redirecting, TLS).
#include "tandem/backends/detail/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backends/http_loopback.hpp"
#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "tandem/backends/http.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/detail/json.hpp"
#include "tandem/core/detail/json_writer.hpp"

#ifdef TANDEM_HTTP_OPENSSL
#include <openssl/ssl.h>
#endif

namespace {

namespace h = tandem::detail::http;
using h::failure;
using namespace std::chrono_literals;

// A server on 127.0.0.1 that accepts one connection, reads the request (head and
// Content-Length body) into `request`, then runs `script` on the socket.
struct script_server {
  int fd = -1;
  int port = 0;
  std::string request;
  std::thread thread;
  std::atomic<bool> done{false};

  explicit script_server(std::function<void(int)> script) {
    fd = tandem_test::listen_loopback(port, 4);
    thread = std::thread([this, script = std::move(script)] {
      const int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) return;
      read_request(c);
      script(c);
      ::close(c);
      done = true;
    });
  }
  void read_request(int c) {
    char buf[4096];
    for (;;) {
      const std::size_t end = h::find_head_end(request);
      if (end != std::string::npos) {
        const std::size_t cl = request.find("Content-Length: ");
        const std::size_t want = cl == std::string::npos ? 0 : std::stoul(request.substr(cl + 16));
        if (request.size() >= end + want) return;
      }
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      request.append(buf, static_cast<std::size_t>(n));
    }
  }
  ~script_server() {
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    if (thread.joinable()) thread.join();
  }
  h::target target() const {
    h::target t;
    t.host = "127.0.0.1";
    t.port = port;
    return t;
  }
};

void send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

struct fetched {
  h::outcome out;
  h::response_head head;
  std::string body;
  double seconds = 0;
};

fetched fetch(const h::target& t, h::timeouts to = {1000ms, 1000ms}, h::stop_check stop = {}) {
  h::tls_context tls;
  fetched f;
  std::string request;
  h::write_post_head(request, t, "/v1/completions", "", 2);
  request += "{}";
  std::string scratch;
  const auto t0 = std::chrono::steady_clock::now();
  f.out = h::exchange(
      t, tls, to, request, stop, f.head, scratch, [](const h::response_head&) { return true; },
      [&f](const char* d, std::size_t n) {
        f.body.append(d, n);
        return true;
      });
  f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return f;
}

std::function<void(int)> answer(std::string bytes) {
  return [bytes = std::move(bytes)](int c) { send_all(c, bytes); };
}

const std::string k_chunked_body =
    "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n";

}  // namespace

TEST_CASE("http client: a chunked body split at every byte boundary decodes the same",
          "[backends][http]") {
  for (std::size_t cut = 0; cut <= k_chunked_body.size(); ++cut) {
    h::chunked_decoder d;
    std::string out;
    const auto sink = [&out](const char* p, std::size_t n) {
      out.append(p, n);
      return true;
    };
    CHECK(d.feed(std::string_view(k_chunked_body).substr(0, cut), sink) == failure::none);
    CHECK(d.feed(std::string_view(k_chunked_body).substr(cut), sink) == failure::none);
    CHECK(d.done());
    CHECK(out == "Wikipedia in\r\n\r\nchunks.");
  }
  // One byte at a time, with LF-only line ends.
  h::chunked_decoder d;
  std::string out;
  for (char c : std::string_view("3\nabc\n0\n\n"))
    REQUIRE(d.feed(std::string_view(&c, 1), [&out](const char* p, std::size_t n) {
      out.append(p, n);
      return true;
    }) == failure::none);
  CHECK(d.done());
  CHECK(out == "abc");
}

TEST_CASE("http client: a chunked body ends at the trailer's empty line and no sooner",
          "[backends][http]") {
  struct trailer_case {
    std::string_view bytes;  // the whole body
    bool done;               // whether it is complete
  };
  // After the last chunk come trailer lines; the first empty line (LF or CRLF) ends the
  // body, whatever the line ends used before it.
  for (const trailer_case t :
       {trailer_case{"3\r\nabc\r\n0\n\r\n", true}, trailer_case{"3\r\nabc\r\n0\r\n\n", true},
        trailer_case{"3\r\nabc\r\n0\r\nx\n", false}, trailer_case{"3\r\nabc\r\n0\r\nx\n\r\n", true},
        trailer_case{"3\r\nabc\r\n0\r\nA: b\r\n\r", false},
        trailer_case{"3\r\nabc\r\n0\r\nA: b\r\nC\n\n", true},
        trailer_case{"3\r\nabc\r\n0;e\r\n\r\r\n", false}}) {
    INFO(std::string(t.bytes));
    for (std::size_t cut = 0; cut <= t.bytes.size(); ++cut) {
      h::chunked_decoder d;
      std::string out;
      const auto sink = [&out](const char* p, std::size_t n) {
        out.append(p, n);
        return true;
      };
      REQUIRE(d.feed(t.bytes.substr(0, cut), sink) == failure::none);
      REQUIRE(d.feed(t.bytes.substr(cut), sink) == failure::none);
      CHECK(d.done() == t.done);
      CHECK(out == "abc");
    }
  }
}

TEST_CASE("http client: broken chunked framing and oversized chunk lines are named failures",
          "[backends][http]") {
  const auto sink = [](const char*, std::size_t) { return true; };
  for (std::string_view bad : {"g\r\n", "\r\n", "3\r\nabcX", "3 4\r\n", ";x\r\n"}) {
    h::chunked_decoder d;
    CHECK(d.feed(bad, sink) == failure::bad_chunk);
  }
  h::chunked_decoder d;
  const std::string long_line = "1;" + std::string(h::max_chunk_line, 'x');
  CHECK(d.feed(long_line, sink) == failure::chunk_line_too_long);
  h::chunked_decoder huge;
  CHECK(huge.feed("ffffffffffffffffff\r\n", sink) == failure::bad_chunk);
}

TEST_CASE("http client: response heads parse, and malformed ones are named failures",
          "[backends][http]") {
  h::response_head head;
  REQUIRE(h::parse_response_head("HTTP/1.1 429 Too Many\r\nRetry-After:  7 \r\ncontent-length: "
                                 "12\r\nX-A: b\r\n\r\n",
                                 head) == failure::none);
  CHECK(head.status == 429);
  CHECK(head.retry_after == "7");
  REQUIRE(head.content_length.has_value());
  CHECK(*head.content_length == 12);
  REQUIRE(h::parse_response_head("HTTP/1.0 200\nTransfer-Encoding: identity, Chunked\n", head) ==
          failure::none);
  CHECK(head.chunked);
  CHECK(h::parse_response_head("HTTP/2 200 OK\r\n", head) == failure::bad_status_line);
  CHECK(h::parse_response_head("HTTP/1.1 20 OK\r\n", head) == failure::bad_status_line);
  CHECK(h::parse_response_head("HTTP/1.1 700 OK\r\n", head) == failure::bad_status_line);
  CHECK(h::parse_response_head("HTTP/1.1 200 OK\r\nno colon\r\n", head) == failure::bad_header);
  CHECK(h::parse_response_head("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n", head) ==
        failure::bad_header);
  CHECK(h::parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n", head) ==
        failure::bad_content_length);
  CHECK(h::parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
                               head) == failure::bad_content_length);
  CHECK(h::parse_response_head("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n", head) ==
        failure::unsupported_coding);
  CHECK(h::parse_response_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n", head) ==
        failure::unsupported_coding);
  // Repeated Transfer-Encoding fields are one list, which must end in chunked.
  REQUIRE(h::parse_response_head(
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
              head) == failure::none);
  CHECK(head.chunked);
  CHECK(h::parse_response_head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            head) == failure::unsupported_coding);
  CHECK(h::parse_response_head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            head) == failure::unsupported_coding);
  CHECK(h::parse_response_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n", head) ==
        failure::unsupported_coding);
  CHECK(h::parse_response_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n", head) ==
        failure::unsupported_coding);
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (std::size_t i = 0; i <= h::max_header_count; ++i) many += "X: y\r\n";
  CHECK(h::parse_response_head(many, head) == failure::too_many_headers);
  CHECK(h::find_head_end("HTTP/1.1 200 OK\r\nA: b\r\n") == std::string_view::npos);
  CHECK(h::find_head_end("HTTP/1.1 200 OK\r\n\r\nbody") == 19);
}

TEST_CASE("http client: event-stream lines split at every byte boundary give the same events",
          "[backends][http]") {
  const std::string stream =
      ": comment\r\ndata: {\"a\":1}\r\n\r\nevent: error\ndata: x\ndata: y\n\nerror: boom\n\n"
      "data:[DONE]\n\n";
  const std::vector<std::pair<std::string, bool>> expected{
      {"{\"a\":1}", false}, {"x\ny", true}, {"boom", true}, {"[DONE]", false}};
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    h::sse_parser p;
    std::vector<std::pair<std::string, bool>> got;
    const auto on = [&got](std::string_view d, bool err) {
      got.emplace_back(std::string(d), err);
      return true;
    };
    REQUIRE(p.feed(std::string_view(stream).substr(0, cut), on) == failure::none);
    REQUIRE(p.feed(std::string_view(stream).substr(cut), on) == failure::none);
    CHECK(got == expected);
  }
  h::sse_parser p;
  const auto on = [](std::string_view, bool) { return true; };
  CHECK(p.feed(std::string(h::max_sse_line + 1, 'x'), on) == failure::sse_line_too_long);
  h::sse_parser last;
  std::string seen;
  REQUIRE(last.feed("data: tail\n", on) == failure::none);
  last.finish([&seen](std::string_view d, bool) {
    seen = d;
    return true;
  });
  CHECK(seen == "tail");
}

TEST_CASE("http client: the JSON writer escapes control characters and keeps UTF-8",
          "[backends][http]") {
  std::string out;
  tandem::detail::json::write_string(out, std::string_view("a\"b\\c\n\t\x01\x1f\x7f\xc3\xa9/", 13));
  CHECK(out == "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\x7f\xc3\xa9/\"");
  out.clear();
  tandem::detail::json::write_string(out, "bad \xff\xc3 end");
  CHECK(out == "\"bad \xEF\xBF\xBD\xEF\xBF\xBD end\"");
  // Every escaped string reads back as the original.
  std::string all;
  for (int c = 1; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  all += "\xe2\x82\xac\xf0\x9f\x98\x80";
  out.clear();
  tandem::detail::json::write_string(out, all);
  const auto back = tandem::detail::json::parse(out);
  REQUIRE(back.has_value());
  CHECK(back->text == all);
  out.clear();
  tandem::detail::json::writer w(out);
  w.begin_object();
  w.key("f");
  w.value(0.7f);
  w.key("one");
  w.value(1.0);
  w.key("n");
  w.value(std::uint64_t{18446744073709551615u});
  w.key("l");
  w.begin_array();
  w.value(true);
  w.value(-3);
  w.value(1e-7);
  w.end_array();
  w.key("e");
  w.begin_object();
  w.end_object();
  w.end_object();
  CHECK(out ==
        R"({"f":0.699999988079071,"one":1.0,"n":18446744073709551615,"l":[true,-3,1e-07],"e":{}})");
}

TEST_CASE("http client: Content-Length, chunked and read-to-close bodies arrive whole",
          "[backends][http]") {
  {
    script_server s(answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA"));
    const fetched f = fetch(s.target());
    CHECK(f.out.what == failure::none);
    CHECK(f.head.status == 200);
    CHECK(f.body == "hello");
    CHECK(s.request.find("POST /v1/completions HTTP/1.1\r\n") == 0);
    CHECK(s.request.find("Connection: close\r\n") != std::string::npos);
    CHECK(s.request.find("Content-Length: 2\r\n") != std::string::npos);
  }
  {
    script_server s([](int c) {
      send_all(
          c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      for (char ch : k_chunked_body) {  // a byte per segment
        send_all(c, std::string_view(&ch, 1));
        std::this_thread::sleep_for(100us);
      }
    });
    const fetched f = fetch(s.target());
    CHECK(f.out.what == failure::none);
    CHECK(f.body == "Wikipedia in\r\n\r\nchunks.");
  }
  {
    script_server s(answer("HTTP/1.0 200 OK\r\n\r\nuntil the end"));
    const fetched f = fetch(s.target());
    CHECK(f.out.what == failure::none);
    CHECK(f.body == "until the end");
  }
}

TEST_CASE("http client: a server that closes mid-body is closed_early", "[backends][http]") {
  {
    script_server s(answer("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this"));
    const fetched f = fetch(s.target());
    CHECK(f.out.what == failure::closed_early);
    CHECK(f.body == "only this");
  }
  {
    script_server s(answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWi"));
    CHECK(fetch(s.target()).out.what == failure::closed_early);
  }
  {
    script_server s(answer(""));
    CHECK(fetch(s.target()).out.what == failure::closed_early);
  }
  {
    script_server s(answer("HTTP/1.1 200 OK\r\nA: b"));
    CHECK(fetch(s.target()).out.what == failure::bad_status_line);
  }
}

TEST_CASE("http client: an oversized head is head_too_large", "[backends][http]") {
  script_server s([](int c) {
    send_all(c, "HTTP/1.1 200 OK\r\n");
    const std::string line = "X-Padding: " + std::string(1000, 'p') + "\r\n";
    for (std::size_t sent = 0; sent <= h::max_head_bytes + 2048; sent += line.size())
      send_all(c, line);
  });
  CHECK(fetch(s.target()).out.what == failure::head_too_large);
}

TEST_CASE("http client: a silent server is a read timeout after the read timeout",
          "[backends][http]") {
  std::atomic<bool> release{false};
  script_server s([&release](int c) {
    send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nslow");
    while (!release) std::this_thread::sleep_for(5ms);
  });
  const fetched f = fetch(s.target(), {1000ms, 300ms});
  release = true;
  CHECK(f.out.what == failure::read_timeout);
  CHECK(f.body == "slow");
  CHECK(f.seconds >= 0.29);
  CHECK(f.seconds < 2.0);
}

TEST_CASE("http client: a stop check ends a blocked read within a poll slice or so",
          "[backends][http]") {
  std::atomic<bool> release{false};
  std::atomic<bool> cancel{false};
  script_server s([&release](int) {
    while (!release) std::this_thread::sleep_for(5ms);
  });
  std::thread canceller([&cancel] {
    std::this_thread::sleep_for(200ms);
    cancel = true;
  });
  const h::stop_check stop{
      [](const void* p) { return static_cast<const std::atomic<bool>*>(p)->load(); }, &cancel};
  const fetched f = fetch(s.target(), {1000ms, 30000ms}, stop);
  canceller.join();
  release = true;
  CHECK(f.out.what == failure::stopped);
  CHECK(f.seconds >= 0.19);
  CHECK(f.seconds < 0.2 + 10 * h::poll_slice.count() / 1000.0);
}

TEST_CASE("http client: nothing listening is a connect failure naming the reason",
          "[backends][http]") {
  int port = 0;
  {
    script_server s(answer(""));  // take a free port, then free it
    port = s.port;
    const fetched f = fetch(s.target());  // let the server thread finish
    (void)f;
  }
  h::target t;
  t.host = "127.0.0.1";
  t.port = port;
  const fetched f = fetch(t);
  CHECK(f.out.what == failure::connect);
  INFO(f.out.reason);
  CHECK(f.out.reason.find("refused") != std::string::npos);
}

TEST_CASE("http: redirects are not followed: a 3xx is an http_error with its status",
          "[backends][http]") {
  const std::string body = R"({"error":"moved elsewhere"})";
  script_server s(answer("HTTP/1.1 301 Moved\r\nLocation: http://elsewhere/\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body));
  tandem::http_options o;
  o.base_url = "http://127.0.0.1:" + std::to_string(s.port) + "/v1";
  o.max_retries = 0;
  auto g = tandem::http_generator::create(o);
  REQUIRE(g.has_value());
  tandem::generate_request req;
  req.prompt = "x";
  req.options.max_tokens = 1;
  const auto r = g->generate(req);
  REQUIRE(!r.has_value());
  CHECK(r.error() == tandem::errc::http_error);
  CHECK(g->last_status() == 301);
  CHECK(g->last_error().context().find("moved elsewhere") != std::string_view::npos);
  CHECK(g->last_attempts() == 1);
}

TEST_CASE("http: a response head above the limit is a network_error naming the limit",
          "[backends][http]") {
  script_server s([](int c) {
    send_all(c, "HTTP/1.1 200 OK\r\n");
    send_all(c, "X: " + std::string(h::max_head_bytes + 10, 'p'));
  });
  tandem::http_options o;
  o.base_url = "http://127.0.0.1:" + std::to_string(s.port);
  o.max_retries = 3;
  auto g = tandem::http_generator::create(o);
  REQUIRE(g.has_value());
  tandem::generate_request req;
  req.prompt = "x";
  const auto r = g->generate(req);
  REQUIRE(!r.has_value());
  CHECK(r.error() == tandem::errc::network_error);
  CHECK(g->last_error().context().find("max_head_bytes") != std::string_view::npos);
  CHECK(g->last_attempts() == 1);  // a protocol failure is not retried
}

#ifdef TANDEM_HTTP_OPENSSL
namespace {

constexpr const char* k_cert = R"PEM(-----BEGIN CERTIFICATE-----
MIIDJzCCAg+gAwIBAgIURJSzSgeUxPvZQi+Ay8yHrzg0BpYwDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNTA2MDM1OFoYDzIxMjYx
MTExMDYwMzU4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQC/fowNLW/xLm9gF7d1oe0bZdOtDJ+l/b1kjFe4sjoP
6j1nmIuo9UtsXB9efWa6QJTONNFV/Ri8IiTjE/jipQzoiHvcWAssp0+hB3jXKE5I
t5R+MJmrWx1UwoCPZUSQ5ch/5B5l24gcPNrQrNpTxZ1V4RJ5TdmJSmadC0cvK9bm
3CdFq+kliuU7oiTEfReaiXk1A10QCqHXzgFJPm1PH65CpORGOVYIl0qk8eo30NMb
LjJnvqLcPDzGOHDiKw/SBfZoxyImZbF3vuW3j4W2/nRkGWO7jC9C/UtIstop6cjG
At7pQtuy2P0jbGE8y4mDGE8s/zoGvwuOtnR5hyBdxGpLAgMBAAGjbzBtMB0GA1Ud
DgQWBBQyUUBumcQhPHQWgNIbTyXekqfktzAfBgNVHSMEGDAWgBQyUUBumcQhPHQW
gNIbTyXekqfktzAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGHBH8AAAGCCWxv
Y2FsaG9zdDANBgkqhkiG9w0BAQsFAAOCAQEAV3O7Jr7cpkS/JvCWbAM1O2uOtmFz
zcbox6cVqZ/V33BEDxo9JLs8VEUThsANLwurIMsvM9ISVr3ze+N02+lsPzp8an0w
KB/tAfrUAgGiI/jwm3zfn8uF21t3u6AMhwzj3VQ3RghUBeB/nhdgq3soJHf4lAGf
dBp74qNuoYkX5KpjEF54beQ4C2i1TyAL5DQoAk4LQ7dt7axUeXwSjsnETIB4ysXu
Vg5dK7pEIip6QGFM/LCF0zi+D8MJbYGslhGEXG0CRNf+OVRyBbv7/WmaU0JJ6F6Y
VP1Le/2qz2KbpSwNWDFT1SuAKW7r7AL53oX8HBl/byUaLRgyruMRB30pSQ==
-----END CERTIFICATE-----
)PEM";
constexpr const char* k_key = R"PEM(-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQC/fowNLW/xLm9g
F7d1oe0bZdOtDJ+l/b1kjFe4sjoP6j1nmIuo9UtsXB9efWa6QJTONNFV/Ri8IiTj
E/jipQzoiHvcWAssp0+hB3jXKE5It5R+MJmrWx1UwoCPZUSQ5ch/5B5l24gcPNrQ
rNpTxZ1V4RJ5TdmJSmadC0cvK9bm3CdFq+kliuU7oiTEfReaiXk1A10QCqHXzgFJ
Pm1PH65CpORGOVYIl0qk8eo30NMbLjJnvqLcPDzGOHDiKw/SBfZoxyImZbF3vuW3
j4W2/nRkGWO7jC9C/UtIstop6cjGAt7pQtuy2P0jbGE8y4mDGE8s/zoGvwuOtnR5
hyBdxGpLAgMBAAECggEASoxv5mNlfH2o0z54Z/2ZanyaSviqoDrng+DU96y+yNpW
fGGZITYZXj6A4c6s8t5Yb+yFAFZPTlJ2jMaGMmmx3Ebh/VZzRzd9WwGnLA/fZhS9
5OBzuo92nDw6Q1jXuBcUlqFOqjWsR93zC6D3P/yjMz8za3EAup9x0jqFRFprR6UI
svg3052OE925bnIQ1DEF4RZJe/FMIT7ZX5m/U6mNX013CoBSXHaiwM7sHKzFn+Kt
b7iG9u+C+G3bBMat7796oFXUx3AXBb9vmrrf3xV6x2yQ28Qlbn1rUem/6MJ2ntJm
w7RFH2dUc/bNGW7ZqBLMKnFt+Dm9r0BStEgoRSbCqQKBgQD5U2b3c559NuiQDUfx
bGIc7CMdedYH3iw1JxWIV1Rx/rpOKXcTrEc2gzwuZflcwNrJc0M3zHz4FMpjiieu
wEC4Wo5x6tHL1sHmzLb56M7C3mJmxoojnojrYu4EknYiEboj7jWr8b2V7iXWnUqq
Sv62S1QRoI8fjwVS/9ZGW9GcOQKBgQDEntVNztPKjVvLykCCgTIhlIjym/4BmteJ
rKQ2OTDp426VfZZeBrau4+EUuBc+rZqsLFN/GDYCr4ZzOMK39Ca30FZ3x38usT5c
9V3cTYXmrtNEDdEX1QzfLJzQ3t1E7lcNjHFC7B90Cdx/X2mP8nHxfQ7D5y5Shnou
N6TgJ8GCowKBgQDCrxNJyehJ0eRLB3PT2lPKTcEltQshXaSbZId1zOtNkCAeBFbM
78szj8ogWNQcTyMIBo7INU6n0GQw0aIm3EwtJ9jurvNe/bSu6c8+2UEJ/OhNZF5d
bd9wHfHJdCv2cm0svUb/mmX1et3k9TFmQ+UcpzlgAkV/2QfJRagljHDiUQKBgQC4
G1nz73TVNyP7YLii+sKsOt84/OQNMKYeHe/tbgPlHbbQd7Yy+OpaPLrnobDyWbB5
A1Bzs4HvZdfpT/7ULOOMPqKYqc7nM8QHWyG2RUjaRl1AXgep3y6cUrPLyMM75kjR
QO5VEbAqAYncIsU/qm8TBlyrB2+SiqUhXa0ez1sdLQKBgQDkm0O8Ir74az+YpzBL
4ha/qvxhq+FGr2QlyDUtrQ6Kw5w/OXhn27JXKRMod+MsLDOn3EuYTKkMpMl1iY9P
tox1YAdvfW5DY9/73f73Fhq5tykzqFv0LDHX+Zq1Fpo5z3OyQ/0/wDIyEqun6GMA
0fXnz0kHBqcphnUZlLxfjuXwJA==
-----END PRIVATE KEY-----
)PEM";

// Accepts one TLS connection on a raw listening socket and answers `response`.
struct tls_listener {
  int fd = -1;
  int port = 0;
  SSL_CTX* ctx = nullptr;
  std::thread thread;
  std::string request;

  tls_listener(const std::string& cert_path, const std::string& key_path, std::string response) {
    ctx = SSL_CTX_new(TLS_server_method());
    REQUIRE(ctx != nullptr);
    REQUIRE(SSL_CTX_use_certificate_file(ctx, cert_path.c_str(), SSL_FILETYPE_PEM) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx, key_path.c_str(), SSL_FILETYPE_PEM) == 1);
    fd = tandem_test::listen_loopback(port, 4);
    thread = std::thread([this, response = std::move(response)] {
      const int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) return;
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) == 1) {
        char buf[4096];
        while (h::find_head_end(request) == std::string::npos) {
          const int n = SSL_read(ssl, buf, sizeof buf);
          if (n <= 0) break;
          request.append(buf, static_cast<std::size_t>(n));
        }
        SSL_write(ssl, response.data(), static_cast<int>(response.size()));
        SSL_shutdown(ssl);
      }
      SSL_free(ssl);
      ::close(c);
    });
  }
  ~tls_listener() {
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    if (thread.joinable()) thread.join();
    SSL_CTX_free(ctx);
  }
};

}  // namespace

TEST_CASE("http client: HTTPS verifies the server certificate against the CA file",
          "[backends][http]") {
  tandem_test::scratch_dir dir("http_tls");
  const std::string cert = (dir.path() / "cert.pem").string();
  const std::string key = (dir.path() / "key.pem").string();
  REQUIRE(tandem::detail::write_file(cert, std::string_view(k_cert)) == tandem::errc::ok);
  REQUIRE(tandem::detail::write_file(key, std::string_view(k_key)) == tandem::errc::ok);
  {
    tls_listener s(cert, key, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret");
    h::target t;
    t.host = "127.0.0.1";
    t.port = s.port;
    t.tls = true;
    t.ca_cert_file = cert;
    const fetched f = fetch(t);
    CHECK(f.out.what == failure::none);
    CHECK(f.body == "secret");
  }
  {
    tls_listener s(cert, key, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret");
    h::target t;
    t.host = "127.0.0.1";
    t.port = s.port;
    t.tls = true;  // the system's CAs do not know the self-signed certificate
    const fetched f = fetch(t);
    CHECK(f.out.what == failure::tls);
    CHECK(f.out.reason.find("certificate") != std::string::npos);
  }
}

TEST_CASE("http: an https generator with the server's CA file completes a request",
          "[backends][http]") {
  tandem_test::scratch_dir dir("http_tls_gen");
  const std::string cert = (dir.path() / "cert.pem").string();
  const std::string key = (dir.path() / "key.pem").string();
  REQUIRE(tandem::detail::write_file(cert, std::string_view(k_cert)) == tandem::errc::ok);
  REQUIRE(tandem::detail::write_file(key, std::string_view(k_key)) == tandem::errc::ok);
  const std::string body =
      R"({"choices":[{"text":" over TLS","finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":2}})";
  tls_listener s(
      cert, key,
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  tandem::http_options o;
  o.base_url = "https://127.0.0.1:" + std::to_string(s.port) + "/v1";
  o.ca_cert_file = cert;
  o.max_retries = 0;
  auto g = tandem::http_generator::create(o);
  REQUIRE(g.has_value());
  CHECK(g->uses_tls());
  tandem::generate_request req;
  req.prompt = "x";
  const auto r = g->generate(req);
  REQUIRE(r.has_value());
  CHECK(r->text == " over TLS");
  CHECK(r->prompt_tokens == 2);
  CHECK(s.request.find("POST /v1/completions HTTP/1.1\r\n") == 0);
}
#else
TEST_CASE("http: without TLS support an https base URL is unsupported", "[backends][http]") {
  tandem::http_options o;
  o.base_url = "https://127.0.0.1:1/v1";
  tandem::error_info info;
  const auto g = tandem::http_generator::create(o, &info);
  REQUIRE(!g.has_value());
  CHECK(g.error() == tandem::errc::unsupported);
  CHECK(info.context().find("OpenSSL") != std::string_view::npos);
}
#endif
