"""Reference renders for koala4j's chat templates, made with the real Jinja2 3.1.6 in the environment transformers 4.57
compiles chat templates in (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, a {% generation %}
tag that renders its body, raise_exception, tojson with ensure_ascii=False, strftime_now)."""
import json, sys
import jinja2
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2 import nodes

class Generation(Extension):
    tags = {"generation"}
    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)
    def _render(self, caller):
        return caller()

def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception

templates = json.load(open(sys.argv[1]))
conversations = {
  "image_question": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What shapes are in this image?"}]}],
  "korean_image": [{"role": "user", "content": [{"type": "text", "text": "이 그림을 설명해 주세요."}, {"type": "image"}]}],
  "multi_turn": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]},
                 {"role": "assistant", "content": [{"type": "text", "text": "A koala."}]},
                 {"role": "user", "content": [{"type": "text", "text": "코알라는 무엇을 먹나요?"}]}],
  "system_first": [{"role": "system", "content": [{"type": "text", "text": "You are helpful."}]},
                   {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
  "plain_strings": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "  Hello there  "},
                    {"role": "assistant", "content": "Hi! "}, {"role": "user", "content": "Tell me a joke"}],
  "strings_no_system": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hey"},
                        {"role": "user", "content": "Again"}],
  "bad_order": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
}
specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
rows = []
for tname, source in templates.items():
    template = env.from_string(source)
    for cname, messages in conversations.items():
        for gen in (True, False):
            row = {"template": tname, "conversation": cname, "add_generation_prompt": gen}
            try:
                row["rendered"] = template.render(messages=messages, add_generation_prompt=gen, **specials)
            except Exception as e:
                row["error"] = type(e).__name__ + ": " + str(e)
            rows.append(row)
json.dump({"generator": "jinja2 " + jinja2.__version__ + " (Python), make_chat_vectors.py", "templates": templates,
           "conversations": conversations, "special_tokens": specials, "rows": rows},
          open(sys.argv[2], "w"), ensure_ascii=False, indent=1)
print(len(rows), sum("error" in r for r in rows))
