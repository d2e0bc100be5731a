"""Writes the torch.save fixtures of koala4j.io.torchbin's tests (documentation: the tests never run this).

Made with torch 2.13.0+cpu (python 3.11): `python3 make.py` in this folder rewrites every file below.

- mixed.bin: torch.save(state_dict) of an OrderedDict carrying `_metadata`, as `torch.save(module.state_dict())`
  writes it, holding every case the reader handles: F32/F16/BF16/I64/I32 tensors; views of one storage (a row, a
  transpose, a strided slice: three tensors on the storage of "f32"); tied weights (two names, one tensor); a
  0-dim scalar; an empty tensor; an nn.Parameter (pickled through _rebuild_parameter); an expanded view (stride 0);
  float64/int16/int8/uint8/bool tensors (converted on read) and a complex64 one (listed, refused on read).
  Values are small multiples of 1/4 so every dtype holds them exactly; the Java test recomputes them.
- proto4.bin: torch.save(..., pickle_protocol=4): FRAME, STACK_GLOBAL, MEMOIZE, SHORT_BINUNICODE.
- legacy.bin: torch.save(..., _use_new_zipfile_serialization=False): the pre-1.6 format, which is refused.
- t5_byt5_tiny_bin/: ../t5_byt5_tiny/model (shared/golden/t5_byt5_tiny) with its weights as transformers 4.57's
  save_pretrained(safe_serialization=False) writes them: pytorch_model.bin holding a plain dict of the model's
  state_dict() in module order, with encoder/decoder.embed_tokens.weight tied to shared.weight (one storage).
- t5_byt5_tiny_bin_sharded/: the same state dict split as save_pretrained(max_shard_size="100KB") splits it
  (huggingface_hub.split_torch_state_dict_into_shards: fill shards in order, tensors sharing a storage go with
  the first of them), pytorch_model-0000i-of-0000n.bin + pytorch_model.bin.index.json.
"""
import collections
import json
import os
import shutil

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
T5 = os.path.join(HERE, "..", "t5_byt5_tiny", "model")


def values(n):
    return torch.arange(n, dtype=torch.float32) * 0.25 - 1.0


def mixed():
    sd = collections.OrderedDict()
    f32 = values(12).reshape(3, 4)
    sd["f32"] = f32
    sd["f16"] = values(12).reshape(3, 4).half()
    sd["bf16"] = values(12).reshape(3, 4).bfloat16()
    sd["i64"] = torch.arange(-3, 3, dtype=torch.int64)
    sd["i32"] = torch.arange(5, dtype=torch.int32) * 7
    sd["f32.row1"] = f32[1]              # offset 4 into f32's storage, contiguous
    sd["f32.t"] = f32.t()                # size (4, 3), stride (1, 4)
    sd["f32.even_cols"] = f32[:, ::2]    # size (3, 2), stride (4, 2)
    tied = values(6).reshape(2, 3) + 100
    sd["tied.a"] = tied
    sd["tied.b"] = tied
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.full((2, 2), 1.5))
    sd["expanded"] = values(3).expand(4, 3)  # stride (0, 1)
    sd["f64"] = torch.arange(4, dtype=torch.float64) / 3
    sd["i16"] = torch.tensor([-32768, 5, 32767], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, -1, 0, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 1, 200, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["complex"] = torch.tensor([1 + 2j], dtype=torch.complex64)
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("tied", {"version": 1})])
    torch.save(sd, os.path.join(HERE, "mixed.bin"))


def read_safetensors(path):
    """safetensors' layout by hand (u64 header length, JSON header, data), F32 only: the golden is float32."""
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info
        begin, end = info["data_offsets"]
        data = bytearray(blob[8 + n + begin:8 + n + end])
        out[name] = torch.frombuffer(data, dtype=torch.float32).reshape(info["shape"]).clone()
    return out


def t5_state_dict():
    """T5ForConditionalGeneration.state_dict() order: shared, encoder (embed_tokens tied), decoder (tied), lm_head."""
    stored = read_safetensors(os.path.join(T5, "model.safetensors"))
    sd = {"shared.weight": stored["shared.weight"], "encoder.embed_tokens.weight": stored["shared.weight"]}
    for k in [k for k in stored if k.startswith("encoder.")]:
        sd[k] = stored[k]
    sd["decoder.embed_tokens.weight"] = stored["shared.weight"]
    for k in [k for k in stored if k.startswith("decoder.")]:
        sd[k] = stored[k]
    sd["lm_head.weight"] = stored["lm_head.weight"]
    assert set(sd) - set(stored) == {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}
    return sd


def copy_configs(folder):
    os.makedirs(folder, exist_ok=True)
    for name in ("config.json", "generation_config.json"):
        shutil.copy(os.path.join(T5, name), os.path.join(folder, name))


def t5_single():
    folder = os.path.join(HERE, "t5_byt5_tiny_bin")
    copy_configs(folder)
    torch.save(t5_state_dict(), os.path.join(folder, "pytorch_model.bin"))


def t5_sharded(max_shard_size=100_000):
    folder = os.path.join(HERE, "t5_byt5_tiny_bin_sharded")
    copy_configs(folder)
    sd = t5_state_dict()
    shards, current, size, total = [], None, 0, 0
    by_storage = collections.OrderedDict()
    for key, tensor in sd.items():
        sid = tensor.untyped_storage().data_ptr()
        if sid in by_storage:
            by_storage[sid].append(key)
            continue
        by_storage[sid] = [key]
        nbytes = tensor.untyped_storage().nbytes()
        if current is None or size + nbytes > max_shard_size:
            current, size = {}, 0
            shards.append(current)
        current[key] = tensor
        size += nbytes
        total += nbytes
    for keys in by_storage.values():
        for shard in shards:
            if keys[0] in shard:
                for key in keys:
                    shard[key] = sd[key]
                break
    weight_map = {}
    for i, shard in enumerate(shards):
        name = "pytorch_model-%05d-of-%05d.bin" % (i + 1, len(shards))
        torch.save({k: t.contiguous() for k, t in shard.items()}, os.path.join(folder, name))
        for key in shard:
            weight_map[key] = name
    parameters = sum(t.numel() for k, t in sd.items() if not k.endswith("embed_tokens.weight"))
    index = {"metadata": {"total_parameters": parameters, "total_size": total},
             "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(folder, "pytorch_model.bin.index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")


def others():
    small = {"w": values(6).reshape(2, 3), "b": torch.arange(3, dtype=torch.int64)}
    torch.save(small, os.path.join(HERE, "proto4.bin"), pickle_protocol=4)
    torch.save(small, os.path.join(HERE, "legacy.bin"), _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    torch.manual_seed(0)
    mixed()
    t5_single()
    t5_sharded()
    others()
