// attn::BasicTensor: an n-dimensional array with shared, 64-byte aligned storage and
// strides, so that transposes, head splits and broadcasts are views, not copies.
//
// Copying a tensor copies the handle (like torch.Tensor): both refer to the same
// elements. `clone()` copies the elements. Strides are in elements and may be 0
// (broadcast, see `expand`). Element types: float (`Tensor`), bool (`BoolTensor`,
// masks) and int64_t (`IndexTensor`, valid lengths).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "attn/error.hpp"
#include "attn/rng.hpp"

namespace attn {

using Shape = std::vector<std::int64_t>;

// "(2, 3, 4)": the form every error message uses.
std::string shape_str(const Shape& shape);
// The element count; throws attn::Error when it overflows int64.
std::int64_t shape_numel(const Shape& shape);
// Row-major strides of a dense tensor of `shape`.
Shape contiguous_strides(const Shape& shape);

namespace detail {
// 64-byte aligned storage of `bytes` bytes, zero-filled.
std::shared_ptr<void> allocate_aligned(std::size_t bytes);
[[noreturn]] void throw_tensor_error(const std::string& what);
}  // namespace detail

template <class T>
class BasicTensor {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  using value_type = T;

  BasicTensor() = default;

  // ---- construction ----------------------------------------------------------
  static BasicTensor zeros(Shape shape) {
    check_shape(shape);
    BasicTensor t;
    const auto n = static_cast<std::size_t>(shape_numel(shape));
    t.owner_ = detail::allocate_aligned(n * sizeof(T));
    t.data_ = static_cast<T*>(t.owner_.get());
    t.strides_ = contiguous_strides(shape);
    t.shape_ = std::move(shape);
    return t;
  }
  // Storage is always initialised; `empty` exists for readability where every
  // element is written next.
  static BasicTensor empty(Shape shape) { return zeros(std::move(shape)); }
  static BasicTensor full(Shape shape, T value) {
    BasicTensor t = zeros(std::move(shape));
    t.fill(value);
    return t;
  }
  // A tensor of `shape` holding `values` in row-major order.
  static BasicTensor from(Shape shape, const std::vector<T>& values) {
    BasicTensor t = zeros(std::move(shape));
    if (static_cast<std::int64_t>(values.size()) != t.numel())
      detail::throw_tensor_error("from: " + std::to_string(values.size()) +
                                 " values for shape " + shape_str(t.shape_));
    for (std::size_t i = 0; i < values.size(); ++i) t.data_[i] = values[i];
    return t;
  }
  // A view of memory owned by someone else (numpy, a mapped file): no copy, no
  // ownership. The caller keeps `data` alive while the view is used.
  static BasicTensor wrap(T* data, Shape shape, Shape strides) {
    check_shape(shape);
    if (strides.size() != shape.size())
      detail::throw_tensor_error("wrap: strides " + shape_str(strides) +
                                 " do not match shape " + shape_str(shape));
    BasicTensor t;
    t.data_ = data;
    t.shape_ = std::move(shape);
    t.strides_ = std::move(strides);
    return t;
  }
  static BasicTensor wrap(T* data, Shape shape) {
    Shape strides = contiguous_strides(shape);
    return wrap(data, std::move(shape), std::move(strides));
  }
  // A view of memory that `owner` keeps alive (a numpy array held by the Python
  // bindings): the tensor and every view or copy of its handle share `owner`, which
  // is released with the last of them. No copy.
  static BasicTensor wrap(T* data, Shape shape, Shape strides, std::shared_ptr<void> owner) {
    BasicTensor t = wrap(data, std::move(shape), std::move(strides));
    t.owner_ = std::move(owner);
    return t;
  }

  // ---- float-only factories -------------------------------------------------------
  // Standard normal entries, like torch.randn.
  static BasicTensor randn(Shape shape, Rng& rng)
    requires std::is_floating_point_v<T>
  {
    BasicTensor t = zeros(std::move(shape));
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data_[i] = static_cast<T>(rng.normal());
    return t;
  }
  // Uniform entries in [0, 1), like torch.rand.
  static BasicTensor rand(Shape shape, Rng& rng)
    requires std::is_floating_point_v<T>
  {
    BasicTensor t = zeros(std::move(shape));
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data_[i] = static_cast<T>(rng.uniform());
    return t;
  }
  // 0, 1, ..., n-1, like torch.arange(n).
  static BasicTensor arange(std::int64_t n)
    requires std::is_arithmetic_v<T>
  {
    BasicTensor t = zeros({n});
    for (std::int64_t i = 0; i < n; ++i) t.data_[i] = static_cast<T>(i);
    return t;
  }

  // ---- shape -------------------------------------------------------------------------
  bool defined() const { return data_ != nullptr || !shape_.empty(); }
  std::int64_t rank() const { return static_cast<std::int64_t>(shape_.size()); }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  // Negative dims count from the end, as in PyTorch.
  std::int64_t size(std::int64_t dim) const { return shape_[wrap_dim(dim)]; }
  std::int64_t stride(std::int64_t dim) const { return strides_[wrap_dim(dim)]; }
  std::int64_t numel() const { return shape_numel(shape_); }
  bool is_contiguous() const {
    std::int64_t expected = 1;
    for (std::int64_t d = rank() - 1; d >= 0; --d) {
      if (shape_[d] != 1 && strides_[d] != expected) return false;
      expected *= shape_[d];
    }
    return true;
  }
  std::string shape_string() const { return shape_str(shape_); }

  // ---- elements ------------------------------------------------------------------
  T* data() const { return data_; }
  template <class... I>
  T& operator()(I... index) const {
    static_assert((std::is_integral_v<I> && ...));
    const std::array<std::int64_t, sizeof...(I)> idx = {static_cast<std::int64_t>(index)...};
    if (data_ == nullptr) detail::throw_tensor_error("index: the tensor is undefined (no storage)");
    if (static_cast<std::int64_t>(sizeof...(I)) != rank())
      detail::throw_tensor_error("index: " + std::to_string(sizeof...(I)) +
                                 " indices for a tensor of shape " + shape_str(shape_));
    std::int64_t offset = 0;
    for (std::size_t d = 0; d < sizeof...(I); ++d) {
      if (idx[d] < 0 || idx[d] >= shape_[d])
        detail::throw_tensor_error("index: " + std::to_string(idx[d]) + " out of range for dim " +
                                   std::to_string(d) + " of shape " + shape_str(shape_));
      offset += idx[d] * strides_[d];
    }
    return data_[offset];
  }
  // Element at a multi-index given as a vector (rank entries).
  T& at(const Shape& index) const {
    if (data_ == nullptr) detail::throw_tensor_error("at: the tensor is undefined (no storage)");
    if (static_cast<std::int64_t>(index.size()) != rank())
      detail::throw_tensor_error("at: index " + shape_str(index) + " for shape " +
                                 shape_str(shape_));
    std::int64_t offset = 0;
    for (std::size_t d = 0; d < index.size(); ++d) {
      if (index[d] < 0 || index[d] >= shape_[d])
        detail::throw_tensor_error("at: index " + shape_str(index) + " out of range for shape " +
                                   shape_str(shape_));
      offset += index[d] * strides_[d];
    }
    return data_[offset];
  }
  // Calls f(element&) for every element in row-major order of the view.
  template <class F>
  void for_each(F&& f) const {
    if (numel() == 0) return;
    Shape index(shape_.size(), 0);
    std::int64_t offset = 0;
    const std::int64_t n = numel();
    for (std::int64_t count = 0; count < n; ++count) {
      f(data_[offset]);
      for (std::int64_t d = rank() - 1; d >= 0; --d) {
        if (++index[d] < shape_[d]) {
          offset += strides_[d];
          break;
        }
        offset -= (shape_[d] - 1) * strides_[d];
        index[d] = 0;
      }
    }
  }
  void fill(T value) const {
    for_each([value](T& x) { x = value; });
  }
  // The elements in row-major order of the view.
  std::vector<T> to_vector() const {
    std::vector<T> out;
    out.reserve(static_cast<std::size_t>(numel()));
    for_each([&out](T& x) { out.push_back(x); });
    return out;
  }

  // ---- views (share storage) ------------------------------------------------------
  // Dims reordered: result dim i is this tensor's dim order[i].
  BasicTensor permute(const std::vector<std::int64_t>& order) const {
    if (static_cast<std::int64_t>(order.size()) != rank())
      detail::throw_tensor_error("permute: order " + shape_str(order) + " for shape " +
                                 shape_str(shape_));
    std::vector<bool> seen(order.size(), false);
    BasicTensor t = *this;
    for (std::size_t i = 0; i < order.size(); ++i) {
      const std::int64_t d = order[i] < 0 ? order[i] + rank() : order[i];
      if (d < 0 || d >= rank() || seen[d])
        detail::throw_tensor_error("permute: order " + shape_str(order) +
                                   " is not a permutation of the dims of " + shape_str(shape_));
      seen[d] = true;
      t.shape_[i] = shape_[d];
      t.strides_[i] = strides_[d];
    }
    return t;
  }
  BasicTensor transpose(std::int64_t a, std::int64_t b) const {
    std::vector<std::int64_t> order(shape_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
    std::swap(order[wrap_dim(a)], order[wrap_dim(b)]);
    return permute(order);
  }
  // A view with a new shape over the same elements. One dim may be -1. Works when
  // the view's strides allow it without a copy (always for a contiguous tensor);
  // otherwise throws, and `contiguous().reshape(...)` is what the caller wants.
  BasicTensor reshape(Shape shape) const;
  // Inserts a dim of size 1 at `dim` (0 ... rank).
  BasicTensor unsqueeze(std::int64_t dim) const {
    if (dim < 0) dim += rank() + 1;
    if (dim < 0 || dim > rank())
      detail::throw_tensor_error("unsqueeze: dim " + std::to_string(dim) + " for shape " +
                                 shape_str(shape_));
    BasicTensor t = *this;
    t.shape_.insert(t.shape_.begin() + dim, 1);
    t.strides_.insert(t.strides_.begin() + dim, 0);
    return t;
  }
  // Broadcast to `shape` (NumPy rules: align from the right, size-1 dims stretch
  // with stride 0, new leading dims are added).
  BasicTensor expand(const Shape& shape) const {
    check_shape(shape);
    if (static_cast<std::int64_t>(shape.size()) < rank())
      detail::throw_tensor_error("expand: shape " + shape_str(shape_) +
                                 " does not broadcast to " + shape_str(shape));
    BasicTensor t = *this;
    const std::size_t lead = shape.size() - shape_.size();
    t.shape_ = shape;
    t.strides_.assign(shape.size(), 0);
    for (std::size_t d = 0; d < shape_.size(); ++d) {
      if (shape_[d] == shape[lead + d]) {
        t.strides_[lead + d] = strides_[d];
      } else if (shape_[d] != 1) {
        detail::throw_tensor_error("expand: shape " + shape_str(shape_) +
                                   " does not broadcast to " + shape_str(shape));
      }
    }
    return t;
  }
  // Elements [start, stop) of `dim`.
  BasicTensor slice(std::int64_t dim, std::int64_t start, std::int64_t stop) const {
    const std::int64_t d = wrap_dim(dim);
    if (start < 0 || stop < start || stop > shape_[d])
      detail::throw_tensor_error("slice: [" + std::to_string(start) + ", " +
                                 std::to_string(stop) + ") of dim " + std::to_string(d) +
                                 " of shape " + shape_str(shape_));
    BasicTensor t = *this;
    if (stop > start) t.data_ = data_ + start * strides_[d];
    t.shape_[d] = stop - start;
    return t;
  }
  // Index `i` of `dim`, which is removed.
  BasicTensor select(std::int64_t dim, std::int64_t i) const {
    const std::int64_t d = wrap_dim(dim);
    BasicTensor t = slice(d, i, i + 1);
    t.shape_.erase(t.shape_.begin() + d);
    t.strides_.erase(t.strides_.begin() + d);
    return t;
  }

  // ---- copies ----------------------------------------------------------------------
  BasicTensor clone() const {
    BasicTensor t = zeros(shape_);
    T* out = t.data_;
    for_each([&out](T& x) { *out++ = x; });
    return t;
  }
  // This tensor if already dense and row-major, else a dense copy.
  BasicTensor contiguous() const { return is_contiguous() ? *this : clone(); }
  // Copies `src` (same shape) into this view's elements.
  void copy_from(const BasicTensor& src) const {
    if (src.shape_ != shape_)
      detail::throw_tensor_error("copy_from: source shape " + shape_str(src.shape_) +
                                 " differs from destination " + shape_str(shape_));
    // Through a copy, so that overlapping views of one storage are safe.
    const std::vector<T> values = src.to_vector();
    std::size_t next = 0;
    for_each([&](T& x) { x = values[next++]; });
  }

 private:
  std::int64_t wrap_dim(std::int64_t dim) const {
    const std::int64_t d = dim < 0 ? dim + rank() : dim;
    if (d < 0 || d >= rank())
      detail::throw_tensor_error("dim " + std::to_string(dim) + " out of range for shape " +
                                 shape_str(shape_));
    return d;
  }
  // Sizes must be >= 0, and the element count and byte size must fit in int64.
  static void check_shape(const Shape& shape) {
    for (std::int64_t s : shape)
      if (s < 0) detail::throw_tensor_error("negative size in shape " + shape_str(shape));
    // shape_numel throws when the count overflows int64 (an empty shape never does).
    if (shape_numel(shape) > std::numeric_limits<std::int64_t>::max() / static_cast<std::int64_t>(sizeof(T)))
      detail::throw_tensor_error("shape " + shape_str(shape) + " has more bytes than memory can address");
  }

  std::shared_ptr<void> owner_;  // keeps the elements alive; null when the caller does
  T* data_ = nullptr;            // first element of this view
  Shape shape_;
  Shape strides_;
};

using Tensor = BasicTensor<float>;
using BoolTensor = BasicTensor<bool>;
using IndexTensor = BasicTensor<std::int64_t>;

namespace detail {
// Strides for `new_shape` over a view of `shape`/`strides`, or nullopt when the
// elements cannot be addressed that way without a copy (PyTorch's view rule).
std::optional<Shape> reshape_strides(const Shape& shape, const Shape& strides,
                                     const Shape& new_shape);
Shape infer_reshape(const Shape& shape, Shape new_shape);
}  // namespace detail

template <class T>
BasicTensor<T> BasicTensor<T>::reshape(Shape shape) const {
  shape = detail::infer_reshape(shape_, std::move(shape));
  std::optional<Shape> strides = detail::reshape_strides(shape_, strides_, shape);
  if (!strides)
    detail::throw_tensor_error("reshape: a view of shape " + shape_str(shape_) + " with strides " +
                               shape_str(strides_) + " cannot be read as " + shape_str(shape) +
                               " without a copy; call contiguous() first");
  BasicTensor t = *this;
  t.shape_ = std::move(shape);
  t.strides_ = std::move(*strides);
  return t;
}

// Printing, in the style of torch's repr: "tensor([[0.5000, 0.5000]])".
std::string to_string(const Tensor& t, int precision = 4);
std::string to_string(const IndexTensor& t);
std::string to_string(const BoolTensor& t);

}  // namespace attn
