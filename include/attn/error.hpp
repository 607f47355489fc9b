// attn::Error: the one exception type of the library.
//
// Every bad input is reported at the API boundary with the op's name, the argument
// and the shapes involved, e.g.
//   [scaled_dot_product_attention] key: head dim 32 differs from query's 64;
//   query (2, 8, 16, 64), key (2, 8, 16, 32)
#pragma once

#include <stdexcept>
#include <string>

namespace attn {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace attn
