// What the files of the Python module share: each registers its area on the module.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>

namespace attn::python {

namespace py = pybind11;

void register_ops(py::module_& m);      // ops.cpp
void register_modules(py::module_& m);  // modules.cpp
void register_safetensors(py::module_& m);  // safetensors.cpp

// A seed for dropout or parameter initialisation, drawn from the module's one
// stream, which attn.manual_seed restarts (torch's default generator plays this
// part). Called with the GIL held, which orders the draws.
std::uint64_t next_seed();

}  // namespace attn::python
