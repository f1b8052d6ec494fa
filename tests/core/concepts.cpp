// Compile-time checks of the concepts and of capability detection, positive and negative.
#include "tandem/core/concepts.hpp"

#include "tandem/core/completion.hpp"

#include "common/catch.hpp"

namespace {
using tandem::errc;
using tandem::token_id;

struct minimal_model {
  std::size_t vocab_size() const { return 4; }
  std::size_t size() const { return 0; }
  errc append(std::span<const token_id>) { return errc::ok; }
  std::span<const float> logits() const { return {}; }
};
struct rewinding_model : minimal_model {
  errc rewind(std::size_t) { return errc::ok; }
};
struct scoring_model : rewinding_model {
  errc score(std::span<const token_id>, std::span<float>) { return errc::ok; }
  std::size_t context_length() const { return 16; }
};
struct no_logits {
  std::size_t vocab_size() const { return 4; }
  std::size_t size() const { return 0; }
  errc append(std::span<const token_id>) { return errc::ok; }
};
struct wrong_append_return : minimal_model {
  bool append(std::span<const token_id>) { return true; }
};
struct rewind_returns_bool : minimal_model {
  bool rewind(std::size_t) { return true; }
};
struct tokenizer {
  std::size_t vocab_size() const { return 4; }
  errc encode(std::string_view, std::vector<token_id>&) const { return errc::ok; }
  errc decode(std::span<const token_id>, std::string&) const { return errc::ok; }
  errc piece(token_id, std::string&) const { return errc::ok; }
};
struct sampler {
  tandem::result<token_id> sample(std::span<const float>) { return token_id{0}; }
  void accept(token_id) {}
  void reset() {}
};
struct generator {
  tandem::result<tandem::completion> generate(const tandem::generate_request&) {
    return tandem::completion{};
  }
};
}  // namespace

static_assert(tandem::LanguageModel<minimal_model>);
static_assert(!tandem::Rewindable<minimal_model>);
static_assert(!tandem::Scoring<minimal_model>);
static_assert(tandem::Rewindable<rewinding_model>);
static_assert(!tandem::Scoring<rewinding_model>);
static_assert(tandem::Scoring<scoring_model> && tandem::has_context_length_v<scoring_model>);
static_assert(!tandem::LanguageModel<no_logits>);
static_assert(!tandem::LanguageModel<wrong_append_return>);
static_assert(!tandem::Rewindable<rewind_returns_bool>);
static_assert(tandem::Tokenizer<tokenizer>);
static_assert(!tandem::Tokenizer<minimal_model>);
static_assert(tandem::Sampler<sampler>);
static_assert(!tandem::Sampler<tokenizer>);
static_assert(tandem::Generator<generator>);
static_assert(!tandem::Generator<sampler>);

TEST_CASE("concepts: context length is detected or unbounded", "[core][concepts]") {
  CHECK(tandem::context_length_of(scoring_model{}) == 16);
  CHECK(tandem::context_length_of(minimal_model{}) == static_cast<std::size_t>(-1));
}
