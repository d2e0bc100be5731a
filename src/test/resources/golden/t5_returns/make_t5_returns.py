"""Golden num_return_sequences for koala4j's T5 generation (TextToTextTest.returnedSequences...).

Run from the repository root with torch 2.13 (CPU) and transformers 5.18:
    python src/test/resources/golden/t5_returns/make_t5_returns.py ../shared/golden/e2e

Uses the golden e2e T5 folder (tiny T5ForConditionalGeneration, ByT5 tokenizer) and writes returns.json: for each
run the inputs, the generate() settings and generate()'s sequences (inputs x num_return_sequences rows, padded to the
longest, as it returns them): beam search with several returned hypotheses, and sampling, whose rows draw from one
generator seeded right before.
"""
import json, os, sys
import torch
import transformers
from transformers import AutoTokenizer, T5ForConditionalGeneration

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = sys.argv[1]
model = T5ForConditionalGeneration.from_pretrained(f'{E2E}/t5/model', dtype=torch.float32).eval()
tok = AutoTokenizer.from_pretrained(f'{E2E}/t5/model')

runs = []
for inputs in [['Good morning, koala!'], ['Fill <extra_id_0> here.', '서울은 한국의 수도입니다.']]:
    batch = tok(inputs, return_tensors='pt', padding=True)
    for settings in [dict(num_beams=3, num_return_sequences=3, max_new_tokens=12),
                     dict(num_beams=4, num_return_sequences=2, max_new_tokens=12, eos_token_id=252,
                          length_penalty=0.5),
                     dict(do_sample=True, num_return_sequences=3, max_new_tokens=10, top_k=0, temperature=1.5,
                          seed=7),
                     dict(do_sample=True, num_return_sequences=2, max_new_tokens=10, top_k=20, eos_token_id=252,
                          seed=3)]:
        s = dict(settings)
        seed = s.pop('seed', None)
        if seed is not None:
            torch.manual_seed(seed)
        with torch.no_grad():
            out = model.generate(**batch, **{'do_sample': False, **s})
        runs.append(dict(inputs=inputs, settings=settings, sequences=out.tolist()))

json.dump(dict(transformers=transformers.__version__, torch=torch.__version__, runs=runs),
          open(os.path.join(HERE, 'returns.json'), 'w'), indent=1, ensure_ascii=False)
