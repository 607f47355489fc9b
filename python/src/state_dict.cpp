#include "state_dict.hpp"

#include <pybind11/stl.h>

#include <string>
#include <utility>
#include <vector>

#include "convert.hpp"

namespace attn::python {

namespace {

// torch's IncompatibleKeys(missing_keys, unexpected_keys). Created once and never
// destroyed: a Python object must not outlive the interpreter in a C++ static.
py::object incompatible_keys_type() {
  static const auto* type = new py::object(
      py::module_::import("collections")
          .attr("namedtuple")("IncompatibleKeys", py::make_tuple("missing_keys", "unexpected_keys")));
  return *type;
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& name : names) s += (s.empty() ? "\"" : ", \"") + name + "\"";
  return s;
}

}  // namespace

py::dict state_dict(const NamedParameters& params) {
  py::dict out;
  for (const auto& [name, tensor] : params) out[py::str(name)] = to_numpy(tensor);
  return out;
}

py::object load_state_dict(const NamedParameters& params, py::handle state_dict, bool strict,
                           std::string_view module) {
  if (!py::isinstance<py::dict>(state_dict) &&
      !py::isinstance(state_dict, py::module_::import("collections.abc").attr("Mapping")))
    type_error("load_state_dict", "state_dict",
               "must be a mapping of names to arrays, got " + type_name(state_dict));
  const py::dict state(py::reinterpret_borrow<py::object>(state_dict));

  std::vector<std::string> missing, unexpected, mismatches;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (parameter, values)
  for (const auto& [name, param] : params) {
    const py::str key(name);
    if (!state.contains(key)) {
      missing.push_back(name);
      continue;
    }
    const Tensor values = float_values(state[key], "load_state_dict", name);
    if (values.shape() != param.shape()) {
      mismatches.push_back("size mismatch for " + name + ": copying a param with shape " +
                           values.shape_string() + " from checkpoint, the shape in current model is " +
                           param.shape_string() + ".");
      continue;
    }
    copies.emplace_back(param, values);
  }
  for (const auto& item : state) {
    const std::string key = py::str(item.first).cast<std::string>();
    bool known = false;
    for (const auto& entry : params)
      known = known || (py::isinstance<py::str>(item.first) && entry.first == key);
    if (!known) unexpected.push_back(key);
  }

  std::vector<std::string> errors;
  if (strict && !missing.empty())
    errors.push_back("Missing key(s) in state_dict: " + quoted_list(missing) + ". ");
  if (strict && !unexpected.empty())
    errors.push_back("Unexpected key(s) in state_dict: " + quoted_list(unexpected) + ". ");
  errors.insert(errors.end(), mismatches.begin(), mismatches.end());
  if (!errors.empty()) {
    std::string message = "Error(s) in loading state_dict for " + std::string(module) + ":";
    for (const std::string& e : errors) message += "\n\t" + e;
    throw Error(message);
  }
  for (const auto& [param, values] : copies) param.copy_from(values);
  return incompatible_keys_type()(missing, unexpected);
}

void assign_parameter(const Tensor& param, py::handle value, std::string_view module, std::string_view name) {
  if (!param.defined())
    value_error(module, std::string(name) + " is None in this configuration and cannot be assigned");
  const Tensor values = float_values(value, module, name);
  if (values.shape() != param.shape())
    value_error(module, std::string(name) + " must have shape " + param.shape_string() + ", got " +
                            values.shape_string());
  param.copy_from(values);
}

}  // namespace attn::python
