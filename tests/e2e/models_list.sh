#!/usr/bin/env bash
# `models list` and `models precisions` (issue 3 items 5 and 6), and catalog names in campaigns:
# at least 30 HuggingFace classes over all 7 families via --json; --tier and --family filter;
# bad values exit 2 naming the allowed ones; a campaign naming a model or a precision the catalog
# does not know fails `validate` with exit 2 and FILE:LINE:COLUMN. Runs from a scratch directory,
# so the catalog must come from the binary, not from configs/.
source "$(dirname "$0")/lib.bash"

"$IPFSA_BIN" models list --json > all.json
"$PY" - <<'PY'
import json
models = json.load(open("all.json"))
classes = {m["hf_class"] for m in models}
families = {m["family"] for m in models}
assert len(models) >= 30, len(models)
assert len(classes) >= 30, len(classes)
assert families == {"encoder", "decoder", "encoder_decoder", "vision", "audio", "dual_encoder", "moe"}, families
by_name = {m["name"]: m for m in models}
assert by_name["llama"]["hf_class"] == "LlamaForCausalLM" and by_name["llama"]["tier"] == "critical"
assert abs(by_name["llama"]["real_parameters"] / 6.738e9 - 1) < 0.02, by_name["llama"]["real_parameters"]
for m in models:
    assert m["tiny_parameters"] < m["real_parameters"], m["name"]
    assert m["checkpoint"] and m["file"].startswith("configs/models/"), m["name"]
print(f"models list: {len(models)} models, {len(classes)} classes, {len(families)} families")
PY

"$IPFSA_BIN" models list --tier critical --json > critical.json
"$IPFSA_BIN" models list --family moe --json > moe.json
"$IPFSA_BIN" models list --tier critical --family decoder --json > both.json
"$PY" - <<'PY'
import json
crit, moe, both = (json.load(open(f)) for f in ("critical.json", "moe.json", "both.json"))
assert crit and all(m["tier"] == "critical" for m in crit), crit
assert {"llama", "bert", "gpt2"} <= {m["name"] for m in crit}
assert moe and all(m["family"] == "moe" for m in moe) and "mixtral" in {m["name"] for m in moe}
assert both and all(m["tier"] == "critical" and m["family"] == "decoder" for m in both)
PY
"$IPFSA_BIN" models list --family vision > vision.txt
grep -q "ViTForImageClassification" vision.txt || fail "table: $(cat vision.txt)"
grep -q "LlamaForCausalLM" vision.txt && fail "--family vision lists llama"

set +e
"$IPFSA_BIN" models list --tier low 2> err.txt; rc=$?
set -e
expect_eq "$rc" 2 "exit code for --tier low"
grep -q "unknown tier 'low'; allowed: critical, high, medium" err.txt || fail "message: $(cat err.txt)"
set +e
"$IPFSA_BIN" models list --family cnn 2> err.txt; rc=$?
set -e
expect_eq "$rc" 2 "exit code for --family cnn"
grep -q "unknown family 'cnn'; allowed: encoder, decoder, encoder_decoder, vision, audio, dual_encoder, moe" err.txt ||
  fail "message: $(cat err.txt)"

"$IPFSA_BIN" models precisions > precisions.txt
for p in fp32 int8 int4 int3 int2 mixed-a4f2 mixed-a8f4 int4-kv2 int2-g32; do
  grep -q "^$p	" precisions.txt || fail "precision $p missing: $(cat precisions.txt)"
done
"$IPFSA_BIN" models precisions --json > precisions.json
"$PY" -c 'import json; p = {x["name"]: x for x in json.load(open("precisions.json"))}; assert p["int4-kv2"]["kv_bits"] == 2 and p["mixed-a4f2"]["ffn_bits"] == 2, p'

# Campaigns: catalog names only.
cat > bad_model.yaml <<'YAML'
name: bad-model
tasks:
  - {kind: gemm.eigen, model: gpt5}
YAML
set +e
"$IPFSA_BIN" validate bad_model.yaml 2> err.txt; rc=$?
set -e
expect_eq "$rc" 2 "validate exit code for an unknown model"
grep -q "^ipfs-accelerate: bad_model.yaml:3:31: unknown model 'gpt5'" err.txt || fail "message: $(cat err.txt)"
grep -q "llama" err.txt || fail "the message should list the catalog: $(cat err.txt)"

cat > bad_precision.yaml <<'YAML'
name: bad-precision
tasks:
  - {model: llama, precision: int5}
YAML
set +e
"$IPFSA_BIN" validate bad_precision.yaml 2> err.txt; rc=$?
set -e
expect_eq "$rc" 2 "validate exit code for an unknown precision"
grep -q "^ipfs-accelerate: bad_precision.yaml:3:31: unknown precision 'int5' for a model task; known precisions: fp32" err.txt ||
  fail "message: $(cat err.txt)"

cat > good.yaml <<'YAML'
name: good
matrix:
  - {model: [llama, bert, clip], precision: [fp32, int4, mixed-a4f2]}
YAML
"$IPFSA_BIN" validate good.yaml > ok.txt || fail "validate good.yaml: $(cat ok.txt)"
grep -q "9 tasks" ok.txt || fail "good.yaml: $(cat ok.txt)"

# docs/models.md's coverage table is the catalog's, as `models list --markdown` generates it.
"$IPFSA_BIN" models list --markdown > coverage.md
[ "$(wc -l < coverage.md)" -ge 32 ] || fail "coverage table too short"
grep -qxF -f coverage.md "$IPFSA_SOURCE_DIR/docs/models.md" || fail "docs/models.md lacks the table"
missing=$(grep -vxF -f "$IPFSA_SOURCE_DIR/docs/models.md" coverage.md || true)
[ -z "$missing" ] || fail "docs/models.md is out of date (regenerate with models list --markdown): $missing"
echo "PASS"
