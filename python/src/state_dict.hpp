// state_dict() and load_state_dict() by torch's names, over the handles that a
// module's named_parameters() returns, with torch's messages for strict loading.
#pragma once

#include <pybind11/pybind11.h>

#include <string_view>

#include "attn/modules.hpp"

namespace attn::python {

namespace py = pybind11;

// {name: ndarray}, each array a view of the parameter (writing it writes the module).
py::dict state_dict(const NamedParameters& params);

// Copies state_dict's arrays into the parameters of the same names, all of them or
// none. strict: a missing or unexpected key is an error, as in torch; a shape that
// differs always is. Errors raise attn.Error (a ValueError and a RuntimeError, as
// torch raises) with torch's text: "Error(s) in loading state_dict for <module>:",
// then "Missing key(s) in state_dict: ...", "Unexpected key(s) in state_dict: ...",
// "size mismatch for <name>: ...". Returns (missing_keys, unexpected_keys), a
// named tuple as torch's.
py::object load_state_dict(const NamedParameters& params, py::handle state_dict, bool strict,
                           std::string_view module);

// `module.name = value`: value's numbers copied into the parameter, whose shape
// they must have.
void assign_parameter(const Tensor& param, py::handle value, std::string_view module, std::string_view name);

}  // namespace attn::python
