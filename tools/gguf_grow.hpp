// tandem tools: grows a wider and/or deeper llama-architecture GGUF target from a
// (trained) draft so that, with zero noise, the target computes the draft's logits.
// Used by `tandem-grow-gguf` and its tests.
//
// Construction (k = target n_embd / draft n_embd):
//   - the residual stream is padded with zeros: token embeddings keep the draft's values
//     in the first n_embd dimensions and get 0 in the new ones;
//   - every write into the residual stream from new parts is 0: new rows of
//     attn_output and ffn_down (writes into new dimensions), their columns for added
//     heads and feed-forward units, and the whole attn_output/ffn_down of added layers
//     (appended after the draft's layers);
//   - everything that only reads (q/k/v of added heads, gate/up of added units, reads of
//     new dimensions, the output projection's new columns, the added layers' other
//     weights) is drawn like a fresh model (uniform, standard deviation 1/sqrt(fan-in));
//   - RMSNorm: the mean of squares over a k-times wider zero-padded stream is k times
//     smaller, so every norm weight is multiplied by 1/sqrt(k) and the stored
//     `llama.attention.layer_norm_rms_epsilon` is divided by k: the normalised values,
//     and so every layer's output and the logits, equal the draft's (up to rounding).
// Heads keep the draft's head size (llama.cpp's llama graph requires RoPE over the whole
// head) and its query-per-KV group size, so the head count must be n_embd / head size and
// the KV head count follows. `noise` then adds uniform noise of standard deviation
// noise x the fresh-init scale of the tensor (1 for embeddings, 1/sqrt(fan-in) otherwise)
// to every entry set to 0 above, lowering agreement with the draft by a controllable
// amount. The random draws do not depend on `noise`: targets grown with the same seed
// and different noise differ only in the zeroed entries. Equal inputs give
// byte-identical files.
//
// Needs llama.cpp's `gguf.h` and `ggml.h`.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include <ggml.h>
#include <gguf.h>

#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"

namespace tandem::inline v0::tools {

/// Target shape and noise for grow_llama; a zero dimension keeps the draft's.
struct grow_config {
  std::uint32_t n_embd = 0;
  std::uint32_t n_layer = 0;
  std::uint32_t n_ff = 0;
  std::uint32_t n_head = 0;  ///< 0: n_embd / the draft's head size
  double noise = 0.0;        ///< finite, >= 0
  std::uint64_t seed = 1;
  std::string name = "tandem-grown-target";
};

/// The shape grow_llama wrote.
struct grown_shape {
  std::uint32_t n_embd = 0, n_layer = 0, n_ff = 0, n_head = 0, n_head_kv = 0;
};

namespace detail {

struct grow_resources {
  ggml_context* src_ctx = nullptr;
  gguf_context* src = nullptr;
  ggml_context* ctx = nullptr;
  gguf_context* dst = nullptr;
  grow_resources() = default;
  grow_resources(const grow_resources&) = delete;
  grow_resources& operator=(const grow_resources&) = delete;
  ~grow_resources() {
    if (dst) gguf_free(dst);
    if (src) gguf_free(src);
    if (ctx) ggml_free(ctx);
    if (src_ctx) ggml_free(src_ctx);
  }
};

inline bool get_u32(const gguf_context* g, const char* key, std::uint32_t& out) noexcept {
  const std::int64_t id = gguf_find_key(g, key);
  if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_UINT32) return false;
  out = gguf_get_val_u32(g, id);
  return true;
}

/// Fills `t`: the leading block [0, src->ne0) x [0, src->ne1) from `src` (may be null);
/// every other entry is a write (`is_write(i0, i1)`: 0 plus noise of stddev `write_std`)
/// or a read (fresh uniform of stddev `read_std`). One draw per non-copied entry either way.
template <class W>
void grow_fill(ggml_tensor* t, const ggml_tensor* src, float read_std, float write_std, rng& gen,
               W is_write) {
  auto* d = static_cast<float*>(t->data);
  const std::int64_t n0 = t->ne[0], n1 = t->ne[1];
  const std::int64_t s0 = src ? src->ne[0] : 0, s1 = src ? src->ne[1] : 0;
  const auto* sd = src ? static_cast<const float*>(src->data) : nullptr;
  const double a = std::sqrt(3.0);  // uniform in [-a, a] has unit standard deviation
  for (std::int64_t i1 = 0; i1 < n1; ++i1) {
    for (std::int64_t i0 = 0; i0 < n0; ++i0) {
      float& x = d[i1 * n0 + i0];
      if (i0 < s0 && i1 < s1) {
        x = sd[i1 * s0 + i0];
        continue;
      }
      const auto r = static_cast<float>((2.0 * gen.uniform() - 1.0) * a);
      x = is_write(i0, i1) ? r * write_std : r * read_std;
    }
  }
}

}  // namespace detail

/// Reads the llama GGUF draft at `in`, writes the grown target to `out` (see the file
/// comment) and returns its shape. The draft's metadata (vocabulary included) is copied;
/// shape keys, the RMSNorm epsilon and `general.name` are replaced.
/// Errors: file_not_found / corrupt_file (cannot read `in` as GGUF), unsupported (not a
/// llama model, non-F32 tensors, tensors other than the standard untied llama set),
/// invalid_argument (a target smaller than the draft, a head count that changes the head
/// size or breaks the query-per-KV grouping, a negative or non-finite noise),
/// out_of_memory, io_error (writing `out`). Nothing is written on error.
[[nodiscard]] inline result<grown_shape> grow_llama(const char* in, const char* out,
                                                    const grow_config& cfg) {
  if (in == nullptr || out == nullptr) return errc::invalid_argument;
  if (!(cfg.noise >= 0.0) || !std::isfinite(cfg.noise)) return errc::invalid_argument;
  {
    std::FILE* f = std::fopen(in, "rb");
    if (f == nullptr) return errc::file_not_found;
    std::fclose(f);
  }
  detail::grow_resources res;
  gguf_init_params ip{false, &res.src_ctx};
  res.src = gguf_init_from_file(in, ip);
  if (res.src == nullptr) return errc::corrupt_file;
  const gguf_context* src = res.src;
  const std::int64_t arch = gguf_find_key(src, "general.architecture");
  if (arch < 0 || gguf_get_kv_type(src, arch) != GGUF_TYPE_STRING ||
      std::strcmp(gguf_get_val_str(src, arch), "llama") != 0)
    return errc::unsupported;
  std::uint32_t E = 0, L = 0, F = 0, H = 0, Hkv = 0;
  if (!detail::get_u32(src, "llama.embedding_length", E) ||
      !detail::get_u32(src, "llama.block_count", L) ||
      !detail::get_u32(src, "llama.feed_forward_length", F) ||
      !detail::get_u32(src, "llama.attention.head_count", H) ||
      !detail::get_u32(src, "llama.attention.head_count_kv", Hkv))
    return errc::corrupt_file;
  const std::int64_t eps_id = gguf_find_key(src, "llama.attention.layer_norm_rms_epsilon");
  if (eps_id < 0 || gguf_get_kv_type(src, eps_id) != GGUF_TYPE_FLOAT32) return errc::corrupt_file;
  const float eps = gguf_get_val_f32(src, eps_id);
  if (E == 0 || L == 0 || F == 0 || H == 0 || Hkv == 0 || E % H != 0 || H % Hkv != 0)
    return errc::corrupt_file;
  if (gguf_get_n_tensors(src) != 3 + 9 * std::int64_t{L}) return errc::unsupported;
  const std::uint32_t hd = E / H, group = H / Hkv;

  grown_shape s;
  s.n_embd = cfg.n_embd ? cfg.n_embd : E;
  s.n_layer = cfg.n_layer ? cfg.n_layer : L;
  s.n_ff = cfg.n_ff ? cfg.n_ff : F;
  s.n_head = cfg.n_head ? cfg.n_head : s.n_embd / hd;
  if (s.n_embd < E || s.n_layer < L || s.n_ff < F) return errc::invalid_argument;
  if (s.n_embd % hd != 0 || std::uint64_t{s.n_head} * hd != s.n_embd || s.n_head % group != 0)
    return errc::invalid_argument;
  s.n_head_kv = s.n_head / group;
  const std::uint32_t E2 = s.n_embd, L2 = s.n_layer, F2 = s.n_ff, Hkv2 = s.n_head_kv;
  const double k = static_cast<double>(E2) / E;
  const auto norm_scale = static_cast<float>(1.0 / std::sqrt(k));

  const ggml_tensor* tok = ggml_get_tensor(res.src_ctx, "token_embd.weight");
  if (tok == nullptr || tok->type != GGML_TYPE_F32 || tok->ne[0] != E) return errc::unsupported;
  const std::int64_t V = tok->ne[1];

  const std::size_t per_layer = 2 * std::size_t{E2} + 2 * std::size_t{E2} * E2 +
                                2 * std::size_t{E2} * Hkv2 * hd + 3 * std::size_t{E2} * F2;
  const std::size_t n_floats = 2 * static_cast<std::size_t>(V) * E2 + E2 + per_layer * L2;
  ggml_init_params gp{
      n_floats * sizeof(float) + (16 + 9 * std::size_t{L2}) * ggml_tensor_overhead(), nullptr,
      false};
  res.ctx = ggml_init(gp);
  if (res.ctx == nullptr) return errc::out_of_memory;
  res.dst = gguf_init_empty();
  gguf_context* dst = res.dst;
  gguf_set_kv(dst, src);
  gguf_set_val_str(dst, "general.name", cfg.name.c_str());
  gguf_set_val_u32(dst, "llama.embedding_length", E2);
  gguf_set_val_u32(dst, "llama.block_count", L2);
  gguf_set_val_u32(dst, "llama.feed_forward_length", F2);
  gguf_set_val_u32(dst, "llama.attention.head_count", s.n_head);
  gguf_set_val_u32(dst, "llama.attention.head_count_kv", Hkv2);
  gguf_set_val_f32(dst, "llama.attention.layer_norm_rms_epsilon", static_cast<float>(eps / k));
  gguf_set_val_u32(dst, "llama.rope.dimension_count", hd);

  rng gen(cfg.seed);
  const auto nz = static_cast<float>(cfg.noise);
  errc err = errc::ok;
  // The draft's tensor `name` (shape ne0 x ne1), or null when `exists` is false.
  const auto source = [&](const std::string& name, bool exists, std::int64_t ne0,
                          std::int64_t ne1) -> const ggml_tensor* {
    if (!exists) return nullptr;
    const ggml_tensor* t = ggml_get_tensor(res.src_ctx, name.c_str());
    if (t == nullptr || t->type != GGML_TYPE_F32 || t->ne[0] != ne0 || t->ne[1] != ne1 ||
        t->ne[2] != 1) {
      err = errc::unsupported;
      return nullptr;
    }
    return t;
  };
  const auto add = [&](const std::string& name, std::int64_t ne0, std::int64_t ne1) {
    ggml_tensor* t = ne1 == 1 ? ggml_new_tensor_1d(res.ctx, GGML_TYPE_F32, ne0)
                              : ggml_new_tensor_2d(res.ctx, GGML_TYPE_F32, ne0, ne1);
    ggml_set_name(t, name.c_str());
    gguf_add_tensor(dst, t);
    return t;
  };
  const auto never = [](std::int64_t, std::int64_t) { return false; };
  const auto always = [](std::int64_t, std::int64_t) { return true; };
  const float in_std = 1.0f / std::sqrt(static_cast<float>(E2));
  const float ff_std = 1.0f / std::sqrt(static_cast<float>(F2));
  const auto norm = [&](const std::string& name, bool exists) {
    const ggml_tensor* sv = source(name, exists, E, 1);
    ggml_tensor* t = add(name, E2, 1);
    auto* d = static_cast<float*>(t->data);
    for (std::uint32_t i = 0; i < E2; ++i)
      d[i] = (sv != nullptr && i < E ? static_cast<const float*>(sv->data)[i] : 1.0f) * norm_scale;
  };
  const auto mat = [&](const std::string& name, bool exists, std::int64_t ne0, std::int64_t ne1,
                       std::int64_t se0, std::int64_t se1, float read_std, float write_std,
                       auto is_write) {
    const ggml_tensor* sv = source(name, exists, se0, se1);
    detail::grow_fill(add(name, ne0, ne1), sv, read_std, write_std, gen, is_write);
  };

  // Token embeddings: the new dimensions are writes into the residual stream.
  mat("token_embd.weight", true, E2, V, E, V, 1.0f, nz, always);
  for (std::uint32_t l = 0; l < L2 && err == errc::ok; ++l) {
    const bool old = l < L;
    const std::string p = "blk." + std::to_string(l) + ".";
    norm(p + "attn_norm.weight", old);
    mat(p + "attn_q.weight", old, E2, E2, E, E, in_std, 0.0f, never);
    mat(p + "attn_k.weight", old, E2, Hkv2 * hd, E, Hkv * hd, in_std, 0.0f, never);
    mat(p + "attn_v.weight", old, E2, Hkv2 * hd, E, Hkv * hd, in_std, 0.0f, never);
    mat(p + "attn_output.weight", old, E2, E2, E, E, in_std, nz * in_std, always);
    norm(p + "ffn_norm.weight", old);
    mat(p + "ffn_gate.weight", old, E2, F2, E, F, in_std, 0.0f, never);
    mat(p + "ffn_up.weight", old, E2, F2, E, F, in_std, 0.0f, never);
    mat(p + "ffn_down.weight", old, F2, E2, F, E, ff_std, nz * ff_std, always);
  }
  norm("output_norm.weight", true);
  // The output projection only reads the stream: new dimensions get fresh weights.
  mat("output.weight", true, E2, V, E, V, in_std, 0.0f, never);
  if (err != errc::ok) return err;
  if (!gguf_write_to_file(dst, out, false)) {
    std::remove(out);
    return errc::io_error;
  }
  return s;
}

}  // namespace tandem::inline v0::tools
