// The README's code sample: speculative decoding with two built-in n-gram models.
#include <tandem/backends/ngram_model.hpp>
#include <tandem/tandem.hpp>

#include <cstdio>
#include <vector>

int main() {
  // Toy sentences of token ids counting up in strides of 1 to 4; two models learn them.
  std::vector<std::vector<tandem::token_id>> corpus(300);
  for (int s = 0; s < 300; ++s)
    for (int i = 0; i < 24; ++i) corpus[s].push_back((s % 5 + i * (1 + s % 4)) % 64);
  auto train = [&](std::size_t order) -> tandem::result<tandem::ngram_model> {
    auto builder = tandem::ngram_builder::create({.order = order, .vocab_size = 64});
    if (!builder) return builder.error();
    TANDEM_TRY(builder->add_sentences(corpus));
    return builder->build();
  };
  auto small = train(2), large = train(4);
  if (!small || !large) return 1;

  // The small model drafts, the large one verifies: the output is the large model's own.
  tandem::ngram_session draft(*small), target(*large), alone(*large);
  tandem::model_drafter drafter(draft, tandem::greedy_sampler{});
  tandem::speculative_decoder decoder(target, drafter);
  tandem::greedy_sampler greedy;
  const tandem::token_id prompt[] = {1, 3, 5};
  tandem::completion fast, slow;
  tandem::errc e = decoder.generate(greedy, prompt, {.max_tokens = 32}, fast);
  if (e == tandem::errc::ok) e = tandem::generate(alone, greedy, prompt, {.max_tokens = 32}, slow);
  if (e != tandem::errc::ok) {
    std::printf("error: %s\n", tandem::to_string(e).data());  // never an exception
    return 1;
  }
  std::printf("%zu tokens, identical to the large model alone: %s, acceptance %.2f\n",
              fast.tokens.size(), fast.tokens == slow.tokens ? "yes" : "no",
              decoder.stats().acceptance_rate());
}
