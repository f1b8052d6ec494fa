// tandem backends: the small HTTP/1.1 client under the HTTP generator (backends/http.hpp):
// one request per connection over POSIX sockets, HTTPS through OpenSSL when
// TANDEM_HTTP_OPENSSL is defined, and the parsers of what comes back (status line and
// headers, chunked framing, server-sent-event lines), kept apart from the sockets so
// that they can be fuzzed (tests/fuzz/fuzz_http_parsers.cpp).
//
// Never throws, no global state. Every wait is a poll() of at most `poll_slice`, after
// which the caller's stop check runs, so a caller can end a blocked connect or read
// within about that time. What is supported: POST (any method, in fact) with a body;
// answers framed by Content-Length, chunked transfer coding or the end of the
// connection; 1xx interim answers skipped. Not supported: redirects (a 3xx is returned
// as the status it is), keep-alive (every request says `Connection: close`), content
// codings (the request asks for none; a compressed answer is an error), proxies.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#ifdef TANDEM_HTTP_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#endif

#include "tandem/core/config.hpp"
#include "tandem/core/detail/ascii.hpp"

namespace tandem::inline v0::detail::http {

/// True when this build speaks HTTPS (TANDEM_HTTP_OPENSSL: tandem::http found OpenSSL).
#ifdef TANDEM_HTTP_OPENSSL
inline constexpr bool tls_supported = true;
#else
inline constexpr bool tls_supported = false;
#endif

/// \name Limits
/// What the client accepts from a server; beyond each, the named failure below.
///@{
inline constexpr std::size_t max_head_bytes = 64 * 1024;    ///< status line + headers
inline constexpr std::size_t max_header_count = 128;        ///< header fields in one head
inline constexpr std::size_t max_chunk_line = 1024;         ///< a chunk-size line, extensions too
inline constexpr std::size_t max_body_bytes = 64u << 20;    ///< a body read whole (not streamed)
inline constexpr std::size_t max_sse_line = 1u << 20;       ///< one server-sent-event line
inline constexpr std::size_t max_sse_event = 8u << 20;      ///< the data of one event
inline constexpr std::size_t max_interim_answers = 8;       ///< 1xx heads before the final one
inline constexpr std::chrono::milliseconds poll_slice{50};  ///< longest wait between stop checks
///@}

/// What went wrong in one exchange; none when it succeeded.
enum class failure : std::uint8_t {
  none,
  resolve,              ///< the host name did not resolve
  connect,              ///< connection refused, unreachable
  connect_timeout,      ///< no connection within the connect timeout
  tls,                  ///< TLS set-up or handshake failed, or the certificate did not verify
  write,                ///< sending the request failed (reset, closed)
  write_timeout,        ///< the server took nothing for the read timeout
  read,                 ///< receiving failed (reset)
  read_timeout,         ///< the server sent nothing for the read timeout
  closed_early,         ///< the connection ended before the response was complete
  stopped,              ///< the caller's stop check or receiver ended the exchange
  bad_status_line,      ///< the first line is not `HTTP/1.x NNN ...`
  bad_header,           ///< a header line without a name and colon, or folded
  bad_content_length,   ///< Content-Length not a number, or two that disagree
  unsupported_coding,   ///< a content coding, or a Transfer-Encoding not ending in chunked
  bad_chunk,            ///< chunked framing broken (size line, CRLF after data)
  head_too_large,       ///< status line + headers above max_head_bytes
  too_many_headers,     ///< more than max_header_count header fields
  chunk_line_too_long,  ///< a chunk-size line above max_chunk_line
  body_too_large,       ///< a body read whole above max_body_bytes
  sse_line_too_long,    ///< a server-sent-event line above max_sse_line
  sse_event_too_large,  ///< an event's data above max_sse_event
  too_many_interim,     ///< more than max_interim_answers 1xx heads
};

/// A short English description of `f`, naming the limit when one was exceeded.
[[nodiscard]] constexpr std::string_view describe(failure f) noexcept {
  switch (f) {
    case failure::none:
      return "no failure";
    case failure::resolve:
      return "the host name did not resolve";
    case failure::connect:
      return "could not connect";
    case failure::connect_timeout:
      return "connect timeout";
    case failure::tls:
      return "TLS failed";
    case failure::write:
      return "sending the request failed";
    case failure::write_timeout:
      return "write timeout";
    case failure::read:
      return "receiving failed";
    case failure::read_timeout:
      return "read timeout";
    case failure::closed_early:
      return "the server closed the connection before the response was complete";
    case failure::stopped:
      return "stopped";
    case failure::bad_status_line:
      return "malformed HTTP status line";
    case failure::bad_header:
      return "malformed HTTP header line";
    case failure::bad_content_length:
      return "malformed Content-Length";
    case failure::unsupported_coding:
      return "unsupported transfer or content coding";
    case failure::bad_chunk:
      return "malformed chunked framing";
    case failure::head_too_large:
      return "response head above 64 KiB (max_head_bytes)";
    case failure::too_many_headers:
      return "more than 128 header fields (max_header_count)";
    case failure::chunk_line_too_long:
      return "chunk-size line above 1 KiB (max_chunk_line)";
    case failure::body_too_large:
      return "response body above 64 MiB (max_body_bytes)";
    case failure::sse_line_too_long:
      return "event-stream line above 1 MiB (max_sse_line)";
    case failure::sse_event_too_large:
      return "event data above 8 MiB (max_sse_event)";
    case failure::too_many_interim:
      return "more than 8 interim (1xx) answers (max_interim_answers)";
  }
  return "unknown failure";
}

/// `s` without leading and trailing spaces and tabs.
[[nodiscard]] constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// What the client keeps of a response head.
struct response_head {
  int status = 0;                               ///< 100 to 599
  bool chunked = false;                         ///< Transfer-Encoding ends in chunked
  std::optional<std::uint64_t> content_length;  ///< the body's size, when given
  std::string retry_after;                      ///< the Retry-After value, or empty
  std::string location;                         ///< the Location value (a redirect), or empty
};

/// The end of the head in `buf`: the index just past its blank line ("\r\n\r\n" or
/// "\n\n"), or npos when it is not complete yet.
[[nodiscard]] inline std::size_t find_head_end(std::string_view buf) noexcept {
  for (std::size_t i = buf.find('\n'); i != std::string_view::npos; i = buf.find('\n', i + 1)) {
    if (i + 1 < buf.size() && buf[i + 1] == '\n') return i + 2;
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

/// Parses a response head (`head`: the status line and header lines, each ending in LF
/// or CRLF, the blank line optional). Fills `out` (reset first). Returns none, or
/// bad_status_line, bad_header, bad_content_length, unsupported_coding (a content coding,
/// or Transfer-Encoding fields, joined into one list, that do not end in chunked or
/// name a coding other than identity), head_too_large, too_many_headers.
[[nodiscard]] inline failure parse_response_head(std::string_view head, response_head& out) {
  out = response_head{};
  if (head.size() > max_head_bytes) return failure::head_too_large;
  const auto next_line = [&head]() {
    const std::size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head = nl == std::string_view::npos ? std::string_view{} : head.substr(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    return line;
  };
  const std::string_view status_line = next_line();
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.") || status_line[7] < '0' ||
      status_line[7] > '9' || status_line[8] != ' ')
    return failure::bad_status_line;
  int status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    const char c = status_line[i];
    if (c < '0' || c > '9') return failure::bad_status_line;
    status = status * 10 + (c - '0');
  }
  if (status < 100 || status > 599 || (status_line.size() > 12 && status_line[12] != ' '))
    return failure::bad_status_line;
  out.status = status;
  std::size_t count = 0;
  bool identity_content = true;
  bool transfer_encoding = false;
  while (!head.empty()) {
    const std::string_view line = next_line();
    if (line.empty()) break;  // the blank line ends the head
    if (line.front() == ' ' || line.front() == '\t') return failure::bad_header;  // folding
    if (++count > max_header_count) return failure::too_many_headers;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return failure::bad_header;
    const std::string_view name = line.substr(0, colon);
    for (char c : name)
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '"' || c == '(' || c == ')' ||
          c == ',' || c == '/' || c == ';' || c == '<' || c == '=' || c == '>' || c == '?' ||
          c == '@' || c == '[' || c == '\\' || c == ']' || c == '{' || c == '}')
        return failure::bad_header;
    const std::string_view value = trim_ows(line.substr(colon + 1));
    if (iequals_ascii(name, "content-length")) {
      if (value.empty() || value.size() > 18) return failure::bad_content_length;
      std::uint64_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return failure::bad_content_length;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (out.content_length && *out.content_length != n) return failure::bad_content_length;
      out.content_length = n;
    } else if (iequals_ascii(name, "transfer-encoding")) {
      // A list of codings, repeated fields joining into one list (RFC 9110, 5.3); only
      // "identity" (ignored) and a final "chunked" are understood.
      std::string_view rest = value;
      transfer_encoding = true;
      while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        const std::string_view coding = trim_ows(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (coding.empty()) continue;
        if (out.chunked) return failure::unsupported_coding;  // a coding after chunked
        if (iequals_ascii(coding, "chunked"))
          out.chunked = true;
        else if (!iequals_ascii(coding, "identity"))
          return failure::unsupported_coding;
      }
    } else if (iequals_ascii(name, "content-encoding")) {
      identity_content = value.empty() || iequals_ascii(value, "identity");
    } else if (iequals_ascii(name, "retry-after")) {
      out.retry_after.assign(value);
    } else if (iequals_ascii(name, "location")) {
      out.location.assign(value);
    }
  }
  if (!identity_content) return failure::unsupported_coding;
  // A Transfer-Encoding that does not end in chunked leaves the body's end to the
  // connection's close (RFC 9112, 6.3); the client refuses such framing.
  if (transfer_encoding && !out.chunked) return failure::unsupported_coding;
  return failure::none;
}

/// Incremental decoder of the chunked transfer coding (RFC 9112, 7.1): size lines (hex,
/// extensions ignored), data, CRLF, and the trailer after the last (zero) chunk. Bytes
/// may arrive split anywhere. Allocates nothing.
class chunked_decoder {
 public:
  /// Feeds `in`; passes each piece of body data to `sink(const char*, std::size_t)`, which
  /// returns false to stop (then `stopped`). Bytes after the end of the body are ignored.
  /// Returns none (more may follow, or done() is true), stopped, bad_chunk or
  /// chunk_line_too_long; after a failure the decoder must be reset.
  template <class Sink>
  [[nodiscard]] failure feed(std::string_view in, Sink&& sink) {
    std::size_t i = 0;
    while (i < in.size() && state_ != state::done) {
      const char c = in[i];
      switch (state_) {
        case state::size_line:
        case state::trailer: {
          ++i;
          if (c != '\n') {
            if (++line_len_ > max_chunk_line) return failure::chunk_line_too_long;
            last_cr_ = c == '\r';
            if (state_ == state::size_line)
              if (const failure f = size_char(c); f != failure::none) return f;
            continue;
          }
          if (state_ == state::trailer) {
            // An empty line (LF, or CR LF) ends the trailer; other lines are fields.
            if (line_len_ == 0 || (line_len_ == 1 && last_cr_)) state_ = state::done;
            line_len_ = 0;
            continue;
          }
          if (!have_digit_) return failure::bad_chunk;
          line_len_ = 0;
          have_digit_ = in_ext_ = after_size_ = false;
          state_ = left_ == 0 ? state::trailer : state::data;
          continue;
        }
        case state::data: {
          const std::size_t n =
              static_cast<std::size_t>(std::min<std::uint64_t>(left_, in.size() - i));
          if (!sink(in.data() + i, n)) return failure::stopped;
          i += n;
          left_ -= n;
          if (left_ == 0) state_ = state::data_cr;
          continue;
        }
        case state::data_cr:
          ++i;
          if (c == '\r') {
            state_ = state::data_lf;
            continue;
          }
          if (c != '\n') return failure::bad_chunk;
          state_ = state::size_line;
          continue;
        case state::data_lf:
          ++i;
          if (c != '\n') return failure::bad_chunk;
          state_ = state::size_line;
          continue;
        case state::done:
          break;
      }
    }
    return failure::none;
  }
  /// True once the last chunk and the trailer are complete.
  [[nodiscard]] bool done() const noexcept { return state_ == state::done; }
  /// Back to the start of a body.
  void reset() noexcept { *this = chunked_decoder{}; }

 private:
  enum class state : std::uint8_t { size_line, data, data_cr, data_lf, trailer, done };

  // One character of a size line: hex digits, then optional spaces, `;extensions`, CR.
  failure size_char(char c) noexcept {
    if (in_ext_) return failure::none;
    if (c == ';') {
      in_ext_ = true;
      return have_digit_ ? failure::none : failure::bad_chunk;
    }
    if (c == '\r' || c == ' ' || c == '\t') {
      after_size_ = true;
      return have_digit_ ? failure::none : failure::bad_chunk;
    }
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0 || after_size_) return failure::bad_chunk;
    if (left_ > (max_body_bytes << 4)) return failure::bad_chunk;  // no chunk is this big
    left_ = left_ * 16 + static_cast<std::uint64_t>(d);
    have_digit_ = true;
    return failure::none;
  }

  state state_ = state::size_line;
  std::uint64_t left_ = 0;  // data bytes left in this chunk (or the size being read)
  std::size_t line_len_ = 0;
  bool have_digit_ = false;
  bool in_ext_ = false;
  bool after_size_ = false;
  bool last_cr_ = false;  // the last character of the current size or trailer line is CR
};

/// Incremental parser of a `text/event-stream` body (the WHATWG rules the generator
/// needs): `data:` and `error:` lines join into an event, ended by a blank line;
/// `event: error` marks it an error; comments (`:`) and other fields are skipped. Lines
/// end in LF or CRLF and may arrive split anywhere. Keeps its buffers between requests.
class sse_parser {
 public:
  /// Forgets a partial line and event (keeps the buffers' capacity).
  void reset() noexcept {
    line_.clear();
    event_.clear();
    has_event_ = error_event_ = false;
  }
  /// Reserves `n` bytes for a line and for an event.
  void reserve(std::size_t n) {
    line_.reserve(n);
    event_.reserve(n);
  }
  /// Feeds `in`; calls `on_event(std::string_view data, bool is_error)` for each complete
  /// event, which returns false to stop (then `stopped`). Returns none, stopped,
  /// sse_line_too_long or sse_event_too_large.
  template <class OnEvent>
  [[nodiscard]] failure feed(std::string_view in, OnEvent&& on_event) {
    for (const char ch : in) {
      if (ch != '\n') {
        if (line_.size() >= max_sse_line) return failure::sse_line_too_long;
        line_.push_back(ch);
        continue;
      }
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (line_.empty()) {  // end of an event
        if (has_event_) {
          const bool go = on_event(std::string_view(event_), error_event_);
          event_.clear();
          has_event_ = error_event_ = false;
          if (!go) return failure::stopped;
        }
        continue;
      }
      const std::string_view line(line_);
      if (!line.starts_with(':')) {
        const std::size_t colon = line.find(':');
        const std::string_view name = line.substr(0, colon);
        std::string_view value =
            colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
        if (value.starts_with(' ')) value.remove_prefix(1);
        if (name == "data" || name == "error") {
          if (event_.size() + value.size() + 1 > max_sse_event) return failure::sse_event_too_large;
          if (has_event_) event_.push_back('\n');
          event_.append(value);
          has_event_ = true;
          if (name == "error") error_event_ = true;
        } else if (name == "event" && value == "error") {
          error_event_ = true;
        }
      }
      line_.clear();
    }
    return failure::none;
  }
  /// At the end of the body: the last event may lack its blank line when the server
  /// closed right after it. Calls `on_event` for it if there is one (a partial line is
  /// not an event) and forgets it.
  template <class OnEvent>
  void finish(OnEvent&& on_event) {
    if (has_event_) (void)on_event(std::string_view(event_), error_event_);
    reset();
  }
  /// True while an event's data lines have come but not its blank line.
  [[nodiscard]] bool has_event() const noexcept { return has_event_; }

 private:
  std::string line_;
  std::string event_;
  bool has_event_ = false;
  bool error_event_ = false;
};

/// A stop check the client runs after each poll slice: `fn(ctx)` true ends the exchange
/// with `failure::stopped`. Default: never.
struct stop_check {
  bool (*fn)(const void*) = nullptr;  ///< the check; null: never stop
  const void* ctx = nullptr;          ///< its argument
  /// Runs the check.
  [[nodiscard]] bool operator()() const { return fn != nullptr && fn(ctx); }
};

/// Where and how to connect.
struct target {
  std::string host;          ///< a name or an IP literal (IPv6 without brackets)
  int port = 0;              ///< 1 to 65535
  bool tls = false;          ///< https
  std::string ca_cert_file;  ///< TLS: a CA bundle instead of the system's; empty: system
};

/// How long the client waits.
struct timeouts {
  std::chrono::milliseconds connect{5000};  ///< TCP connect + TLS handshake (not getaddrinfo)
  std::chrono::milliseconds read{60000};    ///< longest silence while reading or writing
};

/// The outcome of one exchange: the failure, and the system's or TLS library's reason.
struct outcome {
  failure what = failure::none;  ///< none: the response was complete
  std::string reason;            ///< e.g. "Connection refused"; may be empty
};

/// \cond TANDEM_INTERNAL
#ifdef TANDEM_HTTP_OPENSSL
// An SSL_CTX with certificate verification: the system's CA store or `ca_file`. Owned;
// movable. Made once per generator, on its first https request.
class tls_context {
 public:
  tls_context() = default;
  tls_context(tls_context&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}
  tls_context& operator=(tls_context&& o) noexcept {
    std::swap(ctx_, o.ctx_);
    return *this;
  }
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;
  ~tls_context() {
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }
  // Creates the context once; `reason` says what failed.
  [[nodiscard]] bool ensure(const std::string& ca_file, std::string& reason) {
    if (ctx_ != nullptr) return true;
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    if (c == nullptr) {
      reason = "cannot create an SSL_CTX";
      return false;
    }
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    const int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(c)
                                   : SSL_CTX_load_verify_locations(c, ca_file.c_str(), nullptr);
    if (ok != 1) {
      reason = "cannot load the CA certificates" + (ca_file.empty() ? "" : " from " + ca_file);
      ERR_clear_error();
      SSL_CTX_free(c);
      return false;
    }
    ctx_ = c;
    return true;
  }
  [[nodiscard]] SSL_CTX* get() const noexcept { return ctx_; }

 private:
  SSL_CTX* ctx_ = nullptr;
};

// Blocks SIGPIPE in this thread while OpenSSL writes to a socket the peer may have closed
// (OpenSSL writes with write(), which raises it), and consumes one it raised. Touches only
// this thread's signal mask.
class sigpipe_guard {
 public:
  sigpipe_guard() noexcept {
    was_pending_ = pending();
    const sigset_t pipe = pipe_set();
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;
  ~sigpipe_guard() {
    if (!was_pending_ && pending()) {
      const sigset_t pipe = pipe_set();
      const timespec zero{0, 0};
      (void)sigtimedwait(&pipe, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  static sigset_t pipe_set() noexcept {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    return set;
  }
  static bool pending() noexcept {
    sigset_t set;
    sigemptyset(&set);
    sigpending(&set);
    return sigismember(&set, SIGPIPE) == 1;
  }

  sigset_t old_{};
  bool was_pending_ = false;
};
#else
// Without OpenSSL: an empty stand-in, so that a generator has the same members.
class tls_context {};
#endif
/// \endcond

/// One TCP connection, with TLS over it for an https target: connect, write all, read
/// some. Closed by the destructor. Every wait is sliced by `poll_slice` and runs the stop
/// check between slices.
class connection {
 public:
  connection() = default;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() { close(); }

  /// Resolves `t.host`, connects (non-blocking connect + poll) to each address in turn
  /// until one answers, then does the TLS handshake (SNI, certificate and host-name
  /// verification) for a TLS target, all within `limit` (the name lookup, a blocking
  /// getaddrinfo, is not bounded by it). Returns none, resolve, connect, connect_timeout,
  /// tls or stopped, with the reason in `reason`.
  [[nodiscard]] failure open(const target& t, tls_context& tls, std::chrono::milliseconds limit,
                             stop_check stop, std::string& reason) {
    close();
    const auto until = std::chrono::steady_clock::now() + limit;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* list = nullptr;
    const std::string port = std::to_string(t.port);
    if (const int rc = ::getaddrinfo(t.host.c_str(), port.c_str(), &hints, &list); rc != 0) {
      reason = ::gai_strerror(rc);
      return failure::resolve;
    }
    failure last = failure::connect;
    reason = "no address";
    for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
      last = connect_one(*a, until, stop, reason);
      if (last == failure::none || last == failure::stopped || last == failure::connect_timeout)
        break;
    }
    ::freeaddrinfo(list);
    if (last != failure::none) return last;
    if (!t.tls) return failure::none;
#ifdef TANDEM_HTTP_OPENSSL
    return handshake(t, tls, until, stop, reason);
#else
    (void)tls;
    reason = "this build has no TLS (TANDEM_HTTP_OPENSSL)";
    return failure::tls;
#endif
  }

  /// Sends all of `data`, waiting at most `idle` for the socket to take each part.
  /// Returns none, write, write_timeout or stopped.
  [[nodiscard]] failure write_all(std::string_view data, std::chrono::milliseconds idle,
                                  stop_check stop, std::string& reason) {
    while (!data.empty()) {
      std::size_t n = 0;
      const failure f = write_some(data, n, reason);
      if (f != failure::none) return f;
      if (n > 0) {
        data.remove_prefix(n);
        continue;
      }
      if (const failure w =
              wait(want_write_ ? POLLOUT : POLLIN, idle, stop, failure::write_timeout);
          w != failure::none)
        return w;
    }
    return failure::none;
  }

  /// Reads what is there (waiting at most `idle` for something) into `buf`; `n` is the
  /// count, 0 at the end of the stream. Returns none, read, read_timeout or stopped.
  [[nodiscard]] failure read_some(char* buf, std::size_t cap, std::size_t& n,
                                  std::chrono::milliseconds idle, stop_check stop,
                                  std::string& reason) {
    for (;;) {
      bool again = false;
      const failure f = try_read(buf, cap, n, again, reason);
      if (f != failure::none || !again) return f;
      if (const failure w = wait(want_write_ ? POLLOUT : POLLIN, idle, stop, failure::read_timeout);
          w != failure::none)
        return w;
    }
  }

  /// Closes the connection (a TLS close_notify is not waited for).
  void close() noexcept {
#ifdef TANDEM_HTTP_OPENSSL
    if (ssl_ != nullptr) {
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
#endif
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  static std::string errno_text(int e) {
    char buf[128];
    // The GNU strerror_r returns its text (maybe not in buf); the XSI one an int.
    const auto r = ::strerror_r(e, buf, sizeof buf);
    if constexpr (std::is_pointer_v<std::remove_cv_t<decltype(r)>>)
      return std::string(r);
    else
      return r == 0 ? std::string(buf) : std::string("error ") + std::to_string(e);
  }

  // Waits for `events` on the socket for at most `idle`, in slices, running the stop
  // check after each. Returns none (ready), `on_timeout`, stopped or read.
  failure wait(short events, std::chrono::milliseconds idle, stop_check stop, failure on_timeout) {
    const auto until = std::chrono::steady_clock::now() + idle;
    for (;;) {
      if (stop()) return failure::stopped;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left <= std::chrono::milliseconds::zero()) return on_timeout;
      pollfd p{fd_, events, 0};
      const int rc = ::poll(&p, 1, static_cast<int>(std::min(left, poll_slice).count()) + 1);
      if (rc > 0) return failure::none;  // readable, writable, or an error the call will see
      if (rc < 0 && errno != EINTR) return failure::read;
    }
  }

  failure connect_one(const addrinfo& a, std::chrono::steady_clock::time_point until,
                      stop_check stop, std::string& reason) {
    close();
    fd_ = ::socket(a.ai_family, a.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a.ai_protocol);
    if (fd_ < 0) {
      reason = errno_text(errno);
      return failure::connect;
    }
    if (::connect(fd_, a.ai_addr, a.ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        reason = errno_text(errno);
        close();
        return failure::connect;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      const failure f = wait(POLLOUT, left, stop, failure::connect_timeout);
      if (f != failure::none) {
        reason = f == failure::connect_timeout ? "no answer" : "";
        close();
        return f;
      }
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) {
        reason = errno_text(err);
        close();
        return failure::connect;
      }
    }
    return failure::none;
  }

  failure write_some(std::string_view data, std::size_t& n, std::string& reason) {
    n = 0;
    want_write_ = true;
#ifdef TANDEM_HTTP_OPENSSL
    if (ssl_ != nullptr) {
      const sigpipe_guard guard;
      const int chunk = static_cast<int>(std::min<std::size_t>(data.size(), 1u << 30));
      const int rc = SSL_write(ssl_, data.data(), chunk);
      if (rc > 0) {
        n = static_cast<std::size_t>(rc);
        return failure::none;
      }
      return tls_retry(rc, failure::write, reason);
    }
#endif
    const ssize_t rc = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (rc >= 0) {
      n = static_cast<std::size_t>(rc);
      return failure::none;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return failure::none;
    reason = errno_text(errno);
    return failure::write;
  }

  failure try_read(char* buf, std::size_t cap, std::size_t& n, bool& again, std::string& reason) {
    n = 0;
    again = false;
    want_write_ = false;
#ifdef TANDEM_HTTP_OPENSSL
    if (ssl_ != nullptr) {
      const int rc = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(cap, 1u << 30)));
      if (rc > 0) {
        n = static_cast<std::size_t>(rc);
        return failure::none;
      }
      const int e = SSL_get_error(ssl_, rc);
      if (e == SSL_ERROR_ZERO_RETURN) return failure::none;  // close_notify: the end
      if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && rc == 0) return failure::none;
        // OpenSSL 3 reports an end of the socket without close_notify as an error; for a
        // framed body the caller's count notices a short one, as with plain HTTP.
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
      if (e == SSL_ERROR_SSL &&
          ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        return failure::none;
      }
#endif
      const failure f = tls_retry(rc, failure::read, reason);
      again = f == failure::none;
      return f;
    }
#endif
    const ssize_t rc = ::recv(fd_, buf, cap, 0);
    if (rc >= 0) {
      n = static_cast<std::size_t>(rc);
      return failure::none;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      again = true;
      return failure::none;
    }
    reason = errno_text(errno);
    return failure::read;
  }

#ifdef TANDEM_HTTP_OPENSSL
  // After an SSL call returned `rc` <= 0: none when it wants to be called again (and
  // want_write_ says for what), else `f` with the reason.
  failure tls_retry(int rc, failure f, std::string& reason) {
    const int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_WANT_READ) {
      want_write_ = false;
      return failure::none;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
      want_write_ = true;
      return failure::none;
    }
    const unsigned long code = ERR_get_error();
    if (code != 0) {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof buf);
      reason = buf;
    } else if (e == SSL_ERROR_SYSCALL) {
      reason = errno != 0 ? errno_text(errno) : "connection closed";
    } else {
      reason = "TLS error " + std::to_string(e);
    }
    ERR_clear_error();
    return f;
  }

  failure handshake(const target& t, tls_context& tls, std::chrono::steady_clock::time_point until,
                    stop_check stop, std::string& reason) {
    if (!tls.ensure(t.ca_cert_file, reason)) return failure::tls;
    ssl_ = SSL_new(tls.get());
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) {
      reason = "cannot create an SSL object";
      return failure::tls;
    }
    in6_addr a6{};
    in_addr a4{};
    const bool ip = ::inet_pton(AF_INET, t.host.c_str(), &a4) == 1 ||
                    ::inet_pton(AF_INET6, t.host.c_str(), &a6) == 1;
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, t.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_, t.host.c_str());
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, t.host.c_str(), t.host.size());
    }
    for (;;) {
      const int rc = SSL_connect(ssl_);
      if (rc == 1) return failure::none;
      if (tls_retry(rc, failure::tls, reason) != failure::none) {
        const long v = SSL_get_verify_result(ssl_);
        if (v != X509_V_OK)
          reason = std::string("certificate: ") + X509_verify_cert_error_string(v);
        return failure::tls;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      const failure f = wait(want_write_ ? POLLOUT : POLLIN, left, stop, failure::connect_timeout);
      if (f != failure::none) {
        reason = f == failure::connect_timeout ? "TLS handshake unfinished" : "";
        return f;
      }
    }
  }

  SSL* ssl_ = nullptr;
#endif
  int fd_ = -1;
  bool want_write_ = false;
};

/// The request line and headers of a POST of `body_size` bytes of JSON to `path` on `t`,
/// with `Connection: close`; `bearer` (when not empty) as the Authorization. Appended to
/// `out`; the body follows.
inline void write_post_head(std::string& out, const target& t, std::string_view path,
                            std::string_view bearer, std::size_t body_size) {
  out.append("POST ").append(path).append(" HTTP/1.1\r\nHost: ");
  const bool v6 = t.host.find(':') != std::string::npos;
  if (v6) out.push_back('[');
  out.append(t.host);
  if (v6) out.push_back(']');
  if (t.port != (t.tls ? 443 : 80)) out.append(":").append(std::to_string(t.port));
  out.append("\r\nAccept: application/json, text/event-stream\r\n");
  if (!bearer.empty()) out.append("Authorization: Bearer ").append(bearer).append("\r\n");
  out.append("Content-Type: application/json\r\nContent-Length: ")
      .append(std::to_string(body_size))
      .append("\r\nConnection: close\r\nUser-Agent: tandem\r\n\r\n");
}

/// One exchange on a fresh connection: connects to `t`, sends `request` (head and body),
/// reads the response head (skipping 1xx answers) into `head`, calls `on_head(head)`,
/// then passes the body to `on_data(const char*, std::size_t)` as it arrives. `head.status`
/// stays 0 when no final head arrived. Either
/// callback returns false to stop (`failure::stopped`). `stop` is checked at least every
/// `poll_slice` while waiting. `scratch` is the receive buffer (reused; grows to 16 KiB).
template <class OnHead, class OnData>
[[nodiscard]] outcome exchange(const target& t, tls_context& tls, const timeouts& to,
                               std::string_view request, stop_check stop, response_head& head,
                               std::string& scratch, OnHead&& on_head, OnData&& on_data) {
  outcome out;
  head = response_head{};  // status 0 until a final head arrives
  connection conn;
  if ((out.what = conn.open(t, tls, to.connect, stop, out.reason)) != failure::none) return out;
  if ((out.what = conn.write_all(request, to.read, stop, out.reason)) != failure::none) return out;
  constexpr std::size_t buffer = 16 * 1024;
  scratch.resize(buffer);
  std::string pending;  // head bytes, then the body bytes read with them
  std::size_t interim = 0;
  for (;;) {  // the head, past any 1xx
    std::size_t end = find_head_end(pending);
    while (end == std::string::npos) {
      if (pending.size() > max_head_bytes) return {failure::head_too_large, ""};
      std::size_t n = 0;
      out.what = conn.read_some(scratch.data(), buffer, n, to.read, stop, out.reason);
      if (out.what != failure::none) return out;
      if (n == 0)
        return {pending.empty() ? failure::closed_early : failure::bad_status_line,
                pending.empty() ? "no response" : "the head ended early"};
      pending.append(scratch.data(), n);
      end = find_head_end(pending);
    }
    if (end > max_head_bytes) return {failure::head_too_large, ""};
    if ((out.what = parse_response_head(std::string_view(pending).substr(0, end), head)) !=
        failure::none)
      return out;
    pending.erase(0, end);
    if (head.status >= 200 || head.status == 101) break;
    head = response_head{};
    if (++interim > max_interim_answers) return {failure::too_many_interim, ""};
  }
  if (!on_head(static_cast<const response_head&>(head))) return {failure::stopped, ""};
  // 204 and 304 have no body (nor does a HEAD answer, which is never asked for).
  const bool no_body = head.status == 204 || head.status == 304;
  chunked_decoder chunks;
  std::uint64_t left = no_body ? 0 : head.content_length.value_or(0);
  const bool to_close = !no_body && !head.chunked && !head.content_length;
  // Passes `bytes` through the framing; true when the body is complete.
  const auto deliver = [&](std::string_view bytes, failure& f) {
    f = failure::none;
    if (head.chunked) {
      f = chunks.feed(bytes, on_data);
      return chunks.done();
    }
    if (to_close) {
      if (!bytes.empty() && !on_data(bytes.data(), bytes.size())) f = failure::stopped;
      return false;
    }
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, bytes.size()));
    if (n > 0 && !on_data(bytes.data(), n)) f = failure::stopped;
    left -= n;
    return left == 0;
  };
  if (no_body || (!head.chunked && !to_close && left == 0)) return out;
  bool complete = deliver(pending, out.what);
  if (out.what != failure::none) return out;
  while (!complete) {
    std::size_t n = 0;
    out.what = conn.read_some(scratch.data(), buffer, n, to.read, stop, out.reason);
    if (out.what != failure::none) return out;
    if (n == 0) {
      if (!to_close) return {failure::closed_early, ""};
      break;
    }
    complete = deliver(std::string_view(scratch.data(), n), out.what);
    if (out.what != failure::none) return out;
  }
  return out;
}

}  // namespace tandem::inline v0::detail::http
