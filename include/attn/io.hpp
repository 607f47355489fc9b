// attn::io: NumPy's .npy files, so that arrays cross between numpy and attn.
//
//   attn::Tensor w = attn::io::read_npy("weights.npy");   // np.save("weights.npy", w)
//   attn::io::write_npy("out.npy", r.weights);            // np.load("out.npy")
//
// Reading accepts format versions 1.0, 2.0 and 3.0, C and Fortran order, and the
// numeric dtypes numpy writes for bool, integers and floats (half, single, double;
// either byte order). Every array becomes a dense, row-major float32 Tensor of the
// same logical shape; values a float cannot hold (doubles, integers beyond 2^24) round
// to the nearest float.
// Anything else (complex, strings, objects, structured dtypes) is refused by name.
//
// The reader trusts nothing in the file: every length and offset is checked before
// it is used, and a file whose data is shorter or longer than its header promises is
// an error, never a partial read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attn/tensor.hpp"

namespace attn::io {

// The array stored in the .npy file at `path`. Throws attn::Error naming the path
// and the problem: the file cannot be read, is no .npy file, or holds an array this
// reader does not convert.
Tensor read_npy(const std::string& path);

// The array in `bytes`, the whole contents of a .npy file. `source` names the bytes
// in error messages (a path, "stdin", ...). Throws attn::Error as read_npy does.
Tensor parse_npy(std::span<const std::uint8_t> bytes, std::string_view source);

// `t` as a version 1.0 .npy file ('<f4', C order, the logical order of any view):
// what np.save writes for a float32 array. Headers too long for 1.0 (thousands of
// dims) use version 2.0, as numpy does. Throws attn::Error for an undefined tensor.
std::vector<std::uint8_t> serialize_npy(const Tensor& t);

// Writes serialize_npy(t) to `path`. Throws attn::Error naming the path when it
// cannot be written.
void write_npy(const std::string& path, const Tensor& t);

}  // namespace attn::io
