"""Golden data for generate()'s rarer logits processors and warpers in koala4j's LLaMA / LLaVA generation
(LogitsProcessorsGoldenTest).

Run from the repository root with torch 2.13 (CPU) and transformers 4.57.6:
    python src/test/resources/golden/logits_processors/make_logits_processors.py ../shared/golden/e2e

Writes processors.json: score rows (float32, with ties, a NaN and infinities where a processor handles them) before
and after one processor class of transformers.generation.logits_process, called with the given input_ids; and
runs.json: generate() on the golden e2e tiny LLaMA, each run's settings written as a generation_config.json would
hold them (greedy, and beam search / beam sampling, whose draws come from torch's generator seeded right before), with
the new ids. Non-finite floats are written as JSON's NaN / Infinity / -Infinity.
"""
import json, os, sys
import torch
import transformers
from transformers import LlamaForCausalLM, LlamaTokenizer
from transformers.generation import logits_process as lp

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = sys.argv[1]

# ---- single processors on score rows
gen = torch.Generator().manual_seed(0)
V = 64


def row(kind):
    r = torch.randn(V, generator=gen) * {'sharp': 4.0, 'flat': 0.05, 'normal': 1.5}[kind]
    r[5] = r[9]           # a tie
    r[20] = r[21] = r[22]
    return r.float()


cases = []


def case(name, args, processor, scores, input_ids):
    ids = torch.tensor([input_ids])
    out = processor(ids, scores[None].clone())[0]
    cases.append(dict(processor=name, args=args, input_ids=input_ids, scores=scores.tolist(), expected=out.tolist()))


history = [1, 7, 12, 7, 30, 12]
for kind in ['normal', 'sharp', 'flat']:
    scores = row(kind)
    for mass in [0.2, 0.5, 0.9, 0.99]:
        for keep in [1, 3]:
            case('typical_p', dict(mass=mass, min_tokens_to_keep=keep), lp.TypicalLogitsWarper(mass, min_tokens_to_keep=keep),
                 scores, history)
    for eps in [0.001, 0.01, 0.05, 0.3]:
        for keep in [1, 3]:
            case('epsilon_cutoff', dict(epsilon=eps, min_tokens_to_keep=keep),
                 lp.EpsilonLogitsWarper(eps, min_tokens_to_keep=keep), scores, history)
            case('eta_cutoff', dict(epsilon=eps, min_tokens_to_keep=keep),
                 lp.EtaLogitsWarper(eps, min_tokens_to_keep=keep), scores, history)
scores = row('normal')
for bad, eos in [([[3], [7, 12], [12, 40], [30, 12, 5], [1, 7, 12, 7, 30, 12, 9]], None),
                 ([[3], [2], [12, 2]], 2), ([[3], [2], [6]], [2, 6])]:
    case('bad_words_ids', dict(bad_words_ids=bad, eos_token_id=eos), lp.NoBadWordsLogitsProcessor(bad, eos), scores,
         history)
bias = [[[3], -2.5], [[12], 4.0], [[7, 12], -1.0], [[30, 12, 8], 7.5], [[12, 9], 2.0], [[9, 12, 7, 30, 12, 8], 1.0]]
case('sequence_bias', dict(sequence_bias=bias), lp.SequenceBiasLogitsProcessor(bias), scores, history)
case('suppress_tokens', dict(suppress_tokens=[0, 9, 63]), lp.SuppressTokensLogitsProcessor([0, 9, 63]), scores, history)
for begin in [6, 7]:
    case('begin_suppress_tokens', dict(begin_suppress_tokens=[4, 5], begin_index=begin),
         lp.SuppressTokensAtBeginLogitsProcessor([4, 5], begin), scores, history)
for ids in [[1], [1, 7]]:
    case('forced_bos_token_id', dict(forced_bos_token_id=11), lp.ForcedBOSTokenLogitsProcessor(11), scores, ids)
for max_length in [7, 8]:
    case('forced_eos_token_id', dict(max_length=max_length, forced_eos_token_id=[2, 13]),
         lp.ForcedEOSTokenLogitsProcessor(max_length, [2, 13]), scores, history)
for start, factor, prompt_length in [(2, 1.5, 3), (0, 0.7, 2), (3, 2.0, 3)]:
    scores_neg = scores.clone()
    scores_neg[13] = -abs(scores_neg[13])
    case('exponential_decay_length_penalty', dict(start=start, factor=factor, eos_token_id=[2, 13],
                                                  prompt_length=prompt_length),
         lp.ExponentialDecayLengthPenalty((start, factor), [2, 13], prompt_length), scores_neg, history)
weird = scores.clone()
weird[3], weird[4], weird[5] = float('nan'), float('inf'), float('-inf')
case('remove_invalid_values', {}, lp.InfNanRemoveLogitsProcessor(), weird, history)
case('renormalize_logits', {}, lp.LogitNormalization(), scores, history)
json.dump(dict(transformers=transformers.__version__, torch=torch.__version__, cases=cases),
          open(os.path.join(HERE, 'processors.json'), 'w'), indent=1)

# ---- generate() runs, settings as generation_config.json fields
llama = LlamaForCausalLM.from_pretrained(f'{E2E}/llama/model', dtype=torch.float32).eval()
tok = LlamaTokenizer.from_pretrained(f'{E2E}/llama/model')


def new_ids(input_ids, config, seed):
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        out = llama.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                             **{'do_sample': False, **config})
    return out[0, input_ids.shape[1]:].tolist()


runs = []


def run(prompt, input_ids, config, seed=None):
    runs.append(dict(prompt=prompt, input_ids=input_ids[0].tolist(), generation_config=config, seed=seed,
                     new_ids=new_ids(input_ids, config, seed)))


for prompt in ['The koala is', '한국어 문장을 만들어 보자', 'Once upon a time']:
    ids = tok(prompt, return_tensors='pt')['input_ids']
    g = new_ids(ids, dict(max_new_tokens=12, eos_token_id=None), None)
    n = ids.shape[1]
    for config, seed in [
        (dict(max_new_tokens=12, eos_token_id=None, suppress_tokens=[g[0], g[3]]), None),
        (dict(max_new_tokens=12, eos_token_id=None, begin_suppress_tokens=[g[0], g[1]]), None),
        (dict(max_new_tokens=12, eos_token_id=g[5], bad_words_ids=[[g[1]], [g[2], g[3]], [g[5]]]), None),
        (dict(max_new_tokens=12, eos_token_id=None, sequence_bias=[[[g[2]], -5.0], [[g[0], g[1]], -100.0],
                                                                   [[g[4], 17], 50.0]]), None),
        (dict(max_new_tokens=8, eos_token_id=None, forced_eos_token_id=7), None),
        (dict(max_new_tokens=8, eos_token_id=g[6], forced_eos_token_id=[7, 9]), None),
        (dict(max_new_tokens=16, eos_token_id=2, exponential_decay_length_penalty=[2, 1.6]), None),
        (dict(max_new_tokens=12, eos_token_id=None, remove_invalid_values=True, suppress_tokens=[g[0]]), None),
        # warpers only act when sampling: greedy ignores them
        (dict(max_new_tokens=12, eos_token_id=None, typical_p=0.2, epsilon_cutoff=0.2), None),
        # beam search and beam sampling (2 tokens kept at least without eos, 1 + #eos with)
        (dict(max_new_tokens=10, eos_token_id=None, num_beams=3, bad_words_ids=[[g[0]], [g[2], g[3]]],
              renormalize_logits=True), None),
        (dict(max_new_tokens=10, eos_token_id=None, num_beams=3, bad_words_ids=[[g[0]], [g[2], g[3]]]), None),
        (dict(max_new_tokens=10, eos_token_id=g[4], num_beams=2, sequence_bias=[[[g[1]], -3.0]],
              forced_eos_token_id=g[4]), None),
        (dict(max_new_tokens=10, eos_token_id=None, num_beams=2, do_sample=True, top_k=0, typical_p=0.5), 5),
        (dict(max_new_tokens=10, eos_token_id=g[3], num_beams=2, do_sample=True, top_k=0, typical_p=0.9), 6),
        (dict(max_new_tokens=10, eos_token_id=None, num_beams=2, do_sample=True, top_k=0, epsilon_cutoff=0.02), 7),
        (dict(max_new_tokens=10, eos_token_id=None, num_beams=3, do_sample=True, top_k=0, eta_cutoff=0.01), 8),
        (dict(max_new_tokens=10, eos_token_id=None, num_beams=2, do_sample=True, top_k=10, temperature=0.7,
              renormalize_logits=True, suppress_tokens=[g[0]]), 9),
    ]:
        run(prompt, ids, config, seed)
# a one-token prompt: forced_bos_token_id acts on the first new token, begin_suppress_tokens then one later
bos = torch.tensor([[1]])
run('<s>', bos, dict(max_new_tokens=8, eos_token_id=None, forced_bos_token_id=300))
first = new_ids(bos, dict(max_new_tokens=3, eos_token_id=None), None)
run('<s>', bos, dict(max_new_tokens=8, eos_token_id=None, forced_bos_token_id=first[0], begin_suppress_tokens=[first[1]]))
run('<s>', bos, dict(max_new_tokens=8, eos_token_id=None, begin_suppress_tokens=[first[0]]))
json.dump(dict(transformers=transformers.__version__, torch=torch.__version__, runs=runs),
          open(os.path.join(HERE, 'runs.json'), 'w'), indent=1, ensure_ascii=False)
