// HuggingFace checkpoints (docs/engine.md §HuggingFace): a config.json mapped onto a ModelConfig by
// its `model_type`, HF tensor names mapped onto the canonical names of weights.hpp, and a loader
// for a checkpoint folder (config.json + *.safetensors, sharded or not).
// Supported model_type values: bert, roberta, distilbert, gpt2, llama, mistral, qwen2, gemma,
// mixtral, phi3, t5, bart, whisper, vit, wav2vec2, clip. Tensor names are mapped for llama,
// mistral, qwen2, gemma, mixtral, phi3, gpt2, bert, roberta and distilbert; for the other types a
// folder must hold the canonical names (as write_safetensors of a TensorSet writes them).
// Where the engine approximates a model (T5's relative position bias, Wav2Vec2's waveform CNN and
// positional convolution, CLIP's quick_gelu) docs/engine.md says so.
// Thread-safety: pure functions apart from the files read.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "engine/model/model_config.hpp"
#include "engine/model/weights.hpp"

namespace ipfsa::engine {

struct HfConfig {
  ModelConfig config;  // validated; name = model_type (read_hf_config: the folder's name)
  std::string model_type;
  // Rows of the HF position table before position 0 (RoBERTa: pad_token_id + 1); the mapping drops
  // them, and config.encoder.max_positions counts only the rows kept.
  int position_offset = 0;
};

// The model_type values parse_hf_config accepts.
std::span<const std::string_view> hf_model_types();

// Parses the text of a config.json. Errors (kInput), each starting with `where`: invalid JSON or
// not an object; a missing required key ("missing key 'hidden_size'"); a key of the wrong type
// ("key 'hidden_size' must be an integer, got string"); an unsupported model_type or activation;
// a shape the engine cannot run (e.g. head_dim != hidden_size / num_attention_heads); and any
// error of ModelConfig::validate. Optional keys take the defaults of the transformers config class.
Result<HfConfig> parse_hf_config(std::string_view json_text, std::string_view where);

// Reads and parses a config.json file (errors name the file); config.name is the name of the
// folder holding it.
Result<HfConfig> read_hf_config(const std::filesystem::path& config_json);

// Renames HF tensors to canonical ones (weights.hpp): a set that already holds every canonical
// tensor is returned as is; otherwise the model_type's mapping is applied (fused projections
// split, GPT-2's Conv1D weights transposed, Gemma's norm weights + 1, BERT's token-type row 0
// folded into the position table, missing attention biases of Qwen2-style models zero-filled) and
// tensors without a canonical counterpart (rotary caches, poolers, MLM heads) are dropped. Error
// (kInput, prefixed by `where`) for a type without a mapping, a fused tensor of the wrong shape,
// or a canonical tensor still missing after mapping.
Result<TensorSet> map_hf_tensors(const HfConfig& hf, TensorSet tensors, std::string_view where);

struct LoadedModel {
  HfConfig hf;
  TensorSet weights;  // canonical names, ready for Model::build
};

// dir/config.json + the tensors of dir (read_safetensors_dir), mapped by map_hf_tensors.
Result<LoadedModel> load_model_dir(const std::filesystem::path& dir);

}  // namespace ipfsa::engine
