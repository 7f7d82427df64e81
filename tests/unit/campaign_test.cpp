// Campaign files (M1): expansion (src/core/campaign_expand) and the YAML loader (src/config).
// Postconditions checked for every campaign that loads:
//   1. tasks[i].index == i;
//   2. ids are unique;
//   3. a task's id depends only on its own entry, not on the other tasks or their order.
// Every malformed file under tests/data/campaigns/bad_*.yaml is rejected with an input error
// "FILE:LINE:COLUMN: message" pointing at the mistake.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/campaign_loader.hpp"
#include "config/default_campaign.hpp"
#include "core/campaign_expand.hpp"
#include "engine/model/catalog.hpp"
#include "engine/model/precision.hpp"

namespace ipfsa {
namespace {

using config::LoadContext;
using core::Campaign;
using core::Priority;
using core::TaskSpec;

const std::string kDataDir = std::string(IPFSA_TEST_DATA_DIR) + "/campaigns";
// configs/ sits two levels above tests/data.
const std::string kConfigsDir = std::string(IPFSA_TEST_DATA_DIR) + "/../../configs";

LoadContext test_context() {
  LoadContext ctx{{"selftest.ok", "selftest.fail", "selftest.segfault", "selftest.abort", "selftest.hang",
                   "selftest.oom", "selftest.sleep", "gemm.eigen", "model"},
                  {}};
  ctx.known_models = engine::model_names();  // the shipped campaigns name catalog models
  ctx.known_precisions = engine::precision_names();
  return ctx;
}

Result<Campaign> load_text(std::string_view yaml, const LoadContext& ctx = test_context()) {
  return config::load_campaign_text(yaml, "t.yaml", "", ctx);
}

Result<Campaign> load_data(const std::string& name) {
  return config::load_campaign_file(kDataDir + "/" + name, test_context());
}

std::vector<std::string> ids(const Campaign& c) {
  std::vector<std::string> out;
  for (const TaskSpec& t : c.tasks) out.push_back(t.id);
  return out;
}

// Postconditions 1 and 2.
void expect_well_formed(const Campaign& c) {
  std::set<std::string> seen;
  for (std::size_t i = 0; i < c.tasks.size(); ++i) {
    EXPECT_EQ(c.tasks[i].index, i);
    EXPECT_TRUE(seen.insert(c.tasks[i].id).second) << "duplicate id " << c.tasks[i].id;
    EXPECT_FALSE(c.tasks[i].model.empty());
    EXPECT_TRUE(std::is_sorted(c.tasks[i].params.begin(), c.tasks[i].params.end()));
  }
}

const TaskSpec* find_task(const Campaign& c, const std::string& id) {
  for (const TaskSpec& t : c.tasks)
    if (t.id == id) return &t;
  return nullptr;
}

// The error is an input error at exactly FILE:LINE:COLUMN and mentions every one of `words`.
void expect_error_at(const Result<Campaign>& r, const std::string& file, int line, int column,
                     const std::vector<std::string>& words) {
  ASSERT_FALSE(r.ok()) << "expected an error at " << file << ":" << line;
  EXPECT_EQ(r.error().code, ErrorCode::kInput);
  const std::string& m = r.error().message;
  const std::string prefix = file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  EXPECT_EQ(m.rfind(prefix, 0), 0u) << "message: " << m << "\nexpected prefix: " << prefix;
  for (const std::string& w : words) EXPECT_NE(m.find(w), std::string::npos) << "'" << w << "' not in: " << m;
}

void expect_data_error(const std::string& name, int line, int column, const std::vector<std::string>& words) {
  expect_error_at(load_data(name), kDataDir + "/" + name, line, column, words);
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// Expansion

TEST(CampaignExpand, MatrixIsCrossProductInAxisOrderLastAxisFastest) {
  auto r = load_text(R"(
name: order
matrix:
  - kind: gemm.eigen
    scenario: [latency, throughput]
    batch: [1, 8]
    hardware: [cpu, cuda]
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_well_formed(*r);
  // Written order of the keys does not matter: hardware, then batch, then scenario fastest.
  EXPECT_EQ(ids(*r), (std::vector<std::string>{
                         "gemm.eigen/cpu/fp32/b1/s0/latency",
                         "gemm.eigen/cpu/fp32/b1/s0/throughput",
                         "gemm.eigen/cpu/fp32/b8/s0/latency",
                         "gemm.eigen/cpu/fp32/b8/s0/throughput",
                         "gemm.eigen/cuda/fp32/b1/s0/latency",
                         "gemm.eigen/cuda/fp32/b1/s0/throughput",
                         "gemm.eigen/cuda/fp32/b8/s0/latency",
                         "gemm.eigen/cuda/fp32/b8/s0/throughput",
                     }));
  EXPECT_EQ(r->tasks[5].hardware, "cuda");
  EXPECT_EQ(r->tasks[5].batch, 1u);
  EXPECT_EQ(r->tasks[5].scenario, "throughput");
  EXPECT_TRUE(r->tasks[5].needs_cuda());
}

TEST(CampaignExpand, ExplicitTasksComeFirstThenMatrixBlocksInFileOrder) {
  auto r = load_text(R"(
name: order
matrix:
  - kind: selftest.sleep
    precision: [fp32, int8]
  - kind: selftest.ok
tasks:
  - kind: selftest.fail
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ids(*r), (std::vector<std::string>{
                         "selftest.fail/cpu/fp32/b1/s0/latency",
                         "selftest.sleep/cpu/fp32/b1/s0/latency",
                         "selftest.sleep/cpu/int8/b1/s0/latency",
                         "selftest.ok/cpu/fp32/b1/s0/latency",
                     }));
}

TEST(CampaignExpand, ExcludeRemovesPartialMatchesAndIncludeAddsFullCombos) {
  auto r = load_data("good_matrix.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_well_formed(*r);
  // 2 hardware x 2 batch x 2 scenario = 8; {cuda, b8} removes 2; one include adds 1.
  ASSERT_EQ(r->tasks.size(), 7u);
  for (const TaskSpec& t : r->tasks) EXPECT_FALSE(t.hardware == "cuda" && t.batch == 8) << t.id;
  // The included combination takes the first value of every axis it does not name.
  const TaskSpec& added = r->tasks.back();
  EXPECT_EQ(added.id, "gemm.eigen[k=256,m=256,n=256]/cpu/fp32/b32/s128/latency");
  EXPECT_EQ(added.batch, 32u);
  EXPECT_EQ(added.seq_len, 128u);
  EXPECT_EQ(added.scenario, "latency");
  EXPECT_EQ(added.priority, Priority::kHigh);
  EXPECT_EQ(added.param("m"), "256");
}

TEST(CampaignExpand, IncludeMayRestoreAnExcludedComboAndAddParams) {
  auto r = load_text(R"(
name: inc
matrix:
  - kind: gemm.eigen
    hardware: [cpu, cuda]
    params: {m: [64, 128]}
    exclude: [{hardware: cuda}]
    include:
      - {hardware: cuda, params: {m: 128}}
      - {params: {m: 64, k: 32}}
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ids(*r), (std::vector<std::string>{
                         "gemm.eigen[m=64]/cpu/fp32/b1/s0/latency",
                         "gemm.eigen[m=128]/cpu/fp32/b1/s0/latency",
                         "gemm.eigen[m=128]/cuda/fp32/b1/s0/latency",
                         "gemm.eigen[k=32,m=64]/cpu/fp32/b1/s0/latency",
                     }));
  EXPECT_EQ(r->tasks[3].params, (std::vector<std::pair<std::string, std::string>>{{"k", "32"}, {"m", "64"}}));
}

TEST(CampaignExpand, ParamListsAreAxesBetweenKindAndHardwareSortedByKey) {
  auto r = load_text(R"(
name: params
matrix:
  - kind: gemm.eigen
    hardware: [cpu, cuda]
    params: {n: [1, 2], m: [3, 4], k: 5}
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tasks.size(), 8u);
  // m varies slower than n (key order), both slower than hardware.
  EXPECT_EQ(r->tasks[0].id, "gemm.eigen[k=5,m=3,n=1]/cpu/fp32/b1/s0/latency");
  EXPECT_EQ(r->tasks[1].id, "gemm.eigen[k=5,m=3,n=1]/cuda/fp32/b1/s0/latency");
  EXPECT_EQ(r->tasks[2].id, "gemm.eigen[k=5,m=3,n=2]/cpu/fp32/b1/s0/latency");
  EXPECT_EQ(r->tasks[7].id, "gemm.eigen[k=5,m=4,n=2]/cuda/fp32/b1/s0/latency");
  EXPECT_EQ(r->tasks[0].params,
            (std::vector<std::pair<std::string, std::string>>{{"k", "5"}, {"m", "3"}, {"n", "1"}}));
}

TEST(CampaignExpand, IdsAreStableWhenTasksAreAddedOrReordered) {
  auto a = load_text(R"(
name: a
tasks:
  - {kind: selftest.ok, name: smoke, count: 3}
  - {kind: gemm.eigen, params: {m: 256, n: 256, k: 256}, seq_len: 128}
matrix:
  - {kind: selftest.sleep, hardware: [cpu, cuda]}
)");
  auto b = load_text(R"(
name: b
matrix:
  - {kind: selftest.fail, batch: [2, 4]}
  - {kind: selftest.sleep, hardware: [cuda, cpu]}
tasks:
  - {kind: selftest.hang, timeout_s: 2}
  - {kind: gemm.eigen, params: {k: 256, n: 256, m: 256}, seq_len: 128}
  - {kind: selftest.ok, name: smoke, count: 3}
)");
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  expect_well_formed(*a);
  expect_well_formed(*b);
  EXPECT_EQ(a->tasks[1].id, "selftest.ok:smoke/cpu/fp32/b1/s0/latency#1");
  EXPECT_EQ(a->tasks[3].id, "gemm.eigen[k=256,m=256,n=256]/cpu/fp32/b1/s128/latency");
  for (const TaskSpec& t : a->tasks) {
    const TaskSpec* u = find_task(*b, t.id);
    ASSERT_NE(u, nullptr) << t.id << " missing from the reordered campaign";
    EXPECT_EQ(u->kind, t.kind);
    EXPECT_EQ(u->hardware, t.hardware);
    EXPECT_EQ(u->params, t.params);
    EXPECT_EQ(u->seq_len, t.seq_len);
  }
  EXPECT_NE(a->tasks[1].index, find_task(*b, a->tasks[1].id)->index);  // the index moved, the id did not
}

TEST(CampaignExpand, CountMakesNumberedCopies) {
  auto r = load_text(R"(
name: count
tasks:
  - {kind: selftest.ok, name: smoke, count: 3}
  - {kind: selftest.ok}
matrix:
  - {kind: selftest.fail, hardware: [cpu, cuda], count: 2}
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_well_formed(*r);
  EXPECT_EQ(ids(*r), (std::vector<std::string>{
                         "selftest.ok:smoke/cpu/fp32/b1/s0/latency#0",
                         "selftest.ok:smoke/cpu/fp32/b1/s0/latency#1",
                         "selftest.ok:smoke/cpu/fp32/b1/s0/latency#2",
                         "selftest.ok/cpu/fp32/b1/s0/latency",
                         "selftest.fail/cpu/fp32/b1/s0/latency#0",
                         "selftest.fail/cpu/fp32/b1/s0/latency#1",
                         "selftest.fail/cuda/fp32/b1/s0/latency#0",
                         "selftest.fail/cuda/fp32/b1/s0/latency#1",
                     }));
}

TEST(CampaignExpand, TaskSettingsOverrideDefaultsWhichOverrideBuiltIns) {
  auto r = load_text(R"(
name: settings
defaults: {repeats: 9, timeout_s: 12.5, priority: high}
thresholds: {latency_pct: 3, accuracy_abs: 0.5}
tasks:
  - kind: selftest.ok
  - kind: selftest.hang
    repeats: 1
    warmup: 0
    timeout_s: 2
    retries: 0
    memory_mb: 256
    priority: critical
matrix:
  - {kind: selftest.fail, warmup: 4}
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tasks.size(), 3u);
  const TaskSpec& plain = r->tasks[0];
  EXPECT_EQ(plain.repeats, 9u);
  EXPECT_EQ(plain.warmup, 1u);  // built-in
  EXPECT_DOUBLE_EQ(plain.timeout_s, 12.5);
  EXPECT_EQ(plain.retries, 1u);
  EXPECT_EQ(plain.memory_mb, 2048u);
  EXPECT_EQ(plain.priority, Priority::kHigh);
  EXPECT_EQ(plain.model, "selftest.ok");  // the affinity key defaults to the kind
  const TaskSpec& hang = r->tasks[1];
  EXPECT_EQ(hang.repeats, 1u);
  EXPECT_EQ(hang.warmup, 0u);
  EXPECT_DOUBLE_EQ(hang.timeout_s, 2.0);
  EXPECT_EQ(hang.retries, 0u);
  EXPECT_EQ(hang.memory_mb, 256u);
  EXPECT_EQ(hang.priority, Priority::kCritical);
  EXPECT_EQ(r->tasks[2].warmup, 4u);
  EXPECT_EQ(r->tasks[2].repeats, 9u);

  EXPECT_EQ(r->defaults.repeats, 9u);
  EXPECT_DOUBLE_EQ(r->defaults.timeout_s, 12.5);
  EXPECT_EQ(r->defaults.warmup, 1u);
  EXPECT_DOUBLE_EQ(r->thresholds.latency_pct, 3.0);
  EXPECT_DOUBLE_EQ(r->thresholds.throughput_pct, 10.0);  // built-in
  EXPECT_DOUBLE_EQ(r->thresholds.accuracy_abs, 0.5);
  EXPECT_EQ(r->name, "settings");
  EXPECT_EQ(r->source, "t.yaml");
  EXPECT_TRUE(r->store.empty());
}

TEST(CampaignExpand, ModelEntriesRunAsKindModelWithTheModelAsAffinityKey) {
  LoadContext ctx = test_context();
  ctx.known_kinds.push_back("model");
  ctx.known_models = {"bert-base", "llama-7b"};
  auto r = load_text(R"(
name: models
tasks:
  - {model: bert-base, precision: int2, seq_len: 128}
matrix:
  - {model: [bert-base, llama-7b], precision: [int8, int4]}
)",
                     ctx);
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_well_formed(*r);
  ASSERT_EQ(r->tasks.size(), 5u);
  EXPECT_EQ(r->tasks[0].kind, "model");
  EXPECT_EQ(r->tasks[0].model, "bert-base");
  EXPECT_EQ(r->tasks[0].id, "model(bert-base)/cpu/int2/b1/s128/latency");
  EXPECT_EQ(r->tasks[2].id, "model(bert-base)/cpu/int4/b1/s0/latency");
  EXPECT_EQ(r->tasks[3].model, "llama-7b");
}

TEST(CampaignExpand, ExpandsHandBuiltSpecWithoutYaml) {
  // The core is usable without the YAML front end.
  core::CampaignSpec spec;
  spec.name = "direct";
  spec.source = "<test>";
  core::TaskBlock block;
  block.loc = {"<test>", 3, 5};
  block.is_matrix = true;
  block.axes.push_back({core::Axis::kKind, {}, {"<test>", 3, 5}, {{"gemm.eigen", {"<test>", 3, 11}}}});
  block.axes.push_back(
      {core::Axis::kBatch, {}, {"<test>", 4, 5}, {{"2", {"<test>", 4, 13}}, {"08", {"<test>", 4, 16}}}});
  block.settings.repeats = 3;
  spec.fragments.push_back({"<test>", {}, {block}});
  core::ExpandOptions options;
  options.known_kinds = {"gemm.eigen"};
  auto r = core::expand_campaign(spec, options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ids(*r), (std::vector<std::string>{"gemm.eigen/cpu/fp32/b2/s0/latency",
                                               "gemm.eigen/cpu/fp32/b8/s0/latency"}));
  EXPECT_EQ(r->tasks[1].batch, 8u);
  EXPECT_EQ(r->tasks[1].repeats, 3u);

  options.max_tasks = 1;
  auto limited = core::expand_campaign(spec, options);
  ASSERT_FALSE(limited.ok());
  EXPECT_EQ(limited.error().message.rfind("<test>:3:5: ", 0), 0u) << limited.error().message;
  EXPECT_NE(limited.error().message.find("more than 1 tasks"), std::string::npos);
}

TEST(CampaignExpand, TaskIdFormat) {
  TaskSpec t;
  t.kind = "gemm.eigen";
  t.model = "gemm.eigen";
  t.params = {{"k", "256"}, {"m", "256"}, {"n", "256"}};
  t.seq_len = 128;
  EXPECT_EQ(core::make_task_id(t, false, "", std::nullopt),
            "gemm.eigen[k=256,m=256,n=256]/cpu/fp32/b1/s128/latency");
  TaskSpec s;
  s.kind = "selftest.ok";
  EXPECT_EQ(core::make_task_id(s, false, "smoke", 2u), "selftest.ok:smoke/cpu/fp32/b1/s0/latency#2");
}

// ---------------------------------------------------------------------------------------------
// Includes

TEST(CampaignInclude, FragmentsAreAppendedAndTheIncludingFilesDefaultsWin) {
  auto r = load_data("good_include.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_well_formed(*r);
  // good_include.yaml's own task, then fragments/common.yaml's, then fragments/nested/deeper.yaml's.
  EXPECT_EQ(ids(*r), (std::vector<std::string>{
                         "selftest.ok:own/cpu/fp32/b1/s0/latency",
                         "selftest.fail:common/cpu/fp32/b1/s0/latency",
                         "selftest.ok:common-override/cpu/fp32/b1/s0/latency",
                         "selftest.sleep:deeper/cpu/fp32/b1/s0/latency",
                     }));
  const auto& t = r->tasks;
  // Own task: the top-level defaults only; the fragments' defaults do not reach it.
  EXPECT_EQ(t[0].repeats, 7u);
  EXPECT_EQ(t[0].warmup, 1u);
  EXPECT_DOUBLE_EQ(t[0].timeout_s, 60.0);
  EXPECT_EQ(t[0].priority, Priority::kHigh);
  // common.yaml's tasks: repeats 7 beats the fragment's 2; warmup and timeout come from the fragment.
  EXPECT_EQ(t[1].repeats, 7u);
  EXPECT_EQ(t[1].warmup, 3u);
  EXPECT_DOUBLE_EQ(t[1].timeout_s, 9.0);
  EXPECT_EQ(t[1].priority, Priority::kHigh);
  EXPECT_EQ(t[2].repeats, 11u);  // a task's own setting beats every file's defaults
  // deeper.yaml, included by common.yaml: common's warmup 3 beats its 0; its memory_mb is its own.
  EXPECT_EQ(t[3].repeats, 7u);
  EXPECT_EQ(t[3].warmup, 3u);
  EXPECT_DOUBLE_EQ(t[3].timeout_s, 9.0);
  EXPECT_EQ(t[3].memory_mb, 512u);
  // Campaign-wide settings: the top-level file's, then the first fragment that sets them.
  EXPECT_EQ(r->store, "results/mine.h5");
  EXPECT_DOUBLE_EQ(r->thresholds.latency_pct, 5.0);
  EXPECT_DOUBLE_EQ(r->thresholds.throughput_pct, 20.0);
  EXPECT_DOUBLE_EQ(r->thresholds.accuracy_abs, 0.01);
  EXPECT_EQ(r->defaults.repeats, 7u);
  EXPECT_EQ(r->defaults.warmup, 1u);
  EXPECT_EQ(r->name, "with-includes");
  EXPECT_EQ(r->source, kDataDir + "/good_include.yaml");
}

TEST(CampaignInclude, TextIncludesResolveAgainstBaseDir) {
  auto r = config::load_campaign_text("name: t\ninclude: fragments/nested/deeper.yaml\n", "<text>", kDataDir,
                                      test_context());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ids(*r), (std::vector<std::string>{"selftest.sleep:deeper/cpu/fp32/b1/s0/latency"}));
  EXPECT_EQ(r->source, "<text>");
}

TEST(CampaignInclude, CycleIsAnErrorNamingTheChain) {
  expect_error_at(load_data("bad_include_cycle.yaml"), kDataDir + "/fragments/cycle.yaml", 2, 11,
                  {"include cycle", "bad_include_cycle.yaml -> ", "fragments/cycle.yaml -> "});
}

TEST(CampaignInclude, SameFileTwiceIsAnError) {
  expect_data_error("bad_include_twice.yaml", 4, 5, {"already included", "bad_include_twice.yaml:3:5"});
}

// ---------------------------------------------------------------------------------------------
// Malformed files: one sample each under tests/data/campaigns/bad_*.yaml.

TEST(CampaignErrors, BadYamlSyntax) {
  // yaml-cpp notices the unclosed flow sequence of line 4 at the next entry.
  expect_data_error("bad_syntax.yaml", 5, 9, {"YAML syntax error", "end of sequence flow not found"});
}

TEST(CampaignErrors, UnknownKeyNamesTheKeyAndListsTheAllowedOnes) {
  expect_data_error("bad_unknown_key.yaml", 4, 5,
                    {"unknown key 'repeat'", "did you mean 'repeats'",
                     "allowed keys: kind, model, name, count", "timeout_s"});
}

TEST(CampaignErrors, WrongTypeForRepeats) {
  expect_data_error("bad_type_repeats.yaml", 3, 12, {"repeats must be an integer >= 1", "'many'"});
}

TEST(CampaignErrors, WrongTypeInBatchList) {
  expect_data_error("bad_type_batch.yaml", 4, 13, {"batch must be an integer >= 1", "'a'"});
}

TEST(CampaignErrors, UnknownKindListsKnownKinds) {
  expect_data_error(
      "bad_unknown_kind.yaml", 4, 11,
      {"unknown kind 'selftest.nope'", "known kinds: selftest.ok, selftest.fail", "gemm.eigen"});
}

TEST(CampaignErrors, UnknownModel) {
  expect_data_error("bad_unknown_model.yaml", 3, 12,
                    {"unknown model 'bert-base'", "known models: ", "llama"});
  LoadContext ctx = test_context();
  ctx.known_models.clear();
  expect_error_at(config::load_campaign_file(kDataDir + "/bad_unknown_model.yaml", ctx),
                  kDataDir + "/bad_unknown_model.yaml", 3, 12,
                  {"unknown model 'bert-base'", "catalog is empty"});
  ctx.known_kinds.push_back("model");
  ctx.known_models = {"llama-7b"};
  auto r = config::load_campaign_file(kDataDir + "/bad_unknown_model.yaml", ctx);
  expect_error_at(r, kDataDir + "/bad_unknown_model.yaml", 3, 12,
                  {"unknown model 'bert-base'", "known models: llama-7b"});
}

TEST(CampaignErrors, EmptyMatrixAxis) {
  expect_data_error("bad_empty_axis.yaml", 4, 5, {"hardware is an empty list", "no tasks"});
}

TEST(CampaignErrors, MatrixWhoseExcludesRemoveEverything) {
  expect_data_error("bad_excluded_all.yaml", 3, 5, {"remove every combination"});
}

TEST(CampaignErrors, ZeroTimeout) {
  expect_data_error("bad_timeout_zero.yaml", 4, 16, {"timeout_s must be a number of seconds > 0", "'0'"});
}

TEST(CampaignErrors, NegativeTimeout) {
  expect_data_error("bad_timeout_negative.yaml", 3, 14,
                    {"timeout_s must be a number of seconds > 0", "'-5'"});
}

TEST(CampaignErrors, MissingIncludeFile) {
  expect_data_error("bad_missing_include.yaml", 2, 11,
                    {"cannot read included file 'fragments/does-not-exist.yaml'", "no such file"});
}

TEST(CampaignErrors, DuplicateTaskIdPointsAtTheSecondOccurrence) {
  expect_data_error("bad_duplicate_id.yaml", 7, 5,
                    {"duplicate task id 'selftest.ok:a/cpu/fp32/b1/s0/latency'",
                     "first produced at " + kDataDir + "/bad_duplicate_id.yaml:3:5"});
}

TEST(CampaignErrors, BadPriority) {
  expect_data_error("bad_priority.yaml", 4, 15,
                    {"priority must be one of critical, high, medium", "'urgent'"});
}

TEST(CampaignErrors, MissingTopLevelFileNamesThePath) {
  const std::string path = kDataDir + "/no-such-campaign.yaml";
  auto r = config::load_campaign_file(path, test_context());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInput);
  EXPECT_EQ(r.error().message, path + ": cannot read campaign file: no such file");
  auto dir = config::load_campaign_file(kDataDir, test_context());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("is a directory"), std::string::npos) << dir.error().message;
}

// Further mistakes, written inline. Each must fail on `line` at the first occurrence of `token` in
// that line, and the message must mention every one of `words`.
struct InlineCase {
  const char* label;
  std::string yaml;
  int line;
  std::string token;
  std::vector<std::string> words;
};

int column_of(const std::string& text, int line, const std::string& token) {
  std::istringstream in(text);
  std::string l;
  for (int i = 0; i < line && std::getline(in, l); ++i) {
  }
  const auto pos = l.find(token);
  return pos == std::string::npos ? -1 : static_cast<int>(pos) + 1;
}

TEST(CampaignErrors, InlineCases) {
  const std::vector<InlineCase> cases = {
      {"list in a task",
       "name: x\ntasks:\n  - kind: selftest.ok\n    batch: [1, 2]\n",
       4,
       "[",
       {"batch must be a single value in a task", "matrix"}},
      {"mapping as axis",
       "name: x\nmatrix:\n  - kind: {a: 1}\n",
       3,
       "{",
       {"kind must be a value or a list", "a mapping"}},
      {"nested list value",
       "name: x\nmatrix:\n  - kind: gemm.eigen\n    batch: [[1]]\n",
       4,
       "[1",
       {"values of batch must be single values"}},
      {"zero batch",
       "name: x\ntasks:\n  - {kind: selftest.ok, batch: 0}\n",
       3,
       "0}",
       {"batch must be an integer >= 1"}},
      {"bad hardware",
       "name: x\ntasks:\n  - {kind: selftest.ok, hardware: tpu}\n",
       3,
       "tpu",
       {"unknown hardware 'tpu'", "cpu, cuda"}},
      {"bad scenario",
       "name: x\ntasks:\n  - {kind: selftest.ok, scenario: bulk}\n",
       3,
       "bulk",
       {"unknown scenario 'bulk'", "latency, throughput, prefill, decode"}},
      {"bad precision",
       "name: x\ntasks:\n  - {kind: selftest.ok, precision: FP32}\n",
       3,
       "FP32",
       {"bad precision 'FP32'"}},
      {"negative seq_len",
       "name: x\ntasks:\n  - {kind: selftest.ok, seq_len: -1}\n",
       3,
       "-1",
       {"seq_len must be an integer >= 0"}},
      {"fractional repeats",
       "name: x\ndefaults: {repeats: 2.5}\ntasks: [{kind: selftest.ok}]\n",
       2,
       "2.5",
       {"repeats must be an integer"}},
      {"retries too many",
       "name: x\ndefaults: {retries: 1000}\ntasks: [{kind: selftest.ok}]\n",
       2,
       "1000",
       {"retries must be an integer >= 0 and <= 100"}},
      {"zero memory",
       "name: x\ntasks: [{kind: selftest.ok, memory_mb: 0}]\n",
       2,
       "0}",
       {"memory_mb must be an integer >= 1"}},
      {"zero count",
       "name: x\ntasks: [{kind: selftest.ok, count: 0}]\n",
       2,
       "0}",
       {"count must be an integer >= 1"}},
      {"nan timeout",
       "name: x\ntasks: [{kind: selftest.ok, timeout_s: nan}]\n",
       2,
       "nan",
       {"timeout_s must be a number"}},
      {"missing name", "tasks: [{kind: selftest.ok}]\n", 1, "tasks", {"missing required key `name`"}},
      {"bad campaign name",
       "name: a b/c\ntasks: [{kind: selftest.ok}]\n",
       1,
       "a b",
       {"bad campaign name 'a b/c'"}},
      {"no tasks", "name: x\n", 1, "name", {"the campaign has no tasks"}},
      {"empty file", "", 1, "", {"the file is empty"}},
      {"root is a list", "- a\n- b\n", 1, "-", {"a campaign file must be a mapping", "a list"}},
      {"two documents",
       "name: x\ntasks: [{kind: selftest.ok}]\n---\nname: y\n",
       4,
       "name",
       {"one YAML document"}},
      {"duplicate key",
       "name: x\ntasks: [{kind: selftest.ok}]\nname: y\n",
       3,
       "name",
       {"duplicate key 'name'", "t.yaml:1:1"}},
      {"unknown top-level key",
       "name: x\ntask: []\n",
       2,
       "task",
       {"unknown key 'task'", "did you mean 'tasks'", "allowed keys: name, store"}},
      {"tasks not a list",
       "name: x\ntasks: {kind: selftest.ok}\n",
       2,
       "{",
       {"tasks must be a list of tasks", "a mapping"}},
      {"task not a mapping",
       "name: x\ntasks: [selftest.ok]\n",
       2,
       "selftest",
       {"a task must be a mapping", "'selftest.ok'"}},
      {"neither kind nor model",
       "name: x\ntasks: [{name: a}]\n",
       2,
       "{",
       {"names neither `kind:` nor `model:`"}},
      {"model not in the catalog",
       "name: x\ntasks: [{model: bert-huge}]\n",
       2,
       "bert-huge",
       {"unknown model 'bert-huge'"}},
      {"no value", "name: x\ntasks:\n  - kind:\n", 3, "kind", {"kind has no value"}},
      {"params not a mapping",
       "name: x\ntasks: [{kind: selftest.ok, params: [1]}]\n",
       2,
       "[1]",
       {"params must be a mapping"}},
      {"list param in task",
       "name: x\ntasks: [{kind: selftest.ok, params: {m: [1, 2]}}]\n",
       2,
       "[1",
       {"params.m must be a single value in a task"}},
      {"bad param key",
       "name: x\ntasks: [{kind: selftest.ok, params: {a b: 1}}]\n",
       2,
       "a b",
       {"bad parameter key 'a b'"}},
      {"bad task name", "name: x\ntasks: [{kind: selftest.ok, name: a/b}]\n", 2, "a/b", {"bad name 'a/b'"}},
      {"duplicate axis value",
       "name: x\nmatrix: [{kind: gemm.eigen, batch: [1, 01]}]\n",
       2,
       "01",
       {"duplicate value '01' in batch", "(first at t.yaml:2:37)"}},
      {"exclude unknown value",
       "name: x\nmatrix:\n  - kind: gemm.eigen\n    hardware: [cpu, cuda]\n    exclude: [{hardware: tpu}]\n",
       5,
       "tpu",
       {"unknown hardware 'tpu'"}},
      {"exclude value not in axis",
       "name: x\nmatrix:\n  - kind: gemm.eigen\n    batch: [1, 8]\n    exclude: [{batch: 4}]\n",
       5,
       "4",
       {"exclude value '4' for batch is not one of the block's values (1, 8)"}},
      {"exclude names a missing axis",
       "name: x\nmatrix:\n  - kind: gemm.eigen\n    exclude: [{params: {m: 4}}]\n",
       4,
       "4",
       {"exclude names params.m, which is not an axis", "axes: kind, hardware"}},
      {"empty exclude entry",
       "name: x\nmatrix:\n  - kind: gemm.eigen\n    exclude: [{}]\n",
       4,
       "{",
       {"empty exclude entry"}},
      {"exclude unknown key",
       "name: x\nmatrix:\n  - kind: gemm.eigen\n    exclude: [{hw: cpu}]\n",
       4,
       "hw",
       {"unknown key 'hw' in exclude entry", "allowed keys: kind, model, hardware"}},
      {"include equal to a combination",
       "name: x\nmatrix:\n  - kind: gemm.eigen\n    include: [{hardware: cpu}]\n",
       4,
       "{",
       {"duplicate task id 'gemm.eigen/cpu/fp32/b1/s0/latency'", "first produced at t.yaml:3:5"}},
      {"exclude in a task",
       "name: x\ntasks:\n  - kind: selftest.ok\n    exclude: []\n",
       4,
       "exclude",
       {"unknown key 'exclude' in a task"}},
      {"include not a path",
       "name: x\ninclude: [{a: 1}]\ntasks: [{kind: selftest.ok}]\n",
       2,
       "{",
       {"include entries must be file paths"}},
      {"threshold negative",
       "name: x\nthresholds: {latency_pct: -1}\ntasks: [{kind: selftest.ok}]\n",
       2,
       "-1",
       {"latency_pct must be a number >= 0"}},
      {"tab indentation", "name: x\ntasks:\n\t- kind: selftest.ok\n", 3, "-", {"YAML syntax error"}},
  };
  for (const InlineCase& c : cases) {
    SCOPED_TRACE(c.label);
    const int column = column_of(c.yaml, c.line, c.token);
    ASSERT_GT(column, 0) << "bad test case: token '" << c.token << "' not on line " << c.line;
    expect_error_at(load_text(c.yaml), "t.yaml", c.line, column, c.words);
  }
}

TEST(CampaignErrors, MoreThanFiveMillionTasksIsRejectedBeforeExpanding) {
  auto copies =
      load_text("name: x\ntasks:\n  - {kind: selftest.ok, count: 5000000}\n  - {kind: selftest.fail}\n");
  expect_error_at(copies, "t.yaml", 4, 5, {"more than 5000000 tasks"});
  // 10^12 combinations: refused without visiting them, with and without excludes.
  const std::string big =
      "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, "
      "25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, "
      "48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, "
      "71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, "
      "94, 95, 96, 97, 98, 99]";
  const std::string matrix = "name: x\nmatrix:\n  - kind: gemm.eigen\n    params: {a: " + big +
                             ", b: " + big + ", c: " + big + ", d: " + big + ", e: " + big + ", f: " + big +
                             "}\n";
  expect_error_at(load_text(matrix), "t.yaml", 3, 5, {"more than 5000000 tasks"});
  expect_error_at(load_text(matrix + "    exclude: [{params: {a: 1}}]\n"), "t.yaml", 3, 5,
                  {"1000000000000 combinations before its excludes", "at most 5000000 tasks"});
}

// ---------------------------------------------------------------------------------------------
// Shipped campaigns

TEST(CampaignFiles, DefaultCampaignParsesAndIsSmall) {
  auto r = config::load_default_campaign(test_context());
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_well_formed(*r);
  EXPECT_EQ(r->source, "<embedded default>");
  EXPECT_GE(r->tasks.size(), 30u);
  EXPECT_LE(r->tasks.size(), 60u);
  std::size_t critical = 0;
  std::set<std::string> models, precisions;
  for (const TaskSpec& t : r->tasks) {
    EXPECT_EQ(t.hardware, "cpu") << t.id;
    EXPECT_EQ(t.repeats, 5u);
    EXPECT_EQ(t.warmup, 1u);
    EXPECT_DOUBLE_EQ(t.timeout_s, 60.0);
    EXPECT_EQ(t.retries, 1u);
    if (t.kind == "selftest.ok") {
      EXPECT_EQ(t.priority, Priority::kCritical);
      ++critical;
      continue;
    }
    // Everything else: tiny catalog models (the `size` param is never `real` here).
    EXPECT_EQ(t.kind, "model") << t.id;
    EXPECT_NE(t.priority, Priority::kCritical) << t.id;
    EXPECT_EQ(t.param("size", "tiny"), "tiny") << t.id;
    EXPECT_LE(t.seq_len, 16u) << t.id;
    models.insert(t.model);
    precisions.insert(t.precision);
  }
  EXPECT_GE(critical, 1u);
  EXPECT_GE(models.size(), 7u);  // one per family
  for (const char* p : {"fp32", "int8", "int4", "int2"}) EXPECT_TRUE(precisions.count(p)) << p;
}

TEST(CampaignFiles, EmbeddedDefaultIsConfigsDefaultYamlVerbatim) {
  // Guards the CMake embedding (configure_file): '@VAR@' or a raw-string terminator in the YAML
  // would silently change the embedded text.
  const std::string on_disk = read(kConfigsDir + "/default.yaml");
  ASSERT_FALSE(on_disk.empty());
  EXPECT_EQ(std::string(config::default_campaign_yaml()), on_disk);
}

TEST(CampaignFiles, ExamplesLoad) {
  const std::map<std::string, std::size_t> expected = {{"faults.yaml", 13},
                                                       {"dispatch.yaml", 20000},
                                                       {"nightly-cpu.yaml", 16},
                                                       {"gemm-sweep.yaml", 5},
                                                       {"model-families.yaml", 120}};
  std::size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kConfigsDir + "/examples")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    auto r = config::load_campaign_file(entry.path().string(), test_context());
    ASSERT_TRUE(r.ok()) << r.error().message;
    expect_well_formed(*r);
    const auto it = expected.find(entry.path().filename().string());
    ASSERT_NE(it, expected.end()) << "add the new example to this test";
    EXPECT_EQ(r->tasks.size(), it->second);
    ++seen;
  }
  EXPECT_EQ(seen, expected.size());
}

TEST(CampaignFiles, FaultsExampleSetsTheFaultLimits) {
  auto r = config::load_campaign_file(kConfigsDir + "/examples/faults.yaml", test_context());
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::set<std::string> kinds;
  for (const TaskSpec& t : r->tasks) {
    kinds.insert(t.kind);
    EXPECT_EQ(t.retries, 1u);
    if (t.kind == "selftest.hang") {
      EXPECT_DOUBLE_EQ(t.timeout_s, 2.0);
    }
    if (t.kind == "selftest.oom") {
      EXPECT_EQ(t.memory_mb, 256u);
    }
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"selftest.ok", "selftest.fail", "selftest.segfault",
                                          "selftest.abort", "selftest.hang", "selftest.oom"}));
}

}  // namespace
}  // namespace ipfsa
