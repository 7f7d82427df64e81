// safetensors I/O and tensor sets (src/engine/model/weights.hpp, docs/engine.md §safetensors):
// write -> read round trips in F32 and F16, BF16 reading, sharded checkpoints, and every malformed
// file the reader must reject with a kInput error naming the file and the problem.
// Postconditions checked:
//   1. read(write(T, F32)) == T exactly, names, shapes and values; F16 gives fp16-rounded values.
//   2. the header is padded to a multiple of 8 bytes and carries __metadata__.format == "pt".
//   3. a malformed file gives an error whose message starts with the file name and names the problem.
//   4. sharded write -> read through the index gives the same set.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "engine/fp16.hpp"
#include "engine/model/weights.hpp"

namespace ipfsa::engine {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "ipfsa_st_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path file(const std::string& name) const { return dir_ / name; }

  // Writes 8-byte length + header + data as given (header_len overrides the true length).
  fs::path raw_file(const std::string& name, const std::string& header, const std::string& data,
                    std::uint64_t header_len = UINT64_MAX) {
    const fs::path p = file(name);
    std::ofstream out(p, std::ios::binary);
    const std::uint64_t n = header_len == UINT64_MAX ? header.size() : header_len;
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
    out << header << data;
    return p;
  }

  // Expects read_safetensors(p) to fail with a message starting with p and containing `what`.
  void expect_error(const fs::path& p, const std::string& what) {
    auto r = read_safetensors(p);
    ASSERT_FALSE(r.ok()) << "expected an error containing: " << what;
    EXPECT_EQ(r.error().code, ErrorCode::kInput);
    EXPECT_EQ(r.error().message.rfind(p.string() + ": ", 0), 0u) << r.error().message;
    EXPECT_NE(r.error().message.find(what), std::string::npos) << r.error().message;
  }

  fs::path dir_;
};

TensorSet sample_set() {
  TensorSet s;
  s.insert("a.weight", Tensor{{2, 3}, {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f}});
  s.insert("b.bias", Tensor{{4}, {0.1f, 0.2f, 0.3f, 0.4f}});
  s.insert("scalar", Tensor{{}, {42.0f}});
  s.insert("empty", Tensor{{0, 5}, {}});
  s.insert("c", Tensor{{2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}});
  return s;
}

void expect_same(const TensorSet& a, const TensorSet& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    const Tensor* u = b.find(name);
    ASSERT_NE(u, nullptr) << name;
    EXPECT_EQ(t.shape, u->shape) << name;
    EXPECT_EQ(t.data, u->data) << name;
  }
}

TEST_F(SafetensorsTest, RoundTripF32) {
  const TensorSet s = sample_set();
  ASSERT_TRUE(write_safetensors(file("m.safetensors"), s).ok());
  auto r = read_safetensors(file("m.safetensors"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_same(s, *r);
}

TEST_F(SafetensorsTest, RoundTripF16RoundsToHalf) {
  TensorSet s = sample_set();
  s.insert("odd", Tensor{{3}, {0.1f, 65504.0f, -1.0f / 3.0f}});
  ASSERT_TRUE(write_safetensors(file("h.safetensors"), s, SafetensorsDtype::kF16).ok());
  auto r = read_safetensors(file("h.safetensors"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), s.size());
  for (const auto& [name, t] : s) {
    const Tensor* u = r->find(name);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->shape, t.shape);
    for (std::size_t i = 0; i < t.data.size(); ++i)
      EXPECT_EQ(u->data[i], fp16_to_float(fp16_from_float(t.data[i]))) << name << "[" << i << "]";
  }
}

TEST_F(SafetensorsTest, HeaderIsPaddedAndCarriesMetadata) {
  ASSERT_TRUE(
      write_safetensors(file("m.safetensors"), sample_set(), SafetensorsDtype::kF32, {{"who", "test"}}).ok());
  std::ifstream in(file("m.safetensors"), std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  EXPECT_EQ(n % 8, 0u);
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  EXPECT_NE(header.find("\"__metadata__\":{\"format\":\"pt\",\"who\":\"test\"}"), std::string::npos)
      << header;
  EXPECT_FALSE(write_safetensors(file("x.safetensors"), sample_set(), SafetensorsDtype::kBF16).ok());
  EXPECT_FALSE(write_safetensors(dir_ / "no" / "such" / "dir.safetensors", sample_set()).ok());
}

TEST_F(SafetensorsTest, ReadsBf16AndF16) {
  // 1.0, -2.0 in bf16: 0x3F80, 0xC000; 0.5 in f16: 0x3800.
  const std::string data("\x80\x3F\x00\xC0\x00\x38", 6);
  const auto p = raw_file("b.safetensors",
                          R"({"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
                          R"("y":{"dtype":"F16","shape":[1],"data_offsets":[4,6]}})",
                          data);
  auto r = read_safetensors(p);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->find("x")->data, (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(r->find("y")->data, (std::vector<float>{0.5f}));
}

TEST_F(SafetensorsTest, RejectsMalformedFiles) {
  const std::string four_floats(16, '\0');
  expect_error(file("missing.safetensors"), "cannot read");
  {
    std::ofstream(file("short.safetensors"), std::ios::binary) << "abc";
    expect_error(file("short.safetensors"), "shorter than the 8-byte header length");
  }
  expect_error(raw_file("len.safetensors", "{}", "", 1000),
               "header length 1000 runs past the end of the file");
  expect_error(raw_file("huge.safetensors", "{}", "", UINT64_MAX - 1), "runs past the end of the file");
  expect_error(raw_file("json.safetensors", "{\"a\": [1,", ""), "header is not valid JSON");
  expect_error(raw_file("array.safetensors", "[1, 2]", ""), "header is not a JSON object");
  expect_error(raw_file("entry.safetensors", R"({"a": 3})", ""), "tensor 'a': entry is not a JSON object");
  expect_error(raw_file("dtype.safetensors", R"({"a":{"shape":[4],"data_offsets":[0,16]}})", four_floats),
               "tensor 'a': missing or invalid dtype");
  expect_error(
      raw_file("dtype2.safetensors", R"({"a":{"dtype":7,"shape":[4],"data_offsets":[0,16]}})", four_floats),
      "tensor 'a': missing or invalid dtype");
  expect_error(
      raw_file("i64.safetensors", R"({"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", four_floats),
      "tensor 'a': unsupported dtype 'I64' (supported: F32, F16, BF16)");
  expect_error(raw_file("shape.safetensors", R"({"a":{"dtype":"F32","data_offsets":[0,16]}})", four_floats),
               "tensor 'a': missing or invalid shape");
  expect_error(raw_file("shape2.safetensors", R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})",
                        four_floats),
               "tensor 'a': missing or invalid shape");
  expect_error(raw_file("shape3.safetensors", R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,16]}})",
                        four_floats),
               "tensor 'a': missing or invalid shape");
  expect_error(raw_file("shape4.safetensors", R"({"a":{"dtype":"F32","shape":"4","data_offsets":[0,16]}})",
                        four_floats),
               "tensor 'a': missing or invalid shape");
  expect_error(
      raw_file("bigshape.safetensors",
               R"({"a":{"dtype":"F32","shape":[4000000000,4000000000,4000000000],"data_offsets":[0,16]}})",
               four_floats),
      "needs more bytes than the file's 16 bytes of data");
  expect_error(raw_file("offs.safetensors", R"({"a":{"dtype":"F32","shape":[4]}})", four_floats),
               "tensor 'a': missing or invalid data_offsets");
  expect_error(
      raw_file("offs2.safetensors", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", four_floats),
      "tensor 'a': missing or invalid data_offsets");
  expect_error(raw_file("offs3.safetensors", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}})",
                        four_floats),
               "tensor 'a': missing or invalid data_offsets");
  expect_error(
      raw_file("dec.safetensors", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}})", four_floats),
      "tensor 'a': data_offsets [16, 0] are decreasing");
  expect_error(raw_file("range.safetensors", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                        four_floats),
               "tensor 'a': data_offsets [8, 24] run past the end of the data (16 bytes)");
  expect_error(
      raw_file("range2.safetensors",
               R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551615,4]}})", four_floats),
      "are decreasing");
  expect_error(
      raw_file("size.safetensors", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", four_floats),
      "tensor 'a': data_offsets [0, 8] span 8 bytes but shape [3] of F32 needs 12");
  expect_error(raw_file("overlap.safetensors",
                        R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                        four_floats),
               "tensors 'a' and 'b' overlap (data_offsets [0, 12] and [8, 16])");
  expect_error(raw_file("meta.safetensors", R"({"__metadata__":[1]})", ""),
               "__metadata__ is not a JSON object");
  fs::create_directory(file("adir.safetensors"));
  expect_error(file("adir.safetensors"), "is a directory");
}

TEST_F(SafetensorsTest, AcceptsMetadataHolesAndEmptyFiles) {
  // A valid file with metadata and an unused gap between tensors is read.
  auto r = read_safetensors(raw_file("ok.safetensors",
                                     R"({"__metadata__":{"format":"pt"},)"
                                     R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                     std::string(16, '\0')));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 2u);
  auto e = read_safetensors(raw_file("empty.safetensors", "{}", ""));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_TRUE(e->empty());
}

TEST_F(SafetensorsTest, ShardedRoundTrip) {
  ModelConfig c;
  c.family = Family::kDecoder;
  c.vocab = 50;
  c.decoder = StackConfig{.layers = 2, .hidden = 32, .heads = 4, .kv_heads = 2, .ffn = 64, .causal = true};
  const TensorSet s = synthetic_weights(c, 7);
  const fs::path d = file("ckpt");
  fs::create_directory(d);
  ASSERT_TRUE(write_safetensors_sharded(d, s, 3).ok());
  EXPECT_TRUE(fs::exists(d / "model-00001-of-00003.safetensors"));
  EXPECT_TRUE(fs::exists(d / "model-00003-of-00003.safetensors"));
  auto r = read_safetensors_dir(d);
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_same(s, *r);

  // Without the index, the union of the shards is the same set.
  fs::remove(d / "model.safetensors.index.json");
  auto u = read_safetensors_dir(d);
  ASSERT_TRUE(u.ok()) << u.error().message;
  expect_same(s, *u);
}

TEST_F(SafetensorsTest, ShardedErrors) {
  const fs::path d = file("bad");
  fs::create_directory(d);
  auto none = read_safetensors_dir(d);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no *.safetensors file"), std::string::npos);

  TensorSet a;
  a.insert("x", Tensor{{1}, {1.0f}});
  ASSERT_TRUE(write_safetensors(d / "a.safetensors", a).ok());
  ASSERT_TRUE(write_safetensors(d / "b.safetensors", a).ok());
  auto dup = read_safetensors_dir(d);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("tensor 'x' is in both a.safetensors and b.safetensors"),
            std::string::npos)
      << dup.error().message;

  auto index = [&](const std::string& text) {
    std::ofstream(d / "model.safetensors.index.json") << text;
    return read_safetensors_dir(d);
  };
  auto r = index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors"}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("tensor 'y' is not in its shard 'a.safetensors'"), std::string::npos)
      << r.error().message;
  r = index(R"({"weight_map": {"x": "../a.safetensors"}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("is not a plain relative path"), std::string::npos) << r.error().message;
  r = index(R"({"weights": {}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("missing or invalid weight_map"), std::string::npos) << r.error().message;
  r = index("{");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("model.safetensors.index.json: not valid JSON"), std::string::npos)
      << r.error().message;
  r = index(R"({"weight_map": {"x": "a.safetensors"}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 1u);
}

// Random corruption of a valid file's header and length prefix: every read either succeeds or
// returns an error; none crashes or allocates beyond the file (run under ASan in CI).
TEST_F(SafetensorsTest, CorruptedHeadersNeverCrash) {
  ASSERT_TRUE(write_safetensors(file("v.safetensors"), sample_set()).ok());
  std::ifstream in(file("v.safetensors"), std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::mt19937_64 rng(1);
  int errors = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::string bad = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      // Mostly the header (where the structure is), sometimes the length prefix.
      const std::size_t at = rng() % 5 == 0 ? rng() % 8 : 8 + rng() % (good.size() - 8);
      const char pool[] = "0123456789[]{}\",:-.e\x00 FBI";
      bad[at] = rng() % 2 ? pool[rng() % (sizeof pool - 1)] : static_cast<char>(rng());
    }
    if (rng() % 8 == 0) bad.resize(rng() % bad.size());
    std::ofstream(file("f.safetensors"), std::ios::binary | std::ios::trunc) << bad;
    auto r = read_safetensors(file("f.safetensors"));
    if (!r.ok()) {
      ++errors;
      EXPECT_EQ(r.error().message.rfind(file("f.safetensors").string() + ": ", 0), 0u) << r.error().message;
    }
  }
  EXPECT_GT(errors, 50);
}

TEST(TensorSetTest, InsertFindTakeErase) {
  TensorSet s;
  s.insert("b", Tensor{{2}, {1, 2}});
  s.insert("a", Tensor{{1}, {3}});
  EXPECT_EQ(s.begin()->first, "a");
  EXPECT_EQ(s.parameters(), 3);
  EXPECT_TRUE(s.contains("b"));
  Tensor t = s.take("b");
  EXPECT_EQ(t.data, (std::vector<float>{1, 2}));
  EXPECT_FALSE(s.contains("b"));
  EXPECT_TRUE(s.erase("a"));
  EXPECT_FALSE(s.erase("a"));
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace ipfsa::engine
