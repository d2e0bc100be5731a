"""Golden beam search ids for koala4j's LLaMA / LLaVA generation (BeamSearchGoldenTest).

Run from the repository root with torch 2.13 (CPU) and transformers 4.57.6:
    python src/test/resources/golden/beam_search/make_beam_search.py ../shared/golden/e2e

Uses the golden e2e folders (llama: tiny LLaMA with a SentencePiece tokenizer; llava: tiny
LlavaForConditionalGeneration with its processor and image.png) and writes expected.json: for each run the prompt ids, the
generate() settings and the new ids (the best finished hypothesis after the prompt, eos included when it ended
there). Some runs use a token the model produces often as eos, so that hypotheses finish early and length_penalty
and early_stopping decide between them.
"""
import json, os, sys
import torch
import transformers
from PIL import Image
from transformers import AutoProcessor, LlamaForCausalLM, LlamaTokenizer, LlavaForConditionalGeneration

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = sys.argv[1]

llama = LlamaForCausalLM.from_pretrained(f'{E2E}/llama/model', dtype=torch.float32).eval()
tok = LlamaTokenizer.from_pretrained(f'{E2E}/llama/model')


def new_ids(model, inputs, **settings):
    settings = dict(settings)
    seed = settings.pop('seed', None)
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**inputs, **{'do_sample': False, **settings})
    return out[0, inputs['input_ids'].shape[1]:].tolist()


runs = []
for prompt in ['The koala is', '한국어 문장을 만들어 보자', 'Once upon a time']:
    inputs = tok(prompt, return_tensors='pt')
    greedy = new_ids(llama, inputs, max_new_tokens=12, eos_token_id=None, num_beams=1)
    frequent = max(set(greedy), key=greedy.count)
    for settings in [dict(num_beams=3, max_new_tokens=12, eos_token_id=None),
                     dict(num_beams=2, max_new_tokens=10, eos_token_id=greedy[2]),
                     dict(num_beams=4, max_new_tokens=10, eos_token_id=frequent, length_penalty=0.5,
                          early_stopping=True),
                     dict(num_beams=3, max_new_tokens=10, eos_token_id=[frequent, greedy[4]], length_penalty=2.0,
                          early_stopping='never'),
                     dict(num_beams=3, max_new_tokens=8, eos_token_id=greedy[1], repetition_penalty=1.3),
                     # beam sampling: the draws come from torch's global generator, seeded right before
                     dict(num_beams=2, max_new_tokens=10, eos_token_id=None, do_sample=True, temperature=0.8,
                          top_k=20, seed=7),
                     dict(num_beams=3, max_new_tokens=10, eos_token_id=frequent, do_sample=True, top_p=0.9,
                          top_k=0, seed=11),
                     # without eos the warpers keep at least 2 tokens per beam (1 + #eos with eos)
                     dict(num_beams=2, max_new_tokens=10, eos_token_id=None, do_sample=True, top_p=0.01, top_k=0,
                          seed=3),
                     # more processors, greedy and with beams
                     dict(num_beams=1, max_new_tokens=16, eos_token_id=None, no_repeat_ngram_size=2),
                     dict(num_beams=1, max_new_tokens=10, eos_token_id=greedy[2], min_new_tokens=6),
                     dict(num_beams=1, max_new_tokens=10, eos_token_id=greedy[1],
                          min_length=inputs['input_ids'].shape[1] + 4),
                     dict(num_beams=3, max_new_tokens=12, eos_token_id=None, no_repeat_ngram_size=3),
                     dict(num_beams=2, max_new_tokens=10, eos_token_id=greedy[2], min_new_tokens=5),
                     dict(num_beams=2, max_new_tokens=10, eos_token_id=None, do_sample=True, min_p=0.3, top_k=0,
                          seed=13)]:
        runs.append(dict(model='llama', prompt=prompt, input_ids=inputs['input_ids'][0].tolist(), settings=settings,
                         new_ids=new_ids(llama, inputs, **settings)))

llava = LlavaForConditionalGeneration.from_pretrained(f'{E2E}/llava/model', dtype=torch.float32).eval()
processor = AutoProcessor.from_pretrained(f'{E2E}/llava/model')
image = Image.open(f'{E2E}/llava/image.png').convert('RGB')
for question in ['What shapes are in this image?', '이 그림을 설명해 주세요.']:
    conv = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': question}]}]
    inputs = processor(images=image, text=processor.apply_chat_template(conv, add_generation_prompt=True),
                       return_tensors='pt')
    for settings in [dict(num_beams=3, max_new_tokens=10, eos_token_id=None),
                     dict(num_beams=2, max_new_tokens=10, length_penalty=0.7, early_stopping=True)]:
        runs.append(dict(model='llava', question=question, input_ids=inputs['input_ids'][0].tolist(),
                         settings=settings, new_ids=new_ids(llava, inputs, **settings)))

json.dump(dict(transformers=transformers.__version__, torch=torch.__version__, runs=runs),
          open(os.path.join(HERE, 'expected.json'), 'w'), indent=1, ensure_ascii=False)
