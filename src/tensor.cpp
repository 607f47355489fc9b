// Shape helpers, aligned storage and the view rule behind Tensor::reshape.
#include <cstring>
#include <limits>

#include "attn/tensor.hpp"
#include "block_cache.hpp"

namespace attn {

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + ")";
}

std::int64_t shape_numel(const Shape& shape) {
  for (std::int64_t s : shape)
    if (s == 0) return 0;
  std::int64_t n = 1;
  for (std::int64_t s : shape)
    if (__builtin_mul_overflow(n, s, &n))
      detail::throw_tensor_error("shape " + shape_str(shape) + " has more elements than memory can address");
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  std::int64_t stride = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    strides[d] = stride;
    // Only an empty tensor (a 0 elsewhere in its shape) can overflow here; its
    // strides address nothing, so they saturate instead.
    if (__builtin_mul_overflow(stride, std::max<std::int64_t>(shape[d], 1), &stride))
      stride = std::numeric_limits<std::int64_t>::max();
  }
  return strides;
}

namespace detail {

std::shared_ptr<void> allocate_aligned(std::size_t bytes) {
  std::shared_ptr<void> block = allocate_block(bytes);
  std::memset(block.get(), 0, bytes);
  return block;
}

void throw_tensor_error(const std::string& what) { throw Error("[tensor] " + what); }

Shape infer_reshape(const Shape& shape, Shape new_shape) {
  std::int64_t known = 1;
  std::int64_t infer_at = -1;
  for (std::size_t d = 0; d < new_shape.size(); ++d) {
    if (new_shape[d] == -1) {
      if (infer_at >= 0) throw_tensor_error("reshape: more than one -1 in " + shape_str(new_shape));
      infer_at = static_cast<std::int64_t>(d);
    } else if (new_shape[d] < 0) {
      throw_tensor_error("reshape: negative size in " + shape_str(new_shape));
    } else {
      known *= new_shape[d];
    }
  }
  const std::int64_t numel = shape_numel(shape);
  if (infer_at >= 0) {
    if (known == 0 || numel % known != 0)
      throw_tensor_error("reshape: shape " + shape_str(shape) + " cannot be read as " +
                         shape_str(new_shape));
    new_shape[infer_at] = numel / known;
  }
  if (shape_numel(new_shape) != numel)
    throw_tensor_error("reshape: shape " + shape_str(shape) + " has " + std::to_string(numel) +
                       " elements, " + shape_str(new_shape) + " has " +
                       std::to_string(shape_numel(new_shape)));
  return new_shape;
}

// Walks the old dims from the right in chunks of dims that are contiguous with
// each other; each chunk must be covered exactly by a run of new dims.
std::optional<Shape> reshape_strides(const Shape& shape, const Shape& strides,
                                     const Shape& new_shape) {
  if (shape.empty() || shape_numel(shape) == 0) return contiguous_strides(new_shape);
  Shape new_strides(new_shape.size(), 0);
  std::int64_t view_d = static_cast<std::int64_t>(new_shape.size()) - 1;
  std::int64_t chunk_base_stride = strides.back();
  std::int64_t tensor_numel = 1;
  std::int64_t view_numel = 1;
  for (std::int64_t tensor_d = static_cast<std::int64_t>(shape.size()) - 1; tensor_d >= 0;
       --tensor_d) {
    tensor_numel *= shape[tensor_d];
    const bool chunk_ends =
        tensor_d == 0 ||
        (shape[tensor_d - 1] != 1 && strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
      new_strides[view_d] = view_numel * chunk_base_stride;
      view_numel *= new_shape[view_d];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (tensor_d > 0) {
      chunk_base_stride = strides[tensor_d - 1];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

}  // namespace detail
}  // namespace attn
