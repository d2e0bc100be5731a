# Mean-pooled final hidden states (transformers' hidden_states[-1], after the final RMSNorm) of the e2e tiny LLaMA for
# the prompts of golden/e2e/llama/expected.json, scaled to length 1: what llama.cpp's /v1/embeddings gives with
# --pooling mean (it normalises OpenAI-style). Run from src/test/resources/golden/embeddings with torch + transformers.
import json, torch, transformers
from transformers import LlamaForCausalLM

model = LlamaForCausalLM.from_pretrained("../e2e/llama/model", torch_dtype=torch.float32).eval()
runs = json.load(open("../e2e/llama/expected.json"))["runs"]
out = []
with torch.no_grad():
    for run in runs:
        ids = run["expected"]["input_ids"]
        h = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0]   # [N, C]
        v = h.mean(0)
        v = v / v.norm()
        out.append({"prompt": run["prompt"], "input_ids": ids, "embedding": [float(x) for x in v]})
json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "runs": out},
          open("llama.json", "w"), indent=1)
print(len(out), "prompts")
