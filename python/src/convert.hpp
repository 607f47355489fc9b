// numpy arrays <-> attn tensors, and the errors of the binding layer.
//
// In: a float32 ndarray becomes a Tensor over the array's own elements, with its
// strides and no copy; the tensor holds a reference to the array, so the array
// lives as long as any view of it. Only an array whose strides attn cannot
// address (negative, or not a multiple of the element size, or a misaligned
// buffer) is copied first. Inputs are read, never written.
// Out: a Tensor becomes an ndarray over the tensor's storage, no copy; the array
// holds the storage. Parameters handed out this way are writable views of the
// module's own parameters, as torch's are.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <string_view>

#include "attn/modules.hpp"

namespace attn::python {

namespace py = pybind11;

// "[op] name must be ...". type_error raises TypeError (a wrong type or dtype);
// value_error raises attn.Error, a ValueError (a wrong shape or value), as every
// attn::Error does.
[[noreturn]] void type_error(std::string_view op, std::string_view name, const std::string& what);
[[noreturn]] void value_error(std::string_view op, const std::string& what);

// "float64", "list": what a caller passed, for messages.
std::string type_name(py::handle obj);

// A float32 ndarray argument, viewed. TypeError naming `name` for anything else
// (float64 arrays included: torch refuses to mix dtypes too).
Tensor float_array(py::handle obj, std::string_view op, std::string_view name);
// Real numbers of any dtype, array or nested sequence, copied to float32: values
// loaded into a parameter, as torch's copy_ converts them.
Tensor float_values(py::handle obj, std::string_view op, std::string_view name);
// d2l's valid_lens: an integer array or sequence (copied to int64 unless it is).
IndexTensor index_array(py::handle obj, std::string_view op, std::string_view name);
// None, a bool array or a float32 array (added to the scores).
MaskTensor mask_array(py::handle obj, std::string_view op, std::string_view name);

// An ndarray over t's elements that keeps its storage alive; None when t is undefined.
py::object to_numpy(const Tensor& t);

}  // namespace attn::python
