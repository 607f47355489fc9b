// The header of a .npy file: a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// read by a small strict parser instead of Python's literal_eval.
#pragma once

#include <string>
#include <string_view>

#include "attn/tensor.hpp"
#include "io/source.hpp"

namespace attn::io {

struct NpyHeader {
  std::string descr;  // the dtype, e.g. '<f4'; checked by parse_npy_dtype
  bool fortran_order = false;
  Shape shape;        // sizes >= 0, each fitting int64; their product is not checked
};

// Parses `text`, the header of a file of format version `major` (1, 2 or 3).
// Accepted: whitespace between tokens, the keys in any order, a trailing comma,
// either quote. Refused: unknown, missing or duplicate keys, escapes in strings,
// values of the wrong type, negative sizes, non-ASCII bytes before version 3 (which
// allows UTF-8). Throws attn::Error through `source`.
NpyHeader parse_npy_header(std::string_view text, int major, const Source& source);

}  // namespace attn::io
