"""Reference vectors for koala4j's tokenizer.json port, made with the real tokenizers 0.22.2 (Python). Variants of the
golden LLaMA/LLaVA tokenizer.json: as shipped (Metaspace prepend_scheme first), the legacy LlamaTokenizerFast layout
(normalizer Prepend + Replace, no pre-tokenizer), the old Metaspace form (add_prefix_space, split) with a Metaspace
decoder, and added tokens with lstrip / rstrip / single_word / normalized flags."""
import json, random, sys, copy, os
from tokenizers import Tokenizer
import tokenizers

src, out = sys.argv[1], sys.argv[2]
base = json.load(open(src))
variants = {"shipped": copy.deepcopy(base)}
legacy = copy.deepcopy(base)
legacy["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
legacy["pre_tokenizer"] = None
legacy["model"]["merges"] = [" ".join(m) for m in legacy["model"]["merges"]]   # the older "a b" merge format
variants["legacy"] = legacy
old = copy.deepcopy(base)
old["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True, "prepend_scheme": "always", "split": True}
old["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True, "prepend_scheme": "always", "split": True}
variants["metaspace_split"] = old
flags = copy.deepcopy(base)
n = max(list(flags["model"]["vocab"].values()) + [t["id"] for t in flags["added_tokens"]]) + 1
flags["added_tokens"] += [
    {"id": n, "content": "<L>", "single_word": False, "lstrip": True, "rstrip": False, "normalized": False, "special": True},
    {"id": n + 1, "content": "<R>", "single_word": False, "lstrip": False, "rstrip": True, "normalized": False, "special": False},
    {"id": n + 2, "content": "word", "single_word": True, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
    {"id": n + 3, "content": "koala", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
    {"id": n + 4, "content": "<LR>", "single_word": False, "lstrip": True, "rstrip": True, "normalized": False, "special": True}]
variants["flags"] = flags

rng = random.Random(7)
alphabet = list("abcdefghijklmnopqrstuvwxyz ABQ   \n\t0123456789.,?!:") + list("코알라는유칼립투스그림") + \
    ["é", "🐨", "▁", "<s>", "</s>", "<unk>", "<image>", "<pad>", "<L>", "<R>", "<LR>", "word", "koala", "\u00a0"]
fixed = ["", " ", "The koala is", "  two", "two  spaces and émoji 🐨", "USER: <image>\nWhat shapes? ASSISTANT:",
         "Hello <s>.", "<s>hi</s>", "a <L> b", "a<R>   b", "x <LR>  y", "a word b", "awordb", "word", "the koala eats",
         "▁already", "<image><image>\n이 그림", "\u2581 \u2581"]
texts = fixed + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) for _ in range(100)]
cases = {}
for name, data in variants.items():
    tok = Tokenizer.from_str(json.dumps(data))
    vocab_n = tok.get_vocab_size(with_added_tokens=True)
    rows = []
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        rows.append({"text": t, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                     "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
    for k in range(30):
        ids = [rng.randrange(vocab_n) for _ in range(rng.randint(1, 10))]
        rows.append({"decode_ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                     "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
    os.makedirs(out + "/" + name, exist_ok=True)
    json.dump(data, open(out + "/" + name + "/tokenizer.json", "w"), ensure_ascii=False, separators=(",", ":"))
    cases[name] = rows
json.dump({"generator": "tokenizers " + tokenizers.__version__ + " (Python), make_hf_vectors.py", "cases": cases},
          open(out + "/hf_vectors.json", "w"), ensure_ascii=False, separators=(",", ":"))
print({k: len(v) for k, v in cases.items()})

# The golden llama runs' new_ids decoded by tokenizer.json (fast); the slow tokenizer's text differs where a byte run is
# not valid UTF-8 (ByteFallback turns the whole run into U+FFFD per byte, SentencePiece only the invalid bytes).
golden = json.load(open(sys.argv[3]))
fast = Tokenizer.from_file(os.path.join(os.path.dirname(sys.argv[3]), "model", "tokenizer.json"))
data = json.load(open(out + "/hf_vectors.json"))
data["llama_new_text_fast"] = [fast.decode(r["expected"]["new_ids"], skip_special_tokens=True) for r in golden["runs"]]
json.dump(data, open(out + "/hf_vectors.json", "w"), ensure_ascii=False, separators=(",", ":"))
