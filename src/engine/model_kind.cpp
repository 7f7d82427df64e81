// The `model` kind (issue 3 item 7): one forward-pass measurement of a catalog model at a
// precision, with its accuracy against the fp32 run of the same weights on the same input.
//
// Params (all optional): size = tiny | real (tiny), seed (1) for weights and input, threads (1),
// decode_tokens (8) for the decode measurement, accuracy = 1 | 0 (1), path = a HuggingFace-style
// folder (config.json + *.safetensors) whose architecture and weights replace the catalog's
// synthetic ones (then `model` is only a label and need not be in the catalog).
// Scenarios:
//   latency     warm-up, then `repeats` forward passes of (batch, seq_len); samples = seconds per pass
//   throughput  the same passes; throughput = samples (batch rows) per second over all passes
//   prefill     decoders: `repeats` prefills of seq_len tokens; throughput = prompt tokens / s
//   decode      decoders: prefill, then `repeats` x decode_tokens steps; samples = seconds per
//               step; throughput = generated tokens / s (all batch rows)
// Decoders (decoder, moe, encoder_decoder) also report metrics prefill_s and decode_tokens_per_s in
// every scenario. Other metrics: parameters, weight_bytes, bits_per_weight (weight_bytes * 8 /
// parameters), quantized_matrices, kv_cache_bits, kv_cache_bytes, threads.
// hardware: cuda runs the linear layers on the GPU that IPFSA_CUDA_DEVICE names (default 0; the
// worker sets it for its executor), adds metrics gpu_device and gpu_weight_bytes, and compares
// accuracy against the CPU fp32 model (docs/cuda.md §Engine backend).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/model_kind.hpp"

#include "engine/kind_util.hpp"
#include "engine/model/accuracy.hpp"
#include "engine/model/catalog.hpp"
#include "engine/model/gpu.hpp"
#include "engine/model/hf_config.hpp"
#include "engine/model/precision.hpp"
#include "engine/model/transformer.hpp"
#include "engine/model/weights.hpp"

namespace ipfsa::engine {

namespace {

using Clock = std::chrono::steady_clock;

template <class F>
double timed(F&& f) {
  const auto t0 = Clock::now();
  f();
  return seconds_between(t0, Clock::now());
}

// `e` with its message prefixed, its code kept (kInfra for the GPU, kInput for the rest).
Error prefixed(const std::string& prefix, const Error& e) {
  return Error{e.code, prefix + e.message};
}

struct Measured {
  std::vector<double> samples;
  double throughput = 0.0;
};

// Times prefill of `input`, then `steps` decode steps feeding back the argmax token of each row.
Result<Measured> measure_decode(Model& model, const ModelInput& input, int warmup, int repeats, int steps,
                                std::vector<double>* prefill_samples) {
  Measured m;
  const int vocab = model.config().vocab;
  const int rows = input.batch;
  std::vector<std::int32_t> next(static_cast<std::size_t>(rows));
  for (int rep = -warmup; rep < repeats; ++rep) {
    Result<ModelOutput> out = input_error("not run");
    const double p = timed([&] { out = model.prefill(input); });
    if (!out) return out.error();
    if (rep >= 0 && prefill_samples) prefill_samples->push_back(p);
    for (int s = 0; s < steps; ++s) {
      // Greedy: the argmax of each row's last logits (ids stay inside the vocabulary).
      const std::size_t width = static_cast<std::size_t>(out->logits_shape.back());
      const std::size_t per_row = out->logits.size() / static_cast<std::size_t>(rows);
      for (int r = 0; r < rows; ++r) {
        const float* row = out->logits.data() + static_cast<std::size_t>(r) * per_row + per_row - width;
        next[static_cast<std::size_t>(r)] =
            static_cast<std::int32_t>(std::max_element(row, row + width) - row) % std::max(vocab, 1);
      }
      const double d = timed([&] { out = model.decode_step(next); });
      if (!out) return out.error();
      if (rep >= 0) m.samples.push_back(d);
    }
  }
  double total = 0.0;
  for (double s : m.samples) total += s;
  m.throughput = total > 0.0 ? static_cast<double>(m.samples.size()) * rows / total : 0.0;
  return m;
}

}  // namespace

Result<int> parse_cuda_device(const char* value) {
  if (value == nullptr || *value == '\0') return 0;
  int device = -1;
  const char* end = value + std::strlen(value);
  const auto [p, ec] = std::from_chars(value, end, device);
  if (ec != std::errc() || p != end || device < 0 || device > 1023)
    return input_error(std::string(kCudaDeviceEnv) + "='" + value + "' is not a GPU index (0 to 1023)");
  return device;
}

Result<core::TaskOutcome> run_model_task(const core::TaskSpec& task, int cuda_device, std::string* gpu_name) {
  const std::string path = task.param("path");
  const std::string size = task.param("size", "tiny");
  if (size != "tiny" && size != "real")
    return input_error("model: parameter size='" + size + "' is not tiny or real");
  auto plan = resolve_precision(task.precision);
  if (!plan) return input_error("model: " + plan.error().message);
  auto seed = int_param(task, "seed", 1, 0, std::int64_t{1} << 62);
  auto threads = int_param(task, "threads", 1, 1, 256);
  auto steps = int_param(task, "decode_tokens", 8, 1, 1 << 16);
  auto check = int_param(task, "accuracy", 1, 0, 1);
  for (const auto* r : {&seed, &threads, &steps, &check})
    if (!*r) return r->error();

  // The architecture and weights: a checkpoint folder, or the catalog's with synthetic weights.
  ModelConfig config;
  TensorSet weights;
  std::string label = task.model;
  if (!path.empty()) {
    auto loaded = load_model_dir(path);
    if (!loaded) return loaded.error();
    config = std::move(loaded->hf.config);
    weights = std::move(loaded->weights);
    if (label.empty() || label == task.kind) label = path;
  } else {
    const CatalogEntry* entry = find_model(task.model);
    if (!entry)
      return input_error("model: unknown model '" + task.model + "' (see `ipfs-accelerate models list`)");
    config = size == "tiny" ? entry->tiny : entry->real;
    weights = synthetic_weights(config, static_cast<std::uint64_t>(*seed), static_cast<int>(*threads));
  }
  const int batch = static_cast<int>(std::max<std::uint32_t>(task.batch, 1));
  const int seq = static_cast<int>(task.seq_len > 0 ? task.seq_len : 8);
  const bool decoder = config.family == Family::kDecoder || config.family == Family::kMoe ||
                       config.family == Family::kEncoderDecoder;
  if ((task.scenario == "prefill" || task.scenario == "decode") && !decoder)
    return input_error("model: scenario '" + task.scenario + "' needs a decoder; " + label + " is " +
                       std::string(to_string(config.family)));
  if (task.scenario != "latency" && task.scenario != "throughput" && task.scenario != "prefill" &&
      task.scenario != "decode")
    return input_error("model: unknown scenario '" + task.scenario +
                       "' (latency, throughput, prefill, decode)");

  if (task.hardware != "cpu" && task.hardware != "cuda")
    return input_error("model: hardware '" + task.hardware + "' is not cpu or cuda");

  // The GPU, opened only once the inputs are known to be good: a bad task stays kInput.
  std::shared_ptr<GpuDevice> gpu;
  if (task.needs_cuda()) {
    auto dev = GpuDevice::open(cuda_device);
    if (!dev)
      return prefixed("model " + label + ": hardware cuda (GPU " + std::to_string(cuda_device) + "): ",
                      dev.error());
    gpu = std::move(dev).value();
    if (gpu_name) *gpu_name = gpu->name();
  }

  auto model = Model::build(config, weights, *plan, static_cast<int>(*threads), gpu);
  if (!model) return prefixed("model " + label + ": ", model.error());
  const ModelInput input = make_synthetic_input(config, batch, seq, static_cast<std::uint64_t>(*seed) + 1);

  core::TaskOutcome o;
  auto metric = [&](std::string name, double v) { o.metrics.emplace_back(std::move(name), v); };

  // Accuracy first: the fp32 model of the same weights on the same input, always on the CPU (so a
  // GPU run is measured against the CPU reference, its fp16 products included).
  if (*check == 1) {
    auto out = model->forward(input);
    if (!out) return prefixed("model " + label + ": ", out.error());
    Result<ModelOutput> ref = *out;
    if (model->quantized_matrices() > 0 || model->kv_cache_bits() != 32 || gpu) {
      auto fp32 = Model::build(config, weights, PrecisionPlan{}, static_cast<int>(*threads));
      if (!fp32) return input_error("model " + label + " (fp32 reference): " + fp32.error().message);
      ref = fp32->forward(input);
      if (!ref) return input_error("model " + label + " (fp32 reference): " + ref.error().message);
    }
    auto acc = compare_outputs(*ref, *out);
    if (!acc) return input_error("model " + label + ": " + acc.error().message);
    o.acc_cosine = acc->cosine;
    o.acc_rel_error = acc->rel_error;
    o.acc_kl = acc->kl;
    o.acc_top1 = acc->top1;
  }

  const int warmup = static_cast<int>(task.warmup);
  const int repeats = static_cast<int>(std::max<std::uint32_t>(task.repeats, 1));
  if (task.scenario == "latency" || task.scenario == "throughput") {
    for (int rep = -warmup; rep < repeats; ++rep) {
      Result<ModelOutput> out = input_error("not run");
      const double s = timed([&] { out = model->forward(input); });
      if (!out) return prefixed("model " + label + ": ", out.error());
      if (rep >= 0) o.samples_s.push_back(s);
    }
    double total = 0.0;
    for (double s : o.samples_s) total += s;
    o.throughput = static_cast<double>(batch) * static_cast<double>(o.samples_s.size()) / total;
  }
  if (decoder) {
    std::vector<double> prefills;
    const bool main = task.scenario == "prefill" || task.scenario == "decode";
    // Outside the decoder scenarios the decode figures are a short side measurement.
    auto d = measure_decode(*model, input, main ? warmup : 0, main ? repeats : 1, static_cast<int>(*steps),
                            &prefills);
    if (!d) return prefixed("model " + label + " (decode): ", d.error());
    double prefill_total = 0.0;
    for (double p : prefills) prefill_total += p;
    const double prefill_mean = prefill_total / static_cast<double>(prefills.size());
    metric("prefill_s", prefill_mean);
    metric("decode_tokens_per_s", d->throughput);
    if (task.scenario == "prefill") {
      o.samples_s = prefills;
      o.throughput = static_cast<double>(batch) * seq / prefill_mean;
    } else if (task.scenario == "decode") {
      o.samples_s = d->samples;
      o.throughput = d->throughput;
    }
    metric("kv_cache_bytes", static_cast<double>(model->kv_cache_bytes()));
  }
  const double params = static_cast<double>(config.parameters());
  metric("parameters", params);
  metric("weight_bytes", static_cast<double>(model->weight_bytes()));
  metric("bits_per_weight", static_cast<double>(model->weight_bytes()) * 8.0 / params);
  metric("quantized_matrices", model->quantized_matrices());
  metric("kv_cache_bits", model->kv_cache_bits());
  metric("threads", static_cast<double>(*threads));
  if (gpu) {
    metric("gpu_device", gpu->device());
    metric("gpu_weight_bytes", static_cast<double>(gpu->weight_bytes()));
  }
  o.status = core::TaskStatus::kPassed;
  return o;
}

namespace {

core::TaskOutcome run_model(const core::TaskSpec& task) {
  int device = 0;
  if (task.needs_cuda()) {
    auto d = parse_cuda_device(std::getenv(kCudaDeviceEnv));
    if (!d) return failed_outcome("model: " + d.error().message);
    device = *d;
  }
  auto o = run_model_task(task, device);
  return o ? std::move(*o) : failed_outcome(o.error().message);
}

constexpr Kind kModelKinds[] = {
    {"model",
     "forward pass of a catalog model (campaign `model:`) at a `precision`; scenarios latency, throughput, "
     "prefill, decode; accuracy vs fp32; hardware cpu or cuda (linear layers on the GPU); params size "
     "(tiny|real), seed, threads, decode_tokens, accuracy",
     &run_model},
};

}  // namespace

std::span<const Kind> model_kinds() {
  return kModelKinds;
}

}  // namespace ipfsa::engine
