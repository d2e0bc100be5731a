# Drafts of transformers' PromptLookupCandidateGenerator on random sequences (small vocabularies, so n-grams repeat).
import json, random, torch, transformers
from transformers.generation.candidate_generator import PromptLookupCandidateGenerator
rng = random.Random(7)
cases = []
for i in range(300):
    vocab = rng.choice([2, 3, 4, 6, 10])
    length = rng.randint(1, 40)
    seq = [rng.randrange(vocab) for _ in range(length)]
    num = rng.randint(1, 12)
    ngram = rng.randint(1, 4)
    eos = sorted(rng.sample(range(vocab), rng.choice([0, 0, 1])))
    gen = PromptLookupCandidateGenerator(eos_token_id=torch.tensor(eos) if eos else None, num_output_tokens=num,
                                         max_matching_ngram_size=ngram, max_length=10_000)
    ids = torch.tensor([seq])
    cand, _ = gen.get_candidates(ids)
    drafts = cand[0, length:].tolist()
    cases.append({"sequence": seq, "num_tokens": num, "max_ngram": ngram, "eos": eos, "drafts": drafts})
json.dump({"transformers": transformers.__version__, "cases": cases}, open("drafts.json", "w"))
print(sum(1 for c in cases if c["drafts"]), "of", len(cases), "with drafts")
