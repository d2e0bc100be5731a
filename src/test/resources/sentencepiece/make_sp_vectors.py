"""Reference vectors for koala4j's SentencePiece port, made with the real sentencepiece 0.2.2 Python package.
Models are trained here on a small English/Korean text; every encode/decode below is sentencepiece's own output."""
import json, random, sys, io
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

out = sys.argv[1]
corpus = """The koala is an arboreal herbivorous marsupial native to Australia.
코알라는 오스트레일리아에 사는 유대류 동물로, 유칼립투스 잎을 먹는다.
It is the only extant representative of the family Phascolarctidae.
이 그림을 설명해 주세요. 사진에 있는 도형의 색깔은 무엇입니까?
Ｆｕｌｌｗｉｄｔｈ letters and ① circled digits, ﬁ ligatures, and café résumé naïve.
Numbers 12345 and 3.14159 and 2024-06-01, hello   world   with   spaces.
""" * 20
corpus_file = out + "/corpus.txt"
open(corpus_file, "w").write(corpus)

def train(prefix, **kw):
    spm.SentencePieceTrainer.train(input=corpus_file, model_prefix=out + "/" + prefix, num_threads=1, **kw)
    return out + "/" + prefix + ".model"

uni = train("unigram_nfkc", model_type="unigram", vocab_size=220, normalization_rule_name="nmt_nfkc",
            user_defined_symbols=["<image>", "[MASK]"], character_coverage=0.98, hard_vocab_limit=False)
bpe = train("bpe_ws", model_type="bpe", vocab_size=260, normalization_rule_name="identity",
            user_defined_symbols=["<image>"], character_coverage=0.98, byte_fallback=False)
llama = sys.argv[2]

rng = random.Random(1234)
alphabet = list("abcdefghijklmnopqrstuvwxyz ABCKQZ  \t\n0123456789.,?!-_<>()[]") + list("코알라는유칼립투스그림설명해주세요사진") + \
    ["é", "ñ", "ß", "ﬁ", "Ｆ", "①", "😀", "🐨", "\u3000", "\u00a0", "\u200b", "▁", "<image>", "[MASK]", "\ufffd", "Å", "Å"]
def random_text():
    n = rng.randint(0, 24)
    return "".join(rng.choice(alphabet) for _ in range(n))
fixed = ["", " ", "  ", "hello", " hello", "hello ", "  two  spaces ", "The koala is", "코알라는 유칼립투스", "Q: 12 + 30 = ?\nA:",
         "two  spaces and émoji 🐨", "<image>\nWhat", "a<image>b", "[MASK] [MASK]", "▁▁x", "ﬁne ①②", "Ｈｅｌｌｏ　ｗｏｒｌｄ",
         "\t\ttabs\n\nnewlines", "<unk> Hey", "<s></s>", "\u0301e"]
texts = fixed + [random_text() for _ in range(120)]

cases = {}
for name, path in [("unigram_nfkc", uni), ("bpe_ws", bpe), ("llama", llama)]:
    m = pb.ModelProto(); m.ParseFromString(open(path, "rb").read())
    variants = {"model": m.SerializeToString()}
    m2 = pb.ModelProto(); m2.CopyFrom(m); m2.normalizer_spec.add_dummy_prefix = False
    variants["no_dummy_prefix"] = m2.SerializeToString()
    rows = []
    for vname, blob in variants.items():
        sp = spm.SentencePieceProcessor(); sp.LoadFromSerializedProto(blob)
        for t in texts:
            pieces = sp.encode(t, out_type=str)
            ids = sp.encode(t)
            rows.append({"variant": vname, "text": t, "pieces": pieces, "ids": ids, "decoded": sp.decode(pieces)})
        # decode of arbitrary id sequences (random ids, byte pieces in runs, control/unknown pieces)
        for k in range(40):
            ids = [rng.randrange(sp.get_piece_size()) for _ in range(rng.randint(1, 12))]
            pieces = [sp.id_to_piece(i) for i in ids]
            rows.append({"variant": vname, "decode_pieces": pieces, "decoded": sp.decode(pieces)})
    cases[name] = rows
json.dump({"generator": "sentencepiece " + spm.__version__ + " (Python), make_sp_vectors.py", "cases": cases},
          open(out + "/sp_vectors.json", "w"), ensure_ascii=False, separators=(",", ":"))
print({k: len(v) for k, v in cases.items()})
