// Test helper: a tiny n-gram model over a vocabulary of 64 tokens (one sentence), for
// tests that need a model whose vocabulary differs from a byte-level one (256).
#pragma once

#include "common/catch.hpp"
#include "tandem/backends/ngram_model.hpp"

namespace tandem_test {

/// An order-2 model of vocabulary 64 trained on the sentence 1 2 3; REQUIREs success.
inline tandem::ngram_model vocab64_ngram() {
  auto builder = tandem::ngram_builder::create({.order = 2, .vocab_size = 64});
  REQUIRE(builder);
  const tandem::token_id s[] = {1, 2, 3};
  REQUIRE(builder->add_sentence(s) == tandem::errc::ok);
  auto m = builder->build();
  REQUIRE(m);
  return std::move(*m);
}

}  // namespace tandem_test
