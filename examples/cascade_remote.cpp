// cascade_remote: a two-stage cascade that escalates to a remote engine over HTTP.
//
// A small local model (tandem's built-in Kneser-Ney n-gram model, trained at startup on
// the KJV corpus with a word tokenizer) answers each prompt first. A white-box confidence
// estimator (the mean token log-probability) scores the answer; below --threshold, the
// prompt escalates to an OpenAI-compatible endpoint (llama-server, vLLM, TGI, a hosted
// API) given by --url, whose answer carries its own log-probabilities. The program prints
// the decision trace (stage, score, threshold, decision, cost) and the total cost.
// Without --url it runs locally and reports which prompts it would escalate.
//
//   cascade_remote [--url http://127.0.0.1:8080/v1] [--endpoint completions|chat]
//                  [--model NAME] [--api-key-env VAR] [--threshold X] [--max-tokens N]
//                  [--price-in X] [--price-out X] [--local-price X] [--data DIR]
//                  [--timeout-ms N] [--temperature X] [--seed N] [--prompt TEXT]...
//
// The local model samples (temperature 1, seeded) so that its token log-probabilities
// say something: a greedy n-gram answer is fluent, hence confident, whatever the prompt.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tandem/backends/http.hpp"
#include "tandem/backends/ngram_model.hpp"
#include "tandem/confidence/white_box.hpp"
#include "tandem/core/generator.hpp"

namespace {

// Splits on spaces; ids 0 = <s>, 1 = </s>, 2 = <unk>, then the training words. encode()
// opens with <s>, as the n-gram model was trained. Like every Tokenizer, it appends.
class word_tokenizer {
 public:
  static constexpr tandem::token_id bos = 0, eos = 1, unk = 2;

  word_tokenizer() : words_{"<s>", "</s>", "<unk>"} {}

  tandem::token_id add(std::string_view w) {
    auto [it, fresh] =
        ids_.try_emplace(std::string(w), static_cast<tandem::token_id>(words_.size()));
    if (fresh) words_.emplace_back(w);
    return it->second;
  }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return words_.size(); }
  [[nodiscard]] tandem::errc encode(std::string_view text,
                                    std::vector<tandem::token_id>& ids) const {
    ids.push_back(bos);
    for_each_word(text, [&](std::string_view w) {
      const auto it = ids_.find(std::string(w));
      ids.push_back(it == ids_.end() ? unk : it->second);
    });
    return tandem::errc::ok;
  }
  [[nodiscard]] tandem::errc decode(std::span<const tandem::token_id> ids, std::string& out) const {
    for (tandem::token_id id : ids)
      if (id < 0 || static_cast<std::size_t>(id) >= words_.size())
        return tandem::errc::invalid_token;
    for (tandem::token_id id : ids)
      if (id > unk) (out += ' ') += words_[static_cast<std::size_t>(id)];
    return tandem::errc::ok;
  }
  [[nodiscard]] tandem::errc piece(tandem::token_id id, std::string& out) const {
    if (id < 0 || static_cast<std::size_t>(id) >= words_.size()) return tandem::errc::invalid_token;
    if (id > unk) (out += ' ') += words_[static_cast<std::size_t>(id)];
    return tandem::errc::ok;
  }
  template <class F>
  static void for_each_word(std::string_view text, F&& f) {
    std::size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && text[i] == ' ') ++i;
      std::size_t j = i;
      while (j < text.size() && text[j] != ' ') ++j;
      if (j > i) f(text.substr(i, j - i));
      i = j;
    }
  }

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, tandem::token_id> ids_;
};

struct args {
  std::string url, endpoint = "completions", model, api_key_env, data = TANDEM_EXAMPLE_DATA_DIR;
  double threshold = -5.5, temperature = 1.0, price_in = 0.0, price_out = 0.0, local_price = 0.0;
  std::size_t max_tokens = 16;
  std::uint64_t seed = 1;
  long timeout_ms = 30000;
  std::vector<std::string> prompts;
};

int usage(const char* why) {
  std::fprintf(stderr, "cascade_remote: %s\n", why);
  std::fprintf(stderr,
               "usage: cascade_remote [--url URL] [--endpoint completions|chat] [--model NAME]\n"
               "         [--api-key-env VAR] [--threshold X] [--max-tokens N] [--price-in X]\n"
               "         [--price-out X] [--local-price X] [--data DIR] [--timeout-ms N]\n"
               "         [--temperature X] [--seed N] [--prompt TEXT]...\n");
  return 2;
}

bool parse_number(const char* s, double& out) {
  char* end = nullptr;
  out = std::strtod(s, &end);
  return end != s && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return usage("every flag takes a value");
    const char* v = argv[++i];
    double x = 0.0;
    if (flag == "--url")
      a.url = v;
    else if (flag == "--endpoint")
      a.endpoint = v;
    else if (flag == "--model")
      a.model = v;
    else if (flag == "--api-key-env")
      a.api_key_env = v;
    else if (flag == "--data")
      a.data = v;
    else if (flag == "--prompt")
      a.prompts.emplace_back(v);
    else if (!parse_number(v, x))
      return usage("a numeric flag has a non-numeric value");
    else if (flag == "--threshold")
      a.threshold = x;
    else if (flag == "--temperature" && x >= 0)
      a.temperature = x;
    else if (flag == "--seed" && x >= 0)
      a.seed = static_cast<std::uint64_t>(x);
    else if (flag == "--price-in")
      a.price_in = x;
    else if (flag == "--price-out")
      a.price_out = x;
    else if (flag == "--local-price")
      a.local_price = x;
    else if (flag == "--max-tokens" && x >= 1)
      a.max_tokens = static_cast<std::size_t>(x);
    else if (flag == "--timeout-ms" && x >= 1)
      a.timeout_ms = static_cast<long>(x);
    else
      return usage("unknown flag or bad value");
  }
  if (a.endpoint != "completions" && a.endpoint != "chat")
    return usage("--endpoint: completions or chat");
  if (a.prompts.empty())
    a.prompts = {"In the beginning God", "And the LORD said unto Moses",
                 "The quarterly revenue of the company"};

  // Stage 1: the local model, trained on the KJV verses.
  const auto t0 = std::chrono::steady_clock::now();
  word_tokenizer tok;
  std::vector<std::vector<tandem::token_id>> verses;
  {
    std::ifstream in(a.data + "/kjv/train.txt");
    if (!in) return usage("cannot read <data>/kjv/train.txt (set --data)");
    std::string line;
    while (std::getline(in, line)) {
      auto& v = verses.emplace_back();
      word_tokenizer::for_each_word(line, [&](std::string_view w) { v.push_back(tok.add(w)); });
    }
  }
  auto builder = tandem::ngram_builder::create(
      tandem::ngram_options{3, tok.vocab_size(), word_tokenizer::bos, word_tokenizer::eos});
  if (!builder || builder->add_sentences(verses) != tandem::errc::ok)
    return usage("training failed");
  auto model = builder->build();
  if (!model) return usage("training failed");
  tandem::ngram_session session(*model);
  tandem::model_generator local(session, tok);
  std::printf("local model: 3-gram on %zu KJV verses, %zu words, trained in %.2f s\n",
              verses.size(), tok.vocab_size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  // Stage 2: the remote engine, when a URL is given.
  std::optional<tandem::http_generator> remote;
  if (!a.url.empty()) {
    tandem::http_options o;
    o.base_url = a.url;
    o.endpoint = a.endpoint == "chat" ? tandem::http_endpoint::chat_completions
                                      : tandem::http_endpoint::completions;
    o.model = a.model;
    if (!a.api_key_env.empty())
      if (const char* key = std::getenv(a.api_key_env.c_str())) o.api_key = key;
    o.read_timeout = std::chrono::milliseconds(a.timeout_ms);
    o.price_per_input_token = a.price_in;
    o.price_per_output_token = a.price_out;
    auto g = tandem::http_generator::create(std::move(o));
    if (!g) {
      std::fprintf(stderr, "cascade_remote: bad remote settings: %s\n",
                   tandem::to_string(g.error()).data());
      return 2;
    }
    remote.emplace(std::move(*g));
    std::printf("remote: %s (%s endpoint%s)\n", a.url.c_str(), a.endpoint.c_str(),
                remote->uses_tls() ? ", TLS" : "");
  } else {
    std::printf("remote: none (no --url): low-confidence answers are reported, not escalated\n");
  }
  std::printf("confidence: mean token log-probability, threshold %.3f\n\n", a.threshold);

  const tandem::token_id stops[] = {word_tokenizer::eos};
  double total_cost = 0.0;
  int failures = 0;
  for (std::size_t p = 0; p < a.prompts.size(); ++p) {
    tandem::generate_request req;
    req.prompt = a.prompts[p];
    req.options.max_tokens = a.max_tokens;
    req.options.stop_tokens = stops;
    req.sampling.temperature = static_cast<float>(a.temperature);
    req.sampling.seed = a.seed + p;
    std::printf("prompt %zu: \"%s\"\n", p + 1, a.prompts[p].c_str());

    auto c = local.generate(req);
    if (!c) {
      std::printf("  stage=local error=%s\n", tandem::to_string(c.error()).data());
      ++failures;
      continue;
    }
    c->cost = static_cast<double>(c->prompt_tokens + c->tokens.size()) * a.local_price;
    total_cost += c->cost;
    auto s = tandem::score_white_box(*c);
    const double score = s ? s->mean_logprob : -1e300;
    const bool confident = s && score >= a.threshold;
    const char* decision = confident ? "accept" : remote ? "escalate" : "would-escalate";
    std::printf("  stage=local  score=%.3f threshold=%.3f decision=%s cost=%.6f\n", score,
                a.threshold, decision, c->cost);
    std::printf("    answer:%s\n", c->text.c_str());
    if (confident || !remote) continue;

    tandem::generate_request rreq;
    rreq.prompt = a.prompts[p];
    rreq.options.max_tokens = a.max_tokens;
    auto r = remote->generate(rreq);
    if (!r) {
      std::printf("  stage=remote error=%s status=%d attempts=%zu message=\"%s\"\n",
                  tandem::to_string(r.error()).data(), remote->last_status(),
                  remote->last_attempts(), remote->last_error().text);
      ++failures;
      continue;
    }
    total_cost += r->cost;
    auto rs = tandem::score_white_box(*r);
    std::printf(
        "  stage=remote score=%s threshold=-- decision=final cost=%.6f finish=%s tokens=%zu+%zu\n",
        rs ? std::to_string(rs->mean_logprob).c_str() : "n/a", r->cost,
        tandem::to_string(r->finish).data(), r->prompt_tokens, remote->last_completion_tokens());
    std::printf("    answer: %s\n", r->text.c_str());
  }
  std::printf("\ntotal cost: %.6f\n", total_cost);
  return failures == 0 ? 0 : 1;
}
