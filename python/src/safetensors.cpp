// attn.safetensors: load_file and save_file as the safetensors package's numpy
// API spells them, over attn::io's reader (memory-mapped, every dtype converted to
// float32) and writer (F32).
#include <pybind11/stl.h>

#include <map>
#include <string>

#include "attn/safetensors.hpp"
#include "bindings.hpp"
#include "convert.hpp"

namespace attn::python {

void register_safetensors(py::module_& m) {
  using namespace pybind11::literals;
  py::module_ sub = m.def_submodule("safetensors", "Safetensors files as dicts of numpy float32 arrays.");
  sub.def(
      "load_file",
      [](const std::string& filename) {
        io::SafetensorsFile file;
        {
          py::gil_scoped_release release;
          file = io::load_safetensors(filename);
        }
        py::dict out;
        for (const auto& [name, t] : file.tensors) out[py::str(name)] = to_numpy(t);
        return out;
      },
      "filename"_a,
      R"(load_file(filename) -> Dict[str, numpy.ndarray]
--

The tensors of a safetensors file by name, in the file's order, as float32
arrays (F64, F16, BF16, integer and BOOL tensors are converted). A malformed
file raises attn.Error naming the file and the problem.)");
  sub.def(
      "load_metadata",
      [](const std::string& filename) { return io::load_safetensors(filename).metadata; }, "filename"_a,
      R"(load_metadata(filename) -> Dict[str, str]
--

The file's __metadata__ (empty when it has none).)");
  sub.def(
      "save_file",
      [](const py::dict& tensors, const std::string& filename, const py::object& metadata) {
        io::NamedTensors named;
        for (const auto& [key, value] : tensors) {
          if (!py::isinstance<py::str>(key)) type_error("save_file", "tensors", "keys must be str, got " + type_name(key));
          const std::string name = key.cast<std::string>();
          named.emplace_back(name, float_values(value, "save_file", "tensors['" + name + "']"));
        }
        std::map<std::string, std::string> meta;
        if (!metadata.is_none()) meta = metadata.cast<std::map<std::string, std::string>>();
        py::gil_scoped_release release;
        io::save_safetensors(filename, named, meta);
      },
      "tensors"_a, "filename"_a, "metadata"_a = py::none(),
      R"(save_file(tensors, filename, metadata=None)
--

Writes a dict of arrays (any real dtype, stored as F32) and an optional dict
of str metadata as a safetensors file that torch and the safetensors package
read.)");
  // `from attn.safetensors import load_file` finds the submodule too.
  py::module_::import("sys").attr("modules")["attn.safetensors"] = sub;
}

}  // namespace attn::python
