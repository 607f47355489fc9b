// Weights trained in PyTorch, run in C++: loads a multi-head attention module's
// state_dict from a safetensors file and runs one forward on inputs saved with np.save.
//
//   load_torch_weights MODEL.safetensors QUERY.npy KEY.npy VALUE.npy OUTPUT.npy
//                      [--weights WEIGHTS.npy] [--save RESAVED.safetensors]
//
// The module's constructor arguments travel in the file's __metadata__, under the names
// of MultiHeadAttentionOptions' fields (nn.MultiheadAttention's arguments, plus qdim,
// qk_proj_dim, v_proj_dim and out_proj for the tutorials' modules), with "names" saying
// whose parameter names the tensors carry (torch, d2l, transformer_tutorial or
// self_attention; default torch). From PyTorch:
//
//   safetensors.torch.save_file(mha.state_dict(), "mha.safetensors",
//                               metadata={"embed_dim": "8", "num_heads": "2"})
//
// OUTPUT.npy receives the output; WEIGHTS.npy the head-averaged weights; RESAVED the
// module's state_dict under the same names and metadata, for PyTorch to load back.
#include <iostream>
#include <stdexcept>
#include <string>

#include "attn/attn.hpp"

namespace {

using attn::io::Metadata;

bool parse_bool(const std::string& key, const std::string& value) {
  if (value == "True" || value == "true" || value == "1") return true;
  if (value == "False" || value == "false" || value == "0") return false;
  throw attn::Error("__metadata__: " + key + " must be True or False, got '" + value + "'");
}

std::int64_t parse_int(const std::string& key, const std::string& value) {
  std::size_t used = 0;
  try {
    const long long n = std::stoll(value, &used);
    if (used == value.size()) return n;
  } catch (const std::logic_error&) {
    // Reported below, with the key.
  }
  throw attn::Error("__metadata__: " + key + " must be an integer, got '" + value + "'");
}

attn::io::Names parse_names(const std::string& value) {
  using attn::io::Names;
  for (Names n : {Names::torch, Names::d2l, Names::transformer_tutorial, Names::self_attention})
    if (attn::io::names_str(n) == value) return n;
  throw attn::Error("__metadata__: names must be torch, d2l, transformer_tutorial or "
                    "self_attention, got '" + value + "'");
}

// The module's options from the metadata; every key must be one of them.
attn::MultiHeadAttentionOptions options_from(const Metadata& metadata, attn::io::Names& names) {
  attn::MultiHeadAttentionOptions o;
  bool has_embed_dim = false, has_num_heads = false;
  for (const auto& [key, value] : metadata) {
    if (key == "embed_dim") o.embed_dim = parse_int(key, value), has_embed_dim = true;
    else if (key == "num_heads") o.num_heads = parse_int(key, value), has_num_heads = true;
    else if (key == "bias") o.bias = parse_bool(key, value);
    else if (key == "add_bias_kv") o.add_bias_kv = parse_bool(key, value);
    else if (key == "add_zero_attn") o.add_zero_attn = parse_bool(key, value);
    else if (key == "batch_first") o.batch_first = parse_bool(key, value);
    else if (key == "out_proj") o.out_proj = parse_bool(key, value);
    else if (key == "kdim") o.kdim = parse_int(key, value);
    else if (key == "vdim") o.vdim = parse_int(key, value);
    else if (key == "qdim") o.qdim = parse_int(key, value);
    else if (key == "qk_proj_dim") o.qk_proj_dim = parse_int(key, value);
    else if (key == "v_proj_dim") o.v_proj_dim = parse_int(key, value);
    else if (key == "names") names = parse_names(value);
    else if (key != "format")  // what PyTorch tools conventionally add ("pt")
      throw attn::Error("__metadata__: unknown key '" + key + "'; the keys are the fields of "
                        "MultiHeadAttentionOptions and 'names'");
  }
  if (!has_embed_dim || !has_num_heads)
    throw attn::Error("__metadata__ must hold embed_dim and num_heads (the module's constructor "
                      "arguments)");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* kUsage =
      "usage: load_torch_weights MODEL.safetensors QUERY.npy KEY.npy VALUE.npy OUTPUT.npy "
      "[--weights WEIGHTS.npy] [--save RESAVED.safetensors]\n";
  std::string weights_path, save_path;
  int positional = 0;
  const char* paths[5] = {};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--weights" || arg == "--save") && i + 1 < argc) {
      (arg == "--weights" ? weights_path : save_path) = argv[++i];
    } else if (positional < 5 && !arg.starts_with("--")) {
      paths[positional++] = argv[i];
    } else {
      std::cerr << kUsage;
      return 2;
    }
  }
  if (positional != 5) {
    std::cerr << kUsage;
    return 2;
  }
  try {
    const attn::io::SafetensorsFile file = attn::io::load_safetensors(paths[0]);
    attn::io::Names names = attn::io::Names::torch;
    attn::MultiHeadAttention mha(options_from(file.metadata, names));
    attn::io::load_state_dict(mha, file.tensors, {.names = names});
    mha.eval();

    const attn::MultiHeadResult r = mha.forward(
        attn::io::read_npy(paths[1]), attn::io::read_npy(paths[2]), attn::io::read_npy(paths[3]));
    attn::io::write_npy(paths[4], r.output);
    if (!weights_path.empty()) attn::io::write_npy(weights_path, r.weights);
    if (!save_path.empty())
      attn::io::save_safetensors(save_path, attn::io::state_dict(mha, names), file.metadata);
    std::cout << "loaded " << file.tensors.size() << " tensors (" << attn::io::names_str(names)
              << " names) from " << paths[0] << "; output " << r.output.shape_string()
              << ", weights " << r.weights.shape_string() << '\n';
  } catch (const attn::Error& e) {
    std::cerr << "load_torch_weights: " << e.what() << '\n';
    return 1;
  }
}
