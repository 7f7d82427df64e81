// The transformer engine: model assembly from canonical weights, the forward pass of every
// family, and incremental decoding with per-layer KV caches (transformer.hpp, docs/engine.md).
#include "engine/model/transformer.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <random>
#include <string>
#include <utility>

#include "engine/kv_cache.hpp"
#include "engine/model/layers.hpp"
#include "engine/thread_pool.hpp"

namespace ipfsa::engine {

namespace {

// Keys per quantization block of the quantized KV caches (KIVI's group size).
constexpr int kKvGroup = 32;

struct Norm {
  NormKind kind = NormKind::kLayerNorm;
  float eps = 1e-5f;
  std::vector<float> weight;  // empty: no norm here
  std::vector<float> bias;    // LayerNorm only

  bool present() const { return !weight.empty(); }
  void apply(std::span<float> x) const {
    const int cols = static_cast<int>(weight.size());
    if (kind == NormKind::kLayerNorm)
      layer_norm(x, cols, weight, bias, eps);
    else
      rms_norm(x, cols, weight, eps);
  }
};

struct Attention {
  Linear q, k, v, o;
};

struct Mlp {
  Linear gate;  // out() == 0 when the MLP is not gated
  Linear up;
  Linear down;
};

struct Block {
  Norm attn_norm;
  Attention attn;
  bool has_cross = false;
  Norm cross_norm;
  Attention cross;
  Norm mlp_norm;
  Mlp mlp;        // dense MLP (no experts)
  Linear router;  // (experts, hidden) fp32; out() == 0 without experts
  std::vector<Mlp> experts;
};

struct Stack {
  StackConfig cfg;
  std::string name;              // "encoder", "decoder", "vision"
  std::vector<float> positions;  // (max_positions, hidden), learned positions only
  std::vector<float> slopes;     // ALiBi slopes, ALiBi only
  Norm embed_norm;               // post-norm stacks
  Norm final_norm;               // pre-norm stacks
  std::vector<Block> blocks;
  // Frontends read by this stack.
  Linear patch;  // (hidden, channels * patch^2)
  std::vector<float> cls;
  Linear conv1;  // (hidden, mel_bins * 3)
  Linear conv2;  // (hidden, hidden * 3)

  int hidden() const { return cfg.hidden; }
  int head_dim() const { return cfg.head_dim(); }
  int qd() const { return cfg.heads * cfg.head_dim(); }
  int kvd() const { return cfg.kv_heads * cfg.head_dim(); }
};

// One decoder layer's cache: the self-attention keys/values of every batch row, and the
// cross-attention keys/values of the encoder output (encoder-decoders).
struct LayerCache {
  std::vector<std::vector<float>> k32, v32;  // per row (tokens, kv_heads * head_dim): fp32 caches
  std::vector<KvCache> kv;                   // per row: fp16 / quantized caches
  std::vector<float> cross_k, cross_v;       // (batch * enc_seq, kv_heads * head_dim)
};

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool weights_fp32(const PrecisionPlan& p) {
  return p.attention_bits == 0 && p.ffn_bits == 0 && p.embedding_bits == 0 && p.head_bits == 0 &&
         p.edge_layer_bits == 0;
}

// transformer.hpp: fp32 for kv_bits 32 and for the fp32 plan (fp32 weights, kv_bits left at 16).
int cache_bits(const PrecisionPlan& p) {
  return p.kv_bits == 32 || (p.kv_bits == 16 && weights_fp32(p)) ? 32 : p.kv_bits;
}

KvCacheParams kv_params(const StackConfig& s, int bits) {
  KvCacheParams p;
  p.heads = s.kv_heads;
  p.head_dim = s.head_dim();
  p.bits = bits;
  p.group = kKvGroup;
  p.value_group = bits == 16 ? 0 : std::gcd(s.head_dim(), kKvGroup);
  p.window = 0;
  return p;
}

// Box-Muller over std::mt19937_64 (the numbers do not depend on the standard library).
void fill_normal(std::vector<float>& out, std::mt19937_64& rng) {
  auto uniform = [&rng] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1p-53; };
  for (std::size_t i = 0; i < out.size(); i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double a = 2.0 * std::numbers::pi * uniform();
    out[i] = static_cast<float>(r * std::cos(a));
    if (i + 1 < out.size()) out[i + 1] = static_cast<float>(r * std::sin(a));
  }
}

// Turns checked canonical tensors into layers, quantizing what the plan says, and counts bytes.
class Builder {
 public:
  Builder(const TensorSet& w, const PrecisionPlan& plan, int threads, std::shared_ptr<GpuDevice> gpu)
      : w_(w), plan_(plan), threads_(threads), gpu_(std::move(gpu)) {}

  std::vector<float> fp32(const std::string& name) {
    const Tensor* t = w_.find(name);
    IPFSA_EXPECTS(t != nullptr, "Builder: tensor checked present");
    bytes_ += t->data.size() * sizeof(float);
    return t->data;
  }
  Norm norm(const std::string& prefix, const StackConfig& s) {
    Norm n;
    n.kind = s.norm;
    n.eps = s.norm_eps;
    n.weight = fp32(prefix + ".weight");
    if (s.norm == NormKind::kLayerNorm) n.bias = fp32(prefix + ".bias");
    return n;
  }
  // A linear layer from prefix.weight (first dim = out, the rest flattened = in) and prefix.bias,
  // uploaded to the GPU when the model has one (unless `on_gpu` is false).
  Result<Linear> linear(const std::string& prefix, bool bias, int bits, bool on_gpu = true) {
    const Tensor* t = w_.find(prefix + ".weight");
    IPFSA_EXPECTS(t != nullptr && !t->shape.empty(), "Builder: tensor checked present");
    const int out = static_cast<int>(t->shape[0]);
    const int in = out > 0 ? static_cast<int>(t->numel() / out) : 0;
    std::vector<float> b = bias ? fp32(prefix + ".bias") : std::vector<float>{};
    auto l = Linear::create(prefix + ".weight", t->data, out, in, std::move(b), bits, plan_.group,
                            plan_.scheme, threads_);
    if (!l) return l.error();
    if (gpu_ && on_gpu) {
      auto up = l->upload(gpu_);
      if (!up)
        return Error{up.error().code, "tensor '" + prefix + ".weight': GPU upload: " + up.error().message};
    }
    bytes_ += l->bytes() - (bias ? static_cast<std::size_t>(out) * sizeof(float) : 0);  // bias counted above
    if (bits != 0) ++quantized_;
    return l;
  }
  Result<Linear> linear(const std::string& prefix, bool bias, Component c, int layer, int layers) {
    return linear(prefix, bias, plan_.bits_for(c, layer, layers));
  }

  Result<Attention> attention(const std::string& p, const StackConfig& s, int i) {
    Attention a;
    Linear* outs[] = {&a.q, &a.k, &a.v, &a.o};
    const char* names[] = {".q", ".k", ".v", ".o"};
    for (int j = 0; j < 4; ++j) {
      auto l = linear(p + names[j], s.qkv_bias, Component::kAttention, i, s.layers);
      if (!l) return l.error();
      *outs[j] = std::move(l).value();
    }
    return a;
  }
  Result<Mlp> mlp(const std::string& p, const StackConfig& s, int i) {
    Mlp m;
    if (s.gated_mlp) {
      auto g = linear(p + ".gate", s.mlp_bias, Component::kFeedForward, i, s.layers);
      if (!g) return g.error();
      m.gate = std::move(g).value();
    }
    auto u = linear(p + ".up", s.mlp_bias, Component::kFeedForward, i, s.layers);
    if (!u) return u.error();
    m.up = std::move(u).value();
    auto d = linear(p + ".down", s.mlp_bias, Component::kFeedForward, i, s.layers);
    if (!d) return d.error();
    m.down = std::move(d).value();
    return m;
  }

  // The blocks, norms and positions of a stack; frontends are added by the caller.
  Result<void> stack(Stack& st, const std::string& name, const StackConfig& s) {
    st.cfg = s;
    st.name = name;
    if (s.layers <= 0) return {};
    if (s.position == PositionKind::kLearned) st.positions = fp32(name + ".embed_positions.weight");
    if (s.position == PositionKind::kAlibi) st.slopes = alibi_slopes(s.heads);
    if (!s.pre_norm) st.embed_norm = norm(name + ".embed_norm", s);
    for (int i = 0; i < s.layers; ++i) {
      const std::string p = name + ".layers." + std::to_string(i);
      Block b;
      b.attn_norm = norm(p + ".attn_norm", s);
      auto a = attention(p + ".attn", s, i);
      if (!a) return a.error();
      b.attn = std::move(a).value();
      if (s.cross_attention) {
        b.has_cross = true;
        b.cross_norm = norm(p + ".cross_attn_norm", s);
        auto c = attention(p + ".cross_attn", s, i);
        if (!c) return c.error();
        b.cross = std::move(c).value();
      }
      b.mlp_norm = norm(p + ".mlp_norm", s);
      if (s.experts > 0) {
        // fp32 always (weights.hpp, TensorRole::kRouter), and on the CPU: an fp16 copy on the GPU
        // could flip a top-k choice the fp32 reference makes (docs/cuda.md §Engine backend).
        auto r = linear(p + ".moe.router", false, 0, /*on_gpu=*/false);
        if (!r) return r.error();
        b.router = std::move(r).value();
        for (int e = 0; e < s.experts; ++e) {
          auto m = mlp(p + ".moe.experts." + std::to_string(e), s, i);
          if (!m) return m.error();
          b.experts.push_back(std::move(m).value());
        }
      } else {
        auto m = mlp(p + ".mlp", s, i);
        if (!m) return m.error();
        b.mlp = std::move(m).value();
      }
      st.blocks.push_back(std::move(b));
    }
    if (s.pre_norm) st.final_norm = norm(name + ".final_norm", s);
    return {};
  }
  Result<void> patch_frontend(Stack& st) {
    auto l = linear(st.name + ".patch_embed", true, Component::kEmbedding, 0, 0);
    if (!l) return l.error();
    st.patch = std::move(l).value();
    st.cls = fp32(st.name + ".cls_token");
    return {};
  }
  Result<void> audio_frontend(Stack& st) {
    auto c1 = linear(st.name + ".conv1", true, Component::kEmbedding, 0, 0);
    if (!c1) return c1.error();
    st.conv1 = std::move(c1).value();
    auto c2 = linear(st.name + ".conv2", true, Component::kEmbedding, 0, 0);
    if (!c2) return c2.error();
    st.conv2 = std::move(c2).value();
    return {};
  }

  std::size_t bytes() const { return bytes_; }
  int quantized() const { return quantized_; }

 private:
  const TensorSet& w_;
  const PrecisionPlan& plan_;
  int threads_;
  std::shared_ptr<GpuDevice> gpu_;
  std::size_t bytes_ = 0;
  int quantized_ = 0;
};

}  // namespace

struct Model::Impl {
  ModelConfig cfg;
  PrecisionPlan plan;
  int threads = 1;
  std::size_t weight_bytes = 0;
  int quantized = 0;
  std::shared_ptr<GpuDevice> gpu;  // null: every Linear on the CPU

  bool has_table = false;
  Linear table;  // embed_tokens (vocab, hidden): lookups and the tied LM head
  Stack encoder, decoder, vision;
  bool has_lm_head = false;
  Linear lm_head;  // untied LM head, CTC head
  Linear head;     // vision classifier
  Linear text_proj, vis_proj;
  float logit_scale = 0.0f;

  int kv_bits = 32;
  std::vector<LayerCache> cache;  // one per decoder layer
  int cache_batch = 0;
  int cache_len = 0;
  int enc_len = 0;
  bool prefilled = false;

  // The GPU error of the pass that just ended, if any (Linear::apply cannot return one).
  Result<void> gpu_status() const {
    if (!gpu) return {};
    auto e = gpu->take_error();
    if (!e) return Error{e.error().code, "GPU " + std::to_string(gpu->device()) + ": " + e.error().message};
    return {};
  }

  // ---- pieces ----

  Result<std::vector<float>> embed(std::span<const std::int32_t> ids, int hidden, const char* what) const {
    std::vector<float> x(ids.size() * static_cast<std::size_t>(hidden));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= cfg.vocab)
        return input_error(std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                           " is outside the vocabulary [0, " + std::to_string(cfg.vocab) + ")");
      table.row(ids[i], std::span<float>(x.data() + i * hidden, static_cast<std::size_t>(hidden)));
    }
    if (cfg.embed_scale != 1.0f)
      for (float& v : x) v *= cfg.embed_scale;
    return x;
  }

  // Adds learned positions pos0 .. pos0 + seq - 1 to every row of x (batch, seq, hidden), then the
  // embedding norm of post-norm stacks.
  Result<void> prepare(const Stack& st, std::vector<float>& x, int batch, int seq, int pos0) const {
    const int h = st.hidden();
    if (st.cfg.position == PositionKind::kLearned) {
      if (pos0 + seq > st.cfg.max_positions)
        return input_error(st.name + ": position " + std::to_string(pos0 + seq - 1) + " is beyond the " +
                           std::to_string(st.cfg.max_positions) + "-entry learned position table (" +
                           st.name + ".max_positions)");
      for (int b = 0; b < batch; ++b)
        for (int t = 0; t < seq; ++t) {
          float* row = x.data() + (static_cast<std::size_t>(b) * seq + t) * h;
          const float* p = st.positions.data() + static_cast<std::size_t>(pos0 + t) * h;
          for (int c = 0; c < h; ++c) row[c] += p[c];
        }
    }
    if (st.embed_norm.present()) st.embed_norm.apply(x);
    return {};
  }

  void mlp_forward(const StackConfig& s, const Mlp& m, const float* h, int n, float* out) const {
    std::vector<float> up(static_cast<std::size_t>(n) * s.ffn);
    m.up.apply({h, static_cast<std::size_t>(n) * s.hidden}, n, up, threads);
    if (s.gated_mlp) {
      std::vector<float> gate(up.size());
      m.gate.apply({h, static_cast<std::size_t>(n) * s.hidden}, n, gate, threads);
      for (std::size_t i = 0; i < up.size(); ++i) up[i] *= activate(s.activation, gate[i]);
    } else {
      activate(s.activation, up);
    }
    m.down.apply(up, n, {out, static_cast<std::size_t>(n) * s.hidden}, threads);
  }

  // Mixtral routing: softmax over all experts, the top k (ties to the lower index), weights
  // renormalised over those k; each expert runs once on all the tokens routed to it.
  void moe_forward(const StackConfig& s, const Block& b, const float* h, int n, float* out) const {
    const int e_count = s.experts, k = s.experts_top_k, hd = s.hidden;
    std::vector<float> logits(static_cast<std::size_t>(n) * e_count);
    b.router.apply({h, static_cast<std::size_t>(n) * hd}, n, logits, threads);
    std::vector<std::vector<std::pair<int, float>>> routed(static_cast<std::size_t>(e_count));
    std::vector<int> order(static_cast<std::size_t>(e_count));
    for (int t = 0; t < n; ++t) {
      float* l = logits.data() + static_cast<std::size_t>(t) * e_count;
      const float mx = *std::max_element(l, l + e_count);
      double sum = 0.0;
      for (int e = 0; e < e_count; ++e) sum += (l[e] = std::exp(l[e] - mx));
      for (int e = 0; e < e_count; ++e) l[e] = static_cast<float>(l[e] / sum);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [l](int a, int c) { return l[a] != l[c] ? l[a] > l[c] : a < c; });
      double top = 0.0;
      for (int j = 0; j < k; ++j) top += l[order[j]];
      for (int j = 0; j < k; ++j) routed[order[j]].emplace_back(t, static_cast<float>(l[order[j]] / top));
    }
    std::fill(out, out + static_cast<std::size_t>(n) * hd, 0.0f);
    std::vector<float> xe, ye;
    for (int e = 0; e < e_count; ++e) {
      const auto& rows = routed[e];
      if (rows.empty()) continue;
      const int m = static_cast<int>(rows.size());
      xe.resize(static_cast<std::size_t>(m) * hd);
      ye.resize(xe.size());
      for (int r = 0; r < m; ++r)
        std::copy_n(h + static_cast<std::size_t>(rows[r].first) * hd, hd,
                    xe.data() + static_cast<std::size_t>(r) * hd);
      mlp_forward(s, b.experts[e], xe.data(), m, ye.data());
      for (int r = 0; r < m; ++r) {
        float* o = out + static_cast<std::size_t>(rows[r].first) * hd;
        const float* y = ye.data() + static_cast<std::size_t>(r) * hd;
        for (int c = 0; c < hd; ++c) o[c] += rows[r].second * y[c];
      }
    }
  }

  // Self-attention of a whole sequence per batch row (forward and prefill); appends the keys and
  // values to `cache` when given.
  Result<void> self_attention(const Stack& st, const Attention& at, const float* h, int batch, int seq,
                              LayerCache* cache, float* out) const {
    const StackConfig& s = st.cfg;
    const int n = batch * seq, qd = st.qd(), kvd = st.kvd(), hd = st.head_dim();
    std::vector<float> q(static_cast<std::size_t>(n) * qd), k(static_cast<std::size_t>(n) * kvd), v(k.size()),
        ctx(q.size());
    const std::span<const float> hs(h, static_cast<std::size_t>(n) * s.hidden);
    at.q.apply(hs, n, q, threads);
    at.k.apply(hs, n, k, threads);
    at.v.apply(hs, n, v, threads);
    if (s.position == PositionKind::kRope)
      for (int b = 0; b < batch; ++b) {
        apply_rope(q.data() + static_cast<std::size_t>(b) * seq * qd, seq, s.heads, hd, qd, 0, s.rope_theta);
        apply_rope(k.data() + static_cast<std::size_t>(b) * seq * kvd, seq, s.kv_heads, hd, kvd, 0,
                   s.rope_theta);
      }
    for (int b = 0; b < batch; ++b) {
      const std::size_t kv0 = static_cast<std::size_t>(b) * seq * kvd;
      if (cache != nullptr) {
        if (kv_bits == 32) {
          cache->k32[b].assign(k.begin() + kv0, k.begin() + kv0 + static_cast<std::size_t>(seq) * kvd);
          cache->v32[b].assign(v.begin() + kv0, v.begin() + kv0 + static_cast<std::size_t>(seq) * kvd);
        } else {
          auto ok = cache->kv[b].append_tokens({k.data() + kv0, static_cast<std::size_t>(seq) * kvd},
                                               {v.data() + kv0, static_cast<std::size_t>(seq) * kvd});
          if (!ok) return input_error(st.name + " KV cache: " + ok.error().message);
        }
      }
      AttentionArgs a;
      a.q = q.data() + static_cast<std::size_t>(b) * seq * qd;
      a.k = k.data() + kv0;
      a.v = v.data() + kv0;
      a.out = ctx.data() + static_cast<std::size_t>(b) * seq * qd;
      a.q_stride = a.out_stride = static_cast<std::size_t>(qd);
      a.kv_stride = static_cast<std::size_t>(kvd);
      a.sq = a.sk = seq;
      a.heads = s.heads;
      a.kv_heads = s.kv_heads;
      a.head_dim = hd;
      a.causal = s.causal;
      a.alibi = st.slopes;
      a.threads = threads;
      attention(a);
    }
    at.o.apply(ctx, n, {out, static_cast<std::size_t>(n) * s.hidden}, threads);
    return {};
  }

  // Self-attention of one new token per batch row at position `pos` over the cache.
  Result<void> self_attention_step(const Stack& st, const Attention& at, const float* h, int batch, int pos,
                                   LayerCache& cache, float* out) const {
    const StackConfig& s = st.cfg;
    const int qd = st.qd(), kvd = st.kvd(), hd = st.head_dim(), group = s.heads / s.kv_heads;
    std::vector<float> q(static_cast<std::size_t>(batch) * qd), k(static_cast<std::size_t>(batch) * kvd),
        v(k.size()), ctx(q.size());
    const std::span<const float> hs(h, static_cast<std::size_t>(batch) * s.hidden);
    at.q.apply(hs, batch, q, threads);
    at.k.apply(hs, batch, k, threads);
    at.v.apply(hs, batch, v, threads);
    std::vector<float> qh(static_cast<std::size_t>(kvd)), oh(qh.size()), keys, values;
    for (int b = 0; b < batch; ++b) {
      float* qb = q.data() + static_cast<std::size_t>(b) * qd;
      float* kb = k.data() + static_cast<std::size_t>(b) * kvd;
      const float* vb = v.data() + static_cast<std::size_t>(b) * kvd;
      float* ob = ctx.data() + static_cast<std::size_t>(b) * qd;
      if (s.position == PositionKind::kRope) {
        apply_rope(qb, 1, s.heads, hd, qd, pos, s.rope_theta);
        apply_rope(kb, 1, s.kv_heads, hd, kvd, pos, s.rope_theta);
      }
      const float* kd = nullptr;
      const float* vd = nullptr;
      if (kv_bits == 32) {
        cache.k32[b].insert(cache.k32[b].end(), kb, kb + kvd);
        cache.v32[b].insert(cache.v32[b].end(), vb, vb + kvd);
        kd = cache.k32[b].data();
        vd = cache.v32[b].data();
      } else {
        auto ok =
            cache.kv[b].append({kb, static_cast<std::size_t>(kvd)}, {vb, static_cast<std::size_t>(kvd)});
        if (!ok) return input_error(st.name + " KV cache: " + ok.error().message);
        if (st.slopes.empty()) {
          // KvCache::attention takes one query per kv head: run it once per query head of each
          // group (query head j * group + r reads kv head j).
          for (int r = 0; r < group; ++r) {
            for (int j = 0; j < s.kv_heads; ++j)
              std::copy_n(qb + static_cast<std::size_t>(j * group + r) * hd, hd,
                          qh.data() + static_cast<std::size_t>(j) * hd);
            auto att = cache.kv[b].attention(qh, oh);
            if (!att) return input_error(st.name + " KV cache: " + att.error().message);
            for (int j = 0; j < s.kv_heads; ++j)
              std::copy_n(oh.data() + static_cast<std::size_t>(j) * hd, hd,
                          ob + static_cast<std::size_t>(j * group + r) * hd);
          }
          continue;
        }
        // ALiBi needs a bias the cache's attention does not add: attend over its fp32 contents.
        cache.kv[b].dequantize(&keys, &values);
        kd = keys.data();
        vd = values.data();
      }
      AttentionArgs a;
      a.q = qb;
      a.k = kd;
      a.v = vd;
      a.out = ob;
      a.q_stride = a.out_stride = static_cast<std::size_t>(qd);
      a.kv_stride = static_cast<std::size_t>(kvd);
      a.sq = 1;
      a.sk = pos + 1;
      a.heads = s.heads;
      a.kv_heads = s.kv_heads;
      a.head_dim = hd;
      a.q_pos0 = pos;
      a.causal = true;
      a.alibi = st.slopes;
      a.threads = threads;
      attention(a);
    }
    at.o.apply(ctx, batch, {out, static_cast<std::size_t>(batch) * s.hidden}, threads);
    return {};
  }

  // Cross-attention of seq queries per batch row over enc_seq encoder keys/values (kvd wide).
  void cross_attention(const Stack& st, const Attention& at, const float* h, int batch, int seq,
                       const float* ck, const float* cv, int enc_seq, float* out) const {
    const StackConfig& s = st.cfg;
    const int n = batch * seq, qd = st.qd(), kvd = st.kvd();
    std::vector<float> q(static_cast<std::size_t>(n) * qd), ctx(q.size());
    at.q.apply({h, static_cast<std::size_t>(n) * s.hidden}, n, q, threads);
    for (int b = 0; b < batch; ++b) {
      AttentionArgs a;
      a.q = q.data() + static_cast<std::size_t>(b) * seq * qd;
      a.k = ck + static_cast<std::size_t>(b) * enc_seq * kvd;
      a.v = cv + static_cast<std::size_t>(b) * enc_seq * kvd;
      a.out = ctx.data() + static_cast<std::size_t>(b) * seq * qd;
      a.q_stride = a.out_stride = static_cast<std::size_t>(qd);
      a.kv_stride = static_cast<std::size_t>(kvd);
      a.sq = seq;
      a.sk = enc_seq;
      a.heads = s.heads;
      a.kv_heads = s.kv_heads;
      a.head_dim = st.head_dim();
      a.threads = threads;
      attention(a);
    }
    at.o.apply(ctx, n, {out, static_cast<std::size_t>(n) * s.hidden}, threads);
  }

  // x += sublayer(norm(x)) (pre-norm) or x = norm(x + sublayer(x)) (post-norm).
  template <typename F>
  Result<void> residual(const StackConfig& s, const Norm& norm, std::vector<float>& x, F&& sublayer) const {
    std::vector<float> delta(x.size());
    if (s.pre_norm) {
      std::vector<float> h = x;
      norm.apply(h);
      auto ok = sublayer(h.data(), delta.data());
      if (!ok) return ok;
      for (std::size_t i = 0; i < x.size(); ++i) x[i] += delta[i];
    } else {
      auto ok = sublayer(x.data(), delta.data());
      if (!ok) return ok;
      for (std::size_t i = 0; i < x.size(); ++i) x[i] += delta[i];
      norm.apply(x);
    }
    return {};
  }

  Result<void> mlp_sublayer(const Stack& st, const Block& blk, std::vector<float>& x, int n) const {
    return residual(st.cfg, blk.mlp_norm, x, [&](const float* h, float* out) -> Result<void> {
      if (st.cfg.experts > 0)
        moe_forward(st.cfg, blk, h, n, out);
      else
        mlp_forward(st.cfg, blk.mlp, h, n, out);
      return {};
    });
  }

  // The stack on x (batch, seq, hidden) = embedded input, in place: positions, blocks, final norm.
  // enc: the encoder output (batch, enc_seq, hidden) for cross-attention. caches: fill them
  // (prefill) when given.
  Result<void> run_stack(const Stack& st, std::vector<float>& x, int batch, int seq,
                         const std::vector<float>* enc, int enc_seq, std::vector<LayerCache>* caches) const {
    auto ok = prepare(st, x, batch, seq, 0);
    if (!ok) return ok;
    const int n = batch * seq;
    std::vector<float> ck, cv;
    for (std::size_t i = 0; i < st.blocks.size(); ++i) {
      const Block& blk = st.blocks[i];
      LayerCache* cache = caches != nullptr ? &(*caches)[i] : nullptr;
      ok = residual(st.cfg, blk.attn_norm, x, [&](const float* h, float* out) {
        return self_attention(st, blk.attn, h, batch, seq, cache, out);
      });
      if (!ok) return ok;
      if (blk.has_cross) {
        IPFSA_EXPECTS(enc != nullptr, "run_stack: cross-attention without an encoder output");
        const int ne = batch * enc_seq;
        ck.resize(static_cast<std::size_t>(ne) * st.kvd());
        cv.resize(ck.size());
        blk.cross.k.apply(*enc, ne, ck, threads);
        blk.cross.v.apply(*enc, ne, cv, threads);
        ok = residual(st.cfg, blk.cross_norm, x, [&](const float* h, float* out) -> Result<void> {
          cross_attention(st, blk.cross, h, batch, seq, ck.data(), cv.data(), enc_seq, out);
          return {};
        });
        if (!ok) return ok;
        if (cache != nullptr) {
          cache->cross_k = ck;
          cache->cross_v = cv;
        }
      }
      ok = mlp_sublayer(st, blk, x, n);
      if (!ok) return ok;
    }
    if (st.final_norm.present()) st.final_norm.apply(x);
    return {};
  }

  // Patch frontend: pixels (batch, channels, image, image) -> (batch, 1 + patches, hidden), class
  // token first.
  std::vector<float> patches(const Stack& st, const std::vector<float>& pixels, int batch) const {
    const int c = cfg.channels, img = cfg.image_size, p = cfg.patch_size, side = img / p, np = side * side;
    const int in = c * p * p, h = st.hidden();
    std::vector<float> cols(static_cast<std::size_t>(batch) * np * in);
    for (int b = 0; b < batch; ++b)
      for (int py = 0; py < side; ++py)
        for (int px = 0; px < side; ++px) {
          float* dst = cols.data() + (static_cast<std::size_t>(b) * np + py * side + px) * in;
          for (int ch = 0; ch < c; ++ch)
            for (int i = 0; i < p; ++i)
              for (int j = 0; j < p; ++j)
                dst[(ch * p + i) * p + j] =
                    pixels[((static_cast<std::size_t>(b) * c + ch) * img + py * p + i) * img + px * p + j];
        }
    std::vector<float> emb(static_cast<std::size_t>(batch) * np * h);
    st.patch.apply(cols, batch * np, emb, threads);
    std::vector<float> x(static_cast<std::size_t>(batch) * (np + 1) * h);
    for (int b = 0; b < batch; ++b) {
      float* dst = x.data() + static_cast<std::size_t>(b) * (np + 1) * h;
      std::copy(st.cls.begin(), st.cls.end(), dst);
      std::copy_n(emb.data() + static_cast<std::size_t>(b) * np * h, static_cast<std::size_t>(np) * h,
                  dst + h);
    }
    return x;
  }

  // Audio frontend: mel (batch, frames, mel_bins) -> conv1 (k 3, stride 1, pad 1) -> GELU -> conv2
  // (k 3, stride 2, pad 1) -> GELU: (batch, (frames + 1) / 2, hidden).
  std::vector<float> audio(const Stack& st, const std::vector<float>& mel, int batch, int frames) const {
    const int h = st.hidden();
    auto conv = [&](const Linear& l, const std::vector<float>& in, int channels, int len, int stride) {
      const int out_len = (len - 1) / stride + 1;
      std::vector<float> cols(static_cast<std::size_t>(batch) * out_len * channels * 3, 0.0f);
      for (int b = 0; b < batch; ++b)
        for (int t = 0; t < out_len; ++t) {
          float* dst = cols.data() + (static_cast<std::size_t>(b) * out_len + t) * channels * 3;
          for (int kk = 0; kk < 3; ++kk) {
            const int src = t * stride + kk - 1;
            if (src < 0 || src >= len) continue;
            const float* row = in.data() + (static_cast<std::size_t>(b) * len + src) * channels;
            for (int ch = 0; ch < channels; ++ch) dst[ch * 3 + kk] = row[ch];
          }
        }
      std::vector<float> out(static_cast<std::size_t>(batch) * out_len * h);
      l.apply(cols, batch * out_len, out, threads);
      activate(Activation::kGelu, out);
      return out;
    };
    std::vector<float> x = conv(st.conv1, mel, cfg.mel_bins, frames, 1);
    return conv(st.conv2, x, h, frames, 2);
  }

  Result<void> check_tokens(const std::vector<std::int32_t>& tokens, int batch, int seq,
                            const char* what) const {
    if (seq <= 0)
      return input_error(std::string(what) + ": sequence length " + std::to_string(seq) + " must be > 0");
    if (tokens.size() != static_cast<std::size_t>(batch) * seq)
      return input_error(std::string(what) + ": " + std::to_string(tokens.size()) + " ids for batch " +
                         std::to_string(batch) + " x " + std::to_string(seq));
    return {};
  }

  // LM / CTC logits of n rows of hidden states.
  std::vector<float> lm_logits(const std::vector<float>& hidden, int n) const {
    const Linear& head = has_lm_head ? lm_head : table;
    std::vector<float> logits(static_cast<std::size_t>(n) * head.out());
    head.apply(hidden, n, logits, threads);
    return logits;
  }

  // The encoder of an encoder-decoder on its input; sets enc_seq.
  Result<std::vector<float>> run_encoder(const ModelInput& in, int* enc_seq) const {
    std::vector<float> x;
    if (cfg.frontend == Frontend::kAudioConv) {
      auto ok = check_mel(in);
      if (!ok) return ok.error();
      x = audio(encoder, in.mel, in.batch, in.frames);
      *enc_seq = (in.frames + 1) / 2;
    } else {
      auto ok = check_tokens(in.tokens, in.batch, in.seq, "tokens");
      if (!ok) return ok.error();
      auto e = embed(in.tokens, encoder.hidden(), "tokens");
      if (!e) return e.error();
      x = std::move(e).value();
      *enc_seq = in.seq;
    }
    auto ok = run_stack(encoder, x, in.batch, *enc_seq, nullptr, 0, nullptr);
    if (!ok) return ok.error();
    return x;
  }

  Result<void> check_mel(const ModelInput& in) const {
    if (in.frames <= 0) return input_error("mel: frames " + std::to_string(in.frames) + " must be > 0");
    if (in.mel.size() != static_cast<std::size_t>(in.batch) * in.frames * cfg.mel_bins)
      return input_error("mel: " + std::to_string(in.mel.size()) + " values for batch " +
                         std::to_string(in.batch) + " x frames " + std::to_string(in.frames) +
                         " x mel_bins " + std::to_string(cfg.mel_bins));
    return {};
  }
  Result<void> check_pixels(const ModelInput& in) const {
    const std::size_t want =
        static_cast<std::size_t>(in.batch) * cfg.channels * cfg.image_size * cfg.image_size;
    if (in.pixels.size() != want)
      return input_error("pixels: " + std::to_string(in.pixels.size()) + " values for batch " +
                         std::to_string(in.batch) + " x " + std::to_string(cfg.channels) + " x " +
                         std::to_string(cfg.image_size) + " x " + std::to_string(cfg.image_size));
    return {};
  }

  // The whole model; caches non-null: prefill the decoder's.
  Result<ModelOutput> run(const ModelInput& in, std::vector<LayerCache>* caches) const {
    if (in.batch <= 0) return input_error("batch " + std::to_string(in.batch) + " must be > 0");
    ModelOutput out;
    out.batch = in.batch;
    auto finish_lm = [&](std::vector<float> x, int seq, int hidden) {
      out.seq = seq;
      out.hidden_size = hidden;
      out.logits = lm_logits(x, in.batch * seq);
      out.logits_shape = {in.batch, seq, static_cast<std::int64_t>(out.logits.size() / (in.batch * seq))};
      out.hidden = std::move(x);
    };
    switch (cfg.family) {
      case Family::kEncoder:
      case Family::kDecoder:
      case Family::kMoe: {
        const Stack& st = cfg.family == Family::kEncoder ? encoder : decoder;
        auto ok = check_tokens(in.tokens, in.batch, in.seq, "tokens");
        if (!ok) return ok.error();
        auto x = embed(in.tokens, st.hidden(), "tokens");
        if (!x) return x.error();
        ok = run_stack(st, *x, in.batch, in.seq, nullptr, 0, caches);
        if (!ok) return ok.error();
        finish_lm(std::move(x).value(), in.seq, st.hidden());
        return out;
      }
      case Family::kEncoderDecoder: {
        int enc_seq = 0;
        auto enc = run_encoder(in, &enc_seq);
        if (!enc) return enc.error();
        auto ok = check_tokens(in.decoder_tokens, in.batch, in.decoder_seq, "decoder_tokens");
        if (!ok) return ok.error();
        auto x = embed(in.decoder_tokens, decoder.hidden(), "decoder_tokens");
        if (!x) return x.error();
        ok = run_stack(decoder, *x, in.batch, in.decoder_seq, &enc.value(), enc_seq, caches);
        if (!ok) return ok.error();
        finish_lm(std::move(x).value(), in.decoder_seq, decoder.hidden());
        return out;
      }
      case Family::kVision: {
        auto ok = check_pixels(in);
        if (!ok) return ok.error();
        const int seq = (cfg.image_size / cfg.patch_size) * (cfg.image_size / cfg.patch_size) + 1;
        std::vector<float> x = patches(encoder, in.pixels, in.batch);
        ok = run_stack(encoder, x, in.batch, seq, nullptr, 0, nullptr);
        if (!ok) return ok.error();
        const int h = encoder.hidden();
        std::vector<float> cls(static_cast<std::size_t>(in.batch) * h);
        for (int b = 0; b < in.batch; ++b)
          std::copy_n(x.data() + static_cast<std::size_t>(b) * seq * h, h,
                      cls.data() + static_cast<std::size_t>(b) * h);
        out.logits.resize(static_cast<std::size_t>(in.batch) * cfg.num_labels);
        head.apply(cls, in.batch, out.logits, threads);
        out.logits_shape = {in.batch, cfg.num_labels};
        out.seq = seq;
        out.hidden_size = h;
        out.hidden = std::move(x);
        return out;
      }
      case Family::kAudio: {
        auto ok = check_mel(in);
        if (!ok) return ok.error();
        std::vector<float> x = audio(encoder, in.mel, in.batch, in.frames);
        const int seq = (in.frames + 1) / 2;
        ok = run_stack(encoder, x, in.batch, seq, nullptr, 0, nullptr);
        if (!ok) return ok.error();
        finish_lm(std::move(x), seq, encoder.hidden());
        return out;
      }
      case Family::kDualEncoder: {
        auto ok = check_tokens(in.tokens, in.batch, in.seq, "tokens");
        if (!ok) return ok.error();
        ok = check_pixels(in);
        if (!ok) return ok.error();
        auto text = embed(in.tokens, encoder.hidden(), "tokens");
        if (!text) return text.error();
        ok = run_stack(encoder, *text, in.batch, in.seq, nullptr, 0, nullptr);
        if (!ok) return ok.error();
        const int vseq = (cfg.image_size / cfg.patch_size) * (cfg.image_size / cfg.patch_size) + 1;
        std::vector<float> img = patches(vision, in.pixels, in.batch);
        ok = run_stack(vision, img, in.batch, vseq, nullptr, 0, nullptr);
        if (!ok) return ok.error();
        // Pool: the text tower's last token, the image tower's class token.
        const int ht = encoder.hidden(), hv = vision.hidden(), pd = cfg.projection_dim;
        std::vector<float> tp(static_cast<std::size_t>(in.batch) * ht),
            vp(static_cast<std::size_t>(in.batch) * hv);
        for (int b = 0; b < in.batch; ++b) {
          std::copy_n(text->data() + (static_cast<std::size_t>(b) * in.seq + in.seq - 1) * ht, ht,
                      tp.data() + static_cast<std::size_t>(b) * ht);
          std::copy_n(img.data() + static_cast<std::size_t>(b) * vseq * hv, hv,
                      vp.data() + static_cast<std::size_t>(b) * hv);
        }
        std::vector<float> te(static_cast<std::size_t>(in.batch) * pd), ve(te.size());
        text_proj.apply(tp, in.batch, te, threads);
        vis_proj.apply(vp, in.batch, ve, threads);
        for (auto* e : {&te, &ve})
          for (int b = 0; b < in.batch; ++b) {
            float* r = e->data() + static_cast<std::size_t>(b) * pd;
            double sq = 0.0;
            for (int c = 0; c < pd; ++c) sq += static_cast<double>(r[c]) * r[c];
            const auto inv = static_cast<float>(1.0 / std::max(std::sqrt(sq), 1e-12));
            for (int c = 0; c < pd; ++c) r[c] *= inv;
          }
        const float scale = std::exp(logit_scale);
        out.logits.resize(static_cast<std::size_t>(in.batch) * in.batch);
        for (int i = 0; i < in.batch; ++i)
          for (int j = 0; j < in.batch; ++j) {
            double dot = 0.0;
            for (int c = 0; c < pd; ++c)
              dot += static_cast<double>(te[static_cast<std::size_t>(i) * pd + c]) *
                     ve[static_cast<std::size_t>(j) * pd + c];
            out.logits[static_cast<std::size_t>(i) * in.batch + j] = scale * static_cast<float>(dot);
          }
        out.logits_shape = {in.batch, in.batch};
        out.seq = vseq;
        out.hidden_size = hv;
        out.hidden = std::move(img);
        return out;
      }
    }
    return input_error("unknown family");
  }

  Result<ModelOutput> step(std::span<const std::int32_t> tokens) {
    const int batch = cache_batch, pos = cache_len;
    const Stack& st = decoder;
    const int h = st.hidden();
    auto x = embed(tokens, h, "tokens");
    if (!x) return x.error();
    auto ok = prepare(st, *x, batch, 1, pos);
    if (!ok) return ok.error();
    std::vector<float>& xs = *x;
    for (std::size_t i = 0; i < st.blocks.size(); ++i) {
      const Block& blk = st.blocks[i];
      LayerCache& lc = cache[i];
      ok = residual(st.cfg, blk.attn_norm, xs, [&](const float* hp, float* out) {
        return self_attention_step(st, blk.attn, hp, batch, pos, lc, out);
      });
      if (!ok) return ok.error();
      if (blk.has_cross) {
        ok = residual(st.cfg, blk.cross_norm, xs, [&](const float* hp, float* out) -> Result<void> {
          cross_attention(st, blk.cross, hp, batch, 1, lc.cross_k.data(), lc.cross_v.data(), enc_len, out);
          return {};
        });
        if (!ok) return ok.error();
      }
      ok = mlp_sublayer(st, blk, xs, batch);
      if (!ok) return ok.error();
    }
    if (st.final_norm.present()) st.final_norm.apply(xs);
    ModelOutput out;
    out.batch = batch;
    out.seq = 1;
    out.hidden_size = h;
    out.logits = lm_logits(xs, batch);
    out.logits_shape = {batch, 1, static_cast<std::int64_t>(out.logits.size() / batch)};
    out.hidden = std::move(xs);
    return out;
  }
};

// ---- Model ----

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Result<Model> Model::build(const ModelConfig& config, const TensorSet& weights, const PrecisionPlan& plan,
                           int threads, std::shared_ptr<GpuDevice> gpu) {
  const std::string where = config.name.empty() ? std::string("model") : "model '" + config.name + "'";
  auto valid = config.validate(where);
  if (!valid) return valid.error();
  if (plan.kv_bits != 2 && plan.kv_bits != 4 && plan.kv_bits != 16 && plan.kv_bits != 32)
    return input_error("precision '" + plan.name + "': kv_bits " + std::to_string(plan.kv_bits) +
                       " must be 2, 4, 16 or 32");
  for (const TensorSpec& spec : canonical_tensors(config)) {
    const Tensor* t = weights.find(spec.name);
    if (t == nullptr) return input_error(where + ": tensor '" + spec.name + "' is missing");
    if (t->shape != spec.shape)
      return input_error(where + ": tensor '" + spec.name + "' has shape " + shape_string(t->shape) +
                         ", expected " + shape_string(spec.shape));
  }
  if (threads <= 0) threads = default_thread_count();

  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.cfg = config;
  m.plan = plan;
  m.threads = threads;
  m.kv_bits = cache_bits(plan);
  m.gpu = gpu;
  Builder b(weights, plan, threads, std::move(gpu));
  auto fail = [&](const Error& e) { return Error{e.code, where + ": " + e.message}; };

  if (weights.contains("embed_tokens.weight") &&
      (config.family == Family::kEncoder || config.family == Family::kDecoder ||
       config.family == Family::kMoe || config.family == Family::kEncoderDecoder ||
       config.family == Family::kDualEncoder)) {
    auto t = b.linear("embed_tokens", false, Component::kEmbedding, 0, 0);
    if (!t) return fail(t.error());
    m.table = std::move(t).value();
    m.has_table = true;
  }
  const std::pair<Stack*, const StackConfig*> stacks[] = {
      {&m.encoder, &config.encoder}, {&m.decoder, &config.decoder}, {&m.vision, &config.vision}};
  const char* names[] = {"encoder", "decoder", "vision"};
  for (int i = 0; i < 3; ++i) {
    auto ok = b.stack(*stacks[i].first, names[i], *stacks[i].second);
    if (!ok) return fail(ok.error());
  }
  Result<void> fe;
  if (config.family == Family::kVision) fe = b.patch_frontend(m.encoder);
  if (config.family == Family::kDualEncoder) fe = b.patch_frontend(m.vision);
  if (config.family == Family::kAudio ||
      (config.family == Family::kEncoderDecoder && config.frontend == Frontend::kAudioConv))
    fe = b.audio_frontend(m.encoder);
  if (!fe) return fail(fe.error());

  switch (config.family) {
    case Family::kEncoder:
    case Family::kDecoder:
    case Family::kMoe:
    case Family::kEncoderDecoder:
    case Family::kAudio:
      if (config.family == Family::kAudio || !config.tie_embeddings) {
        auto l = b.linear("lm_head", config.family == Family::kAudio, Component::kHead, 0, 0);
        if (!l) return fail(l.error());
        m.lm_head = std::move(l).value();
        m.has_lm_head = true;
      }
      break;
    case Family::kVision: {
      auto l = b.linear("head", true, Component::kHead, 0, 0);
      if (!l) return fail(l.error());
      m.head = std::move(l).value();
      break;
    }
    case Family::kDualEncoder: {
      auto t = b.linear("text_projection", false, Component::kHead, 0, 0);
      if (!t) return fail(t.error());
      m.text_proj = std::move(t).value();
      auto v = b.linear("visual_projection", false, Component::kHead, 0, 0);
      if (!v) return fail(v.error());
      m.vis_proj = std::move(v).value();
      m.logit_scale = b.fp32("logit_scale")[0];
      break;
    }
  }
  if (m.kv_bits != 32 && config.decoder.layers > 0) {
    auto probe = KvCache::create(kv_params(config.decoder, m.kv_bits));
    if (!probe)
      return input_error(where + ": KV cache at " + std::to_string(m.kv_bits) +
                         " bits: " + probe.error().message);
  }
  m.weight_bytes = b.bytes();
  m.quantized = b.quantized();
  return Model(std::move(impl));
}

Result<ModelOutput> Model::forward(const ModelInput& input) const {
  auto out = impl_->run(input, nullptr);
  if (auto gpu = impl_->gpu_status(); !gpu) return gpu.error();
  return out;
}

bool Model::can_decode() const {
  const Family f = impl_->cfg.family;
  return f == Family::kDecoder || f == Family::kMoe || f == Family::kEncoderDecoder;
}

Result<ModelOutput> Model::prefill(const ModelInput& input) {
  Impl& m = *impl_;
  reset_cache();
  if (!can_decode())
    return input_error("prefill: a model of family '" + std::string(to_string(m.cfg.family)) +
                       "' has no decoder to cache");
  if (input.batch <= 0) return input_error("batch " + std::to_string(input.batch) + " must be > 0");
  m.cache.assign(m.decoder.blocks.size(), LayerCache{});
  for (LayerCache& c : m.cache) {
    if (m.kv_bits == 32) {
      c.k32.assign(static_cast<std::size_t>(input.batch), {});
      c.v32.assign(static_cast<std::size_t>(input.batch), {});
    } else {
      for (int b = 0; b < input.batch; ++b) {
        auto kv = KvCache::create(kv_params(m.cfg.decoder, m.kv_bits));
        IPFSA_EXPECTS(kv.ok(), "prefill: KV cache parameters were checked by build");
        c.kv.push_back(std::move(kv).value());
      }
    }
  }
  auto out = m.run(input, &m.cache);
  if (auto gpu = m.gpu_status(); !gpu) out = gpu.error();
  if (!out) {
    reset_cache();
    return out.error();
  }
  m.cache_batch = input.batch;
  m.cache_len = m.cfg.family == Family::kEncoderDecoder ? input.decoder_seq : input.seq;
  m.enc_len = 0;
  if (m.cfg.family == Family::kEncoderDecoder && !m.cache.empty() && m.decoder.kvd() > 0)
    m.enc_len = static_cast<int>(m.cache[0].cross_k.size() /
                                 (static_cast<std::size_t>(input.batch) * m.decoder.kvd()));
  m.prefilled = true;
  return out;
}

Result<ModelOutput> Model::decode_step(std::span<const std::int32_t> tokens) {
  Impl& m = *impl_;
  if (!m.prefilled) return input_error("decode_step: no prefilled sequence (call prefill first)");
  if (tokens.size() != static_cast<std::size_t>(m.cache_batch))
    return input_error("decode_step: " + std::to_string(tokens.size()) + " tokens for a batch of " +
                       std::to_string(m.cache_batch));
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= m.cfg.vocab)
      return input_error("decode_step: tokens[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) +
                         " is outside the vocabulary [0, " + std::to_string(m.cfg.vocab) + ")");
  const StackConfig& s = m.cfg.decoder;
  if (s.position == PositionKind::kLearned && m.cache_len >= s.max_positions)
    return input_error("decode_step: position " + std::to_string(m.cache_len) + " is beyond the " +
                       std::to_string(s.max_positions) +
                       "-entry learned position table (decoder.max_positions)");
  auto out = m.step(tokens);
  if (auto gpu = m.gpu_status(); !gpu) out = gpu.error();
  if (!out) {
    reset_cache();  // some layers may hold the token already
    return out.error();
  }
  ++m.cache_len;
  return out;
}

void Model::reset_cache() {
  Impl& m = *impl_;
  m.cache.clear();
  m.cache_batch = m.cache_len = m.enc_len = 0;
  m.prefilled = false;
}

int Model::cached_tokens() const {
  return impl_->cache_len;
}

int Model::kv_cache_bits() const {
  return impl_->kv_bits;
}

std::size_t Model::kv_cache_bytes() const {
  std::size_t n = 0;
  for (const LayerCache& c : impl_->cache) {
    for (const auto& k : c.k32) n += k.size() * sizeof(float);
    for (const auto& v : c.v32) n += v.size() * sizeof(float);
    for (const auto& kv : c.kv) n += kv.bytes();
    n += (c.cross_k.size() + c.cross_v.size()) * sizeof(float);
  }
  return n;
}

const ModelConfig& Model::config() const {
  return impl_->cfg;
}

const PrecisionPlan& Model::plan() const {
  return impl_->plan;
}

std::size_t Model::weight_bytes() const {
  return impl_->weight_bytes;
}

int Model::quantized_matrices() const {
  return impl_->quantized;
}

const GpuDevice* Model::gpu() const {
  return impl_->gpu.get();
}

// ---- inputs ----

ModelInput make_synthetic_input(const ModelConfig& config, int batch, int seq_len, std::uint64_t seed) {
  ModelInput in;
  in.batch = batch;
  std::mt19937_64 rng(seed);
  auto ids = [&](int n) {
    std::vector<std::int32_t> v(static_cast<std::size_t>(std::max(n, 0)));
    for (auto& t : v)
      t = config.vocab > 0 ? static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(config.vocab)) : 0;
    return v;
  };
  const bool text = config.family == Family::kEncoder || config.family == Family::kDecoder ||
                    config.family == Family::kMoe || config.family == Family::kDualEncoder ||
                    (config.family == Family::kEncoderDecoder && config.frontend == Frontend::kTokens);
  if (text) {
    in.seq = seq_len;
    in.tokens = ids(batch * seq_len);
  }
  if (config.family == Family::kVision || config.family == Family::kDualEncoder) {
    in.pixels.resize(static_cast<std::size_t>(std::max(batch, 0)) * config.channels * config.image_size *
                     config.image_size);
    fill_normal(in.pixels, rng);
  }
  if (config.family == Family::kAudio ||
      (config.family == Family::kEncoderDecoder && config.frontend == Frontend::kAudioConv)) {
    in.frames = 2 * seq_len;
    in.mel.resize(static_cast<std::size_t>(std::max(batch, 0)) * in.frames * config.mel_bins);
    fill_normal(in.mel, rng);
  }
  if (config.family == Family::kEncoderDecoder) {
    in.decoder_seq = seq_len;
    in.decoder_tokens = ids(batch * seq_len);
  }
  return in;
}

}  // namespace ipfsa::engine
