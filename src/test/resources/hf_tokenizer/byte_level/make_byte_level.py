"""Reference vectors for koala4j's byte-level BPE (tokenizer.json with ByteLevel / Split pre-tokenizers), made with the
real tokenizers 0.22.2 (Python). Two tokenizers trained here on a small mixed English / Korean / code corpus:
  llama3/: LLaMA 3's pipeline: Split(LLaMA 3 regex, Isolated) + ByteLevel(no prefix space, no regex), BPE with
           ignore_merges, ByteLevel decoder, Sequence[ByteLevel, TemplateProcessing(<|begin_of_text|> $A)] post-processor,
           special tokens <|begin_of_text|>, <|end_of_text|>, <|eot_id|>; tokenizer_class PreTrainedTokenizerFast.
  gpt2/:   GPT-2's: ByteLevel(add_prefix_space, use_regex) pre-tokenizer, ByteLevel decoder and post-processor, one
           added token <|endoftext|>.
vectors.json: for each folder and text, the ids with and without special tokens, and the decodings (skip special
tokens on and off) of those ids and of byte-token sequences that cut UTF-8 characters; and "split": the Split
pre-tokenizer's pieces for every behavior, inverted or not, with a literal and a regex pattern.
Run: python make_byte_level.py (from this folder)."""
import json, os
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, processors, Regex, AddedToken

HERE = os.path.dirname(os.path.abspath(__file__))
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
          r"|\s+(?!\S)|\s+")
corpus = ["Hello world! I'm here, they'll go; we've seen it. You'RE right.  Double  spaces\tand\ttabs\nnew lines\n\n",
          "코알라는 유칼립투스 잎을 먹어요. 한국어 문장 12345 678 9. 이 그림을 설명해 주세요!",
          "def f(x):\n    return x**2  # code\r\n\tindent", "emoji 🐨🐨 and ünïcödé, naïve café", "The koala is a marsupial."] * 30
texts = ["The koala is", "Hello world!", "I'm here, THEY'LL go", "  leading spaces", "trailing   ", "a\n\nb\r\nc\td",
         "12345678901", "코알라는 유칼립투스 잎을 먹어요.", "emoji 🐨 in text", "mixed한국어text123", "ünïcödé naïve",
         "<|begin_of_text|>hi<|eot_id|>", "x <|eot_id|> y", "<|endoftext|>", "", " ", "\n", "def f(x):\n    return x",
         "Ｆｕｌｌ width ＡＢＣ", "tab\there"]


def train(pre, special):
    t = Tokenizer(models.BPE(ignore_merges=pre == 'llama3'))
    if pre == 'llama3':
        t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated", invert=False),
                                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=700, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                      special_tokens=special, show_progress=False))
    if pre == 'llama3':
        bos = t.token_to_id("<|begin_of_text|>")
        t.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False), processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
            special_tokens=[("<|begin_of_text|>", bos)])])
    else:
        t.post_processor = processors.ByteLevel(trim_offsets=True)
    return t


vectors = {}
for name, special, config in [
        ("llama3", ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
         {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
          "clean_up_tokenization_spaces": False, "model_max_length": 131072}),
        ("gpt2", ["<|endoftext|>"],
         {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
          "unk_token": "<|endoftext|>", "clean_up_tokenization_spaces": False, "model_max_length": 1024})]:
    t = train(name, special)
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    t.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=1)
    t = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    rows = []
    for text in texts:
        plain = t.encode(text, add_special_tokens=False).ids
        full = t.encode(text).ids
        rows.append({"text": text, "ids": plain, "ids_special": full, "tokens": t.encode(text, add_special_tokens=False).tokens,
                     "decoded": t.decode(full, skip_special_tokens=False),
                     "decoded_skip": t.decode(full, skip_special_tokens=True)})
    # cut UTF-8: the byte tokens of one Hangul syllable and an emoji, partially
    cuts = []
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    for text in ["코", "🐨", "a코b"]:
        ids = [t.token_to_id(c) for piece, _ in byte_level.pre_tokenize_str(text) for c in piece]
        for k in range(len(ids) + 1):
            cuts.append({"ids": ids[:k], "decoded": t.decode(ids[:k])})
    vectors[name] = {"rows": rows, "cuts": cuts}
split = []
for pattern, regex in [(" ", False), (r"\d+", True), ("ab", False)]:
    for behavior in ["removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous"]:
        for invert in [False, True]:
            p = pre_tokenizers.Split(Regex(pattern) if regex else pattern, behavior=behavior, invert=invert)
            for text in ["a b  c ", "  x", "ab12cd345", "12ab", "abab x ab", ""]:
                split.append({"pattern": pattern, "regex": regex, "behavior": behavior, "invert": invert, "text": text,
                              "pieces": [piece for piece, _ in p.pre_tokenize_str(text)]})
vectors["split"] = split
with open(os.path.join(HERE, "vectors.json"), "w") as f:
    json.dump(vectors, f, indent=1, ensure_ascii=False)
