// libFuzzer target for attn::io::parse_npy. Any bytes must give back either a tensor
// or an attn::Error: another exception escapes and libFuzzer reports it, as ASan and
// UBSan report an out-of-bounds read or undefined behaviour. A tensor must also
// survive a round trip through the writer bit for bit.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "attn/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  attn::Tensor t;
  try {
    t = attn::io::parse_npy({data, size}, "fuzz input");
  } catch (const attn::Error&) {
    return 0;
  }
  // Reads every element, so that a tensor smaller than its shape trips ASan.
  const std::vector<float> values = t.to_vector();
  if (static_cast<std::int64_t>(values.size()) != t.numel()) __builtin_trap();

  const std::vector<std::uint8_t> bytes = attn::io::serialize_npy(t);
  const attn::Tensor back = attn::io::parse_npy(bytes, "round trip");
  const std::vector<float> again = back.to_vector();
  if (back.shape() != t.shape() || again.size() != values.size()) __builtin_trap();
  for (std::size_t i = 0; i < values.size(); ++i)  // bits, so that NaN equals itself
    if (std::bit_cast<std::uint32_t>(again[i]) != std::bit_cast<std::uint32_t>(values[i]))
      __builtin_trap();
  return 0;
}
