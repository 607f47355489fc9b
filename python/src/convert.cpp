#include "convert.hpp"

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace attn::python {

void type_error(std::string_view op, std::string_view name, const std::string& what) {
  throw py::type_error("[" + std::string(op) + "] " + std::string(name) + " " + what);
}

void value_error(std::string_view op, const std::string& what) {
  throw Error("[" + std::string(op) + "] " + what);
}

std::string type_name(py::handle obj) {
  if (py::isinstance<py::array>(obj))
    return py::str(py::reinterpret_borrow<py::array>(obj).dtype()).cast<std::string>();
  return Py_TYPE(obj.ptr())->tp_name;
}

namespace {

// Holds a reference to `obj` for as long as a tensor views its memory. The last
// tensor may be released on a thread without the GIL (a kernel's worker), so the
// release takes it.
std::shared_ptr<void> keep_alive(py::object obj) {
  return std::shared_ptr<void>(new py::object(std::move(obj)), [](void* held) {
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(held);
  });
}

// Strides in elements, when every one is a non-negative multiple of the element
// size and the buffer is aligned for T; otherwise the array must be copied.
template <class T>
bool addressable(const py::array& a) {
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0) return false;
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.strides(d) < 0 || a.strides(d) % static_cast<py::ssize_t>(sizeof(T)) != 0) return false;
  return true;
}

// A tensor over `a`'s elements (a's dtype is T's; checked by the caller).
template <class T>
BasicTensor<T> view_of(py::array a) {
  if (!addressable<T>(a)) a = a.attr("copy")("C");  // keeps a 0-d array 0-d
  Shape shape, strides;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    shape.push_back(a.shape(d));
    strides.push_back(a.strides(d) / static_cast<py::ssize_t>(sizeof(T)));
  }
  // Inputs are only read; the const_cast lets a read-only array be viewed.
  T* data = static_cast<T*>(const_cast<void*>(a.data()));
  return BasicTensor<T>::wrap(data, std::move(shape), std::move(strides), keep_alive(std::move(a)));
}

char dtype_kind(py::handle obj) { return py::reinterpret_borrow<py::array>(obj).dtype().kind(); }

}  // namespace

Tensor float_array(py::handle obj, std::string_view op, std::string_view name) {
  if (!py::array_t<float>::check_(obj))
    type_error(op, name, "must be a float32 numpy array, got " + type_name(obj));
  return view_of<float>(py::reinterpret_borrow<py::array>(obj));
}

Tensor float_values(py::handle obj, std::string_view op, std::string_view name) {
  const py::array a = py::module_::import("numpy").attr("asarray")(obj);
  const char kind = a.dtype().kind();
  if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f')
    type_error(op, name, "must be an array of real numbers, got " + type_name(obj));
  return view_of<float>(py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a));
}

IndexTensor index_array(py::handle obj, std::string_view op, std::string_view name) {
  py::object a = py::reinterpret_borrow<py::object>(obj);
  if (!py::isinstance<py::array>(obj)) {
    if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj))
      type_error(op, name, "must be an integer numpy array or a sequence of ints, got " + type_name(obj));
    a = py::module_::import("numpy").attr("asarray")(obj);
  }
  const char kind = dtype_kind(a);
  // An empty sequence reads as float64; it holds no length either way.
  const bool empty = py::reinterpret_borrow<py::array>(a).size() == 0;
  if (kind != 'i' && kind != 'u' && !empty) type_error(op, name, "must hold integers, got " + type_name(a));
  return view_of<std::int64_t>(
      py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a));
}

MaskTensor mask_array(py::handle obj, std::string_view op, std::string_view name) {
  if (obj.is_none()) return std::monostate{};
  if (py::array_t<bool>::check_(obj)) return view_of<bool>(py::reinterpret_borrow<py::array>(obj));
  if (py::array_t<float>::check_(obj)) return view_of<float>(py::reinterpret_borrow<py::array>(obj));
  type_error(op, name, "must be None, a bool array or a float32 array, got " + type_name(obj));
}

py::object to_numpy(const Tensor& t) {
  if (!t.defined()) return py::none();
  auto* handle = new Tensor(t);  // shares the storage; released with the array
  const py::capsule base(handle, [](void* p) { delete static_cast<Tensor*>(p); });
  std::vector<py::ssize_t> shape, strides;
  for (std::int64_t d = 0; d < t.rank(); ++d) {
    shape.push_back(t.size(d));
    strides.push_back(t.stride(d) * static_cast<py::ssize_t>(sizeof(float)));
  }
  return py::array(py::dtype::of<float>(), std::move(shape), std::move(strides), t.data(), base);
}

}  // namespace attn::python
