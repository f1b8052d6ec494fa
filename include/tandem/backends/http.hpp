// tandem backends: a Generator over the OpenAI-compatible HTTP API (/v1/completions and
// /v1/chat/completions), as served by llama-server, vLLM, TGI and hosted APIs. A cascade
// escalates to a remote engine through it; the completion record carries the server's
// per-token log-probabilities, so the white-box confidence estimators work on remote
// answers too.
//
// Opt-in: link `tandem::http`. It needs no third-party library for plain HTTP: requests go
// through a small HTTP/1.1 client of its own over POSIX sockets (detail/http_client.hpp)
// and JSON through tandem's own reader and writer (core/detail/json.hpp,
// json_writer.hpp). HTTPS needs OpenSSL: the CMake target defines TANDEM_HTTP_OPENSSL
// and links OpenSSL when it finds it (TANDEM_WITH_HTTP_TLS); without it an https:// base
// URL is refused with `errc::unsupported`.
#pragma once

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tandem/backends/detail/http_client.hpp"
#include "tandem/core/chat.hpp"
#include "tandem/core/completion.hpp"
#include "tandem/core/detail/json.hpp"
#include "tandem/core/detail/json_writer.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// Which OpenAI-compatible endpoint a generator talks to.
enum class http_endpoint : std::uint8_t {
  completions,       ///< POST `<base>/completions` with a raw "prompt"
  chat_completions,  ///< POST `<base>/chat/completions`: the prompt as one user message, or
                     ///< chat()'s messages
};

/// Stable lower-case name, e.g. "chat_completions".
[[nodiscard]] constexpr std::string_view to_string(http_endpoint e) noexcept {
  switch (e) {
    case http_endpoint::completions:
      return "completions";
    case http_endpoint::chat_completions:
      return "chat_completions";
  }
  return "unknown";
}

/// Settings of an `http_generator`. Copied into the generator by `create`.
struct http_options {
  /// scheme://host[:port][/prefix], e.g. "http://127.0.0.1:8080/v1". Scheme http or https;
  /// no user info, query or fragment. The endpoint path is appended to the prefix.
  std::string base_url;
  http_endpoint endpoint = http_endpoint::completions;  ///< the API the server is asked through
  std::string model;    ///< the "model" field; empty omits it (llama-server serves one model)
  std::string api_key;  ///< sent as "Authorization: Bearer"; empty sends none; never logged
  std::chrono::milliseconds connect_timeout{5000};  ///< must be > 0
  std::chrono::milliseconds read_timeout{60000};    ///< longest silence between bytes; > 0
  std::size_t max_retries = 2;  ///< extra attempts on 429, 5xx and connection errors; <= 16
  std::chrono::milliseconds backoff_initial{200};  ///< first retry delay (doubles), >= 0
  std::chrono::milliseconds backoff_max{5000};     ///< cap of one delay, >= backoff_initial
  std::uint64_t retry_seed = 0;         ///< seed of the jitter RNG (delays are 50-100% of nominal)
  double price_per_input_token = 0.0;   ///< cost units per prompt token, finite and >= 0
  double price_per_output_token = 0.0;  ///< cost units per completion token, finite and >= 0
  std::size_t top_logprobs = 0;  ///< alternatives asked per token (<= 20); 0 asks the chosen only
  bool stream = false;           ///< stream (server-sent events) even without a per-token callback
  std::string ca_cert_file;      ///< HTTPS: a CA bundle instead of the system's; empty: system
};

namespace detail::http {

using json = tandem::detail::json::value;

struct parsed_url {
  bool tls = false;
  std::string host;
  int port = 0;
  std::string prefix;  // "" or "/v1" (no trailing slash)
};

[[nodiscard]] inline bool url_char_ok(char c) noexcept {
  return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f && c != '?' &&
         c != '#' && c != '@' && c != '\\' && c != '"' && c != '<' && c != '>';
}

/// Parses scheme://host[:port][/prefix]. Errors: invalid_argument.
[[nodiscard]] inline result<parsed_url> parse_base_url(std::string_view url) {
  parsed_url out;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    out.tls = true;
    rest = url.substr(8);
  } else {
    return errc::invalid_argument;
  }
  for (char c : rest)
    if (!url_char_ok(c)) return errc::invalid_argument;
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  std::string_view host;
  std::string_view port;
  if (authority.starts_with('[')) {  // [IPv6]
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return errc::invalid_argument;
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return errc::invalid_argument;
      port = after.substr(1);
      if (port.empty()) return errc::invalid_argument;
    }
    for (char c : host)
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'))
        return errc::invalid_argument;
  } else {
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return errc::invalid_argument;
    }
    for (char c : host)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'))
        return errc::invalid_argument;
  }
  if (host.empty()) return errc::invalid_argument;
  if (port.empty()) {
    out.port = out.tls ? 443 : 80;
  } else {
    if (port.size() > 5) return errc::invalid_argument;
    int p = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return errc::invalid_argument;
      p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) return errc::invalid_argument;
    out.port = p;
  }
  while (path.ends_with('/')) path.remove_suffix(1);
  if (path.find("//") != std::string_view::npos) return errc::invalid_argument;
  out.host.assign(host);
  out.prefix.assign(path);
  return out;
}

[[nodiscard]] inline const json* field(const json& j, const char* key) noexcept {
  return j.type == tandem::detail::json::kind::object ? j.find(key) : nullptr;
}

[[nodiscard]] inline bool is_string(const json* j) noexcept {
  return j != nullptr && j->type == tandem::detail::json::kind::string;
}

[[nodiscard]] inline const std::string* string_field(const json& j, const char* key) noexcept {
  const json* f = field(j, key);
  return is_string(f) ? &f->text : nullptr;
}

[[nodiscard]] inline std::optional<double> number_field(const json& j, const char* key) noexcept {
  const json* f = field(j, key);
  if (f == nullptr || f->type != tandem::detail::json::kind::number) return std::nullopt;
  return f->number;
}

/// Parses a response or event body; nullopt when it is not JSON.
[[nodiscard]] inline std::optional<json> parse_json(std::string_view text) {
  auto r = tandem::detail::json::parse(text);
  if (!r) return std::nullopt;
  return std::move(*r);
}

/// Replaces every occurrence of `secret` (when non-empty) in `s` with "***".
inline void scrub(std::string& s, std::string_view secret) {
  if (secret.empty()) return;
  for (std::size_t at = s.find(secret); at != std::string::npos; at = s.find(secret, at + 3))
    s.replace(at, secret.size(), "***");
}

/// The server's message from an error body: error.message, error (a string), message, or
/// else the body itself (cut to 512 bytes).
[[nodiscard]] inline std::string error_message(std::string_view body) {
  if (const auto j = parse_json(body)) {
    if (const json* e = field(*j, "error")) {
      if (const std::string* m = string_field(*e, "message")) return *m;
      if (is_string(e)) return e->text;
    }
    if (const std::string* m = string_field(*j, "message")) return *m;
  }
  return std::string(body.substr(0, 512));
}

[[nodiscard]] inline finish_reason map_finish(std::string_view r, bool had_stop_strings) noexcept {
  if (r == "length") return finish_reason::length;
  // The protocol says "stop" for end-of-sequence and stop strings alike.
  if (r == "stop") return had_stop_strings ? finish_reason::stop_string : finish_reason::stop_token;
  return finish_reason::stop_token;  // "content_filter", "tool_calls", ...
}

/// Per-token log-probabilities of one choice, in either format: `logprobs.content[]`
/// (chat, llama-server) or `logprobs.tokens[]` + `token_logprobs[]` (legacy completions).
/// Appends to `c`; `ids_ok` turns false when an entry lacks a token id. Calls `on_entry`
/// with (id, piece, logprob) for each token.
template <class F>
[[nodiscard]] errc read_logprobs(const json& choice, completion& c, bool& ids_ok, F&& on_entry) {
  using tandem::detail::json::kind;
  const json* lp = field(choice, "logprobs");
  if (lp == nullptr || lp->type == kind::null) return errc::ok;
  if (const json* content = field(*lp, "content")) {
    if (content->type == kind::null) return errc::ok;
    if (content->type != kind::array) return errc::parse_error;
    for (const json& e : content->items) {
      const auto l = number_field(e, "logprob");
      if (!l) return errc::not_found;
      token_id id = 0;
      if (const auto i = number_field(e, "id"))
        id = static_cast<token_id>(*i);
      else
        ids_ok = false;
      const std::string* piece = string_field(e, "token");
      c.logprobs.push_back(static_cast<float>(std::min(*l, 0.0)));
      c.tokens.push_back(id);
      on_entry(id, piece != nullptr ? std::string_view(*piece) : std::string_view{},
               static_cast<float>(*l));
    }
    return errc::ok;
  }
  const json* toks = field(*lp, "tokens");
  const json* vals = field(*lp, "token_logprobs");
  if (toks == nullptr || vals == nullptr) return errc::not_found;
  if (toks->type != kind::array || vals->type != kind::array ||
      toks->items.size() != vals->items.size())
    return errc::parse_error;
  ids_ok = false;
  for (std::size_t i = 0; i < vals->items.size(); ++i) {
    const json& v = vals->items[i];
    const float l = v.type == kind::number ? static_cast<float>(std::min(v.number, 0.0))
                                           : std::numeric_limits<float>::quiet_NaN();
    const json& t = toks->items[i];
    c.logprobs.push_back(l);
    c.tokens.push_back(0);
    on_entry(token_id{0}, is_string(&t) ? std::string_view(t.text) : std::string_view{}, l);
  }
  return errc::ok;
}

/// The generated text of a choice: `text` (completions) or `message.content` /
/// `delta.content` (chat; null counts as empty). nullptr when the field is missing.
[[nodiscard]] inline const std::string* choice_text(const json& choice, bool chat, bool delta,
                                                    bool& present) noexcept {
  present = false;
  if (!chat) {
    const std::string* t = string_field(choice, "text");
    present = t != nullptr;
    return t;
  }
  using tandem::detail::json::kind;
  const json* m = field(choice, delta ? "delta" : "message");
  if (m == nullptr || m->type != kind::object) return nullptr;
  const json* content = field(*m, "content");
  if (content == nullptr) {
    present = delta;  // a delta may carry only the role
    return nullptr;
  }
  if (content->type == kind::null) {
    present = true;
    return nullptr;
  }
  if (!is_string(content)) return nullptr;
  present = true;
  return &content->text;
}

}  // namespace detail::http

/// A Generator over an OpenAI-compatible server. Owns its HTTP client; use from one
/// thread at a time. Moving is cheap; copying is not allowed.
class http_generator {
 public:
  /// Validates `opts` and makes a generator; connects to nothing yet. Errors, with the
  /// option at fault named in `*info` when not null (never the API key's value):
  /// `invalid_argument` (bad base URL, non-positive timeout, more than 16 retries,
  /// backoff_max < backoff_initial, negative or non-finite price, top_logprobs > 20, an API
  /// key or model with control characters), `unsupported` (https:// in a build without
  /// OpenSSL, i.e. without TANDEM_HTTP_OPENSSL).
  [[nodiscard]] static result<http_generator> create(http_options opts,
                                                     error_info* info = nullptr) {
    const auto bad = [info](const char* what) {
      return detail::fail(info, errc::invalid_argument, "http_options: %s", what);
    };
    auto url = detail::http::parse_base_url(opts.base_url);
    if (!url) return bad("base_url is not scheme://host[:port][/prefix] with scheme http(s)");
    if (url->tls && !detail::http::tls_supported)
      return detail::fail(
          info, errc::unsupported,
          "http_options: https:// needs a build with OpenSSL (TANDEM_HTTP_OPENSSL)");
    using ms = std::chrono::milliseconds;
    if (opts.connect_timeout <= ms::zero() || opts.read_timeout <= ms::zero())
      return bad("a timeout is not positive");
    if (opts.max_retries > 16) return bad("max_retries above 16");
    if (opts.backoff_initial < ms::zero() || opts.backoff_max < opts.backoff_initial)
      return bad("backoff_initial negative or above backoff_max");
    if (opts.top_logprobs > 20) return bad("top_logprobs above 20");
    for (double p : {opts.price_per_input_token, opts.price_per_output_token})
      if (!std::isfinite(p) || p < 0.0) return bad("a price is negative or not finite");
    for (const std::string* s : {&opts.api_key, &opts.model})
      for (char c : *s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
          return bad(s == &opts.api_key ? "api_key holds a control character"
                                        : "model holds a control character");
    return http_generator(std::move(opts), std::move(*url));
  }

  ///@{
  /// Moves the settings, the connection and the buffers; a moved-from generator may only
  /// be destroyed or assigned to.
  http_generator(http_generator&&) noexcept = default;
  http_generator& operator=(http_generator&&) noexcept = default;
  ///@}
  http_generator(const http_generator&) = delete;
  http_generator& operator=(const http_generator&) = delete;
  ~http_generator() = default;

  /// Sends `req` and returns the completion: text, per-token log-probabilities (and the
  /// server's token ids when it reports them; `tokens` is left empty otherwise), entropies
  /// NaN (the protocol does not report them), prompt tokens and cost from the server's
  /// usage report, wall seconds. A stream that ends before its usage report (cancelled,
  /// cut) counts the tokens it received as output tokens and 0 prompt tokens.
  ///
  /// Streams (server-sent events) when `req.on_token` is set or `options.stream`: each
  /// token is reported as it arrives; returning `control::stop` ends the request
  /// (`finish_reason::cancelled`, the text so far kept). A deadline ends it likewise
  /// (`finish_reason::deadline`). A stream cut in the middle (server gone, read timeout,
  /// a malformed event, an error event) returns the partial completion with
  /// `finish_reason::error` and `completion::error` set to `network_error`, `timeout`,
  /// `parse_error` or `http_error`.
  ///
  /// Retries, with jittered exponential backoff, on 429, 5xx and connection errors while
  /// nothing has been reported to the callback. "stop" from the server maps to
  /// `stop_string` when the request has stop strings, else to `stop_token`.
  ///
  /// Errors (nothing generated; `last_error()` has the details): `empty_input` (empty
  /// prompt), `invalid_argument` (max_tokens 0, top_p outside (0, 1], min_p outside [0, 1],
  /// an empty stop string), `invalid_temperature` (negative or NaN), `unsupported` (stop
  /// token ids: the protocol has none; an output constraint: it would go unapplied),
  /// `network_error` (unreachable, refused, reset, TLS, a response that breaks HTTP/1.1
  /// or a limit of detail/http_client.hpp, e.g. a head above 64 KiB), `timeout` (connect,
  /// read or write timeout), `http_error` (a status other than 200, redirects included; the
  /// status is `last_status()`, the server's message is in `last_error()`), `parse_error`
  /// (malformed JSON or an unexpected type), `not_found` (a required field is missing).
  [[nodiscard]] result<completion> generate(const generate_request& req) { return run(req, {}); }

  /// Sends the conversation `messages` (the whole history, oldest first, each with its
  /// role and content) to /v1/chat/completions, with `req`'s options, sampling and
  /// callback, and returns the assistant's reply as a completion, as generate() does. The
  /// server applies the model's chat template; `req.prompt` must be empty (the messages are
  /// the prompt). Errors (details in last_error()): those of generate(), and
  /// `unsupported` (the endpoint is not `chat_completions`; nothing is sent),
  /// `empty_input` (no messages), `invalid_argument` (a non-empty `req.prompt`). The
  /// messages are only read during the call.
  [[nodiscard]] result<completion> chat(std::span<const chat_message> messages,
                                        const generate_request& req) {
    const auto refuse = [this](errc e, const char* why) {
      error_.clear();
      status_ = 0;
      attempts_ = 0;
      return fail(e, 0, why);
    };
    if (opts_.endpoint != http_endpoint::chat_completions)
      return refuse(errc::unsupported, "chat messages need the chat_completions endpoint");
    if (messages.empty()) return refuse(errc::empty_input, "no chat messages");
    if (!req.prompt.empty())
      return refuse(errc::invalid_argument, "a prompt given with chat messages");
    return run(req, messages);
  }

  /// Details of the last `generate` or `chat` call's failure, or of its cut-short stream (the
  /// completion's `error` says that one ended early; this says why): the error, and the
  /// server's message or the transport error as text ("HTTP 401: bad key"), never the API
  /// key. `code` is ok after a call that succeeded. State left: replaced by each call.
  [[nodiscard]] const error_info& last_error() const noexcept { return error_; }
  /// HTTP-specific detail of the last call's failure: the status the server answered
  /// with; 0 when no server answered (connection errors, timeouts) or the call succeeded.
  [[nodiscard]] int last_status() const noexcept { return status_; }
  /// HTTP-specific detail of the last call: requests sent (1 + retries).
  [[nodiscard]] std::size_t last_attempts() const noexcept { return attempts_; }
  /// Token counts of the last call as the server reported them (or as counted).
  [[nodiscard]] std::size_t last_completion_tokens() const noexcept { return completion_tokens_; }
  /// True when the base URL is https://.
  [[nodiscard]] bool uses_tls() const noexcept { return url_.tls; }
  /// The endpoint path requests go to, e.g. "/v1/completions".
  [[nodiscard]] std::string_view endpoint_path() const noexcept { return path_; }

 private:
  struct attempt_outcome {
    errc error = errc::ok;
    bool retryable = false;
    bool partial = false;  // something reached the caller: return it, do not retry
    finish_reason finish = finish_reason::none;
    int status = 0;
    std::string message;
    std::chrono::milliseconds retry_after{0};
  };

  // generate() and chat(): `messages` empty sends `req.prompt` (one user message to chat).
  [[nodiscard]] result<completion> run(const generate_request& req,
                                       std::span<const chat_message> messages) {
    error_.clear();
    status_ = 0;
    attempts_ = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const char* why = "";
    if (const errc e = check(req, messages, why); e != errc::ok) return fail(e, 0, why);
    build_body(req, messages);
    const bool streaming = req.on_token.has_value() || opts_.stream;

    completion c;
    for (std::size_t attempt = 0;; ++attempt) {
      c.clear();
      attempts_ = attempt + 1;
      const attempt_outcome out = streaming ? send_stream(req, c) : send_plain(req, c);
      if (out.error == errc::ok) break;
      if (out.partial) {
        c.finish = out.finish;
        c.error = out.finish == finish_reason::error ? out.error : errc::ok;
        if (out.finish == finish_reason::error) record(out.error, out.status, out.message);
        break;
      }
      if (!out.retryable || attempt >= opts_.max_retries)
        return fail(out.error, out.status, out.message);
      auto delay = backoff(attempt);
      if (out.retry_after > std::chrono::milliseconds::zero())
        delay = std::min(out.retry_after, opts_.backoff_max);
      if (req.options.deadline && std::chrono::steady_clock::now() + delay >= *req.options.deadline)
        return fail(errc::timeout, out.status, out.message);
      std::this_thread::sleep_for(delay);
    }
    if (!got_usage_) completion_tokens_ = events_;
    c.prompt_tokens = prompt_tokens_;
    c.cost = static_cast<double>(prompt_tokens_) * opts_.price_per_input_token +
             static_cast<double>(completion_tokens_) * opts_.price_per_output_token;
    if (!ids_ok_) c.tokens.clear();
    c.entropies.assign(c.logprobs.size(), std::numeric_limits<float>::quiet_NaN());
    c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return c;
  }

  http_generator(http_options opts, detail::http::parsed_url url)
      : opts_(std::move(opts)), url_(std::move(url)), rng_(opts_.retry_seed) {
    path_ = url_.prefix + (opts_.endpoint == http_endpoint::chat_completions ? "/chat/completions"
                                                                             : "/completions");
    target_.host = url_.host;
    target_.port = url_.port;
    target_.tls = url_.tls;
    target_.ca_cert_file = opts_.ca_cert_file;
    sse_.reserve(4096);
  }

  // Checks a request before anything is sent; `why` names the problem.
  [[nodiscard]] static errc check(const generate_request& req,
                                  std::span<const chat_message> messages,
                                  const char*& why) noexcept {
    const auto refuse = [&why](errc e, const char* what) {
      why = what;
      return e;
    };
    if (req.prompt.empty() && messages.empty()) return refuse(errc::empty_input, "empty prompt");
    if (req.options.max_tokens == 0) return refuse(errc::invalid_argument, "max_tokens is 0");
    if (!req.options.stop_tokens.empty())
      return refuse(errc::unsupported, "stop token ids: the protocol has none");
    if (req.options.constraint)
      return refuse(errc::unsupported, "an output constraint: the server's logits are not seen");
    for (std::string_view s : req.options.stop_strings)
      if (s.empty()) return refuse(errc::invalid_argument, "an empty stop string");
    const sampling_options& s = req.sampling;
    if (std::isnan(s.temperature) || s.temperature < 0.0f || std::isinf(s.temperature))
      return refuse(errc::invalid_temperature, "temperature negative or not finite");
    if (!(s.top_p > 0.0f && s.top_p <= 1.0f))
      return refuse(errc::invalid_argument, "top_p outside (0, 1]");
    if (!(s.min_p >= 0.0f && s.min_p <= 1.0f))
      return refuse(errc::invalid_argument, "min_p outside [0, 1]");
    return errc::ok;
  }

  // The request body, its keys in sorted order (as nlohmann-json, which wrote it before,
  // ordered them), then the request head before it.
  void build_body(const generate_request& req, std::span<const chat_message> messages) {
    body_.clear();
    detail::json::writer w(body_);
    const bool chat = opts_.endpoint == http_endpoint::chat_completions;
    const bool stream = req.on_token.has_value() || opts_.stream;
    w.begin_object();
    if (req.options.record_logprobs) {
      w.key("logprobs");
      // The legacy field counts alternatives; 1 is the least that every server answers
      // with the chosen token's log-probability.
      if (chat)
        w.value(true);
      else
        w.value(static_cast<std::uint64_t>(std::max<std::size_t>(opts_.top_logprobs, 1)));
    }
    w.key("max_tokens");
    w.value(static_cast<std::uint64_t>(req.options.max_tokens));
    if (chat) {
      const chat_message one{chat_role::user, std::string(req.prompt)};
      if (messages.empty()) messages = std::span<const chat_message>(&one, 1);
      w.key("messages");
      w.begin_array();
      for (const chat_message& m : messages) {
        w.begin_object();
        w.key("content");
        w.value(std::string_view(m.content));
        w.key("role");
        w.value(to_string(m.role));
        w.end_object();
      }
      w.end_array();
    }
    if (req.sampling.min_p > 0.0f) {
      w.key("min_p");
      w.value(req.sampling.min_p);
    }
    if (!opts_.model.empty()) {
      w.key("model");
      w.value(std::string_view(opts_.model));
    }
    if (!chat) {
      w.key("prompt");
      w.value(req.prompt);
    }
    w.key("seed");
    w.value(static_cast<std::uint64_t>(req.sampling.seed));
    if (!req.options.stop_strings.empty()) {
      w.key("stop");
      w.begin_array();
      for (std::string_view s : req.options.stop_strings) w.value(s);
      w.end_array();
    }
    if (stream) {
      w.key("stream");
      w.value(true);
      w.key("stream_options");
      w.begin_object();
      w.key("include_usage");
      w.value(true);
      w.end_object();
    }
    w.key("temperature");
    w.value(req.sampling.temperature);
    if (req.sampling.top_k > 0) {
      w.key("top_k");
      w.value(static_cast<std::uint64_t>(req.sampling.top_k));
    }
    if (req.options.record_logprobs && chat) {
      w.key("top_logprobs");
      w.value(static_cast<std::uint64_t>(opts_.top_logprobs));
    }
    if (req.sampling.top_p < 1.0f) {
      w.key("top_p");
      w.value(req.sampling.top_p);
    }
    w.end_object();
    request_.clear();
    detail::http::write_post_head(request_, target_, path_, opts_.api_key, body_.size());
    request_.append(body_);
  }

  [[nodiscard]] std::chrono::milliseconds backoff(std::size_t attempt) noexcept {
    const double base = static_cast<double>(opts_.backoff_initial.count()) *
                        std::ldexp(1.0, static_cast<int>(std::min<std::size_t>(attempt, 30)));
    const double capped = std::min(base, static_cast<double>(opts_.backoff_max.count()));
    return std::chrono::milliseconds(
        static_cast<std::int64_t>(capped * (0.5 + 0.5 * rng_.uniform())));
  }

  result<completion> fail(errc e, int status, std::string message) {
    record(e, status, std::move(message));
    return e;
  }

  void record(errc e, int status, std::string message) {
    detail::http::scrub(message, opts_.api_key);
    status_ = status;
    if (status != 0)
      (void)detail::fail(&error_, e, "HTTP %d: %s", status, message.c_str());
    else
      (void)detail::fail(&error_, e, "%s", message.c_str());
  }

  void reset_counts() noexcept {
    prompt_tokens_ = 0;
    completion_tokens_ = 0;
    events_ = 0;
    got_usage_ = false;
    ids_ok_ = true;
  }

  void read_usage(const detail::http::json& j) noexcept {
    const detail::http::json* u = detail::http::field(j, "usage");
    if (u == nullptr || u->type != tandem::detail::json::kind::object) return;
    const auto p = detail::http::number_field(*u, "prompt_tokens");
    const auto c = detail::http::number_field(*u, "completion_tokens");
    if (p && *p >= 0) prompt_tokens_ = static_cast<std::size_t>(*p);
    if (c && *c >= 0) {
      completion_tokens_ = static_cast<std::size_t>(*c);
      got_usage_ = true;
    }
  }

  // Classifies a failed exchange: the errc, whether a retry may help, and the message.
  [[nodiscard]] attempt_outcome transport_failure(const detail::http::outcome& out) const {
    using detail::http::failure;
    attempt_outcome o;
    o.message = std::string(detail::http::describe(out.what));
    if (out.what == failure::resolve || out.what == failure::connect ||
        out.what == failure::connect_timeout || out.what == failure::tls) {
      o.message += " (" + url_.host + ":" + std::to_string(url_.port) + ")";
    }
    if (!out.reason.empty()) o.message += ": " + out.reason;
    switch (out.what) {
      case failure::connect_timeout:
      case failure::read_timeout:
      case failure::write_timeout:
        o.error = errc::timeout;
        break;
      case failure::resolve:
      case failure::connect:
      case failure::write:
      case failure::read:
      case failure::closed_early:
        o.error = errc::network_error;
        o.retryable = true;
        break;
      default:  // TLS, and a response that breaks the protocol or the client's limits
        o.error = errc::network_error;
        break;
    }
    return o;
  }

  [[nodiscard]] static attempt_outcome status_failure(int status, std::string_view body,
                                                      std::string_view retry_after) {
    attempt_outcome o;
    o.error = errc::http_error;
    o.status = status;
    o.message = "HTTP " + std::to_string(status) + ": " + detail::http::error_message(body);
    o.retryable = status == 429 || (status >= 500 && status <= 599);
    if (!retry_after.empty() && retry_after.size() <= 4) {
      long s = 0;
      bool digits = true;
      for (char ch : retry_after) {
        if (ch < '0' || ch > '9') digits = false;
        s = s * 10 + (ch - '0');
      }
      if (digits && s > 0 && s < 3600) o.retry_after = std::chrono::milliseconds(s * 1000);
    }
    return o;
  }

  // The stop check of an exchange: the request's deadline passed.
  [[nodiscard]] static detail::http::stop_check deadline_check(const generate_request& req) {
    if (!req.options.deadline) return {};
    return {[](const void* r) { return deadline_passed(*static_cast<const generate_request*>(r)); },
            &req};
  }

  // Sends the prepared request; `on_head` and `on_data` as in detail::http::exchange.
  template <class OnHead, class OnData>
  [[nodiscard]] detail::http::outcome exchange(const generate_request& req, OnHead&& on_head,
                                               OnData&& on_data) {
    detail::http::timeouts to;
    to.connect = opts_.connect_timeout;
    to.read = opts_.read_timeout;
    return detail::http::exchange(target_, tls_, to, request_, deadline_check(req), head_, scratch_,
                                  on_head, on_data);
  }

  // A failed exchange as an attempt outcome; a deadline that stopped it ends the request.
  [[nodiscard]] attempt_outcome failed_exchange(const detail::http::outcome& out,
                                                const generate_request& req) const {
    attempt_outcome o = transport_failure(out);
    if (out.what == detail::http::failure::stopped || deadline_passed(req)) {
      o.error = errc::timeout;
      o.message = "deadline passed";
      o.partial = true;
      o.finish = finish_reason::deadline;
    }
    return o;
  }

  attempt_outcome send_plain(const generate_request& req, completion& c) {
    using detail::http::json;
    reset_counts();
    response_.clear();
    bool too_large = false;
    const detail::http::outcome out = exchange(
        req, [](const detail::http::response_head&) { return true; },
        [this, &too_large](const char* d, std::size_t n) {
          if (response_.size() + n > detail::http::max_body_bytes) {
            too_large = true;
            return false;
          }
          response_.append(d, n);
          return true;
        });
    if (too_large) return transport_failure({detail::http::failure::body_too_large, ""});
    if (out.what != detail::http::failure::none) return failed_exchange(out, req);
    if (head_.status != 200) return status_failure(head_.status, response_, head_.retry_after);
    const std::optional<json> parsed = detail::http::parse_json(response_);
    attempt_outcome o;
    if (!parsed) {
      o.error = errc::parse_error;
      o.message = "malformed JSON in the response";
      return o;
    }
    const json& j = *parsed;
    const json* choices = detail::http::field(j, "choices");
    if (choices == nullptr || choices->type != tandem::detail::json::kind::array ||
        choices->items.empty()) {
      o.error = choices == nullptr ? errc::not_found : errc::parse_error;
      o.message = "no choices in the response";
      return o;
    }
    const json& ch = choices->items[0];
    bool present = false;
    const std::string* text = detail::http::choice_text(
        ch, opts_.endpoint == http_endpoint::chat_completions, false, present);
    if (!present) {
      o.error = errc::not_found;
      o.message = "no text in the first choice";
      return o;
    }
    if (text != nullptr) c.text = *text;
    if (req.options.record_logprobs) {
      const errc e =
          detail::http::read_logprobs(ch, c, ids_ok_, [](token_id, std::string_view, float) {});
      if (e != errc::ok) {
        o.error = e;
        o.message = "bad logprobs in the response";
        return o;
      }
    }
    events_ = c.logprobs.size();
    const std::string* fr = detail::http::string_field(ch, "finish_reason");
    c.finish = fr != nullptr ? detail::http::map_finish(*fr, !req.options.stop_strings.empty())
                             : finish_reason::stop_token;
    read_usage(j);
    return o;
  }

  [[nodiscard]] static bool deadline_passed(const generate_request& req) noexcept {
    return req.options.deadline && std::chrono::steady_clock::now() >= *req.options.deadline;
  }

  // State of one streamed attempt, shared with the body receiver.
  struct stream_state {
    const generate_request* req = nullptr;
    completion* out = nullptr;
    bool done = false;     // [DONE] or a finish reason seen
    bool stopped = false;  // the callback or the deadline stopped it
    finish_reason stop_reason = finish_reason::none;
    attempt_outcome bad;  // set when an event is malformed or an error event came
  };

  // Handles one complete SSE event (its joined data lines). Returns false to stop reading.
  bool on_event(stream_state& st, std::string_view data, bool is_error_event) {
    using detail::http::json;
    using tandem::detail::json::kind;
    if (data == "[DONE]") {
      st.done = true;
      return true;
    }
    const std::optional<json> parsed = detail::http::parse_json(data);
    if (!parsed) {
      st.bad.error = errc::parse_error;
      st.bad.message = "malformed JSON in a stream event";
      return false;
    }
    const json& j = *parsed;
    const json* err = detail::http::field(j, "error");
    if (is_error_event || (err != nullptr && err->type != kind::null)) {
      st.bad.error = errc::http_error;
      st.bad.message = "error event: " + detail::http::error_message(data);
      return false;
    }
    read_usage(j);
    const json* choices = detail::http::field(j, "choices");
    if (choices == nullptr || choices->type != kind::array) {
      st.bad.error = choices == nullptr ? errc::not_found : errc::parse_error;
      st.bad.message = "no choices in a stream event";
      return false;
    }
    if (choices->items.empty()) return true;  // the usage-only chunk
    const json& ch = choices->items[0];
    const bool chat = opts_.endpoint == http_endpoint::chat_completions;
    bool present = false;
    const std::string* text = detail::http::choice_text(ch, chat, true, present);
    if (!present) {
      st.bad.error = errc::not_found;
      st.bad.message = "no text in a stream event";
      return false;
    }
    const std::string_view delta = text != nullptr ? std::string_view(*text) : std::string_view{};
    completion& c = *st.out;
    c.text.append(delta);
    const std::size_t before = c.logprobs.size();
    bool keep_going = true;
    const auto emit = [&](token_id id, std::string_view piece, float lp) {
      ++events_;
      if (!keep_going || !st.req->on_token) return;
      token_event ev;
      ev.token = id;
      ev.index = events_ - 1;
      ev.piece = piece;
      ev.logprob = lp;
      if ((*st.req->on_token)(ev) == control::stop) keep_going = false;
    };
    if (st.req->options.record_logprobs) {
      // One entry: the delta is its piece (stop strings may have trimmed it).
      std::size_t n_entries = 0;
      if (const json* lp = detail::http::field(ch, "logprobs"))
        if (const json* content = detail::http::field(*lp, "content"))
          if (content->type == kind::array) n_entries = content->items.size();
      const errc e = detail::http::read_logprobs(
          ch, c, ids_ok_, [&](token_id id, std::string_view piece, float lp) {
            emit(id, n_entries == 1 ? delta : piece, lp);
          });
      if (e != errc::ok) {
        st.bad.error = e;
        st.bad.message = "bad logprobs in a stream event";
        return false;
      }
    }
    if (c.logprobs.size() == before && !delta.empty())
      emit(token_id{0}, delta, std::numeric_limits<float>::quiet_NaN());
    if (c.logprobs.size() == before && !delta.empty()) ids_ok_ = false;
    if (const std::string* fr = detail::http::string_field(ch, "finish_reason")) {
      c.finish = detail::http::map_finish(*fr, !st.req->options.stop_strings.empty());
      st.done = true;
    }
    if (!keep_going) {
      st.stopped = true;
      st.stop_reason = finish_reason::cancelled;
      return false;
    }
    if (deadline_passed(*st.req)) {
      st.stopped = true;
      st.stop_reason = finish_reason::deadline;
      return false;
    }
    return true;
  }

  attempt_outcome send_stream(const generate_request& req, completion& c) {
    using detail::http::failure;
    reset_counts();
    sse_.reset();
    response_.clear();
    stream_state st;
    st.req = &req;
    st.out = &c;
    failure sse_failure = failure::none;
    const auto event = [this, &st](std::string_view data, bool is_error) {
      return on_event(st, data, is_error);
    };
    const detail::http::outcome out = exchange(
        req, [](const detail::http::response_head&) { return true; },
        [&](const char* d, std::size_t n) {
          if (head_.status != 200) {  // an error body: keep its start for the message
            if (response_.size() < 65536) response_.append(d, std::min<std::size_t>(n, 65536));
            return true;
          }
          sse_failure = sse_.feed(std::string_view(d, n), event);
          return sse_failure == failure::none;
        });
    // The last event may lack its blank line when the server closes right after it.
    if (out.what == failure::none && head_.status == 200 && st.bad.error == errc::ok && !st.stopped)
      sse_.finish(event);
    const bool reached_caller = events_ > 0 || !c.text.empty();
    attempt_outcome o;
    if (st.stopped) {
      o.error = errc::cancelled;
      o.partial = true;
      o.finish = st.stop_reason;
      return o;
    }
    if (head_.status != 0 && head_.status != 200)
      return status_failure(head_.status, response_, head_.retry_after);
    if (st.bad.error != errc::ok) {
      o = std::move(st.bad);
      o.status = 200;
      o.partial = reached_caller;
      o.finish = finish_reason::error;
      return o;
    }
    if (sse_failure != failure::none && sse_failure != failure::stopped)
      o = transport_failure({sse_failure, ""});
    else if (out.what != failure::none && !st.done)
      o = failed_exchange(out, req);
    if (o.error != errc::ok) {
      if (o.finish == finish_reason::deadline) return o;
      if (head_.status == 200 && reached_caller) {  // the server answered, then broke off
        o.partial = true;
        o.retryable = false;
        o.finish = finish_reason::error;
        o.message = "stream cut: " + o.message;
      }
      return o;
    }
    if (!st.done) {
      o.error = errc::network_error;
      o.message = "stream ended without a finish reason";
      o.partial = true;
      o.finish = finish_reason::error;
      return o;
    }
    if (c.finish == finish_reason::none) c.finish = finish_reason::stop_token;
    return o;
  }

  http_options opts_;
  detail::http::parsed_url url_;
  detail::http::target target_;
  std::string path_;
  detail::http::tls_context tls_;  // made on the first https request, then reused
  tandem::rng rng_;
  error_info error_;
  int status_ = 0;
  std::size_t attempts_ = 0;
  std::string body_;      // the JSON body of the request being sent
  std::string request_;   // its head and body, as sent
  std::string response_;  // a body read whole, or an error body's start
  std::string scratch_;   // the receive buffer
  detail::http::response_head head_;
  detail::http::sse_parser sse_;
  std::size_t prompt_tokens_ = 0;
  std::size_t completion_tokens_ = 0;
  std::size_t events_ = 0;
  bool got_usage_ = false;
  bool ids_ok_ = true;
};

static_assert(Generator<http_generator>);

}  // namespace tandem::inline v0
