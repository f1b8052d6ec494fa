// tandem-vocab-gguf: writes a tiny llama-architecture GGUF model with seeded random weights
// over a Hugging Face byte-level BPE vocabulary (a `tokenizer.json` whose model is "BPE",
// as GPT-2, Llama 3 and Qwen ship), for tests and benchmarks that need a real LLM's
// 150k-token vocabulary, merges, special tokens and chat template; the weights are only
// good for mechanics.
//
//   tandem-vocab-gguf --tokenizer tokenizer.json --config tokenizer_config.json --out F.gguf
//                     [--pre qwen2] [--n-vocab N] [--n-embd 32] [--n-layer 1] [--n-head 2]
//                     [--n-head-kv 1] [--n-ff 64] [--seed 1] [--name NAME]
//
// Written metadata: tokenizer.ggml.model "gpt2", tokenizer.ggml.pre (--pre, llama.cpp's
// pre-tokenizer name), the tokens in id order (the model's vocabulary, then its added
// tokens: type control when "special", user-defined otherwise), the merges ("a b"), the
// eos/eot id (the config's eos_token), the padding id (pad_token), the bos id (bos_token,
// or the padding token when the config has none, as Qwen's GGUF files do), add_bos_token
// (the config's, default false) and tokenizer.chat_template (the config's chat_template).
// With --n-vocab larger than the tokens, the vocabulary is padded to N with unused tokens
// "[PAD<id>]", as Hugging Face's GGUF converter pads to the model's logit count (Qwen3:
// 151,936). Exit status 1 with a message naming the problem when an input is unusable.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gguf.h>

#include <nlohmann/json.hpp>

#include "gguf_cli.hpp"

namespace {

namespace tt = tandem::tools;
using json = nlohmann::json;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "tandem-vocab-gguf: %s\n", what.c_str());
  std::exit(1);
}

void usage() {
  std::fputs(
      "usage: tandem-vocab-gguf --tokenizer tokenizer.json --config tokenizer_config.json\n"
      "         --out FILE.gguf [--pre NAME] [--n-vocab N] [--n-embd N] [--n-layer N]\n"
      "         [--n-head N] [--n-head-kv N] [--n-ff N] [--seed N] [--name NAME]\n",
      stderr);
}

json read_json(const char* path) {
  std::string text;
  tandem::errc err = tandem::errc::ok;
  if (!tt::detail::read_file(path, text, err))
    die(std::string(path) + ": " + std::string(tandem::to_string(err)));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) die(std::string(path) + ": not a JSON object");
  return j;
}

// A special token of tokenizer_config.json: a string, an AddedToken object or null.
std::string special_name(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  die(std::string("tokenizer_config: ") + key + " is neither a string nor a token");
}

struct hf_vocab {
  tt::vocab_spec spec;
  std::vector<std::string> merges;
  std::string chat_template;
  std::int32_t eot_id = -1;
};

hf_vocab read_hf_vocab(const char* tokenizer_path, const char* config_path, std::uint32_t n_vocab) {
  const json tok = read_json(tokenizer_path);
  const json config = read_json(config_path);
  if (!tok.contains("model") || tok["model"].value("type", "") != "BPE")
    die(std::string(tokenizer_path) + ": model.type is not \"BPE\"");
  const json& model = tok["model"];
  if (!model.contains("vocab") || !model["vocab"].is_object() || !model.contains("merges"))
    die(std::string(tokenizer_path) + ": model has no vocab or merges");

  hf_vocab out;
  std::vector<tt::vocab_entry>& entries = out.spec.entries;
  std::vector<bool> seen;
  auto put = [&](std::int64_t id, const std::string& piece, tt::token_type type) {
    if (id < 0 || id > 0x7FFFFFFF) die("token id " + std::to_string(id) + " out of range");
    const auto i = static_cast<std::size_t>(id);
    if (i >= entries.size()) {
      entries.resize(i + 1);
      seen.resize(i + 1, false);
    }
    if (seen[i] && entries[i].piece != piece)
      die("token id " + std::to_string(id) + " is both \"" + entries[i].piece + "\" and \"" +
          piece + "\"");
    entries[i] = {piece, 0.0f, type};
    seen[i] = true;
  };
  for (const auto& [piece, id] : model["vocab"].items()) {
    if (!id.is_number_integer()) die("vocab entry \"" + piece + "\" has no integer id");
    put(id.get<std::int64_t>(), piece, tt::token_type::normal);
  }
  if (tok.contains("added_tokens")) {
    for (const json& a : tok["added_tokens"]) {
      if (!a.contains("id") || !a.contains("content") || !a["id"].is_number_integer() ||
          !a["content"].is_string())
        die("an added token without an integer id and a content");
      put(a["id"].get<std::int64_t>(), a["content"].get<std::string>(),
          a.value("special", false) ? tt::token_type::control : tt::token_type::user_defined);
    }
  }
  for (std::size_t i = 0; i < seen.size(); ++i)
    if (!seen[i]) die("no token has id " + std::to_string(i));
  if (n_vocab != 0) {
    if (n_vocab < entries.size())
      die("--n-vocab " + std::to_string(n_vocab) + " is below the " +
          std::to_string(entries.size()) + " tokens");
    for (std::size_t i = entries.size(); i < n_vocab; ++i)
      entries.push_back({"[PAD" + std::to_string(i) + "]", 0.0f, tt::token_type::unused});
  }

  for (const json& m : model["merges"]) {
    if (m.is_string()) {
      out.merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    } else {
      die("a merge that is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }

  auto id_of = [&](const std::string& name) -> std::int32_t {
    if (name.empty()) return -1;
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (entries[i].piece == name) return static_cast<std::int32_t>(i);
    die("special token \"" + name + "\" is not in the vocabulary");
  };
  tt::vocab_spec& v = out.spec;
  v.unk_id = id_of(special_name(config, "unk_token"));
  v.eos_id = id_of(special_name(config, "eos_token"));
  v.pad_id = id_of(special_name(config, "pad_token"));
  v.bos_id = id_of(special_name(config, "bos_token"));
  if (v.bos_id < 0) v.bos_id = v.pad_id;
  out.eot_id = v.eos_id;
  v.add_bos = config.value("add_bos_token", false);
  v.add_space_prefix = config.value("add_prefix_space", false);
  if (config.contains("chat_template") && config["chat_template"].is_string())
    out.chat_template = config["chat_template"].get<std::string>();
  return out;
}

// write_tiny_llama writes a sentencepiece-style ("llama") tokenizer; this turns the file
// into a byte-level BPE one by rewriting its tokenizer metadata.
void retag_as_bpe(const std::string& from, const char* to, const hf_vocab& vocab, const char* pre) {
  ggml_context* data = nullptr;
  gguf_init_params ip{};
  ip.no_alloc = false;
  ip.ctx = &data;
  gguf_context* loaded = gguf_init_from_file(from.c_str(), ip);
  if (loaded == nullptr) die("cannot read back " + from);
  // A context read from a file does not write its tensors back: copy into a fresh one.
  gguf_context* g = gguf_init_empty();
  gguf_set_kv(g, loaded);
  // (By the file's tensor list: `data` also holds a tensor with the whole data blob.)
  for (std::int64_t i = 0; i < gguf_get_n_tensors(loaded); ++i)
    gguf_add_tensor(g, ggml_get_tensor(data, gguf_get_tensor_name(loaded, i)));
  gguf_set_val_str(g, "tokenizer.ggml.model", "gpt2");
  gguf_set_val_str(g, "tokenizer.ggml.pre", pre);
  gguf_remove_key(g, "tokenizer.ggml.scores");
  gguf_remove_key(g, "tokenizer.ggml.add_space_prefix");
  std::vector<const char*> merges;
  merges.reserve(vocab.merges.size());
  for (const auto& m : vocab.merges) merges.push_back(m.c_str());
  gguf_set_arr_str(g, "tokenizer.ggml.merges", merges.data(), merges.size());
  if (vocab.eot_id >= 0)
    gguf_set_val_u32(g, "tokenizer.ggml.eot_token_id", static_cast<std::uint32_t>(vocab.eot_id));
  if (!vocab.chat_template.empty())
    gguf_set_val_str(g, "tokenizer.chat_template", vocab.chat_template.c_str());
  const bool ok = gguf_write_to_file(g, to, false);
  gguf_free(g);
  gguf_free(loaded);
  ggml_free(data);
  if (!ok) die(std::string("cannot write ") + to);
}

}  // namespace

int main(int argc, char** argv) {
  const char* tokenizer = nullptr;
  const char* config = nullptr;
  const char* out = nullptr;
  const char* pre = "qwen2";
  std::uint32_t n_vocab = 0;
  tt::tiny_llama_config cfg;
  cfg.n_embd = 32;
  cfg.n_layer = 1;
  cfg.n_head = 2;
  cfg.n_head_kv = 1;
  cfg.n_ff = 64;
  cfg.name = "tandem-vocab-tiny";
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (i + 1 >= argc) {
      usage();
      return 2;
    }
    const char* v = argv[++i];
    auto u32 = [&](std::uint32_t& dst) {
      if (!tt::parse_u32(v, dst)) {
        std::fprintf(stderr, "tandem-vocab-gguf: %s needs a non-negative integer\n", a);
        std::exit(2);
      }
    };
    std::uint32_t seed = 0;
    if (std::strcmp(a, "--tokenizer") == 0)
      tokenizer = v;
    else if (std::strcmp(a, "--config") == 0)
      config = v;
    else if (std::strcmp(a, "--out") == 0)
      out = v;
    else if (std::strcmp(a, "--pre") == 0)
      pre = v;
    else if (std::strcmp(a, "--name") == 0)
      cfg.name = v;
    else if (std::strcmp(a, "--n-vocab") == 0)
      u32(n_vocab);
    else if (std::uint32_t* field = tt::shape_field(cfg, a))
      u32(*field);
    else if (std::strcmp(a, "--seed") == 0) {
      u32(seed);
      cfg.seed = seed;
    } else {
      usage();
      return 2;
    }
  }
  if (tokenizer == nullptr || config == nullptr || out == nullptr) {
    usage();
    return 2;
  }
  const hf_vocab vocab = read_hf_vocab(tokenizer, config, n_vocab);
  const std::string tmp = std::string(out) + ".llama.tmp";
  const tandem::errc e = tt::write_tiny_llama(tmp.c_str(), cfg, vocab.spec);
  if (e != tandem::errc::ok) die("writing the model: " + std::string(tandem::to_string(e)));
  retag_as_bpe(tmp, out, vocab, pre);
  std::remove(tmp.c_str());
  std::printf(
      "{\"tool\":\"tandem-vocab-gguf\",\"out\":\"%s\",\"n_vocab\":%zu,\"merges\":%zu,"
      "\"bos\":%d,\"eos\":%d,\"eot\":%d,\"pad\":%d,\"chat_template_bytes\":%zu}\n",
      out, vocab.spec.entries.size(), vocab.merges.size(), vocab.spec.bos_id, vocab.spec.eos_id,
      vocab.eot_id, vocab.spec.pad_id, vocab.chat_template.size());
  return 0;
}
