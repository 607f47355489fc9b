// The safetensors dtypes that parse_safetensors converts to float32.
#pragma once

#include <string_view>

#include "io/elements.hpp"
#include "io/source.hpp"

namespace attn::io {

// The element type of the dtype `name` ("F32", "BF16", ...) of the tensor `tensor`.
// Throws attn::Error through `source` for every other name: a dtype of the format
// that is not converted (saying what it is) or no safetensors dtype at all, listing
// the supported ones either way.
ElementType parse_safetensors_dtype(std::string_view name, std::string_view tensor,
                                    const Source& source);

}  // namespace attn::io
