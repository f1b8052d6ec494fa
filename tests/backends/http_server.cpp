// Tests of the HTTP generator against a real llama-server (built from the same llama.cpp
// as the llama.cpp adapter), started on 127.0.0.1 with a tiny random-weight GGUF model
// written at test time, and stopped at the end of the test process.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backends/http_test_util.hpp"
#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "common/tiny_gguf.hpp"
#include "gguf_writer.hpp"
#include "tandem/backends/http.hpp"
#include "tandem/confidence/white_box.hpp"

namespace {

using tandem::errc;
using tandem::finish_reason;
using tandem::http_generator;
using tandem::http_options;
namespace fs = std::filesystem;

// A scratch directory per test process, removed at exit.
const fs::path& scratch() {
  static tandem_test::scratch_dir dir("tandem-http-test-");
  return dir.path();
}

const std::string& tiny_model_path() {
  static const std::string path = [] {
    tandem::tools::tiny_llama_config cfg;
    cfg.seed = 7;
    cfg.n_ctx_train = 2048;
    // Without the byte tokens, every token is whole UTF-8 text: llama-server holds back
    // the log-probability of a token that ends inside a UTF-8 sequence, which would make
    // the per-token counts below depend on the random weights.
    auto vocab = tandem::tools::builtin_vocab();
    // The newline byte stays: the chat template needs it.
    std::erase_if(vocab.entries, [](const tandem::tools::vocab_entry& e) {
      return e.type == tandem::tools::token_type::byte && e.piece != "<0x0A>";
    });
    return tandem_test::write_tiny_gguf(scratch(), "tiny.gguf", cfg, vocab);
  }();
  return path;
}

// One llama-server process on a free port of 127.0.0.1. The child dies with the test
// process (PR_SET_PDEATHSIG), so no server outlives a crashed test.
class llama_server {
 public:
  llama_server() {
    port_ = tandem_test::free_port();
    const std::string model = tiny_model_path();
    const std::string port = std::to_string(port_);
    const std::string log = (scratch() / ("server-" + port + ".log")).string();
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      const char* argv[] = {TANDEM_LLAMA_SERVER,
                            "-m",
                            model.c_str(),
                            "--host",
                            "127.0.0.1",
                            "--port",
                            port.c_str(),
                            "-c",
                            "2048",
                            "-np",
                            "1",
                            "-t",
                            "2",
                            nullptr};
      ::execv(TANDEM_LLAMA_SERVER, const_cast<char* const*>(argv));
      ::_exit(127);
    }
    httplib::Client probe("127.0.0.1", port_);
    probe.set_connection_timeout(0, 200000);
    for (int i = 0; i < 600; ++i) {  // at most about 60 s
      if (auto r = probe.Get("/health"); r && r->status == 200) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("llama-server exited at start; see its log");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("llama-server did not become healthy within 60 s");
  }
  llama_server(const llama_server&) = delete;
  llama_server& operator=(const llama_server&) = delete;
  ~llama_server() { stop(SIGTERM); }

  /// Stops the server with `sig` (SIGKILL: abruptly) and reaps it.
  void stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
};

llama_server& shared_server() {
  static llama_server server;
  return server;
}

http_options options_for(const llama_server& s) {
  http_options o;
  o.base_url = s.url();
  o.read_timeout = std::chrono::milliseconds(20000);
  o.price_per_input_token = 1e-6;
  o.price_per_output_token = 2e-6;
  return o;
}

http_generator make(const http_options& o) {
  auto g = http_generator::create(o);
  REQUIRE(g.has_value());
  return std::move(*g);
}

tandem::generate_request request(std::size_t max_tokens, float temperature = 0.0f,
                                 std::uint64_t seed = 1) {
  tandem::generate_request r;
  r.prompt = "In the beginning God created the heaven and the earth.";
  r.options.max_tokens = max_tokens;
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  return r;
}

}  // namespace

TEST_CASE("http server: a plain completion has text, one log-probability per token and usage",
          "[backends][http][llama_server]") {
  auto g = make(options_for(shared_server()));
  auto c = g.generate(request(12));
  REQUIRE(c.has_value());
  CHECK(c->finish == finish_reason::length);
  CHECK(c->logprobs.size() == 12);
  CHECK(c->tokens.size() == 12);
  for (float l : c->logprobs) CHECK((l <= 0.0f && std::isfinite(l)));
  CHECK(c->prompt_tokens > 0);
  CHECK(g.last_completion_tokens() == 12);
  CHECK(c->cost == Approx(static_cast<double>(c->prompt_tokens) * 1e-6 + 12 * 2e-6));
  auto s = tandem::score_white_box(*c);
  REQUIRE(s.has_value());
  CHECK(s->mean_logprob < 0.0);
}

TEST_CASE("http server: streaming gives the same text and log-probabilities as the plain call",
          "[backends][http][llama_server]") {
  auto g = make(options_for(shared_server()));
  auto plain = g.generate(request(16));
  REQUIRE(plain.has_value());
  std::string pieces;
  std::size_t events = 0;
  auto cb = [&](const tandem::token_event& e) {
    pieces.append(e.piece);
    ++events;
    return tandem::control::proceed;
  };
  auto r = request(16);
  r.on_token = tandem::token_callback(cb);
  auto streamed = g.generate(r);
  REQUIRE(streamed.has_value());
  CHECK(streamed->finish == plain->finish);
  CHECK(streamed->text == plain->text);
  CHECK(pieces == plain->text);
  CHECK(events == 16);
  CHECK(streamed->tokens == plain->tokens);
  REQUIRE(streamed->logprobs.size() == plain->logprobs.size());
  for (std::size_t i = 0; i < plain->logprobs.size(); ++i)
    CHECK(streamed->logprobs[i] == Approx(plain->logprobs[i]).margin(1e-3));
  CHECK(streamed->prompt_tokens == plain->prompt_tokens);
}

TEST_CASE("http server: the chat endpoint answers with log-probabilities",
          "[backends][http][llama_server]") {
  auto o = options_for(shared_server());
  o.endpoint = tandem::http_endpoint::chat_completions;
  o.top_logprobs = 2;
  auto g = make(o);
  auto c = g.generate(request(5));
  INFO(std::string(g.last_error().context()));
  REQUIRE(c.has_value());
  CHECK(c->logprobs.size() == 5);
  CHECK(c->finish == finish_reason::length);
  std::string pieces;
  auto cb = [&](const tandem::token_event& e) {
    pieces.append(e.piece);
    return tandem::control::proceed;
  };
  auto r = request(5);
  r.on_token = tandem::token_callback(cb);
  auto streamed = g.generate(r);
  REQUIRE(streamed.has_value());
  CHECK(streamed->text == c->text);
  CHECK(pieces == c->text);
  CHECK(streamed->logprobs.size() == 5);
  CHECK(streamed->prompt_tokens == c->prompt_tokens);
}

TEST_CASE("http server: chat sends the whole conversation, which the server renders",
          "[backends][http][llama_server]") {
  auto o = options_for(shared_server());
  o.endpoint = tandem::http_endpoint::chat_completions;
  auto g = make(o);
  const std::vector<tandem::chat_message> history{
      {tandem::chat_role::system, "Answer in the words of the king."},
      {tandem::chat_role::user, "Who made the heaven?"},
      {tandem::chat_role::assistant, "God created the heaven and the earth."},
      {tandem::chat_role::user, "And the light?"}};
  tandem::generate_request r;
  r.options.max_tokens = 4;
  auto whole = g.chat(history, r);
  INFO(std::string(g.last_error().context()));
  REQUIRE(whole.has_value());
  auto last = g.chat(std::span(history).last(1), r);
  REQUIRE(last.has_value());
  // The earlier turns reach the model: the prompt is longer by at least their words.
  CHECK(whole->prompt_tokens > last->prompt_tokens + 15);
}

TEST_CASE("http server: a stop string ends the text before it", "[backends][http][llama_server]") {
  auto g = make(options_for(shared_server()));
  auto full = g.generate(request(24));
  REQUIRE(full.has_value());
  REQUIRE(full->text.size() >= 8);
  // A stop string from the middle of the greedy answer: the answer is cut at its first
  // occurrence.
  const std::string stop = full->text.substr(full->text.size() / 2, 2);
  const std::string_view stops[] = {stop};
  auto r = request(24);
  r.options.stop_strings = stops;
  auto cut = g.generate(r);
  REQUIRE(cut.has_value());
  INFO("full: " << full->text << " stop: " << stop);
  CHECK(cut->finish == finish_reason::stop_string);
  CHECK(cut->text == full->text.substr(0, full->text.find(stop)));
}

TEST_CASE("http server: equal seeds give equal samples, different seeds differ",
          "[backends][http][llama_server]") {
  auto g = make(options_for(shared_server()));
  auto a = g.generate(request(20, 1.0f, 11));
  auto b = g.generate(request(20, 1.0f, 11));
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(a->text == b->text);
  CHECK(a->tokens == b->tokens);
  bool some_differ = false;
  for (std::uint64_t seed : {12u, 13u, 14u}) {
    auto c = g.generate(request(20, 1.0f, seed));
    REQUIRE(c.has_value());
    some_differ = some_differ || c->tokens != a->tokens;
  }
  CHECK(some_differ);
}

TEST_CASE("http server: the callback cancels a stream mid-way", "[backends][http][llama_server]") {
  auto g = make(options_for(shared_server()));
  std::size_t seen = 0;
  auto cb = [&](const tandem::token_event&) {
    return ++seen == 4 ? tandem::control::stop : tandem::control::proceed;
  };
  auto r = request(500);
  r.on_token = tandem::token_callback(cb);
  auto c = g.generate(r);
  REQUIRE(c.has_value());
  CHECK(seen == 4);
  CHECK(c->finish == finish_reason::cancelled);
  CHECK(c->logprobs.size() == 4);
  // The server is still usable afterwards.
  auto next = g.generate(request(3));
  REQUIRE(next.has_value());
  CHECK(next->logprobs.size() == 3);
}

TEST_CASE("http server: a server killed mid-stream leaves the partial text and a network_error",
          "[backends][http][llama_server]") {
  llama_server doomed;
  auto o = options_for(doomed);
  o.max_retries = 2;
  auto g = make(o);
  std::size_t seen = 0;
  auto cb = [&](const tandem::token_event&) {
    if (++seen == 1) doomed.stop(SIGKILL);
    return tandem::control::proceed;
  };
  auto r = request(1500, 1.0f, 5);
  r.on_token = tandem::token_callback(cb);
  auto c = g.generate(r);
  REQUIRE(c.has_value());
  CHECK(c->finish == finish_reason::error);
  CHECK(c->error == errc::network_error);
  CHECK_FALSE(c->text.empty());
  CHECK(c->logprobs.size() == seen);
  CHECK(seen < 1500);
  CHECK(g.last_attempts() == 1);
  // With the server gone, the next call is a network_error after its retries.
  auto after = g.generate(request(3));
  REQUIRE_FALSE(after.has_value());
  CHECK(after.error() == errc::network_error);
  CHECK(g.last_attempts() == 3);
}
