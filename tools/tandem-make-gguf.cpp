// tandem-make-gguf: writes a tiny llama-architecture GGUF model with seeded random
// weights, for tests, examples and benchmarks that need a real llama.cpp model.
//
//   tandem-make-gguf --out tiny.gguf [--spm bpe.model | --vocab vocab.tsv]
//                    [--n-embd 64] [--n-layer 2] [--n-head 4] [--n-head-kv 2]
//                    [--n-ff 128] [--n-ctx-train 512] [--seed 1] [--logit-scale 3]
//                    [--name NAME] [--no-byte-tokens] [--pad-vocab N]
//                    [--chat-template chatml|llama3 | --chat-template-file FILE]
//
// Without --spm or --vocab a built-in vocabulary of about 500 tokens is used. Byte
// tokens <0x00>..<0xFF> missing from the vocabulary are appended (so llama.cpp can
// encode any text) unless --no-byte-tokens is given. --pad-vocab N then pads the
// vocabulary to N tokens with unused `[PAD<id>]` entries (a "padded vocabulary", as
// Qwen2.5's 151,936 and 152,064). With --spm, llama.cpp tokenizes
// exactly as sentencepiece only for a BPE model (the fixture kjv_bpe4000.model is one).
//
// --chat-template writes `tokenizer.chat_template` (a ChatML or a Llama-3 Jinja template,
// both recognised by llama.cpp's llama_chat_apply_template) and appends the special tokens
// it needs that the vocabulary lacks as control tokens (<|im_start|> <|im_end|>, or
// <|start_header_id|> <|end_header_id|> <|eot_id|>); the end-of-turn one is written as
// tokenizer.ggml.eot_token_id. --chat-template-file writes the file's text as the
// template verbatim and adds no tokens (e.g. to test a template llama.cpp does not know).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gguf_cli.hpp"
#include "tandem/core/detail/bytes.hpp"

namespace {

void usage() {
  std::fputs(
      "usage: tandem-make-gguf --out FILE [--spm FILE.model | --vocab FILE.tsv]\n"
      "         [--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N] [--n-ff N]\n"
      "         [--n-ctx-train N] [--seed N] [--logit-scale X] [--name NAME]\n"
      "         [--no-byte-tokens] [--pad-vocab N]\n"
      "         [--chat-template chatml|llama3 | --chat-template-file FILE]\n",
      stderr);
}

using tandem::tools::parse_u32;

}  // namespace

int main(int argc, char** argv) {
  namespace tt = tandem::tools;
  tt::tiny_llama_config cfg;
  const char* out = nullptr;
  const char* spm = nullptr;
  const char* vocab_file = nullptr;
  bool byte_tokens = true;
  std::uint32_t pad_to = 0;
  const char* chat_style = nullptr;
  const char* chat_file = nullptr;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    auto u32 = [&](std::uint32_t& dst) {
      if (v == nullptr || !parse_u32(v, dst)) {
        std::fprintf(stderr, "tandem-make-gguf: %s needs a non-negative integer\n", a);
        std::exit(2);
      }
      ++i;
    };
    if (std::strcmp(a, "--out") == 0 && v)
      out = argv[++i];
    else if (std::strcmp(a, "--spm") == 0 && v)
      spm = argv[++i];
    else if (std::strcmp(a, "--vocab") == 0 && v)
      vocab_file = argv[++i];
    else if (std::strcmp(a, "--chat-template") == 0 && v)
      chat_style = argv[++i];
    else if (std::strcmp(a, "--chat-template-file") == 0 && v)
      chat_file = argv[++i];
    else if (std::strcmp(a, "--name") == 0 && v)
      cfg.name = argv[++i];
    else if (std::uint32_t* field = tt::shape_field(cfg, a))
      u32(*field);
    else if (std::strcmp(a, "--pad-vocab") == 0)
      u32(pad_to);
    else if (std::strcmp(a, "--seed") == 0 && v) {
      char* end = nullptr;
      cfg.seed = std::strtoull(argv[++i], &end, 10);
      if (*end != '\0' || argv[i][0] == '-') {
        std::fputs("tandem-make-gguf: --seed needs a non-negative integer\n", stderr);
        return 2;
      }
    } else if (std::strcmp(a, "--logit-scale") == 0 && v) {
      char* end = nullptr;
      cfg.logit_scale = std::strtof(argv[++i], &end);
      if (*end != '\0' || !(cfg.logit_scale > 0.0f)) {
        std::fputs("tandem-make-gguf: --logit-scale needs a positive number\n", stderr);
        return 2;
      }
    } else if (std::strcmp(a, "--no-byte-tokens") == 0)
      byte_tokens = false;
    else if (std::strcmp(a, "--help") == 0 || std::strcmp(a, "-h") == 0) {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "tandem-make-gguf: unknown or incomplete argument '%s'\n", a);
      usage();
      return 2;
    }
  }
  if (out == nullptr || (spm != nullptr && vocab_file != nullptr) ||
      (chat_style != nullptr && chat_file != nullptr)) {
    usage();
    return 2;
  }

  tt::vocab_spec vocab;
  if (spm != nullptr || vocab_file != nullptr) {
    auto r = spm != nullptr ? tt::read_sentencepiece_model(spm) : tt::read_vocab_text(vocab_file);
    if (!r) {
      std::fprintf(stderr, "tandem-make-gguf: cannot read vocabulary '%s': %s\n",
                   spm != nullptr ? spm : vocab_file, tandem::to_string(r.error()).data());
      return 1;
    }
    vocab = std::move(*r);
    if (vocab.spm_model_type != 0 && vocab.spm_model_type != 2) {
      std::fprintf(stderr,
                   "tandem-make-gguf: warning: '%s' is not a BPE sentencepiece model; llama.cpp "
                   "will tokenize text differently from sentencepiece (same vocabulary)\n",
                   spm);
    }
  } else {
    vocab = tt::builtin_vocab();
  }
  const std::size_t added = byte_tokens ? tt::ensure_byte_tokens(vocab) : 0;
  if (chat_style != nullptr) {
    if (std::strcmp(chat_style, "chatml") == 0)
      tt::add_chat_template(vocab, tt::chat_template_style::chatml);
    else if (std::strcmp(chat_style, "llama3") == 0)
      tt::add_chat_template(vocab, tt::chat_template_style::llama3);
    else {
      std::fprintf(stderr, "tandem-make-gguf: --chat-template is chatml or llama3, not '%s'\n",
                   chat_style);
      return 2;
    }
  } else if (chat_file != nullptr) {
    auto text = tandem::detail::read_text_file(chat_file);
    if (!text || text->empty()) {
      std::fprintf(stderr, "tandem-make-gguf: cannot read a chat template from '%s'\n", chat_file);
      return 1;
    }
    vocab.chat_template = std::move(*text);
  }
  const std::size_t padded = tt::pad_vocab(vocab, pad_to);

  if (const tandem::errc e = tt::write_tiny_llama(out, cfg, vocab); e != tandem::errc::ok) {
    std::fprintf(stderr, "tandem-make-gguf: cannot write '%s': %s\n", out,
                 tandem::to_string(e).data());
    return 1;
  }
  std::fprintf(stderr,
               "tandem-make-gguf: wrote %s (vocab %zu%s%s, n_embd %u, n_layer %u, n_head %u/%u, "
               "n_ff %u, n_ctx_train %u, seed %llu)\n",
               out, vocab.entries.size(), added != 0 ? " incl. added byte tokens" : "",
               padded != 0 ? " incl. padding" : "", cfg.n_embd, cfg.n_layer, cfg.n_head,
               cfg.n_head_kv, cfg.n_ff, cfg.n_ctx_train, static_cast<unsigned long long>(cfg.seed));
  return 0;
}
