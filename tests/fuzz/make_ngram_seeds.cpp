// Writes small valid n-gram model files into a folder: the seed corpus of
// fuzz_ngram_load. Usage: make_ngram_seeds DIR
#include <cstdio>
#include <string>
#include <vector>

#include "tandem/backends/ngram_model.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_ngram_seeds DIR\n");
    return 2;
  }
  const std::vector<std::vector<tandem::token_id>> sentences{
      {2, 3, 4}, {2, 3}, {4, 4, 2, 5}, {3}, {5, 2, 3, 4, 6}};
  int written = 0;
  for (std::size_t order : {1u, 2u, 3u, 4u}) {
    for (bool markers : {true, false}) {
      tandem::ngram_options p{order, 8, std::nullopt, std::nullopt};
      if (markers) {
        p.bos = 0;
        p.eos = 1;
      }
      auto b = tandem::ngram_builder::create(p);
      if (!b) return 1;
      for (const auto& s : sentences)
        if (b->add_sentence(s) != tandem::errc::ok) return 1;
      auto m = b->build();
      if (!m) return 1;
      const std::string path = std::string(argv[1]) + "/seed_order" + std::to_string(order) +
                               (markers ? "_markers" : "_plain") + ".bin";
      if (m->save(path) != tandem::errc::ok) return 1;
      ++written;
    }
  }
  std::printf("wrote %d seed models into %s\n", written, argv[1]);
  return 0;
}
