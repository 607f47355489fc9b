// libFuzzer target for attn::io::parse_safetensors. Any bytes must give back either
// tensors or an attn::Error: another exception escapes and libFuzzer reports it, as
// ASan and UBSan report an out-of-bounds read or undefined behaviour. What parses
// must also survive the writer and a second parse: the same names, shapes, element
// bits and metadata.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attn/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  attn::io::SafetensorsFile file;
  try {
    file = attn::io::parse_safetensors({data, size}, "fuzz input");
  } catch (const attn::Error&) {
    return 0;
  }
  const attn::io::SafetensorsFile back =
      attn::io::parse_safetensors(attn::io::serialize_safetensors(file.tensors, file.metadata), "round trip");
  if (back.metadata != file.metadata || back.tensors.size() != file.tensors.size()) __builtin_trap();
  std::map<std::string, const attn::Tensor*> by_name;
  for (const auto& [name, t] : back.tensors) by_name.emplace(name, &t);
  for (const auto& [name, t] : file.tensors) {
    // Reads every element, so that a tensor smaller than its shape trips ASan.
    const std::vector<float> values = t.to_vector();
    if (static_cast<std::int64_t>(values.size()) != t.numel()) __builtin_trap();
    const auto it = by_name.find(name);
    if (it == by_name.end() || it->second->shape() != t.shape()) __builtin_trap();
    const std::vector<float> again = it->second->to_vector();
    for (std::size_t i = 0; i < values.size(); ++i)  // bits, so that NaN equals itself
      if (std::bit_cast<std::uint32_t>(again[i]) != std::bit_cast<std::uint32_t>(values[i]))
        __builtin_trap();
  }
  return 0;
}
