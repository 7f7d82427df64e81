// Names, validation, parameter counts and precision lookup of model_config.hpp.
#include "engine/model/model_config.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <utility>

#include "engine/model/weights.hpp"

namespace ipfsa::engine {

namespace {

template <typename E, std::size_t N>
std::optional<E> parse_from(const std::array<std::pair<E, std::string_view>, N>& table, std::string_view s) {
  for (const auto& [value, name] : table)
    if (name == s) return value;
  return std::nullopt;
}

template <typename E, std::size_t N>
std::string_view name_of(const std::array<std::pair<E, std::string_view>, N>& table, E e) {
  for (const auto& [value, name] : table)
    if (value == e) return name;
  return "?";
}

constexpr std::array<std::pair<Family, std::string_view>, 7> kFamilies{{
    {Family::kEncoder, "encoder"},
    {Family::kDecoder, "decoder"},
    {Family::kEncoderDecoder, "encoder_decoder"},
    {Family::kVision, "vision"},
    {Family::kAudio, "audio"},
    {Family::kDualEncoder, "dual_encoder"},
    {Family::kMoe, "moe"},
}};
constexpr std::array<std::pair<NormKind, std::string_view>, 2> kNorms{{
    {NormKind::kLayerNorm, "layer_norm"},
    {NormKind::kRmsNorm, "rms_norm"},
}};
constexpr std::array<std::pair<Activation, std::string_view>, 4> kActivations{{
    {Activation::kGelu, "gelu"},
    {Activation::kGeluTanh, "gelu_tanh"},
    {Activation::kSilu, "silu"},
    {Activation::kRelu, "relu"},
}};
constexpr std::array<std::pair<PositionKind, std::string_view>, 4> kPositions{{
    {PositionKind::kLearned, "learned"},
    {PositionKind::kRope, "rope"},
    {PositionKind::kAlibi, "alibi"},
    {PositionKind::kNone, "none"},
}};
constexpr std::array<std::pair<Frontend, std::string_view>, 3> kFrontends{{
    {Frontend::kTokens, "tokens"},
    {Frontend::kPatches, "patches"},
    {Frontend::kAudioConv, "audio_conv"},
}};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Checks one present stack; errors name "<stack>.<field>".
Result<void> validate_stack(const StackConfig& s, std::string_view name) {
  const std::string p = std::string(name) + ".";
  auto bad = [&](const std::string& field, const std::string& msg) {
    return input_error(p + field + ": " + msg);
  };
  if (s.layers < 0) return bad("layers", std::to_string(s.layers) + " is negative");
  if (s.hidden <= 0) return bad("hidden", std::to_string(s.hidden) + " must be > 0");
  if (s.heads <= 0) return bad("heads", std::to_string(s.heads) + " must be > 0");
  if (s.hidden % s.heads != 0)
    return bad("heads", std::to_string(s.heads) + " does not divide hidden " + std::to_string(s.hidden));
  if (s.kv_heads <= 0 || s.kv_heads > s.heads)
    return bad("kv_heads",
               std::to_string(s.kv_heads) + " must be in [1, heads " + std::to_string(s.heads) + "]");
  if (s.heads % s.kv_heads != 0)
    return bad("kv_heads", std::to_string(s.kv_heads) + " does not divide heads " + std::to_string(s.heads));
  if (s.ffn <= 0) return bad("ffn", std::to_string(s.ffn) + " must be > 0");
  if (!(s.norm_eps > 0.0f) || !std::isfinite(s.norm_eps))
    return bad("norm_eps", num(s.norm_eps) + " must be > 0");
  if (s.position == PositionKind::kRope) {
    if (s.head_dim() % 2 != 0)
      return bad("position", "rope needs an even head_dim, got " + std::to_string(s.head_dim()));
    if (!(s.rope_theta > 0.0f) || !std::isfinite(s.rope_theta))
      return bad("rope_theta", num(s.rope_theta) + " must be > 0");
  }
  if (s.position == PositionKind::kLearned && s.max_positions <= 0)
    return bad("max_positions", std::to_string(s.max_positions) + " must be > 0 with learned positions");
  if (s.experts < 0) return bad("experts", std::to_string(s.experts) + " is negative");
  if (s.experts > 0 && (s.experts_top_k < 1 || s.experts_top_k > s.experts))
    return bad("experts_top_k", std::to_string(s.experts_top_k) + " must be in [1, experts " +
                                    std::to_string(s.experts) + "]");
  if (s.experts == 0 && s.experts_top_k != 0)
    return bad("experts_top_k", std::to_string(s.experts_top_k) + " set without experts");
  return {};
}

}  // namespace

std::string_view to_string(Family f) {
  return name_of(kFamilies, f);
}
std::string_view to_string(NormKind n) {
  return name_of(kNorms, n);
}
std::string_view to_string(Activation a) {
  return name_of(kActivations, a);
}
std::string_view to_string(PositionKind p) {
  return name_of(kPositions, p);
}
std::string_view to_string(Frontend f) {
  return name_of(kFrontends, f);
}
std::optional<Family> parse_family(std::string_view s) {
  return parse_from(kFamilies, s);
}
std::optional<NormKind> parse_norm(std::string_view s) {
  return parse_from(kNorms, s);
}
std::optional<Activation> parse_activation(std::string_view s) {
  return parse_from(kActivations, s);
}
std::optional<PositionKind> parse_position(std::string_view s) {
  return parse_from(kPositions, s);
}
std::optional<Frontend> parse_frontend(std::string_view s) {
  return parse_from(kFrontends, s);
}

Result<void> ModelConfig::validate(std::string_view where) const {
  const std::string prefix = where.empty() ? std::string() : std::string(where) + ": ";
  auto bad = [&](const std::string& field, const std::string& msg) {
    return input_error(prefix + field + ": " + msg);
  };
  const std::string fam(to_string(family));
  const bool enc = encoder.layers > 0, dec = decoder.layers > 0, vis = vision.layers > 0;

  // Which stacks the family uses (model_config.hpp, top).
  bool want_enc = false, want_dec = false, want_vis = false;
  switch (family) {
    case Family::kEncoder:
    case Family::kVision:
    case Family::kAudio:
      want_enc = true;
      break;
    case Family::kDecoder:
    case Family::kMoe:
      want_dec = true;
      break;
    case Family::kEncoderDecoder:
      want_enc = want_dec = true;
      break;
    case Family::kDualEncoder:
      want_enc = want_vis = true;
      break;
  }
  const std::pair<const StackConfig*, std::string_view> stacks[] = {
      {&encoder, "encoder"}, {&decoder, "decoder"}, {&vision, "vision"}};
  const bool want[] = {want_enc, want_dec, want_vis};
  const bool have[] = {enc, dec, vis};
  for (int i = 0; i < 3; ++i) {
    const std::string sname(stacks[i].second);
    if (stacks[i].first->layers < 0)
      return bad(sname + ".layers", std::to_string(stacks[i].first->layers) + " is negative");
    if (want[i] && !have[i]) return bad(sname + ".layers", "must be > 0 for a " + fam + " model");
    if (!want[i] && have[i])
      return bad(sname + ".layers", "must be 0 (stack unused) for a " + fam + " model");
    if (have[i]) {
      auto ok = validate_stack(*stacks[i].first, sname);
      if (!ok) return input_error(prefix + ok.error().message);
    }
  }

  // Frontend and heads.
  const bool tokens_in = family == Family::kEncoder || family == Family::kDecoder || family == Family::kMoe ||
                         family == Family::kDualEncoder ||
                         (family == Family::kEncoderDecoder && frontend == Frontend::kTokens);
  switch (family) {
    case Family::kEncoder:
    case Family::kDecoder:
    case Family::kMoe:
      if (frontend != Frontend::kTokens) return bad("frontend", "must be tokens for a " + fam + " model");
      break;
    case Family::kEncoderDecoder:
      if (frontend == Frontend::kPatches)
        return bad("frontend", "must be tokens or audio_conv for a " + fam + " model");
      break;
    case Family::kVision:
      if (frontend != Frontend::kPatches) return bad("frontend", "must be patches for a vision model");
      break;
    case Family::kAudio:
      if (frontend != Frontend::kAudioConv) return bad("frontend", "must be audio_conv for an audio model");
      break;
    case Family::kDualEncoder:
      break;  // text tokens and image patches both; the field is informative
  }
  const bool needs_vocab = tokens_in || family == Family::kEncoderDecoder || family == Family::kAudio;
  if (needs_vocab && vocab <= 0)
    return bad("vocab", std::to_string(vocab) + " must be > 0 for a " + fam + " model");
  const bool patches = family == Family::kVision || family == Family::kDualEncoder;
  if (patches) {
    if (image_size <= 0) return bad("image_size", std::to_string(image_size) + " must be > 0");
    if (patch_size <= 0) return bad("patch_size", std::to_string(patch_size) + " must be > 0");
    if (image_size % patch_size != 0)
      return bad("patch_size",
                 std::to_string(patch_size) + " does not divide image_size " + std::to_string(image_size));
    if (channels <= 0) return bad("channels", std::to_string(channels) + " must be > 0");
    const StackConfig& tower = family == Family::kVision ? encoder : vision;
    const int seq = (image_size / patch_size) * (image_size / patch_size) + 1;
    if (tower.position == PositionKind::kLearned && tower.max_positions < seq)
      return bad(std::string(family == Family::kVision ? "encoder" : "vision") + ".max_positions",
                 std::to_string(tower.max_positions) + " is less than the " + std::to_string(seq) +
                     " patches + class token");
  }
  if (family == Family::kVision && num_labels <= 0)
    return bad("num_labels", std::to_string(num_labels) + " must be > 0 for a vision model");
  if (frontend == Frontend::kAudioConv && (family == Family::kAudio || family == Family::kEncoderDecoder) &&
      mel_bins <= 0)
    return bad("mel_bins", std::to_string(mel_bins) + " must be > 0 with the audio_conv frontend");
  if (family == Family::kDualEncoder && projection_dim <= 0)
    return bad("projection_dim", std::to_string(projection_dim) + " must be > 0 for a dual_encoder model");
  if (!(embed_scale > 0.0f) || !std::isfinite(embed_scale))
    return bad("embed_scale", num(embed_scale) + " must be > 0");

  // Cross-attention and experts belong to particular families.
  if (family == Family::kEncoderDecoder) {
    if (!decoder.cross_attention)
      return bad("decoder.cross_attention", "must be true for an encoder_decoder model");
    if (encoder.hidden != decoder.hidden)
      return bad("decoder.hidden", std::to_string(decoder.hidden) + " differs from encoder.hidden " +
                                       std::to_string(encoder.hidden) +
                                       " (cross-attention reads the encoder output)");
  }
  for (int i = 0; i < 3; ++i) {
    const std::string sname(stacks[i].second);
    if (!have[i]) continue;
    if (stacks[i].first->cross_attention && !(family == Family::kEncoderDecoder && i == 1))
      return bad(sname + ".cross_attention",
                 "only the decoder of an encoder_decoder model has cross-attention");
    if (stacks[i].first->experts > 0 && !(family == Family::kMoe && i == 1))
      return bad(sname + ".experts", "only the decoder of a moe model has experts");
  }
  if (family == Family::kMoe && decoder.experts <= 0)
    return bad("decoder.experts", std::to_string(decoder.experts) + " must be > 0 for a moe model");
  return {};
}

std::int64_t ModelConfig::parameters() const {
  std::int64_t n = 0;
  for (const auto& spec : canonical_tensors(*this)) {
    std::int64_t e = 1;
    for (auto d : spec.shape) e *= d;
    n += e;
  }
  return n;
}

int PrecisionPlan::bits_for(Component c, int layer, int layers) const {
  switch (c) {
    case Component::kEmbedding:
      return embedding_bits;
    case Component::kHead:
      return head_bits;
    case Component::kAttention:
    case Component::kFeedForward:
      break;
  }
  if (edge_layer_bits != 0 && edge_layers > 0 && (layer < edge_layers || layer >= layers - edge_layers))
    return edge_layer_bits;
  return c == Component::kAttention ? attention_bits : ffn_bits;
}

}  // namespace ipfsa::engine
