// Benchmark of tandem's logits kernels and sampler chain: log-softmax, argmax, the chain
// temperature 0.8 + top-k 40 + top-p 0.95 + dist, and temperature 0.8 + top-p 0.95 + dist,
// for vocabulary sizes 32000, 128256 and 151936. Each case is measured beside a plain
// scalar std:: implementation and a memory floor (bytes touched at the memcpy bandwidth
// of a same-sized buffer) in the same run, and, when built with llama.cpp, beside
// llama.cpp's sampler chain over the same logits.
//
// With --gguf FILE (built with llama.cpp), every case also runs on one row of logits that
// model computed for an English prompt encoded with its own tokenizer, at its own
// vocabulary width: for the Qwen3 vocabulary fixture (tools/make-qwen-gguf.sh; random
// weights) a 151,936-wide row of a real byte-level BPE vocabulary, whose 267 padding tokens
// are masked to -infinity as a real model's never-sampled rows would be.
//
// Usage: bench_logits [--quick] [--gguf FILE]
// Prints one JSON object per case per line on stdout and a table on stderr. Timings are
// medians of repeated batches; allocations are counted by replacing operator new here.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tandem/core/logits.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/core/sampler.hpp"

#ifdef TANDEM_BENCH_HAVE_LLAMA
#include <llama.h>
#endif

// ---- allocation counting (this program only) ----------------------------------------
namespace {
std::size_t g_allocations = 0;
}
void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  std::abort();
}
void* operator new[](std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  std::abort();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using clock_type = std::chrono::steady_clock;
volatile std::int64_t g_sink = 0;  // keeps results alive

bool g_quick = false;
const char* g_source = "synthetic";  // where the current row of logits came from

/// Median ns per call of f: batches of calls lasting at least ~1 ms (5 in quick mode).
template <class F>
double median_ns(F&& f) {
  for (int i = 0; i < 3; ++i) f();
  std::size_t iters = 1;
  for (;;) {
    const auto t0 = clock_type::now();
    for (std::size_t i = 0; i < iters; ++i) f();
    const double ns = std::chrono::duration<double, std::nano>(clock_type::now() - t0).count();
    if (ns > 1e6 || iters > (1u << 20)) break;
    iters *= 2;
  }
  const int samples = g_quick ? 5 : 21;
  std::vector<double> t(static_cast<std::size_t>(samples));
  for (auto& x : t) {
    const auto t0 = clock_type::now();
    for (std::size_t i = 0; i < iters; ++i) f();
    x = std::chrono::duration<double, std::nano>(clock_type::now() - t0).count() /
        static_cast<double>(iters);
  }
  std::nth_element(t.begin(), t.begin() + samples / 2, t.end());
  return t[static_cast<std::size_t>(samples / 2)];
}

template <class F>
double allocs_per_call(F&& f) {
  f();
  const std::size_t before = g_allocations;
  constexpr int n = 20;
  for (int i = 0; i < n; ++i) f();
  return static_cast<double>(g_allocations - before) / n;
}

/// Gaussian logits (sigma 2) with five peaked tokens at +12..+16, as a trained model's
/// next-token logits often look; fixed seed.
std::vector<float> realistic_logits(std::size_t n, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  for (int i = 0; i < 5; ++i) v[(static_cast<std::size_t>(i) * 7919 + 13) % n] = 12.0f + i;
  return v;
}

// ---- plain scalar std:: baselines ---------------------------------------------------
void scalar_log_softmax(const std::vector<float>& in, std::vector<float>& out) {
  const float m = *std::max_element(in.begin(), in.end());
  float s = 0.0f;
  for (float x : in) s += std::exp(x - m);
  const float lse = m + std::log(s);
  for (std::size_t i = 0; i < in.size(); ++i) out[i] = in[i] - lse;
}

std::size_t scalar_argmax(const std::vector<float>& in) {
  return static_cast<std::size_t>(std::max_element(in.begin(), in.end()) - in.begin());
}

/// temperature + optional top-k (std::partial_sort) + top-p (std::sort when no top-k) +
/// a draw, the straightforward way.
struct scalar_chain {
  std::vector<std::pair<float, int>> c;
  std::vector<float> p;
  tandem::rng rng{1};
  int sample(const std::vector<float>& logits, float t, std::size_t k, float top_p) {
    const std::size_t n = logits.size();
    c.resize(n);
    p.resize(n);
    for (std::size_t i = 0; i < n; ++i) c[i] = {logits[i] / t, static_cast<int>(i)};
    auto greater = [](const auto& a, const auto& b) { return a.first > b.first; };
    std::size_t kept = n;
    if (k > 0 && k < n) {
      std::partial_sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(k), c.end(), greater);
      kept = k;
    } else {
      std::sort(c.begin(), c.end(), greater);
    }
    const float m = c[0].first;
    float z = 0.0f;
    for (std::size_t i = 0; i < kept; ++i) z += p[i] = std::exp(c[i].first - m);
    float cum = 0.0f;
    std::size_t cut = kept;
    for (std::size_t i = 0; i < kept; ++i) {
      cum += p[i];
      if (cum >= top_p * z) {
        cut = i + 1;
        break;
      }
    }
    const double u = rng.uniform() * cum;
    double acc = 0.0;
    for (std::size_t i = 0; i < cut; ++i) {
      acc += p[i];
      if (acc > u) return c[i].second;
    }
    return c[cut - 1].second;
  }
};

#ifdef TANDEM_BENCH_HAVE_LLAMA
/// One row of logits from the model in `path` for a fixed prompt (no BOS/EOS added), its
/// unused (padding) tokens set to -infinity; exits with a message on failure.
std::vector<float> gguf_logits(const char* path) {
  auto fail = [&](const char* what) {
    std::fprintf(stderr, "bench_logits: %s: %s\n", path, what);
    std::exit(1);
  };
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_backend_init();
  llama_model* model = llama_model_load_from_file(path, llama_model_default_params());
  if (model == nullptr) fail("llama.cpp could not load the model");
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const std::string prompt = "The quick brown fox jumps over the lazy dog because";
  std::vector<llama_token> ids(prompt.size() + 8);
  const std::int32_t n_ids =
      llama_tokenize(vocab, prompt.data(), static_cast<std::int32_t>(prompt.size()), ids.data(),
                     static_cast<std::int32_t>(ids.size()), false, false);
  if (n_ids <= 0) fail("the prompt did not tokenize");
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 64;
  cp.n_threads = cp.n_threads_batch = 1;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) fail("no context");
  if (llama_decode(ctx, llama_batch_get_one(ids.data(), n_ids)) != 0) fail("decode failed");
  const std::int32_t n_vocab = llama_vocab_n_tokens(vocab);
  const float* row = llama_get_logits_ith(ctx, -1);
  if (row == nullptr) fail("no logits");
  std::vector<float> v(row, row + n_vocab);
  std::size_t masked = 0;
  for (std::int32_t i = 0; i < n_vocab; ++i)
    if (llama_vocab_get_attr(vocab, i) & LLAMA_TOKEN_ATTR_UNUSED) {
      v[static_cast<std::size_t>(i)] = -INFINITY;
      ++masked;
    }
  std::fprintf(stderr, "bench_logits: %s: %d tokens, %zu padding tokens masked, prompt %d tokens\n",
               path, n_vocab, masked, n_ids);
  llama_free(ctx);
  llama_model_free(model);
  return v;
}

struct llama_chain {
  llama_sampler* s = nullptr;
  std::vector<llama_token_data> data;
  llama_chain(float t, int k, float top_p) {
    s = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(s, llama_sampler_init_temp(t));
    if (k > 0) llama_sampler_chain_add(s, llama_sampler_init_top_k(k));
    llama_sampler_chain_add(s, llama_sampler_init_top_p(top_p, 1));
    llama_sampler_chain_add(s, llama_sampler_init_dist(1));
  }
  ~llama_chain() { llama_sampler_free(s); }
  llama_chain(const llama_chain&) = delete;
  llama_chain& operator=(const llama_chain&) = delete;
  int sample(const std::vector<float>& logits) {
    data.resize(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i)
      data[i] = llama_token_data{static_cast<llama_token>(i), logits[i], 0.0f};
    llama_token_data_array a{data.data(), data.size(), -1, false};
    llama_sampler_apply(s, &a);
    return a.data[a.selected].id;
  }
};
#endif

struct row {
  std::string name;
  std::size_t vocab;
  double ns, scalar_ns, floor_ns, allocs, llama_ns;
};

void print_row(const row& r) {
  std::printf(
      "{\"bench\":\"logits\",\"case\":\"%s\",\"vocab\":%zu,\"logits\":\"%s\",\"arch\":\"%s\","
      "\"ns_per_call\":%.1f,\"scalar_ns_per_call\":%.1f,\"speedup_vs_scalar\":%.2f,"
      "\"floor_ns\":%.1f,\"ratio_to_floor\":%.2f,\"allocs_per_call\":%.2f",
      r.name.c_str(), r.vocab, g_source, tandem::detail::simd::backend_name(), r.ns, r.scalar_ns,
      r.scalar_ns / r.ns, r.floor_ns, r.ns / r.floor_ns, r.allocs);
  if (r.llama_ns > 0)
    std::printf(",\"llamacpp_ns_per_call\":%.1f,\"speedup_vs_llamacpp\":%.2f", r.llama_ns,
                r.llama_ns / r.ns);
  std::printf("}\n");
  std::fflush(stdout);
  const std::string label = std::strcmp(g_source, "synthetic") == 0 ? r.name : "gguf:" + r.name;
  std::fprintf(stderr, "%-27s %7zu %11.0f %11.0f %8.2fx %9.0f %7.2f %7.2f", label.c_str(), r.vocab,
               r.ns, r.scalar_ns, r.scalar_ns / r.ns, r.floor_ns, r.ns / r.floor_ns, r.allocs);
  if (r.llama_ns > 0) std::fprintf(stderr, " %11.0f %7.2fx", r.llama_ns, r.llama_ns / r.ns);
  std::fprintf(stderr, "\n");
}

int check(tandem::errc e) {
  if (e != tandem::errc::ok) {
    std::fprintf(stderr, "bench_logits: error %s\n", std::string(tandem::to_string(e)).c_str());
    std::exit(1);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* gguf = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      g_quick = true;
    } else if (std::strcmp(argv[i], "--gguf") == 0 && i + 1 < argc) {
      gguf = argv[++i];
    } else {
      std::fprintf(stderr, "usage: bench_logits [--quick] [--gguf FILE]\n");
      return 2;
    }
  }
  // The synthetic rows, then (with --gguf) the model's own row.
  std::vector<std::pair<std::string, std::vector<float>>> inputs;
  for (const std::size_t n : {std::size_t{32000}, std::size_t{128256}, std::size_t{151936}})
    inputs.emplace_back("synthetic", realistic_logits(n, 2024));
  if (gguf != nullptr) {
#ifdef TANDEM_BENCH_HAVE_LLAMA
    inputs.emplace_back("gguf", gguf_logits(gguf));
#else
    std::fprintf(stderr, "bench_logits: --gguf needs a build with llama.cpp\n");
    return 2;
#endif
  }
  namespace k = tandem::kernels;
  namespace s = tandem::sampling;
  std::fprintf(stderr, "bench_logits: SIMD backend %s, %zu floats per batch\n",
               tandem::detail::simd::backend_name(), tandem::detail::simd_width);
  std::fprintf(stderr, "%-27s %7s %11s %11s %9s %9s %7s %7s %11s %8s\n", "case", "vocab", "ns/call",
               "scalar ns", "speedup", "floor ns", "x floor", "allocs", "llama ns", "vs llama");
  for (const auto& [source, logits] : inputs) {
    g_source = source.c_str();
    const std::size_t n = logits.size();
    std::vector<float> out(n), copy_dst(n);
    // Copy bandwidth of a same-sized buffer: memcpy reads n floats and writes n floats.
    const double memcpy_ns = median_ns([&] {
      std::memcpy(copy_dst.data(), logits.data(), n * sizeof(float));
      g_sink = g_sink + static_cast<std::int64_t>(copy_dst[n / 2]);
    });
    const double ns_per_byte = memcpy_ns / (2.0 * static_cast<double>(n * sizeof(float)));
    const double read_floor = ns_per_byte * static_cast<double>(n * sizeof(float));

    {  // log-softmax: reads n, writes n
      auto f = [&] { check(k::log_softmax(logits, out)); };
      row r{"log_softmax",
            n,
            median_ns(f),
            median_ns([&] { scalar_log_softmax(logits, out); }),
            2 * read_floor,
            allocs_per_call(f),
            0};
      print_row(r);
    }
    {  // argmax: reads n
      auto f = [&] { g_sink = g_sink + static_cast<std::int64_t>(k::argmax(logits).value()); };
      row r{"argmax",
            n,
            median_ns(f),
            median_ns([&] { g_sink = g_sink + static_cast<std::int64_t>(scalar_argmax(logits)); }),
            read_floor,
            allocs_per_call(f),
            0};
      print_row(r);
    }
    struct chain_case {
      const char* name;
      std::size_t top_k;
      bool peaked;
    };
    for (const chain_case cc :
         {chain_case{"chain_t_topk_topp_dist", 40, true}, chain_case{"chain_t_topp_dist", 0, true},
          chain_case{"chain_t_topp_dist_flat", 0, false}}) {
      // The flat variant replaces the row: a model's own row is used as it is.
      if (!cc.peaked && std::strcmp(g_source, "synthetic") != 0) continue;
      std::vector<float> lg = logits;
      if (!cc.peaked) {
        std::mt19937 g(7);
        std::normal_distribution<float> d(0.0f, 2.0f);
        for (auto& x : lg) x = d(g);
      }
      tandem::sampler_chain chain(1);
      check(chain.add(s::temperature{0.8f}));
      if (cc.top_k) check(chain.add(s::top_k{cc.top_k}));
      check(chain.add(s::top_p{0.95f}));
      check(chain.add(s::dist{}));
      chain.reserve(n);
      auto f = [&] { g_sink = g_sink + chain.sample(lg).value(); };
      scalar_chain sc;
      double llama_ns = 0;
#ifdef TANDEM_BENCH_HAVE_LLAMA
      {
        llama_chain lc(0.8f, static_cast<int>(cc.top_k), 0.95f);
        llama_ns = median_ns([&] { g_sink = g_sink + lc.sample(lg); });
      }
#endif
      row r{
          cc.name,      n,
          median_ns(f), median_ns([&] { g_sink = g_sink + sc.sample(lg, 0.8f, cc.top_k, 0.95f); }),
          read_floor,   allocs_per_call(f),
          llama_ns};
      print_row(r);
    }
  }
  return 0;
}
