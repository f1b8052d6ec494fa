// tandem-make-gguf: writes a tiny llama-architecture GGUF model with seeded random
// weights, for tests, examples and benchmarks that need a real llama.cpp model.
//
//   tandem-make-gguf --out tiny.gguf [--spm bpe.model | --vocab vocab.tsv]
//                    [--n-embd 64] [--n-layer 2] [--n-head 4] [--n-head-kv 2]
//                    [--n-ff 128] [--n-ctx-train 512] [--seed 1] [--logit-scale 3]
//                    [--name NAME] [--no-byte-tokens]
//
// Without --spm or --vocab a built-in vocabulary of about 500 tokens is used. Byte
// tokens <0x00>..<0xFF> missing from the vocabulary are appended (so llama.cpp can
// encode any text) unless --no-byte-tokens is given. With --spm, llama.cpp tokenizes
// exactly as sentencepiece only for a BPE model (the fixture kjv_bpe4000.model is one).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gguf_cli.hpp"

namespace {

void usage() {
  std::fputs(
      "usage: tandem-make-gguf --out FILE [--spm FILE.model | --vocab FILE.tsv]\n"
      "         [--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N] [--n-ff N]\n"
      "         [--n-ctx-train N] [--seed N] [--logit-scale X] [--name NAME]\n"
      "         [--no-byte-tokens]\n",
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
    else if (std::strcmp(a, "--name") == 0 && v)
      cfg.name = argv[++i];
    else if (std::uint32_t* field = tt::shape_field(cfg, a))
      u32(*field);
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
  if (out == nullptr || (spm != nullptr && vocab_file != nullptr)) {
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

  if (const tandem::errc e = tt::write_tiny_llama(out, cfg, vocab); e != tandem::errc::ok) {
    std::fprintf(stderr, "tandem-make-gguf: cannot write '%s': %s\n", out,
                 tandem::to_string(e).data());
    return 1;
  }
  std::fprintf(stderr,
               "tandem-make-gguf: wrote %s (vocab %zu%s, n_embd %u, n_layer %u, n_head %u/%u, "
               "n_ff %u, n_ctx_train %u, seed %llu)\n",
               out, vocab.entries.size(), added != 0 ? " incl. added byte tokens" : "", cfg.n_embd,
               cfg.n_layer, cfg.n_head, cfg.n_head_kv, cfg.n_ff, cfg.n_ctx_train,
               static_cast<unsigned long long>(cfg.seed));
  return 0;
}
