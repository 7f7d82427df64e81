#!/usr/bin/env bash
# Checkpoint folders (HuggingFace config.json + safetensors) through `models run --dir`: a tiny
# LLaMA written here by Python (numpy + the safetensors format by hand, an independent writer)
# loads and runs at fp32 and int4; malformed config.json and safetensors files and unknown model
# names exit 2 with a message naming the file, key or name (issue 3 acceptance).
source "$(dirname "$0")/lib.bash"
"$PY" - <<'PY'
import json, os, struct
import numpy as np

def write_safetensors(path, tensors, header_override=None, truncate=None):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if header_override:
        header.update(header_override)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    data = struct.pack("<Q", len(h)) + h + b"".join(blobs)
    if truncate is not None:
        data = data[:truncate]
    with open(path, "wb") as f:
        f.write(data)

cfg = {"model_type": "llama", "vocab_size": 256, "hidden_size": 64, "intermediate_size": 128,
       "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
       "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "tie_word_embeddings": False}
rng = np.random.default_rng(7)
H, F, V, KV = 64, 128, 256, 32
t = {"model.embed_tokens.weight": rng.normal(0, 0.02, (V, H)), "model.norm.weight": np.ones(H),
     "lm_head.weight": rng.normal(0, 0.02, (V, H))}
for l in range(2):
    p = f"model.layers.{l}."
    t[p + "input_layernorm.weight"] = np.ones(H)
    t[p + "post_attention_layernorm.weight"] = np.ones(H)
    for n, shape in (("q_proj", (H, H)), ("k_proj", (KV, H)), ("v_proj", (KV, H)), ("o_proj", (H, H))):
        t[p + "self_attn." + n + ".weight"] = rng.normal(0, 0.02, shape)
    for n, shape in (("gate_proj", (F, H)), ("up_proj", (F, H)), ("down_proj", (H, F))):
        t[p + "mlp." + n + ".weight"] = rng.normal(0, 0.02, shape)

def folder(name, config=cfg, config_text=None, **st):
    os.makedirs(name)
    with open(os.path.join(name, "config.json"), "w") as f:
        f.write(config_text if config_text is not None else json.dumps(config))
    write_safetensors(os.path.join(name, "model.safetensors"), t, **st)

folder("good")
folder("bad_json", config_text='{"model_type": "llama", "vocab_size": 256,')
folder("bad_type", config=dict(cfg, model_type="gpt5"))
folder("missing_key", config={k: v for k, v in cfg.items() if k != "hidden_size"})
folder("wrong_type", config=dict(cfg, num_attention_heads="four"))
folder("truncated", truncate=4)
folder("header_past_end", truncate=200)
folder("bad_offsets", header_override={"lm_head.weight": {"dtype": "F32", "shape": [V, H], "data_offsets": [0, 10**12]}})
folder("bad_dtype", header_override={"model.norm.weight": {"dtype": "I8", "shape": [H], "data_offsets": [0, 64]}})
folder("missing_tensor")
PY
# A tensor the model needs is absent: rewrite missing_tensor without layer 1's down projection.
"$PY" - <<'PY'
import json, struct
p = "missing_tensor/model.safetensors"
raw = open(p, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
del h["model.layers.1.mlp.down_proj.weight"]
hb = json.dumps(h).encode()
hb += b" " * (-len(hb) % 8)
open(p, "wb").write(struct.pack("<Q", len(hb)) + hb + raw[8 + n:])
PY

for precision in fp32 int4; do
  "$IPFSA_BIN" models run --dir good --precision "$precision" --seq-len 8 --batch 2 --json > "good_$precision.json" ||
    fail "models run --dir good --precision $precision: exit $?"
done
"$PY" - <<'PY' || fail "outputs of the good checkpoint"
import json
a, b = (json.load(open(f"good_{p}.json")) for p in ("fp32", "int4"))
assert a["status"] == "passed" and b["status"] == "passed", (a, b)
assert a["acc_cosine"] == 1.0 and 0.9 < b["acc_cosine"] < 1.0, (a["acc_cosine"], b["acc_cosine"])
assert a["parameters"] == 2 * 256 * 64 + 64 + 2 * (2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 128), a["parameters"]
assert b["quantized_matrices"] > 0 and b["weight_bytes"] < a["weight_bytes"]
print("good checkpoint: fp32 cosine", a["acc_cosine"], "int4 cosine", round(b["acc_cosine"], 5))
PY

expect_input_error() {  # DIR MESSAGE...
  local dir=$1; shift
  set +e
  "$IPFSA_BIN" models run --dir "$dir" > out.txt 2> err.txt
  local rc=$?
  set -e
  expect_eq "$rc" 2 "exit code for $dir ($(cat err.txt))"
  for m in "$@"; do grep -qF -- "$m" err.txt || fail "$dir: message lacks '$m': $(cat err.txt)"; done
  echo "$dir: $(cat err.txt)"
}
expect_input_error nowhere "nowhere/config.json"
expect_input_error bad_json "bad_json/config.json"
expect_input_error bad_type "bad_type/config.json" "model_type 'gpt5'"
expect_input_error missing_key "missing_key/config.json" "hidden_size"
expect_input_error wrong_type "wrong_type/config.json" "num_attention_heads"
expect_input_error truncated "truncated/model.safetensors"
expect_input_error header_past_end "header_past_end/model.safetensors"
expect_input_error bad_offsets "bad_offsets/model.safetensors" "lm_head.weight"
expect_input_error bad_dtype "bad_dtype/model.safetensors" "I8"
expect_input_error missing_tensor "missing_tensor" "decoder.layers.1.mlp.down.weight" "is missing"

# Unknown names: a model, a precision.
set +e
"$IPFSA_BIN" models run gpt5 > /dev/null 2> err.txt; rc=$?
set -e
expect_eq "$rc" 2 "exit code for an unknown model"
grep -q "unknown model 'gpt5'" err.txt || fail "unknown model message: $(cat err.txt)"
set +e
"$IPFSA_BIN" models run llama --precision int5 > /dev/null 2> err.txt; rc=$?
set -e
expect_eq "$rc" 2 "exit code for an unknown precision"
grep -q "unknown precision 'int5'" err.txt || fail "unknown precision message: $(cat err.txt)"
echo "PASS"
