#!/usr/bin/env bash
# scripts/ci/run-campaign.sh as CI runs it (docs/ci.md): a passing campaign publishes every file
# (exit 0, both JUnit files valid against tests/data/junit.xsd, the summary appended to
# $GITHUB_STEP_SUMMARY); a campaign with a failing task exits 1 and names the failure in junit.xml
# and summary.md; the GitHub Actions and GitLab CI examples parse and call the script and publish
# the JUnit files; the Jenkinsfile does too.
source "$(dirname "$0")/lib.bash"
CI="$IPFSA_SOURCE_DIR/scripts/ci"
XSD="$IPFSA_SOURCE_DIR/tests/data/junit.xsd"
command -v xmllint > /dev/null || { echo "SKIP: xmllint (libxml2-utils) is not installed"; exit 77; }

cat > pass.yaml <<'YAML'
name: ci-e2e
defaults: {repeats: 3, warmup: 0, timeout_s: 30, retries: 0}
tasks:
  - kind: selftest.sleep
    name: nap
    params: {ms: 5}
    count: 4
  - kind: selftest.ok
    count: 2
YAML
cat > fail.yaml <<'YAML'
name: ci-e2e-fail
defaults: {repeats: 1, warmup: 0, timeout_s: 30, retries: 0}
tasks:
  - kind: selftest.ok
    count: 2
  - kind: selftest.fail
    count: 1
YAML

export IPFSA_BIN IPFSA_STORE=$WORK/trends.h5 IPFSA_RANKS=3
run_ci() {  # OUT CAMPAIGN -> exit code of the script
  set +e
  IPFSA_CI_OUT=$1 "$CI/run-campaign.sh" "$2" > "$1.log" 2> "$1.err"
  local rc=$?
  set -e
  echo "$rc"
}

# 1. Passing campaign, twice (the second run has a history to be judged against).
touch step-summary.md
export GITHUB_STEP_SUMMARY=$WORK/step-summary.md
rc=$(run_ci out1 pass.yaml)
expect_eq "$rc" 0 "first passing run (stderr: $(tail -5 out1.err))"
rc=$(run_ci out2 pass.yaml)
expect_eq "$rc" 0 "second passing run (stderr: $(tail -5 out2.err))"
for f in junit.xml trends-junit.xml summary.md report.html summary.json results.csv trends.json; do
  [ -s "out2/$f" ] || fail "out2/$f missing or empty"
done
xmllint --noout --schema "$XSD" out2/junit.xml out2/trends-junit.xml 2> xmllint.err ||
  fail "JUnit files do not validate: $(cat xmllint.err)"
tests=$("$PY" -c 'import xml.etree.ElementTree as E,sys; r=E.parse(sys.argv[1]).getroot(); print(sum(1 for _ in r.iter("testcase")))' out2/junit.xml)
expect_eq "$tests" 6 "testcases in junit.xml (one per task)"
grep -q "ci-e2e" "$GITHUB_STEP_SUMMARY" || fail "the summary was not appended to GITHUB_STEP_SUMMARY"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "series" in d' out2/trends.json ||
  fail "trends.json is not the trends JSON"
echo "passing campaign: exit 0, 7 files published, JUnit valid, step summary appended"

# 2. A failing task: exit 1, the failure in junit.xml and summary.md.
rc=$(run_ci out3 fail.yaml)
expect_eq "$rc" 1 "run with a failing task (stderr: $(tail -5 out3.err))"
xmllint --noout --schema "$XSD" out3/junit.xml 2> xmllint.err || fail "junit.xml invalid: $(cat xmllint.err)"
failures=$("$PY" -c 'import xml.etree.ElementTree as E,sys; r=E.parse(sys.argv[1]).getroot(); print(sum(1 for _ in r.iter("failure")))' out3/junit.xml)
expect_eq "$failures" 1 "failures in junit.xml"
grep -qi "fail" out3/summary.md || fail "summary.md does not mention the failure"
echo "failing task: exit 1, one <failure> in junit.xml"

# 3. The CI examples call the script and publish the JUnit files.
"$PY" - "$CI" <<'PY'
import sys, yaml
ci = sys.argv[1]
gh = yaml.safe_load(open(ci + "/github-actions.yml"))
steps = gh["jobs"]["campaign"]["steps"]
assert any("scripts/ci/run-campaign.sh" in s.get("run", "") for s in steps), "GitHub: no run-campaign.sh step"
assert any("junit.xml" in str(s.get("with", {})) for s in steps), "GitHub: JUnit not published"
assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in steps), "GitHub: report not attached"
gl = yaml.safe_load(open(ci + "/gitlab-ci.yml"))
job = gl["nightly-campaign"]
assert any("scripts/ci/run-campaign.sh" in line for line in job["script"]), "GitLab: no run-campaign.sh"
assert "ci-out/junit.xml" in job["artifacts"]["reports"]["junit"], "GitLab: JUnit not reported"
print("CI examples: GitHub Actions and GitLab CI parse, call the script, publish JUnit")
PY
grep -q "scripts/ci/run-campaign.sh" "$CI/Jenkinsfile" && grep -q "junit testResults: 'ci-out/junit.xml" "$CI/Jenkinsfile" ||
  fail "Jenkinsfile does not call the script or publish JUnit"
echo "PASS"
