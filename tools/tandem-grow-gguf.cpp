// tandem-grow-gguf: grows a wider and/or deeper llama-architecture GGUF target from a
// (trained) draft so that, with --noise 0, the target computes the draft's logits; noise
// in the zeroed parts then lowers agreement by a controllable amount (see gguf_grow.hpp).
//
//   tandem-grow-gguf --in draft.gguf --out target.gguf [--n-embd N] [--n-layer N]
//                    [--n-ff N] [--n-head N] [--noise X] [--seed N] [--name NAME]
//
// A zero or missing dimension keeps the draft's; --n-head defaults to n_embd / the
// draft's head size (the only head size allowed). Prints the target's shape as one JSON
// line on stdout. Exit status 1 on a failure (named on stderr), 2 on bad flags.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gguf_grow.hpp"

int main(int argc, char** argv) {
  namespace tt = tandem::tools;
  tt::grow_config cfg;
  const char* in = nullptr;
  const char* out = nullptr;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "tandem-grow-gguf: %s needs a value\n", a);
      return 2;
    }
    const char* v = argv[++i];
    char* end = nullptr;
    const double x = std::strtod(v, &end);
    const bool num_ok = end != v && *end == '\0' && x >= 0 && std::isfinite(x);
    const bool int_ok = num_ok && x == std::floor(x) && x <= 4294967295.0;
    auto bad = [&](const char* what) {
      std::fprintf(stderr, "tandem-grow-gguf: %s needs %s\n", a, what);
      return 2;
    };
    if (std::strcmp(a, "--in") == 0) {
      in = v;
    } else if (std::strcmp(a, "--out") == 0) {
      out = v;
    } else if (std::strcmp(a, "--name") == 0) {
      cfg.name = v;
    } else if (std::strcmp(a, "--noise") == 0) {
      if (!num_ok) return bad("a finite non-negative number");
      cfg.noise = x;
    } else if (std::strcmp(a, "--seed") == 0) {
      if (!num_ok || x != std::floor(x)) return bad("a non-negative integer");
      cfg.seed = std::strtoull(v, nullptr, 10);
    } else if (std::strcmp(a, "--n-embd") == 0 || std::strcmp(a, "--n-layer") == 0 ||
               std::strcmp(a, "--n-ff") == 0 || std::strcmp(a, "--n-head") == 0) {
      if (!int_ok) return bad("a non-negative integer");
      const auto u = static_cast<std::uint32_t>(x);
      if (a[4] == 'e')
        cfg.n_embd = u;
      else if (a[4] == 'l')
        cfg.n_layer = u;
      else if (a[4] == 'f')
        cfg.n_ff = u;
      else
        cfg.n_head = u;
    } else {
      std::fprintf(stderr, "tandem-grow-gguf: unknown flag '%s'\n", a);
      return 2;
    }
  }
  if (in == nullptr || out == nullptr) {
    std::fputs(
        "usage: tandem-grow-gguf --in DRAFT.gguf --out TARGET.gguf [--n-embd N]\n"
        "         [--n-layer N] [--n-ff N] [--n-head N] [--noise X] [--seed N] [--name NAME]\n",
        stderr);
    return 2;
  }
  const auto r = tt::grow_llama(in, out, cfg);
  if (!r) {
    std::fprintf(stderr, "tandem-grow-gguf: %s\n", tandem::to_string(r.error()).data());
    return 1;
  }
  std::printf(
      "{\"tool\":\"tandem-grow-gguf\",\"out\":\"%s\",\"n_embd\":%u,\"n_layer\":%u,\"n_ff\":%u,"
      "\"n_head\":%u,\"n_head_kv\":%u,\"noise\":%g,\"seed\":%llu}\n",
      out, r->n_embd, r->n_layer, r->n_ff, r->n_head, r->n_head_kv, cfg.noise,
      static_cast<unsigned long long>(cfg.seed));
  return 0;
}
