// Tensor sets, canonical tensor names, synthetic weights and safetensors I/O (weights.hpp,
// docs/engine.md §Weights and §safetensors).
#include "engine/model/weights.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <numbers>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "core/mix.hpp"
#include "engine/fp16.hpp"

namespace ipfsa::engine {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::int64_t Tensor::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

void TensorSet::insert(std::string name, Tensor tensor) {
  IPFSA_EXPECTS(tensor.numel() == static_cast<std::int64_t>(tensor.data.size()),
                "TensorSet::insert: data size does not match shape");
  tensors_.insert_or_assign(std::move(name), std::move(tensor));
}

const Tensor* TensorSet::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

Tensor* TensorSet::find(std::string_view name) {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

Tensor TensorSet::take(std::string_view name) {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) return {};
  Tensor t = std::move(it->second);
  tensors_.erase(it);
  return t;
}

bool TensorSet::erase(std::string_view name) {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) return false;
  tensors_.erase(it);
  return true;
}

std::int64_t TensorSet::parameters() const {
  std::int64_t n = 0;
  for (const auto& [name, t] : tensors_) n += t.numel();
  return n;
}

// ---- canonical tensors ----

namespace {

constexpr float kInitStd = 0.02f;
constexpr float kBiasStd = 0.01f;

class SpecList {
 public:
  void add(std::string name, std::vector<std::int64_t> shape, TensorRole role, Component component, int layer,
           int layers, float mean, float std) {
    out_.push_back(TensorSpec{std::move(name), std::move(shape), role, component, layer, layers, mean, std});
  }
  void norm(const std::string& prefix, NormKind kind, std::int64_t hidden, Component c, int layer,
            int layers) {
    add(prefix + ".weight", {hidden}, TensorRole::kNorm, c, layer, layers, 1.0f, 0.0f);
    if (kind == NormKind::kLayerNorm)
      add(prefix + ".bias", {hidden}, TensorRole::kNorm, c, layer, layers, 0.0f, 0.0f);
  }
  void linear(const std::string& prefix, std::int64_t out, std::int64_t in, bool bias, Component c, int layer,
              int layers, float std = kInitStd) {
    add(prefix + ".weight", {out, in}, TensorRole::kLinear, c, layer, layers, 0.0f, std);
    if (bias) add(prefix + ".bias", {out}, TensorRole::kBias, c, layer, layers, 0.0f, kBiasStd);
  }
  std::vector<TensorSpec> take() { return std::move(out_); }

 private:
  std::vector<TensorSpec> out_;
};

void add_attention(SpecList& l, const std::string& p, const StackConfig& s, int i) {
  const std::int64_t h = s.hidden, hd = s.head_dim();
  const std::int64_t qd = static_cast<std::int64_t>(s.heads) * hd,
                     kvd = static_cast<std::int64_t>(s.kv_heads) * hd;
  const float out_std = kInitStd / std::sqrt(2.0f * static_cast<float>(std::max(s.layers, 1)));
  l.linear(p + ".q", qd, h, s.qkv_bias, Component::kAttention, i, s.layers);
  l.linear(p + ".k", kvd, h, s.qkv_bias, Component::kAttention, i, s.layers);
  l.linear(p + ".v", kvd, h, s.qkv_bias, Component::kAttention, i, s.layers);
  l.linear(p + ".o", h, qd, s.qkv_bias, Component::kAttention, i, s.layers, out_std);
}

void add_mlp(SpecList& l, const std::string& p, const StackConfig& s, int i) {
  const float out_std = kInitStd / std::sqrt(2.0f * static_cast<float>(std::max(s.layers, 1)));
  if (s.gated_mlp) l.linear(p + ".gate", s.ffn, s.hidden, s.mlp_bias, Component::kFeedForward, i, s.layers);
  l.linear(p + ".up", s.ffn, s.hidden, s.mlp_bias, Component::kFeedForward, i, s.layers);
  l.linear(p + ".down", s.hidden, s.ffn, s.mlp_bias, Component::kFeedForward, i, s.layers, out_std);
}

void add_stack(SpecList& l, const std::string& p, const StackConfig& s) {
  if (s.layers <= 0) return;
  const std::int64_t h = s.hidden;
  if (s.position == PositionKind::kLearned)
    l.add(p + ".embed_positions.weight", {s.max_positions, h}, TensorRole::kPositions, Component::kEmbedding,
          0, 0, 0.0f, kInitStd);
  if (!s.pre_norm) l.norm(p + ".embed_norm", s.norm, h, Component::kEmbedding, 0, 0);
  for (int i = 0; i < s.layers; ++i) {
    const std::string b = p + ".layers." + std::to_string(i);
    l.norm(b + ".attn_norm", s.norm, h, Component::kAttention, i, s.layers);
    add_attention(l, b + ".attn", s, i);
    if (s.cross_attention) {
      l.norm(b + ".cross_attn_norm", s.norm, h, Component::kAttention, i, s.layers);
      add_attention(l, b + ".cross_attn", s, i);
    }
    l.norm(b + ".mlp_norm", s.norm, h, Component::kFeedForward, i, s.layers);
    if (s.experts > 0) {
      l.add(b + ".moe.router.weight", {s.experts, h}, TensorRole::kRouter, Component::kFeedForward, i,
            s.layers, 0.0f, kInitStd);
      for (int e = 0; e < s.experts; ++e) add_mlp(l, b + ".moe.experts." + std::to_string(e), s, i);
    } else {
      add_mlp(l, b + ".mlp", s, i);
    }
  }
  if (s.pre_norm) l.norm(p + ".final_norm", s.norm, h, Component::kEmbedding, 0, 0);
}

void add_patch_frontend(SpecList& l, const std::string& p, const ModelConfig& c, const StackConfig& s) {
  l.add(p + ".patch_embed.weight", {s.hidden, c.channels, c.patch_size, c.patch_size}, TensorRole::kLinear,
        Component::kEmbedding, 0, 0, 0.0f, kInitStd);
  l.add(p + ".patch_embed.bias", {s.hidden}, TensorRole::kBias, Component::kEmbedding, 0, 0, 0.0f, kBiasStd);
  l.add(p + ".cls_token", {s.hidden}, TensorRole::kPositions, Component::kEmbedding, 0, 0, 0.0f, kInitStd);
}

void add_audio_frontend(SpecList& l, const std::string& p, const ModelConfig& c, const StackConfig& s) {
  l.add(p + ".conv1.weight", {s.hidden, c.mel_bins, 3}, TensorRole::kLinear, Component::kEmbedding, 0, 0,
        0.0f, kInitStd);
  l.add(p + ".conv1.bias", {s.hidden}, TensorRole::kBias, Component::kEmbedding, 0, 0, 0.0f, kBiasStd);
  l.add(p + ".conv2.weight", {s.hidden, s.hidden, 3}, TensorRole::kLinear, Component::kEmbedding, 0, 0, 0.0f,
        kInitStd);
  l.add(p + ".conv2.bias", {s.hidden}, TensorRole::kBias, Component::kEmbedding, 0, 0, 0.0f, kBiasStd);
}

// The stack whose hidden size the token table has (the one that reads tokens, the decoder when
// both do), or nullptr when no stack reads tokens.
const StackConfig* token_stack(const ModelConfig& c) {
  switch (c.family) {
    case Family::kEncoder:
    case Family::kDualEncoder:
      return &c.encoder;
    case Family::kDecoder:
    case Family::kMoe:
    case Family::kEncoderDecoder:
      return &c.decoder;
    case Family::kVision:
    case Family::kAudio:
      return nullptr;
  }
  return nullptr;
}

}  // namespace

std::vector<TensorSpec> canonical_tensors(const ModelConfig& c) {
  SpecList l;
  if (const StackConfig* ts = token_stack(c))
    l.add("embed_tokens.weight", {c.vocab, ts->hidden}, TensorRole::kTable, Component::kEmbedding, 0, 0, 0.0f,
          kInitStd);
  switch (c.family) {
    case Family::kEncoder:
      add_stack(l, "encoder", c.encoder);
      break;
    case Family::kDecoder:
    case Family::kMoe:
      add_stack(l, "decoder", c.decoder);
      break;
    case Family::kEncoderDecoder:
      if (c.frontend == Frontend::kAudioConv) add_audio_frontend(l, "encoder", c, c.encoder);
      add_stack(l, "encoder", c.encoder);
      add_stack(l, "decoder", c.decoder);
      break;
    case Family::kVision:
      add_patch_frontend(l, "encoder", c, c.encoder);
      add_stack(l, "encoder", c.encoder);
      break;
    case Family::kAudio:
      add_audio_frontend(l, "encoder", c, c.encoder);
      add_stack(l, "encoder", c.encoder);
      break;
    case Family::kDualEncoder:
      add_stack(l, "encoder", c.encoder);
      add_patch_frontend(l, "vision", c, c.vision);
      add_stack(l, "vision", c.vision);
      break;
  }
  switch (c.family) {
    case Family::kEncoder:
    case Family::kDecoder:
    case Family::kMoe:
    case Family::kEncoderDecoder:
      if (!c.tie_embeddings)
        l.linear("lm_head", c.vocab, token_stack(c)->hidden, false, Component::kHead, 0, 0);
      break;
    case Family::kVision:
      l.linear("head", c.num_labels, c.encoder.hidden, true, Component::kHead, 0, 0);
      break;
    case Family::kAudio:
      l.linear("lm_head", c.vocab, c.encoder.hidden, true, Component::kHead, 0, 0);
      break;
    case Family::kDualEncoder:
      l.linear("text_projection", c.projection_dim, c.encoder.hidden, false, Component::kHead, 0, 0);
      l.linear("visual_projection", c.projection_dim, c.vision.hidden, false, Component::kHead, 0, 0);
      l.add("logit_scale", {1}, TensorRole::kScalar, Component::kHead, 0, 0,
            static_cast<float>(std::log(1.0 / 0.07)), 0.0f);
      break;
  }
  return l.take();
}

// ---- synthetic weights ----

namespace {

using core::splitmix64;

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001B3ull;
  }
  return h;
}

// N(mean, std^2) by Box-Muller over std::mt19937_64, so the numbers do not depend on the
// standard library's distributions.
void fill_normal(std::vector<float>& out, std::uint64_t seed, float mean, float std) {
  if (std == 0.0f) {
    std::fill(out.begin(), out.end(), mean);
    return;
  }
  std::mt19937_64 rng(seed);
  auto uniform = [&rng] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1p-53; };  // (0, 1)
  for (std::size_t i = 0; i < out.size(); i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double a = 2.0 * std::numbers::pi * uniform();
    out[i] = mean + std * static_cast<float>(r * std::cos(a));
    if (i + 1 < out.size()) out[i + 1] = mean + std * static_cast<float>(r * std::sin(a));
  }
}

}  // namespace

TensorSet synthetic_weights(const ModelConfig& config, std::uint64_t seed, int threads) {
  // Work items are chunks of kChunk elements, each with its own stream, so that the large tensors
  // (embeddings, LM heads) are drawn in parallel too and the result does not depend on `threads`.
  constexpr std::size_t kChunk = std::size_t{1} << 16;
  const std::vector<TensorSpec> specs = canonical_tensors(config);
  std::vector<Tensor> tensors(specs.size());
  struct Item {
    std::size_t tensor;
    std::size_t chunk;
  };
  std::vector<Item> items;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    Tensor& t = tensors[i];
    t.shape = specs[i].shape;
    t.data.resize(static_cast<std::size_t>(std::max<std::int64_t>(t.numel(), 0)));
    for (std::size_t c = 0; c * kChunk < t.data.size(); ++c) items.push_back({i, c});
  }
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    std::vector<float> buf;
    for (std::size_t k = next++; k < items.size(); k = next++) {
      const TensorSpec& s = specs[items[k].tensor];
      std::vector<float>& data = tensors[items[k].tensor].data;
      const std::size_t begin = items[k].chunk * kChunk, n = std::min(kChunk, data.size() - begin);
      buf.resize(n);
      fill_normal(buf, splitmix64(splitmix64(seed ^ fnv1a(s.name)) + items[k].chunk), s.mean, s.std);
      std::copy(buf.begin(), buf.end(), data.begin() + static_cast<std::ptrdiff_t>(begin));
    }
  };
  const int n = std::clamp(threads, 1, static_cast<int>(std::max<std::size_t>(items.size(), 1)));
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  TensorSet set;
  for (std::size_t i = 0; i < specs.size(); ++i) set.insert(specs[i].name, std::move(tensors[i]));
  return set;
}

// ---- safetensors ----

std::string_view to_string(SafetensorsDtype d) {
  switch (d) {
    case SafetensorsDtype::kF32:
      return "F32";
    case SafetensorsDtype::kF16:
      return "F16";
    case SafetensorsDtype::kBF16:
      return "BF16";
  }
  return "?";
}

namespace {

// The safetensors format caps the header at 100 MB (the reference implementation's limit).
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

std::size_t dtype_size(SafetensorsDtype d) {
  return d == SafetensorsDtype::kF32 ? 4 : 2;
}

std::optional<SafetensorsDtype> parse_dtype(std::string_view s) {
  if (s == "F32") return SafetensorsDtype::kF32;
  if (s == "F16") return SafetensorsDtype::kF16;
  if (s == "BF16") return SafetensorsDtype::kBF16;
  return std::nullopt;
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A JSON integer >= 0 that fits in uint64.
std::optional<std::uint64_t> non_negative(const Json& j) {
  if (j.is_number_unsigned()) return j.get<std::uint64_t>();
  if (j.is_number_integer() && j.get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(j.get<std::int64_t>());
  return std::nullopt;
}

struct Entry {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

void convert(SafetensorsDtype dtype, const std::vector<char>& raw, std::vector<float>& out) {
  const std::size_t n = out.size();
  if (dtype == SafetensorsDtype::kF32) {
    std::memcpy(out.data(), raw.data(), n * 4);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t h;
    std::memcpy(&h, raw.data() + 2 * i, 2);
    if (dtype == SafetensorsDtype::kF16) {
      out[i] = fp16_to_float(h);
    } else {
      const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
      std::memcpy(&out[i], &bits, 4);
    }
  }
}

// Parses and checks one header entry against the data section's size.
Result<Entry> parse_entry(const std::string& name, const Json& v, std::uint64_t data_size) {
  const std::string t = "tensor '" + name + "': ";
  if (!v.is_object()) return input_error(t + "entry is not a JSON object");
  Entry e;
  e.name = name;
  const auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) return input_error(t + "missing or invalid dtype (a string)");
  const auto parsed = parse_dtype(dt->get_ref<const std::string&>());
  if (!parsed)
    return input_error(t + "unsupported dtype '" + dt->get<std::string>() + "' (supported: F32, F16, BF16)");
  e.dtype = *parsed;
  const auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array())
    return input_error(t + "missing or invalid shape (an array of non-negative integers)");
  // Bound numel by what the data section can hold before multiplying, so that no product
  // overflows and nothing absurd is allocated later.
  const std::uint64_t max_numel = data_size / dtype_size(e.dtype);
  std::uint64_t numel = 1;
  bool zero = false;
  for (const auto& d : *sh) {
    const auto dim = non_negative(d);
    if (!dim) return input_error(t + "missing or invalid shape (an array of non-negative integers)");
    if (*dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return input_error(t + "shape dimension " + std::to_string(*dim) + " is too large");
    e.shape.push_back(static_cast<std::int64_t>(*dim));
    if (*dim == 0) zero = true;
  }
  if (zero) {
    numel = 0;
  } else {
    for (auto dim : e.shape) {
      const auto ud = static_cast<std::uint64_t>(dim);
      if (numel > max_numel / ud)
        return input_error(t + "shape " + shape_string(e.shape) + " of " + std::string(to_string(e.dtype)) +
                           " needs more bytes than the file's " + std::to_string(data_size) +
                           " bytes of data");
      numel *= ud;
    }
  }
  const auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2)
    return input_error(t + "missing or invalid data_offsets (two non-negative integers)");
  const auto b = non_negative((*off)[0]), en = non_negative((*off)[1]);
  if (!b || !en) return input_error(t + "missing or invalid data_offsets (two non-negative integers)");
  e.begin = *b;
  e.end = *en;
  const std::string range = "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
  if (e.begin > e.end) return input_error(t + "data_offsets " + range + " are decreasing");
  if (e.end > data_size)
    return input_error(t + "data_offsets " + range + " run past the end of the data (" +
                       std::to_string(data_size) + " bytes)");
  const std::uint64_t need = numel * dtype_size(e.dtype);
  if (e.end - e.begin != need)
    return input_error(t + "data_offsets " + range + " span " + std::to_string(e.end - e.begin) +
                       " bytes but shape " + shape_string(e.shape) + " of " +
                       std::string(to_string(e.dtype)) + " needs " + std::to_string(need));
  return e;
}

Result<void> write_all(std::ofstream& out, const void* data, std::size_t n) {
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!out) return input_error("write failed");
  return {};
}

}  // namespace

Result<TensorSet> read_safetensors(const fs::path& file) {
  const std::string where = file.string();
  auto fail = [&](const std::string& msg) { return input_error(where + ": " + msg); };
  std::error_code ec;
  if (fs::is_directory(file, ec)) return fail("is a directory, not a safetensors file");
  const std::uint64_t size = fs::file_size(file, ec);
  if (ec) return fail("cannot read: " + ec.message());
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail("cannot open for reading");
  if (size < 8)
    return fail("file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  unsigned char len_bytes[8];
  if (!in.read(reinterpret_cast<char*>(len_bytes), 8)) return fail("cannot read the header length");
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > size - 8)
    return fail("header length " + std::to_string(header_len) + " runs past the end of the file (" +
                std::to_string(size) + " bytes)");
  if (header_len > kMaxHeaderBytes)
    return fail("header length " + std::to_string(header_len) + " exceeds the format's limit of " +
                std::to_string(kMaxHeaderBytes) + " bytes");
  std::string header(static_cast<std::size_t>(header_len), '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_len)))
    return fail("cannot read the header");
  const Json json = Json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return fail("header is not valid JSON");
  if (!json.is_object()) return fail("header is not a JSON object");

  const std::uint64_t data_start = 8 + header_len;
  const std::uint64_t data_size = size - data_start;
  std::vector<Entry> entries;
  for (const auto& [key, value] : json.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) return fail("__metadata__ is not a JSON object");
      continue;
    }
    auto e = parse_entry(key, value, data_size);
    if (!e) return fail(e.error().message);
    entries.push_back(std::move(e).value());
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin == e.end) continue;  // empty tensors occupy nothing
    if (prev != nullptr && e.begin < prev->end)
      return fail("tensors '" + prev->name + "' and '" + e.name + "' overlap (data_offsets [" +
                  std::to_string(prev->begin) + ", " + std::to_string(prev->end) + "] and [" +
                  std::to_string(e.begin) + ", " + std::to_string(e.end) + "])");
    prev = &e;
  }

  TensorSet set;
  std::vector<char> raw;
  for (const Entry& e : entries) {
    const std::size_t bytes = static_cast<std::size_t>(e.end - e.begin);
    Tensor t;
    t.shape = e.shape;
    t.data.resize(bytes / dtype_size(e.dtype));
    if (bytes > 0) {
      raw.resize(bytes);
      in.seekg(static_cast<std::streamoff>(data_start + e.begin));
      if (!in.read(raw.data(), static_cast<std::streamsize>(bytes)))
        return fail("cannot read tensor '" + e.name + "' (" + std::to_string(bytes) + " bytes at offset " +
                    std::to_string(data_start + e.begin) + ")");
      convert(e.dtype, raw, t.data);
    }
    set.insert(e.name, std::move(t));
  }
  return set;
}

Result<TensorSet> read_safetensors_index(const fs::path& index_json) {
  const std::string where = index_json.string();
  auto fail = [&](const std::string& msg) { return input_error(where + ": " + msg); };
  std::ifstream in(index_json, std::ios::binary);
  if (!in) return fail("cannot open for reading");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return fail("not valid JSON");
  if (!json.is_object()) return fail("not a JSON object");
  const auto wm = json.find("weight_map");
  if (wm == json.end() || !wm->is_object()) return fail("missing or invalid weight_map (an object)");
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string()) return fail("weight_map['" + name + "'] is not a string");
    const fs::path p(shard.get<std::string>());
    bool plain = !p.empty() && p.is_relative();
    for (const auto& part : p)
      if (part == "..") plain = false;
    if (!plain)
      return fail("weight_map['" + name + "']: shard '" + p.string() + "' is not a plain relative path");
    by_shard[p.string()].push_back(name);
  }
  TensorSet set;
  const fs::path dir = index_json.parent_path();
  for (const auto& [shard, names] : by_shard) {
    auto tensors = read_safetensors(dir / shard);
    if (!tensors) return tensors.error();
    for (const auto& name : names) {
      Tensor* t = tensors->find(name);
      if (t == nullptr) return fail("tensor '" + name + "' is not in its shard '" + shard + "'");
      set.insert(name, std::move(*t));
    }
  }
  return set;
}

Result<TensorSet> read_safetensors_dir(const fs::path& dir) {
  const std::string where = dir.string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return input_error(where + ": not a directory");
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index, ec)) return read_safetensors_index(index);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
  if (ec) return input_error(where + ": cannot list: " + ec.message());
  if (files.empty()) return input_error(where + ": no *.safetensors file");
  std::sort(files.begin(), files.end());
  TensorSet set;
  std::map<std::string, std::string> origin;
  for (const auto& f : files) {
    auto tensors = read_safetensors(f);
    if (!tensors) return tensors.error();
    std::vector<std::string> names;
    for (const auto& [name, t] : *tensors) names.push_back(name);
    for (const auto& name : names) {
      const auto [it, inserted] = origin.emplace(name, f.filename().string());
      if (!inserted)
        return input_error(where + ": tensor '" + name + "' is in both " + it->second + " and " +
                           f.filename().string());
      set.insert(name, tensors->take(name));
    }
  }
  return set;
}

Result<void> write_safetensors(const fs::path& file, const TensorSet& tensors, SafetensorsDtype dtype,
                               const std::map<std::string, std::string>& metadata) {
  const std::string where = file.string();
  if (dtype == SafetensorsDtype::kBF16) return input_error(where + ": writing BF16 is not supported");
  Json header = Json::object();
  Json meta = Json::object();
  meta["format"] = "pt";
  for (const auto& [k, v] : metadata) meta[k] = v;
  header["__metadata__"] = meta;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const std::uint64_t bytes = t.data.size() * dtype_size(dtype);
    header[name] = Json{{"dtype", std::string(to_string(dtype))},
                        {"shape", t.shape},
                        {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) return input_error(where + ": cannot open for writing");
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  auto ok = write_all(out, len_bytes, 8);
  if (ok) ok = write_all(out, text.data(), text.size());
  std::vector<std::uint16_t> half;
  for (const auto& [name, t] : tensors) {
    if (!ok) break;
    if (dtype == SafetensorsDtype::kF32) {
      ok = write_all(out, t.data.data(), t.data.size() * 4);
    } else {
      half.resize(t.data.size());
      for (std::size_t i = 0; i < t.data.size(); ++i) half[i] = fp16_from_float(t.data[i]);
      ok = write_all(out, half.data(), half.size() * 2);
    }
  }
  if (ok) {
    out.close();
    if (!out) ok = input_error("write failed");
  }
  if (!ok) return input_error(where + ": " + ok.error().message);
  return {};
}

Result<void> write_safetensors_sharded(const fs::path& dir, const TensorSet& tensors, int shards,
                                       SafetensorsDtype dtype) {
  IPFSA_EXPECTS(shards >= 1, "write_safetensors_sharded: shards >= 1");
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors) names.push_back(name);
  Json weight_map = Json::object();
  std::uint64_t total = 0;
  std::size_t next = 0;
  for (int s = 0; s < shards; ++s) {
    const std::size_t count =
        names.size() / shards + (static_cast<std::size_t>(s) < names.size() % shards ? 1 : 0);
    char file[64];
    std::snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, shards);
    TensorSet part;
    for (std::size_t i = 0; i < count; ++i, ++next) {
      const Tensor* t = tensors.find(names[next]);
      part.insert(names[next], *t);
      weight_map[names[next]] = file;
      total += t->data.size() * dtype_size(dtype);
    }
    auto ok = write_safetensors(dir / file, part, dtype);
    if (!ok) return ok;
  }
  const Json index{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const fs::path index_path = dir / "model.safetensors.index.json";
  std::ofstream out(index_path, std::ios::trunc);
  if (!out) return input_error(index_path.string() + ": cannot open for writing");
  out << index.dump(2) << '\n';
  out.close();
  if (!out) return input_error(index_path.string() + ": write failed");
  return {};
}

}  // namespace ipfsa::engine
