"""Golden data for the YaRN and LongRoPE rope types of koala4j's LLaMA port (RopeScalingGoldenTest).

Run from the repository root, once with each transformers version, torch 2.13 (CPU):
    python src/test/resources/golden/rope_scaling/make_rope_scaling.py     # transformers 4.57.6 -> v4/
    python src/test/resources/golden/rope_scaling/make_rope_scaling.py     # transformers 5.18   -> v5/

v4/ holds configs in the 4.x format (rope_theta + rope_scaling), v5/ the same cases in 5.x's rope_parameters; the
two versions read a few fields differently (see the README's LLaMA section), so each folder is the behaviour of the
version that writes that format. Per case: config.json as save_pretrained writes it, and in rope.json the
rope_init_fn's inv_freq and attention_scaling and LlamaRotaryEmbedding's cos/sin for two calls (positions below the
LongRoPE switch, and a call reaching past it). v4/ also has two tiny LLaMA models (weights in float16, expectations
from the folder reloaded in float32) with greedy ids for prompts that cross LongRoPE's switch while decoding.
"""
import json, math, os, shutil
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

V5 = int(transformers.__version__.split('.')[0]) >= 5
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'v5' if V5 else 'v4')
shutil.rmtree(OUT, ignore_errors=True)
os.makedirs(OUT)

short = [1.0, 1.05, 1.1, 1.3, 1.7, 2.2, 2.9, 3.5]
long_ = [1.2, 1.5, 2.0, 3.0, 4.5, 6.0, 8.0, 9.5]
# name: (top-level config fields, rope type and its fields, rope_theta)
CASES = {
    'yarn_default': (dict(max_position_embeddings=8192),
                     dict(rope_type='yarn', factor=4.0, original_max_position_embeddings=2048), 10000.0),
    'yarn_betas_no_truncate': (dict(max_position_embeddings=4096),
                               dict(rope_type='yarn', factor=8.0, beta_fast=16, beta_slow=2, truncate=False), 500000.0),
    'yarn_mscale_all_dim': (dict(max_position_embeddings=16384, head_dim=24),
                            dict(rope_type='yarn', factor=40.0, mscale=1.0, mscale_all_dim=0.707,
                                 original_max_position_embeddings=4096), 10000.0),
    'yarn_attention_factor': (dict(max_position_embeddings=4096),
                              dict(rope_type='yarn', factor=2.5, attention_factor=1.25, mscale=0.5), 10000.0),
    'longrope_top_level_original': (dict(max_position_embeddings=96, original_max_position_embeddings=24),
                                    dict(rope_type='longrope', short_factor=short, long_factor=long_), 10000.0),
    'longrope_factor': (dict(max_position_embeddings=40),
                        dict(rope_type='longrope', short_factor=short, long_factor=long_, factor=2.0), 10000.0),
    'longrope_attention_factor': (dict(max_position_embeddings=64, original_max_position_embeddings=16),
                                  dict(rope_type='longrope', short_factor=short, long_factor=long_,
                                       attention_factor=0.9), 10000.0),
    # read differently by the two versions: 4.57 takes original_max_position_embeddings only from the top level and
    # then replaces factor by max / original; 5.x also reads it from the rope fields and keeps an explicit factor
    'longrope_nested_original': (dict(max_position_embeddings=80),
                                 dict(rope_type='longrope', short_factor=short, long_factor=long_, factor=4.0,
                                      original_max_position_embeddings=20), 10000.0),
    'longrope_top_level_and_factor': (dict(max_position_embeddings=64, original_max_position_embeddings=16),
                                      dict(rope_type='longrope', short_factor=short, long_factor=long_, factor=2.0),
                                      10000.0),
}
BASE = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_hidden_layers=2, num_key_value_heads=2,
            vocab_size=256, initializer_range=0.3, bos_token_id=1, eos_token_id=2)


def config(top, rope, theta):
    fields = {**BASE, **top}
    if V5:
        fields['rope_parameters'] = dict(rope, rope_theta=theta)
    else:
        fields['rope_scaling'] = dict(rope)
        fields['rope_theta'] = theta
    return LlamaConfig(**fields)


def floats(t):
    return [float(v) for v in t.reshape(-1)]


rope_out = {}
for name, (top, rope, theta) in CASES.items():
    cfg = config(top, rope, theta)
    folder = os.path.join(OUT, name)
    os.makedirs(folder)
    cfg.save_pretrained(folder)
    cfg = LlamaConfig.from_pretrained(folder)
    inv, scaling = ROPE_INIT_FUNCTIONS[rope['rope_type']](cfg, None)
    emb = LlamaRotaryEmbedding(cfg)
    x = torch.zeros(1, 1, 1, dtype=torch.float32)
    calls = []
    switch = (top.get('original_max_position_embeddings') or rope.get('original_max_position_embeddings')
              or top['max_position_embeddings'])
    for positions in ([0, 1, 2, 7, 15], list(range(switch - 3, switch + 3))):
        cos, sin = emb(x, torch.tensor([positions]))
        calls.append(dict(positions=positions, cos=floats(cos), sin=floats(sin)))
    rope_out[name] = dict(inv_freq=floats(inv), attention_scaling=float(scaling), calls=calls)
json.dump(dict(transformers=transformers.__version__, torch=torch.__version__, cases=rope_out),
          open(os.path.join(OUT, 'rope.json'), 'w'), indent=1)

if not V5:
    MIN_GAP = 0.01
    models = {}
    for name, (top, rope, theta) in [('yarn_model', CASES['yarn_mscale_all_dim']),
                                     ('longrope_model', CASES['longrope_top_level_original'])]:
        folder = os.path.join(OUT, name)
        for seed in range(10, 40):
            torch.manual_seed(seed)
            shutil.rmtree(folder, ignore_errors=True)
            LlamaForCausalLM(config(top, rope, theta)).to(torch.float16).save_pretrained(folder)
            model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
            gen = torch.Generator().manual_seed(seed)
            runs = []
            # prompts of 12 and 30 tokens, 20 new: the first crosses position 24 while decoding, the second starts
            # past it
            for length in (12, 30):
                ids = torch.randint(3, 256, (1, length), generator=gen)
                with torch.no_grad():
                    out = model.generate(ids, max_new_tokens=20, do_sample=False, eos_token_id=None, pad_token_id=0,
                                         output_scores=True, return_dict_in_generate=True)
                gap = min(float(t[0] - t[1]) for t in (torch.topk(s[0], 2).values for s in out.scores))
                runs.append(dict(input_ids=ids[0].tolist(), new_ids=out.sequences[0, length:].tolist(),
                                 last_logits=floats(out.scores[-1][0]), min_gap=gap))
            if min(r['min_gap'] for r in runs) >= MIN_GAP:
                break
        models[name] = dict(seed=seed, runs=runs)
    json.dump(dict(transformers=transformers.__version__, torch=torch.__version__, models=models),
              open(os.path.join(OUT, 'expected.json'), 'w'), indent=1)
