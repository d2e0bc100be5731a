"""A tiny LLaVA-NeXT (LlavaNextForConditionalGeneration + LlavaNextProcessor, anyres) for koala4j's tests, made with
transformers 5.18.0 and torch 2.13 CPU (the PIL image-processing backend; torchvision not installed). The language
model, CLIP tower (32 px, patch 8: 16 positions per tile) and tokenizer are the golden e2e llava ones; grid
pinpoints [[32, 64], [64, 32], [64, 64], [96, 32]]. Four images (the golden llava and kollava pictures, the first
turned a quarter, the second squeezed to 20x70) cover 2x2 and 3x1 grids and the unpadding of rows and of columns.
expected.json: prompt ids (image tokens expanded by the processor) and greedy ids (eos_token_id None) of two
questions per image; a seed whose top-2 logit gaps are all >= 0.01 is kept. expected.safetensors: each image's
pixel_values [tiles, 3, 32, 32] and packed image features [N, C] (get_image_features' pooler_output).
Run: python make_llava_next.py OUT_FOLDER (needs ../../../shared/golden, i.e. the golden e2e folders)."""
import json, os, shutil, sys, torch
from PIL import Image
from transformers import (AutoProcessor, AutoTokenizer, CLIPVisionConfig, LlamaConfig, LlavaNextConfig,
                          LlavaNextForConditionalGeneration, LlavaNextProcessor)
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil
G = os.environ.get('GOLDEN_E2E', '/work/shared/golden/e2e')
OUT = sys.argv[1]
shutil.rmtree(OUT, ignore_errors=True); os.makedirs(OUT)
src = json.load(open(f'{G}/llava/model/config.json'))
text = dict(src['text_config']); text.pop('rope_scaling', None); text.pop('rope_theta', None); text['initializer_range'] = 0.3
pin = [[32, 64], [64, 32], [64, 64], [96, 32]]
cfg = LlavaNextConfig(text_config=LlamaConfig(**text), vision_config=CLIPVisionConfig(**src['vision_config']),
                      image_token_index=src['image_token_index'], pad_token_id=src['pad_token_id'],
                      image_grid_pinpoints=pin, vision_feature_layer=-2, vision_feature_select_strategy='default')
ip = LlavaNextImageProcessorPil(size={'shortest_edge': 32}, crop_size={'height': 32, 'width': 32}, image_grid_pinpoints=pin)
tok = AutoTokenizer.from_pretrained(f'{G}/llava/model')
old = AutoProcessor.from_pretrained(f'{G}/llava/model')
proc = LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=8, vision_feature_select_strategy='default', num_additional_image_tokens=1,
                          chat_template=old.chat_template, image_token='<image>')
MIN_GAP = 0.01
images = {'llava.png': Image.open(f'{G}/llava/image.png').convert('RGB'),
          'kollava.png': Image.open(f'{G}/kollava_v0/image.png').convert('RGB')}
images['wide.png'] = images['llava.png'].transpose(Image.Transpose.ROTATE_90)
images['tall.png'] = images['kollava.png'].resize((20, 70), Image.Resampling.BICUBIC)
for name, im in images.items():
    im.save(os.path.join(OUT, name))
def gap(scores):
    return min(float(torch.topk(s[0], 2).values[0] - torch.topk(s[0], 2).values[1]) for s in scores)
for seed in range(30, 40):
    torch.manual_seed(seed)
    folder = os.path.join(OUT, 'model')
    shutil.rmtree(folder, ignore_errors=True)
    LlavaNextForConditionalGeneration(cfg).save_pretrained(folder)
    proc.save_pretrained(folder)
    model = LlavaNextForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    p = AutoProcessor.from_pretrained(folder)
    runs = []
    for img_name in images:
        for q in ['What shapes are in this image?', '이 그림을 설명해 주세요.']:
            conv = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': q}]}]
            inputs = p(images=images[img_name], text=p.apply_chat_template(conv, add_generation_prompt=True), return_tensors='pt')
            with torch.no_grad():
                out = model.generate(**inputs, max_new_tokens=8, do_sample=False, eos_token_id=None,
                                     output_scores=True, return_dict_in_generate=True)
            ids = inputs['input_ids'][0].tolist()
            runs.append(dict(image=img_name, question=q, input_ids=ids, image_tokens=ids.count(cfg.image_token_index),
                             image_size=list(inputs['image_sizes'][0].tolist()), pixel_shape=list(inputs['pixel_values'].shape),
                             new_ids=out.sequences[0, len(ids):].tolist(), min_gap=gap(out.scores)))
    if min(r['min_gap'] for r in runs) >= MIN_GAP:
        break
# processor reference: pixel values of each image
from safetensors.torch import save_file
tensors = {}
for img_name, im in images.items():
    pv = p.image_processor(im, return_tensors='pt')
    tensors[img_name] = pv['pixel_values'][0].contiguous()
    # the model's packed image features for the image
    with torch.no_grad():
        feats = model.model.get_image_features(pixel_values=pv['pixel_values'], image_sizes=pv['image_sizes'],
                                               vision_feature_layer=-2, vision_feature_select_strategy='default').pooler_output
    tensors[img_name + '.features'] = feats[0].contiguous()
save_file(tensors, os.path.join(OUT, 'expected.safetensors'))
json.dump(dict(seed=seed, pinpoints=pin, runs=runs), open(os.path.join(OUT, 'expected.json'), 'w'), indent=1, ensure_ascii=False)
print(seed, [(r['image'], r['image_tokens'], r['pixel_shape'], r['image_size'], round(r['min_gap'], 4)) for r in runs])
print(sorted(os.listdir(folder)))
