"""Golden log-probabilities for koala4j's LLaMA generation (LogprobsGoldenTest, the OpenAI endpoints' logprobs).

Run from the repository root with torch 2.13 (CPU) and transformers 4.57.6:
    python src/test/resources/golden/logprobs/make_logprobs.py ../shared/golden/e2e

For prompts of the golden e2e tiny LLaMA: log_softmax of the raw logits (float32) at every prompt position for the
next prompt token (prompt_logprobs, the first token has none) and for each of 8 greedy new tokens (generate with
output_logits), with the 5 most likely ids and their log-probabilities.
"""
import json, os, sys
import torch
import transformers
from transformers import LlamaForCausalLM, LlamaTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = sys.argv[1]
model = LlamaForCausalLM.from_pretrained(f'{E2E}/llama/model', dtype=torch.float32).eval()
tok = LlamaTokenizer.from_pretrained(f'{E2E}/llama/model')


def entry(logp, token):
    top = torch.topk(logp, 5)
    return dict(id=int(token), logprob=float(logp[token]), top_ids=top.indices.tolist(),
                top_logprobs=top.values.tolist())


cases = []
for prompt in ['The koala is', '한국어 문장을 만들어 보자', 'Once upon a time']:
    ids = tok(prompt, return_tensors='pt')['input_ids']
    with torch.no_grad():
        logits = model(ids).logits[0]
        prompt_lp = [entry(torch.log_softmax(logits[i - 1], -1), ids[0, i]) for i in range(1, ids.shape[1])]
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False,
                             eos_token_id=None, output_logits=True, return_dict_in_generate=True)
    new = out.sequences[0, ids.shape[1]:]
    gen_lp = [entry(torch.log_softmax(step[0], -1), new[i]) for i, step in enumerate(out.logits)]
    cases.append(dict(prompt=prompt, input_ids=ids[0].tolist(), new_ids=new.tolist(), prompt_logprobs=prompt_lp,
                      logprobs=gen_lp))
json.dump(dict(transformers=transformers.__version__, torch=torch.__version__, cases=cases),
          open(os.path.join(HERE, 'expected.json'), 'w'), indent=1, ensure_ascii=False)
