"""Golden num_return_sequences for koala4j's LLaMA / LLaVA beam search (BeamSearchGoldenTest.returns...).

Run from the repository root with torch 2.13 (CPU) and transformers 5.18:
    python src/test/resources/golden/beam_search/make_beam_returns.py ../shared/golden/e2e

Uses the golden e2e folders, as make_beam_search.py does, and writes returns.json: for each run the prompt ids, the
generate() settings (num_beams, num_return_sequences, ...) and, per returned sequence (best first), its new ids: the
sequence after the prompt, cut to the length its beam indices give (generate() pads shorter sequences to the longest
one). Eos ids the model produces make hypotheses end at different lengths.
"""
import json, os, sys
import torch
import transformers
from PIL import Image
from transformers import AutoProcessor, LlamaForCausalLM, LlamaTokenizer, LlavaForConditionalGeneration

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = sys.argv[1]


def sequences(model, inputs, **settings):
    settings = dict(settings)
    seed = settings.pop('seed', None)
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**inputs, **{'do_sample': False, **settings}, return_dict_in_generate=True,
                             output_scores=True)
    prompt = inputs['input_ids'].shape[1]
    result = []
    for row, indices in zip(out.sequences, out.beam_indices):
        generated = int((indices != -1).sum())
        result.append(row[prompt:prompt + generated].tolist())
    return result


llama = LlamaForCausalLM.from_pretrained(f'{E2E}/llama/model', dtype=torch.float32).eval()
tok = LlamaTokenizer.from_pretrained(f'{E2E}/llama/model')
runs = []
for prompt in ['The koala is', '한국어 문장을 만들어 보자']:
    inputs = tok(prompt, return_tensors='pt')
    with torch.no_grad():
        greedy = llama.generate(**inputs, max_new_tokens=12, do_sample=False, eos_token_id=None)[0].tolist()
    greedy = greedy[inputs['input_ids'].shape[1]:]
    frequent = max(set(greedy), key=greedy.count)
    for settings in [dict(num_beams=3, num_return_sequences=3, max_new_tokens=10, eos_token_id=None),
                     dict(num_beams=4, num_return_sequences=2, max_new_tokens=10, eos_token_id=frequent,
                          length_penalty=0.5),
                     dict(num_beams=4, num_return_sequences=4, max_new_tokens=10, eos_token_id=greedy[2],
                          early_stopping=True),
                     dict(num_beams=3, num_return_sequences=2, max_new_tokens=10, eos_token_id=[frequent, greedy[4]],
                          early_stopping='never', length_penalty=2.0),
                     dict(num_beams=3, num_return_sequences=3, max_new_tokens=8, eos_token_id=frequent,
                          do_sample=True, top_k=20, seed=5)]:
        runs.append(dict(model='llama', prompt=prompt, input_ids=inputs['input_ids'][0].tolist(), settings=settings,
                         sequences=sequences(llama, inputs, **settings)))

llava = LlavaForConditionalGeneration.from_pretrained(f'{E2E}/llava/model', dtype=torch.float32).eval()
processor = AutoProcessor.from_pretrained(f'{E2E}/llava/model')
image = Image.open(f'{E2E}/llava/image.png').convert('RGB')
conv = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': 'What shapes are in this image?'}]}]
inputs = processor(images=image, text=processor.apply_chat_template(conv, add_generation_prompt=True),
                   return_tensors='pt')
settings = dict(num_beams=3, num_return_sequences=3, max_new_tokens=10)
runs.append(dict(model='llava', question='What shapes are in this image?', input_ids=inputs['input_ids'][0].tolist(),
                 settings=settings, sequences=sequences(llava, inputs, **settings)))

json.dump(dict(transformers=transformers.__version__, torch=torch.__version__, runs=runs),
          open(os.path.join(HERE, 'returns.json'), 'w'), indent=1, ensure_ascii=False)
