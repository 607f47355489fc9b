// The numpy dtypes parse_npy converts to float32.
#pragma once

#include <string_view>

#include "io/elements.hpp"
#include "io/source.hpp"

namespace attn::io {

// The element type a header's 'descr' names, e.g. '<f4'. Throws attn::Error through
// `source` for every other one, saying what it is ("complex", "strings", ...) and
// listing the supported ones.
ElementType parse_npy_dtype(std::string_view descr, const Source& source);

}  // namespace attn::io
