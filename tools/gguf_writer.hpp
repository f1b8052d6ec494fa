// tandem tools: writes tiny llama-architecture GGUF models with seeded random weights.
//
// Shared by the `tandem-make-gguf` tool and by the tests of the llama.cpp adapter, which
// generate their model at test time instead of carrying a binary fixture. The vocabulary
// comes from a sentencepiece `.model` file (parsed here, no sentencepiece dependency), a
// text file of `piece<TAB>score[<TAB>type]` lines (what `spm_export_vocab` prints, with an
// optional token type), or a small built-in list. Weights are F32.
//
// Needs llama.cpp's `gguf.h` and `ggml.h` (link `ggml::ggml-base` or `llama`).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <ggml.h>
#include <gguf.h>

#include "tandem/core/detail/json.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/rng.hpp"

namespace tandem::inline v0::tools {

/// Token types as stored in `tokenizer.ggml.token_type`; the values are sentencepiece's.
enum class token_type : std::int32_t {
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

/// One vocabulary entry: the piece text (sentencepiece spells a space as U+2581), its
/// score (higher merges first) and its type.
struct vocab_entry {
  std::string piece;
  float score = 0.0f;
  token_type type = token_type::normal;
};

/// A sentencepiece-style ("llama") vocabulary with its special token ids (-1: none).
struct vocab_spec {
  std::vector<vocab_entry> entries;
  std::int32_t unk_id = 0;
  std::int32_t bos_id = 1;
  std::int32_t eos_id = 2;
  std::int32_t pad_id = -1;
  /// End-of-turn token (`tokenizer.ggml.eot_token_id`); -1: not written (llama.cpp then
  /// looks for a token spelled like one, e.g. `<|im_end|>`).
  std::int32_t eot_id = -1;
  /// `tokenizer.chat_template`: the Jinja chat template llama.cpp renders chats with;
  /// empty: not written (the model has no chat template).
  std::string chat_template;
  bool add_bos = true;           ///< the model wants BOS before a prompt
  bool add_space_prefix = true;  ///< sentencepiece's add_dummy_prefix
  /// sentencepiece model type (1 unigram, 2 BPE, 3 word, 4 char; 0 unknown). llama.cpp's
  /// "llama" tokenizer merges pieces by score like sentencepiece BPE: only for a BPE model
  /// (or a hand-made vocabulary) does it tokenize exactly as sentencepiece does.
  std::int32_t spm_model_type = 0;
};

/// Shape and initialisation of a tiny llama model.
struct tiny_llama_config {
  std::uint32_t n_embd = 64;
  std::uint32_t n_layer = 2;
  std::uint32_t n_head = 4;
  std::uint32_t n_head_kv = 2;
  std::uint32_t n_ff = 128;
  std::uint32_t n_ctx_train = 512;
  std::uint64_t seed = 1;
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  /// Scale of the random output projection: logits have a standard deviation near this
  /// value, so the next-token distribution is neither flat nor one-hot.
  float logit_scale = 3.0f;
  std::string name = "tandem-tiny-llama";
};

namespace detail {

inline std::string byte_piece(unsigned b) {
  constexpr char hex[] = "0123456789ABCDEF";
  std::string s = "<0x";
  s += hex[b >> 4];
  s += hex[b & 15];
  s += '>';
  return s;
}

/// Minimal protobuf reader over a byte range: enough for sentencepiece's ModelProto.
struct pb_reader {
  const unsigned char* p;
  const unsigned char* end;

  [[nodiscard]] bool varint(std::uint64_t& v) noexcept {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p == end) return false;
      const unsigned char b = *p++;
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  /// Reads a field key; `wire` is the wire type. False at end of input or on error.
  [[nodiscard]] bool key(std::uint32_t& field, std::uint32_t& wire) noexcept {
    std::uint64_t k = 0;
    if (!varint(k)) return false;
    field = static_cast<std::uint32_t>(k >> 3);
    wire = static_cast<std::uint32_t>(k & 7);
    return field != 0;
  }
  [[nodiscard]] bool bytes(const unsigned char*& b, std::size_t& n) noexcept {
    std::uint64_t len = 0;
    if (!varint(len) || len > static_cast<std::uint64_t>(end - p)) return false;
    b = p;
    n = static_cast<std::size_t>(len);
    p += n;
    return true;
  }
  [[nodiscard]] bool fixed32(std::uint32_t& v) noexcept {
    if (end - p < 4) return false;
    v = static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
        static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
    p += 4;
    return true;
  }
  [[nodiscard]] bool skip(std::uint32_t wire) noexcept {
    std::uint64_t v = 0;
    const unsigned char* b = nullptr;
    std::size_t n = 0;
    switch (wire) {
      case 0:
        return varint(v);
      case 1:
        if (end - p < 8) return false;
        p += 8;
        return true;
      case 2:
        return bytes(b, n);
      case 5:
        if (end - p < 4) return false;
        p += 4;
        return true;
      default:
        return false;
    }
  }
};

inline bool read_file(const char* path, std::string& data, errc& err) {
  std::FILE* f = std::fopen(path, "rb");
  if (f == nullptr) {
    err = errc::file_not_found;
    return false;
  }
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad) {
    err = errc::io_error;
    return false;
  }
  return true;
}

}  // namespace detail

/// Reads the vocabulary of a sentencepiece `.model` file (a serialized ModelProto):
/// pieces, scores, types, the unk/bos/eos/pad ids, add_dummy_prefix and the model type.
/// Errors: file_not_found, io_error, corrupt_file (malformed protobuf or no pieces).
[[nodiscard]] inline result<vocab_spec> read_sentencepiece_model(const char* path) {
  std::string data;
  errc err = errc::ok;
  if (!detail::read_file(path, data, err)) return err;
  vocab_spec v;
  const auto* base = reinterpret_cast<const unsigned char*>(data.data());
  detail::pb_reader r{base, base + data.size()};
  std::uint32_t field = 0, wire = 0;
  while (r.p != r.end) {
    if (!r.key(field, wire)) return errc::corrupt_file;
    if (wire != 2) {
      if (!r.skip(wire)) return errc::corrupt_file;
      continue;
    }
    const unsigned char* b = nullptr;
    std::size_t n = 0;
    if (!r.bytes(b, n)) return errc::corrupt_file;
    detail::pb_reader sub{b, b + n};
    std::uint32_t f2 = 0, w2 = 0;
    if (field == 1) {  // SentencePiece { piece = 1; score = 2; type = 3; }
      vocab_entry e;
      while (sub.p != sub.end) {
        if (!sub.key(f2, w2)) return errc::corrupt_file;
        if (f2 == 1 && w2 == 2) {
          const unsigned char* s = nullptr;
          std::size_t sn = 0;
          if (!sub.bytes(s, sn)) return errc::corrupt_file;
          e.piece.assign(reinterpret_cast<const char*>(s), sn);
        } else if (f2 == 2 && w2 == 5) {
          std::uint32_t bits = 0;
          if (!sub.fixed32(bits)) return errc::corrupt_file;
          static_assert(sizeof(float) == 4);
          std::memcpy(&e.score, &bits, 4);
        } else if (f2 == 3 && w2 == 0) {
          std::uint64_t t = 0;
          if (!sub.varint(t)) return errc::corrupt_file;
          if (t < 1 || t > 6) return errc::corrupt_file;
          e.type = static_cast<token_type>(t);
        } else if (!sub.skip(w2)) {
          return errc::corrupt_file;
        }
      }
      v.entries.push_back(std::move(e));
    } else if (field == 2) {  // TrainerSpec: model_type 3, unk/bos/eos/pad_id 40..43
      v.spm_model_type = 1;   // sentencepiece's default: unigram
      while (sub.p != sub.end) {
        if (!sub.key(f2, w2)) return errc::corrupt_file;
        if (w2 == 0 && f2 == 3) {
          std::uint64_t x = 0;
          if (!sub.varint(x)) return errc::corrupt_file;
          v.spm_model_type = static_cast<std::int32_t>(x);
        } else if (w2 == 0 && f2 >= 40 && f2 <= 43) {
          std::uint64_t x = 0;
          if (!sub.varint(x)) return errc::corrupt_file;
          const auto id = static_cast<std::int32_t>(static_cast<std::uint32_t>(x));
          if (f2 == 40) v.unk_id = id;
          if (f2 == 41) v.bos_id = id;
          if (f2 == 42) v.eos_id = id;
          if (f2 == 43) v.pad_id = id;
        } else if (!sub.skip(w2)) {
          return errc::corrupt_file;
        }
      }
    } else if (field == 3) {  // NormalizerSpec: add_dummy_prefix 3
      while (sub.p != sub.end) {
        if (!sub.key(f2, w2)) return errc::corrupt_file;
        if (f2 == 3 && w2 == 0) {
          std::uint64_t x = 0;
          if (!sub.varint(x)) return errc::corrupt_file;
          v.add_space_prefix = x != 0;
        } else if (!sub.skip(w2)) {
          return errc::corrupt_file;
        }
      }
    }
  }
  if (v.entries.empty()) return errc::corrupt_file;
  const auto n = static_cast<std::int32_t>(v.entries.size());
  for (std::int32_t* id : {&v.unk_id, &v.bos_id, &v.eos_id, &v.pad_id})
    if (*id >= n) return errc::corrupt_file;
  return v;
}

/// Reads a text vocabulary: one `piece<TAB>score[<TAB>type]` line per token, the type
/// an integer 1..6 (default: normal; `<unk>` unknown, `<s>` and `</s>` control, `<0xXX>`
/// byte). Special ids are found by the names `<unk>`, `<s>`, `</s>`, `<pad>`.
/// Errors: file_not_found, io_error, parse_error (a line without a tab, a bad number).
[[nodiscard]] inline result<vocab_spec> read_vocab_text(const char* path) {
  std::string data;
  errc err = errc::ok;
  if (!detail::read_file(path, data, err)) return err;
  vocab_spec v;
  v.unk_id = v.bos_id = v.eos_id = v.pad_id = -1;
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::size_t eol = data.find('\n', pos);
    if (eol == std::string::npos) eol = data.size();
    std::string_view line(data.data() + pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::size_t t1 = line.find('\t');
    if (t1 == std::string_view::npos || t1 == 0) return errc::parse_error;
    vocab_entry e;
    e.piece.assign(line.substr(0, t1));
    std::string rest(line.substr(t1 + 1));
    char* endp = nullptr;
    e.score = std::strtof(rest.c_str(), &endp);
    if (endp == rest.c_str() || !std::isfinite(e.score)) return errc::parse_error;
    const auto id = static_cast<std::int32_t>(v.entries.size());
    if (*endp == '\t') {
      const long t = std::strtol(endp + 1, &endp, 10);
      if (t < 1 || t > 6) return errc::parse_error;
      e.type = static_cast<token_type>(t);
    } else if (e.piece == "<unk>") {
      e.type = token_type::unknown;
    } else if (e.piece == "<s>" || e.piece == "</s>" || e.piece == "<pad>") {
      e.type = token_type::control;
    } else if (e.piece.size() == 6 && e.piece.starts_with("<0x") && e.piece.back() == '>') {
      e.type = token_type::byte;
    }
    if (*endp != '\0') return errc::parse_error;
    if (e.piece == "<unk>") v.unk_id = id;
    if (e.piece == "<s>") v.bos_id = id;
    if (e.piece == "</s>") v.eos_id = id;
    if (e.piece == "<pad>") v.pad_id = id;
    v.entries.push_back(std::move(e));
  }
  if (v.entries.empty()) return errc::parse_error;
  return v;
}

/// A small built-in vocabulary: `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then
/// printable ASCII characters, each with and without a leading U+2581, and a few dozen
/// frequent English words. About 500 tokens; any text can be encoded (byte fallback).
[[nodiscard]] inline vocab_spec builtin_vocab() {
  vocab_spec v;
  v.entries.push_back({"<unk>", 0.0f, token_type::unknown});
  v.entries.push_back({"<s>", 0.0f, token_type::control});
  v.entries.push_back({"</s>", 0.0f, token_type::control});
  for (unsigned b = 0; b < 256; ++b)
    v.entries.push_back({detail::byte_piece(b), 0.0f, token_type::byte});
  std::string space;
  tandem::detail::json::append_utf8(space, 0x2581);
  float score = -1.0f;
  constexpr const char* words[] = {
      "the",  "and",  "of",      "to",    "that",     "in",     "he",   "shall", "unto",   "for",
      "i",    "his",  "a",       "lord",  "they",     "be",     "is",   "him",   "not",    "them",
      "it",   "with", "all",     "thou",  "thy",      "was",    "god",  "which", "my",     "me",
      "said", "but",  "ye",      "their", "have",     "will",   "thee", "from",  "as",     "are",
      "when", "this", "out",     "were",  "upon",     "man",    "by",   "you",   "israel", "king",
      "son",  "up",   "there",   "hath",  "people",   "came",   "had",  "house", "on",     "into",
      "her",  "come", "one",     "we",    "children", "before", "your", "also",  "day",    "land",
      "so",   "men",  "against", "shalt", "if",       "at",     "let",  "go"};
  for (const char* w : words) v.entries.push_back({space + w, score -= 0.01f, token_type::normal});
  v.entries.push_back({space, score -= 0.01f, token_type::normal});
  for (char c = 33; c < 127; ++c) {
    const std::string spaced = space + c;
    bool is_word = false;
    for (const char* w : words) is_word = is_word || spaced == space + w;
    if (!is_word) v.entries.push_back({spaced, score -= 0.01f, token_type::normal});
    v.entries.push_back({std::string(1, c), score -= 0.01f, token_type::normal});
  }
  return v;
}

/// Pads `v` to `size` entries with unused tokens `[PAD<id>]` (score 0), as llama.cpp's
/// converters pad a vocabulary to its embedding size (Qwen2.5: 151,936 or 152,064).
/// Existing ids are kept. Returns how many were added.
inline std::size_t pad_vocab(vocab_spec& v, std::size_t size) {
  std::size_t added = 0;
  while (v.entries.size() < size) {
    v.entries.push_back(
        {"[PAD" + std::to_string(v.entries.size()) + "]", 0.0f, token_type::unused});
    ++added;
  }
  return added;
}

/// Appends the byte tokens `<0x00>`..`<0xFF>` that `v` lacks (type byte, score 0), so
/// llama.cpp's tokenizer can fall back to bytes for any text. Existing ids are kept.
/// Returns how many were added.
inline std::size_t ensure_byte_tokens(vocab_spec& v) {
  std::vector<bool> have(256, false);
  for (const auto& e : v.entries) {
    if (e.piece.size() == 6 && e.piece.starts_with("<0x") && e.piece.back() == '>') {
      const unsigned long b = std::strtoul(e.piece.c_str() + 3, nullptr, 16);
      if (b < 256) have[b] = true;
    }
  }
  std::size_t added = 0;
  for (unsigned b = 0; b < 256; ++b) {
    if (have[b]) continue;
    v.entries.push_back({detail::byte_piece(b), 0.0f, token_type::byte});
    ++added;
  }
  return added;
}

/// Chat templates a fixture vocabulary can carry (`add_chat_template`).
enum class chat_template_style {
  chatml,  ///< ChatML (Qwen, many fine-tunes): `<|im_start|>role\ncontent<|im_end|>\n`
  llama3,  ///< Llama 3: `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`
};

/// The Jinja text of a fixture chat template, as its model family's
/// `tokenizer_config.json` spells it (llama.cpp recognises both by their special tokens).
[[nodiscard]] inline std::string_view chat_template_text(chat_template_style s) noexcept {
  switch (s) {
    case chat_template_style::chatml:
      return "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
             "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt "
             "%}{{ '<|im_start|>assistant\n' }}{% endif %}";
    case chat_template_style::llama3:
      return "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content "
             "= '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ "
             "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content "
             "= bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if "
             "add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' "
             "}}{% endif %}";
  }
  return {};
}

/// Gives `v` the chat template `s` and the special tokens it needs: those the vocabulary
/// lacks are appended as control tokens (score 0), so ids already there keep their
/// meaning (a needed piece already present keeps its id and becomes a control token). ChatML needs
/// `<|im_start|>` and `<|im_end|>`; Llama 3 needs
/// `<|start_header_id|>`, `<|end_header_id|>` and `<|eot_id|>`. The end-of-turn token
/// (`<|im_end|>`, `<|eot_id|>`) becomes `v.eot_id`, so llama.cpp counts it as an
/// end-of-generation token. BOS, EOS and the rest are kept. Returns how many tokens were
/// appended.
inline std::size_t add_chat_template(vocab_spec& v, chat_template_style s) {
  std::vector<std::string_view> needed;
  std::string_view eot;
  if (s == chat_template_style::chatml) {
    needed = {"<|im_start|>", "<|im_end|>"};
    eot = "<|im_end|>";
  } else {
    needed = {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
    eot = "<|eot_id|>";
  }
  std::size_t added = 0;
  for (const std::string_view piece : needed) {
    std::int32_t id = -1;
    for (std::size_t i = 0; i < v.entries.size() && id < 0; ++i)
      if (v.entries[i].piece == piece) id = static_cast<std::int32_t>(i);
    if (id < 0) {
      id = static_cast<std::int32_t>(v.entries.size());
      v.entries.push_back({std::string(piece), 0.0f, token_type::control});
      ++added;
    } else {
      v.entries[static_cast<std::size_t>(id)].type = token_type::control;
    }
    if (piece == eot) v.eot_id = id;
  }
  v.chat_template = std::string(chat_template_text(s));
  return added;
}

/// Writes a llama-architecture GGUF file with F32 weights drawn from `cfg.seed`: token
/// embeddings, per-layer RMSNorm/attention/SwiGLU feed-forward, final norm and an
/// untied output projection. Equal configs and vocabularies give byte-identical files.
/// Errors: invalid_argument (n_head does not divide n_embd, n_head_kv does not divide
/// n_head, an odd head size, a zero dimension, an empty vocabulary, a repeated piece or a
/// special id out of range), io_error (the file could not be written). The caller owns the file.
[[nodiscard]] inline errc write_tiny_llama(const char* path, const tiny_llama_config& cfg,
                                           const vocab_spec& vocab) {
  const std::uint32_t n_vocab = static_cast<std::uint32_t>(vocab.entries.size());
  if (cfg.n_embd == 0 || cfg.n_layer == 0 || cfg.n_head == 0 || cfg.n_head_kv == 0 ||
      cfg.n_ff == 0 || cfg.n_ctx_train == 0 || n_vocab == 0)
    return errc::invalid_argument;
  if (cfg.n_embd % cfg.n_head != 0 || cfg.n_head % cfg.n_head_kv != 0)
    return errc::invalid_argument;
  const std::uint32_t head_dim = cfg.n_embd / cfg.n_head;
  if (head_dim % 2 != 0) return errc::invalid_argument;  // RoPE rotates pairs
  for (std::int32_t id : {vocab.unk_id, vocab.bos_id, vocab.eos_id, vocab.pad_id, vocab.eot_id})
    if (id < -1 || id >= static_cast<std::int32_t>(n_vocab)) return errc::invalid_argument;
  const std::uint32_t n_embd_kv = head_dim * cfg.n_head_kv;
  {
    // llama.cpp aborts on a vocabulary with repeated pieces; reject it here instead.
    std::vector<std::string_view> sorted;
    sorted.reserve(n_vocab);
    for (const auto& e : vocab.entries) sorted.emplace_back(e.piece);
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      return errc::invalid_argument;
  }

  const std::size_t per_layer =
      2 * std::size_t{cfg.n_embd} + 2 * std::size_t{cfg.n_embd} * cfg.n_embd +
      2 * std::size_t{cfg.n_embd} * n_embd_kv + 3 * std::size_t{cfg.n_embd} * cfg.n_ff;
  const std::size_t n_floats =
      2 * std::size_t{n_vocab} * cfg.n_embd + cfg.n_embd + per_layer * cfg.n_layer;
  const std::size_t n_tensors = 3 + 9 * std::size_t{cfg.n_layer};
  ggml_init_params ip{};
  ip.mem_size = n_floats * sizeof(float) + (n_tensors + 8) * ggml_tensor_overhead();
  ip.mem_buffer = nullptr;
  ip.no_alloc = false;
  ggml_context* ctx = ggml_init(ip);
  if (ctx == nullptr) return errc::out_of_memory;
  gguf_context* g = gguf_init_empty();

  rng gen(cfg.seed);
  // Uniform in [-a, a] has standard deviation a / sqrt(3).
  auto fill = [&](ggml_tensor* t, float stddev) {
    auto* d = static_cast<float*>(t->data);
    const float a = stddev * std::sqrt(3.0f);
    for (std::int64_t i = 0, n = ggml_nelements(t); i < n; ++i)
      d[i] = static_cast<float>((2.0 * gen.uniform() - 1.0) * a);
  };
  auto ones = [](ggml_tensor* t) {
    auto* d = static_cast<float*>(t->data);
    for (std::int64_t i = 0, n = ggml_nelements(t); i < n; ++i) d[i] = 1.0f;
  };
  // ne0 is the input dimension of a projection, ne1 its output dimension.
  auto add = [&](const std::string& name, std::int64_t ne0, std::int64_t ne1, float stddev) {
    ggml_tensor* t = ne1 == 0 ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, ne0)
                              : ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne0, ne1);
    ggml_set_name(t, name.c_str());
    if (stddev == 0.0f)
      ones(t);
    else
      fill(t, stddev);
    gguf_add_tensor(g, t);
  };
  const float in_std = 1.0f / std::sqrt(static_cast<float>(cfg.n_embd));
  const float ff_std = 1.0f / std::sqrt(static_cast<float>(cfg.n_ff));
  add("token_embd.weight", cfg.n_embd, n_vocab, 1.0f);
  for (std::uint32_t l = 0; l < cfg.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", cfg.n_embd, 0, 0.0f);
    add(p + "attn_q.weight", cfg.n_embd, cfg.n_embd, in_std);
    add(p + "attn_k.weight", cfg.n_embd, n_embd_kv, in_std);
    add(p + "attn_v.weight", cfg.n_embd, n_embd_kv, in_std);
    add(p + "attn_output.weight", cfg.n_embd, cfg.n_embd, in_std);
    add(p + "ffn_norm.weight", cfg.n_embd, 0, 0.0f);
    add(p + "ffn_gate.weight", cfg.n_embd, cfg.n_ff, in_std);
    add(p + "ffn_up.weight", cfg.n_embd, cfg.n_ff, in_std);
    add(p + "ffn_down.weight", cfg.n_ff, cfg.n_embd, ff_std);
  }
  add("output_norm.weight", cfg.n_embd, 0, 0.0f);
  // The final RMSNorm gives unit-RMS rows, so logits have standard deviation
  // sqrt(n_embd) * stddev = logit_scale.
  add("output.weight", cfg.n_embd, n_vocab, cfg.logit_scale * in_std);

  gguf_set_val_str(g, "general.architecture", "llama");
  gguf_set_val_str(g, "general.name", cfg.name.c_str());
  gguf_set_val_u32(g, "general.file_type", 0);  // all F32
  gguf_set_val_u32(g, "llama.vocab_size", n_vocab);
  gguf_set_val_u32(g, "llama.context_length", cfg.n_ctx_train);
  gguf_set_val_u32(g, "llama.embedding_length", cfg.n_embd);
  gguf_set_val_u32(g, "llama.block_count", cfg.n_layer);
  gguf_set_val_u32(g, "llama.feed_forward_length", cfg.n_ff);
  gguf_set_val_u32(g, "llama.attention.head_count", cfg.n_head);
  gguf_set_val_u32(g, "llama.attention.head_count_kv", cfg.n_head_kv);
  gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", cfg.rms_eps);
  gguf_set_val_f32(g, "llama.rope.freq_base", cfg.rope_freq_base);
  gguf_set_val_u32(g, "llama.rope.dimension_count", head_dim);

  gguf_set_val_str(g, "tokenizer.ggml.model", "llama");
  gguf_set_val_str(g, "tokenizer.ggml.pre", "default");
  std::vector<const char*> pieces;
  std::vector<float> scores;
  std::vector<std::int32_t> types;
  pieces.reserve(n_vocab);
  scores.reserve(n_vocab);
  types.reserve(n_vocab);
  for (const auto& e : vocab.entries) {
    pieces.push_back(e.piece.c_str());
    scores.push_back(e.score);
    types.push_back(static_cast<std::int32_t>(e.type));
  }
  gguf_set_arr_str(g, "tokenizer.ggml.tokens", pieces.data(), pieces.size());
  gguf_set_arr_data(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores.data(), scores.size());
  gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
  if (vocab.unk_id >= 0)
    gguf_set_val_u32(g, "tokenizer.ggml.unknown_token_id",
                     static_cast<std::uint32_t>(vocab.unk_id));
  if (vocab.bos_id >= 0)
    gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", static_cast<std::uint32_t>(vocab.bos_id));
  if (vocab.eos_id >= 0)
    gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", static_cast<std::uint32_t>(vocab.eos_id));
  if (vocab.pad_id >= 0)
    gguf_set_val_u32(g, "tokenizer.ggml.padding_token_id",
                     static_cast<std::uint32_t>(vocab.pad_id));
  if (vocab.eot_id >= 0)
    gguf_set_val_u32(g, "tokenizer.ggml.eot_token_id", static_cast<std::uint32_t>(vocab.eot_id));
  if (!vocab.chat_template.empty())
    gguf_set_val_str(g, "tokenizer.chat_template", vocab.chat_template.c_str());
  gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", vocab.add_bos);
  gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", false);
  gguf_set_val_bool(g, "tokenizer.ggml.add_space_prefix", vocab.add_space_prefix);

  const bool written = gguf_write_to_file(g, path, false);
  gguf_free(g);
  ggml_free(ctx);
  return written ? errc::ok : errc::io_error;
}

}  // namespace tandem::inline v0::tools
