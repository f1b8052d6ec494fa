// Benchmark of the built-in n-gram model (tandem::ngram_model): build time, memory,
// held-out perplexity, per-token decoding cost, file round trip. Driven by
// benchmarks/ngram_vs_irstlm.sh, which encodes the KJV split with sentencepiece, runs
// IRSTLM on the same tokens and passes its figures here so each JSON line carries ratios.
//
// Usage: bench_ngram --train FILE --heldout FILE --vocab V --order N [--bos ID] [--eos ID]
//          [--repeats R] [--irstlm-ppl X --irstlm-seconds S --irstlm-cpu-seconds C
//           --irstlm-rss-kb K]
// FILEs hold one sentence a line as space-separated token ids (spm_encode --output_format=id).
// Prints one JSON line on stdout and a human summary on stderr.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tandem/backends/ngram_model.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Sentences as one flat id array plus offsets: compact, so that reading the corpus
// barely moves the process's memory figures.
struct corpus {
  std::vector<tandem::token_id> ids;
  std::vector<std::size_t> starts{0};
  [[nodiscard]] std::size_t size() const { return starts.size() - 1; }
  [[nodiscard]] std::span<const tandem::token_id> operator[](std::size_t i) const {
    return std::span<const tandem::token_id>(ids).subspan(starts[i], starts[i + 1] - starts[i]);
  }
};

bool read_ids(const char* path, corpus& out) {
  std::FILE* f = std::fopen(path, "rb");
  if (f == nullptr) return false;
  long value = -1;
  for (int c = std::fgetc(f);; c = std::fgetc(f)) {
    if (c >= '0' && c <= '9') {
      value = (value < 0 ? 0 : value * 10) + (c - '0');
      continue;
    }
    if (value >= 0) out.ids.push_back(static_cast<tandem::token_id>(value));
    value = -1;
    if (c == '\n' || c == EOF) {
      if (c == '\n' || out.ids.size() != out.starts.back()) out.starts.push_back(out.ids.size());
      if (c == EOF) break;
    }
  }
  std::fclose(f);
  return true;
}

// Current and peak resident set (kB) from /proc/self/status.
long status_kb(const char* key) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long v = -1;
  const std::size_t n = std::strlen(key);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, key, n) == 0) v = std::strtol(line + n + 1, nullptr, 10);
  }
  std::fclose(f);
  return v;
}

// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS; false where unsupported.
bool reset_peak() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

double arg_double(int argc, char** argv, const char* name, double fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atof(argv[i + 1]);
  return fallback;
}
const char* arg_string(int argc, char** argv, const char* name) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  const char* train_path = arg_string(argc, argv, "--train");
  const char* heldout_path = arg_string(argc, argv, "--heldout");
  const auto vocab = static_cast<std::size_t>(arg_double(argc, argv, "--vocab", 0));
  const auto order = static_cast<std::size_t>(arg_double(argc, argv, "--order", 0));
  const auto bos = static_cast<tandem::token_id>(arg_double(argc, argv, "--bos", 1));
  const auto eos = static_cast<tandem::token_id>(arg_double(argc, argv, "--eos", 2));
  const int repeats = std::max(1, static_cast<int>(arg_double(argc, argv, "--repeats", 3)));
  const double irst_ppl = arg_double(argc, argv, "--irstlm-ppl", 0);
  const double irst_seconds = arg_double(argc, argv, "--irstlm-seconds", 0);
  const double irst_cpu = arg_double(argc, argv, "--irstlm-cpu-seconds", 0);
  const double irst_rss_kb = arg_double(argc, argv, "--irstlm-rss-kb", 0);
  if (train_path == nullptr || heldout_path == nullptr || vocab == 0 || order == 0) {
    std::fprintf(stderr,
                 "usage: bench_ngram --train FILE --heldout FILE --vocab V --order N "
                 "[--bos ID] [--eos ID] [--repeats R] [--irstlm-ppl X --irstlm-seconds S "
                 "--irstlm-rss-kb K]\n");
    return 2;
  }

  const auto t_read = clock_type::now();
  corpus train, heldout;
  if (!read_ids(train_path, train) || !read_ids(heldout_path, heldout)) {
    std::fprintf(stderr, "bench_ngram: cannot read the token files\n");
    return 1;
  }
  const double read_s = seconds_since(t_read);

  auto build = [&]() -> std::optional<tandem::ngram_model> {
    auto builder = tandem::ngram_builder::create(tandem::ngram_options{order, vocab, bos, eos});
    if (!builder) {
      std::fprintf(stderr, "bench_ngram: %s\n", tandem::to_string(builder.error()).data());
      return std::nullopt;
    }
    builder->reserve(train.ids.size() + 2 * train.size());
    for (std::size_t i = 0; i < train.size(); ++i) {
      if (const tandem::errc e = builder->add_sentence(train[i]); e != tandem::errc::ok) {
        std::fprintf(stderr, "bench_ngram: sentence %zu: %s\n", i, tandem::to_string(e).data());
        return std::nullopt;
      }
    }
    auto built = builder->build();
    if (!built) {
      std::fprintf(stderr, "bench_ngram: build: %s\n", tandem::to_string(built.error()).data());
      return std::nullopt;
    }
    return std::move(built).value();
  };

  // The first build, from a cold allocator, gives the memory figures.
  const long rss_before = status_kb("VmRSS:");
  const bool peak_ok = reset_peak();
  const auto t_build = clock_type::now();
  std::optional<tandem::ngram_model> model = build();
  if (!model) return 1;
  std::vector<double> build_times{seconds_since(t_build)};
  const long build_peak_delta_kb = peak_ok ? status_kb("VmHWM:") - rss_before : -1;

  // Held-out perplexity over every token after <s>, </s> included.
  const auto t_eval = clock_type::now();
  double log_prob = 0;
  std::size_t tokens = 0;
  for (std::size_t i = 0; i < heldout.size(); ++i) {
    const auto s = model->score_sentence(heldout[i]);
    if (!s) {
      std::fprintf(stderr, "bench_ngram: held-out %zu: %s\n", i,
                   tandem::to_string(s.error()).data());
      return 1;
    }
    log_prob += s->log_prob;
    tokens += s->tokens;
  }
  const double eval_s = seconds_since(t_eval);
  const double ppl = std::exp(-log_prob / static_cast<double>(tokens));
  // Peak RSS and CPU time of reading, building and evaluating once: what /usr/bin/time
  // reports for IRSTLM's tlm, which does the same three things.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double max_rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;
  const double cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
  const double total_s = read_s + build_times.front() + eval_s;

  // More builds for the median build time.
  for (int r = 1; r < repeats; ++r) {
    const auto t0 = clock_type::now();
    if (!build()) return 1;
    build_times.push_back(seconds_since(t0));
  }
  std::sort(build_times.begin(), build_times.end());
  const double build_s = build_times[build_times.size() / 2];

  // Full next-token distributions through a session, as a decoder uses the model.
  tandem::ngram_session session(*model);
  std::size_t steps = 0;
  double check_sum = 0;
  const auto t_step = clock_type::now();
  for (std::size_t i = 0; i < heldout.size() && steps < 20000; ++i) {
    session.reset();
    (void)session.append(std::span<const tandem::token_id>(&bos, 1));
    for (tandem::token_id t : heldout[i]) {
      (void)session.append(std::span<const tandem::token_id>(&t, 1));
      check_sum += session.logits()[static_cast<std::size_t>(eos)];
      ++steps;
    }
  }
  const double step_us = seconds_since(t_step) / static_cast<double>(steps) * 1e6;

  // File round trip.
  const std::string path =
      (std::filesystem::temp_directory_path() / ("bench_ngram_" + std::to_string(order) + ".bin"))
          .string();
  const auto t_save = clock_type::now();
  const bool saved = model->save(path) == tandem::errc::ok;
  const double save_s = seconds_since(t_save);
  const auto t_load = clock_type::now();
  const auto loaded = tandem::ngram_model::load(path);
  const double load_s = seconds_since(t_load);
  const auto file_bytes = saved ? std::filesystem::file_size(path) : 0;
  std::filesystem::remove(path);
  if (!saved || !loaded) {
    std::fprintf(stderr, "bench_ngram: save/load failed\n");
    return 1;
  }

  const double model_mb = static_cast<double>(model->memory_bytes()) / (1 << 20);

  std::printf(
      "{\"bench\":\"ngram\",\"case\":\"kjv_spm4000_order%zu\",\"order\":%zu,\"vocab\":%zu,"
      "\"train_tokens\":%zu,\"heldout_tokens\":%zu,\"ngrams\":[",
      order, order, vocab, train.ids.size(), tokens);
  for (std::size_t n = 1; n <= order; ++n)
    std::printf("%s%zu", n > 1 ? "," : "", model->ngram_count(n));
  std::printf(
      "],\"perplexity\":%.4f,\"build_s\":%.4f,\"read_s\":%.4f,\"eval_s\":%.4f,"
      "\"total_s\":%.4f,\"cpu_s\":%.4f,\"build_peak_delta_mb\":%.2f,\"model_mb\":%.2f,\"max_rss_"
      "mb\":%.2f,"
      "\"step_us\":%.3f,\"file_mb\":%.2f,\"save_s\":%.4f,\"load_s\":%.4f",
      ppl, build_s, read_s, eval_s, total_s, cpu_s,
      static_cast<double>(build_peak_delta_kb) / 1024.0, model_mb, max_rss_mb, step_us,
      static_cast<double>(file_bytes) / (1 << 20), save_s, load_s);
  if (irst_ppl > 0) {
    std::printf(
        ",\"irstlm_perplexity\":%.4f,\"irstlm_s\":%.3f,\"irstlm_cpu_s\":%.3f,"
        "\"irstlm_max_rss_mb\":%.2f,\"perplexity_ratio\":%.4f,\"speedup_vs_irstlm\":%.2f,"
        "\"cpu_speedup_vs_irstlm\":%.2f,\"memory_ratio_vs_irstlm\":%.3f",
        irst_ppl, irst_seconds, irst_cpu, irst_rss_kb / 1024.0, ppl / irst_ppl,
        irst_seconds / total_s, irst_cpu / cpu_s, max_rss_mb / (irst_rss_kb / 1024.0));
  }
  std::printf("}\n");
  std::fprintf(
      stderr,
      "order %zu: perplexity %.3f (IRSTLM %.3f)  build %.3f s  total %.3f s (IRSTLM %.2f s)"
      "  max RSS %.1f MB (IRSTLM %.1f MB)  model %.1f MB  step %.1f us  [%g]\n",
      order, ppl, irst_ppl, build_s, total_s, irst_seconds, max_rss_mb, irst_rss_kb / 1024.0,
      model_mb, step_us, check_sum);
  return 0;
}
