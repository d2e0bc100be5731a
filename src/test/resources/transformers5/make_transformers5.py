"""Model folders as transformers 5 saves them, for koala4j's loading tests (Transformers5FoldersTest).

Run from the repository root with torch 2.13 (CPU) and transformers 5.18 installed:
    python src/test/resources/transformers5/make_transformers5.py ../shared/golden/e2e

1. Re-saves golden e2e folders made by transformers 4.57.6 (llama, llava, t5, kollava_v0_vision) with 5.x's
   save_pretrained: config.json with rope_parameters, tokenizer.json only (tokenizer_class TokenizersBackend for the
   llava processor), processor_config.json holding the image processor, a CLIPVisionModel without its vision_model.
   level, T5 with tie_word_embeddings true + scale_decoder_outputs. Their expected ids are the golden ones.
2. Makes new tiny models whose configs the golden folders do not cover (variants/), greedy ids in variants/expected.json.
"""
import json, os, shutil, sys
import torch
from PIL import Image
from transformers import (AutoProcessor, AutoTokenizer, CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel,
                          LlamaConfig, LlamaForCausalLM, LlavaConfig, LlavaForConditionalGeneration,
                          T5ForConditionalGeneration)

GOLDEN = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def resave(src, dst, model_cls, tok_cls):
    fresh(dst)
    if model_cls:
        model_cls.from_pretrained(src).save_pretrained(dst)
    if tok_cls:
        tok_cls.from_pretrained(src).save_pretrained(dst)


resave(f'{GOLDEN}/llama/model', f'{HERE}/llama', LlamaForCausalLM, AutoTokenizer)
resave(f'{GOLDEN}/llava/model', f'{HERE}/llava', LlavaForConditionalGeneration, AutoProcessor)
resave(f'{GOLDEN}/t5/model', f'{HERE}/t5', T5ForConditionalGeneration, AutoTokenizer)
resave(f'{GOLDEN}/kollava_v0_vision', f'{HERE}/kollava_v0_vision', CLIPVisionModel, CLIPImageProcessor)

# variants: weights stored in bf16 / f16; the expectations come from the folder reloaded in float32 (casting the
# in-memory model back would keep its rotary inv_freq buffer rounded to bf16). A seed whose greedy steps have a top-2
# logit gap under MIN_GAP is skipped, so that float rounding cannot flip a token.
MIN_GAP = 0.01
V = fresh(f'{HERE}/variants')


def gap(scores):
    return min(float(t[0] - t[1]) for t in (torch.topk(s[0], 2).values for s in scores))
expected = {}
tok = AutoTokenizer.from_pretrained(f'{HERE}/llama')
base = dict(hidden_size=64, intermediate_size=168, num_attention_heads=4, num_hidden_layers=2, num_key_value_heads=2,
            vocab_size=500, max_position_embeddings=512, initializer_range=0.3)
llamas = {
    'llama3_tied_gqa1': (torch.bfloat16, dict(num_key_value_heads=1, tie_word_embeddings=True, rope_parameters=dict(
        rope_type='llama3', rope_theta=500000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
        original_max_position_embeddings=8))),
    'linear_bias_hd24': (torch.float16, dict(head_dim=24, attention_bias=True, mlp_bias=True, rope_parameters=dict(
        rope_type='linear', rope_theta=10000.0, factor=2.0))),
}
for i, (name, (dtype, extra)) in enumerate(llamas.items()):
    for seed in range(100 + 10 * i, 110 + 10 * i):
        torch.manual_seed(seed)
        LlamaForCausalLM(LlamaConfig(**{**base, **extra})).to(dtype).save_pretrained(fresh(f'{V}/{name}'))
        model = LlamaForCausalLM.from_pretrained(f'{V}/{name}', dtype=torch.float32).eval()
        runs = []
        for prompt in ['The koala is', '한국어 문장을 만들어 보자', 'Once upon a time, in a land far away']:
            ids = tok(prompt, return_tensors='pt').input_ids
            with torch.no_grad():
                out = model.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0,
                                     output_scores=True, return_dict_in_generate=True)
            runs.append(dict(prompt=prompt, input_ids=ids[0].tolist(),
                             new_ids=out.sequences[0, ids.shape[1]:].tolist(), min_gap=gap(out.scores)))
        if min(r['min_gap'] for r in runs) >= MIN_GAP:
            break
    expected[name] = dict(kind='LlamaForCausalLM', tokenizer='../llama', seed=seed, runs=runs)

image = Image.open(f'{GOLDEN}/llava/image.png').convert('RGB')
src_cfg = json.load(open(f'{GOLDEN}/llava/model/config.json'))
llavas = {
    'llava_full_last': (dict(vision_feature_layer=-1, vision_feature_select_strategy='full',
                             multimodal_projector_bias=False, image_seq_length=17),
                        dict(rope_parameters=dict(rope_type='linear', rope_theta=20000.0, factor=2.0)),
                        dict(num_additional_image_tokens=1, vision_feature_select_strategy='full')),
    'llava_layers': (dict(vision_feature_layer=[-3, -1], vision_feature_select_strategy='default', image_seq_length=16),
                     dict(num_key_value_heads=1), {}),
}
for i, (name, (top, text_extra, proc_kwargs)) in enumerate(llavas.items()):
    text = dict(src_cfg['text_config'])
    text.pop('rope_scaling', None)
    text.pop('rope_theta', None)
    text.update(text_extra, initializer_range=0.3)
    cfg = LlavaConfig(text_config=LlamaConfig(**text), vision_config=CLIPVisionConfig(**src_cfg['vision_config']),
                      image_token_index=src_cfg['image_token_index'], pad_token_id=src_cfg['pad_token_id'], **top)
    for seed in range(7 + 10 * i, 17 + 10 * i):
        torch.manual_seed(seed)
        LlavaForConditionalGeneration(cfg).to(torch.bfloat16).save_pretrained(fresh(f'{V}/{name}'))
        AutoProcessor.from_pretrained(f'{GOLDEN}/llava/model', **proc_kwargs).save_pretrained(f'{V}/{name}')
        model = LlavaForConditionalGeneration.from_pretrained(f'{V}/{name}', dtype=torch.float32).eval()
        processor = AutoProcessor.from_pretrained(f'{V}/{name}')
        runs = []
        for question in ['What shapes are in this image?', '이 그림에 무엇이 있나요?']:
            conv = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': question}]}]
            inputs = processor(images=image, text=processor.apply_chat_template(conv, add_generation_prompt=True),
                               return_tensors='pt')
            with torch.no_grad():
                out = model.generate(**inputs, max_new_tokens=10, do_sample=False, eos_token_id=None,
                                     output_scores=True, return_dict_in_generate=True)
            ids = inputs['input_ids'][0].tolist()
            runs.append(dict(question=question, input_ids=ids, new_ids=out.sequences[0, len(ids):].tolist(),
                             min_gap=gap(out.scores)))
        if min(r['min_gap'] for r in runs) >= MIN_GAP:
            break
    expected[name] = dict(kind='LlavaForConditionalGeneration', image='golden e2e llava image.png', seed=seed,
                          runs=runs)

# a Mistral with a sliding window of 6 positions, shorter than two of the prompts (the window changes the answer)
from transformers import MistralConfig, MistralForCausalLM
for seed in range(300, 320):
    torch.manual_seed(seed)
    folder = fresh(f'{V}/mistral_window')
    MistralForCausalLM(MistralConfig(hidden_size=64, intermediate_size=168, num_attention_heads=4, num_hidden_layers=2,
                                     num_key_value_heads=2, vocab_size=500, max_position_embeddings=512,
                                     initializer_range=0.3, sliding_window=6, rope_theta=1e6, head_dim=16)
                       ).save_pretrained(folder)
    model = MistralForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation='eager').eval()
    runs = []
    for prompt in ['The koala is', '코알라는 유칼립투스 잎을 먹어요. 그리고', 'Once upon a time, in a land far away']:
        enc = tok(prompt, return_tensors='pt')
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0,
                                 output_scores=True, return_dict_in_generate=True)
        runs.append(dict(prompt=prompt, input_ids=enc.input_ids[0].tolist(),
                         new_ids=out.sequences[0, enc.input_ids.shape[1]:].tolist(), min_gap=gap(out.scores)))
    unwindowed = MistralForCausalLM.from_pretrained(folder, dtype=torch.float32, sliding_window=None).eval()
    enc = tok(runs[2]['prompt'], return_tensors='pt')
    with torch.no_grad():
        plain = unwindowed.generate(**enc, max_new_tokens=12, do_sample=False, eos_token_id=None,
                                    pad_token_id=0)[0, enc.input_ids.shape[1]:].tolist()
    if min(r['min_gap'] for r in runs) >= MIN_GAP and plain != runs[2]['new_ids']:
        break
expected['mistral_window'] = dict(kind='MistralForCausalLM, sliding_window 6', tokenizer='../llama', seed=seed,
                                  runs=runs, last_without_window=plain)

# a LLaMA 3-style chat model: the byte-level BPE tokenizer of hf_tokenizer/byte_level/llama3 (PreTrainedTokenizerFast),
# a Llama 3.1-style chat template (its date fixed), llama3 rope, eos <|end_of_text|> and <|eot_id|>
from transformers import PreTrainedTokenizerFast
bl = os.path.join(HERE, '..', 'hf_tokenizer', 'byte_level', 'llama3')
chat_tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(bl, 'tokenizer.json'), bos_token='<|begin_of_text|>',
                                   eos_token='<|end_of_text|>', clean_up_tokenization_spaces=False)
chat_tok.chat_template = open(os.path.join(HERE, 'llama31_like.jinja')).read()
eot = chat_tok.convert_tokens_to_ids('<|eot_id|>')
for seed in range(200, 210):
    torch.manual_seed(seed)
    cfg = LlamaConfig(**{**base, 'vocab_size': len(chat_tok), 'bos_token_id': chat_tok.bos_token_id,
                         'eos_token_id': [chat_tok.eos_token_id, eot], 'tie_word_embeddings': True,
                         'rope_parameters': dict(rope_type='llama3', rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                                                 high_freq_factor=4.0, original_max_position_embeddings=16)})
    folder = fresh(f'{V}/llama3_chat')
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(folder)
    chat_tok.save_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tok3 = AutoTokenizer.from_pretrained(folder)
    runs = []
    for question in ['What do koalas eat?', '코알라는 무엇을 먹나요?']:
        conv = [{'role': 'system', 'content': 'Answer briefly.'}, {'role': 'user', 'content': question}]
        enc = tok3.apply_chat_template(conv, add_generation_prompt=True, return_tensors='pt', return_dict=True)
        ids = enc['input_ids']
        # the attention mask given: generate would otherwise take pad_token_id 0 (= <|begin_of_text|>) for padding
        with torch.no_grad():
            out = model.generate(ids, attention_mask=enc['attention_mask'], max_new_tokens=12, do_sample=False,
                                 eos_token_id=None, pad_token_id=0, output_scores=True, return_dict_in_generate=True)
        runs.append(dict(system='Answer briefly.', question=question, input_ids=ids[0].tolist(),
                         new_ids=out.sequences[0, ids.shape[1]:].tolist(), min_gap=gap(out.scores),
                         new_text=tok3.decode(out.sequences[0, ids.shape[1]:])))
    if min(r['min_gap'] for r in runs) >= MIN_GAP:
        break
expected['llama3_chat'] = dict(kind='LlamaForCausalLM + PreTrainedTokenizerFast (byte-level BPE)', seed=seed, runs=runs)

with open(f'{V}/expected.json', 'w') as f:
    json.dump(expected, f, indent=1, ensure_ascii=False)
