// load_state_dict: tensors matched to a module's state_dict by name, every problem
// collected into one message (torch's "Missing key(s) / Unexpected key(s) / size
// mismatch for ..."), and the copies made only when there is none, so that a failed
// load leaves the module as it was.
#include <fmt/format.h>

#include <functional>
#include <map>
#include <set>

#include "attn/state_dict.hpp"
#include "io/source.hpp"
#include "ops/check.hpp"

namespace attn::io {
namespace {

constexpr std::string_view kOp = "load_state_dict";

std::string describe(const std::string& name, const Tensor& t) {
  return fmt::format("'{}' {}", printable(name), t.defined() ? t.shape_string() : "(undefined)");
}

std::string joined(const std::vector<std::string>& items) {
  return fmt::format("{}", fmt::join(items, ", "));
}

std::set<std::string> names_of(const NamedTensors& tensors) {
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) names.insert(name);
  return names;
}

// Copies `given` into the views of `expected` (a module's state_dict) by name.
// `module` names the module and convention in messages; `hint`, called when keys are
// missing or unexpected, may add a sentence about what the given names look like.
LoadResult load(std::string_view module, const NamedTensors& expected, const NamedTensors& given,
                bool strict, const std::function<std::string()>& hint = {}) {
  std::map<std::string, const Tensor*> by_name;
  std::vector<std::string> twice;
  for (const auto& [name, t] : given)
    if (!by_name.emplace(name, &t).second) twice.push_back(fmt::format("'{}'", printable(name)));

  LoadResult result;
  std::vector<std::string> missing, mismatched;
  std::vector<std::pair<const Tensor*, const Tensor*>> copies;  // (destination, source)
  for (const auto& [name, param] : expected) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      result.missing_keys.push_back(name);
      missing.push_back(describe(name, param));
    } else if (!it->second->defined() || it->second->shape() != param.shape()) {
      mismatched.push_back(fmt::format("'{}': the tensor is {}, the module's parameter is {}",
                                       printable(name),
                                       it->second->defined() ? it->second->shape_string() : "undefined",
                                       param.shape_string()));
    } else {
      copies.emplace_back(&param, it->second);
    }
  }
  const std::set<std::string> known = names_of(expected);
  std::set<std::string> reported;
  std::vector<std::string> unexpected;
  for (const auto& [name, t] : given)
    if (!known.contains(name) && reported.insert(name).second) {
      result.unexpected_keys.push_back(name);
      unexpected.push_back(describe(name, t));
    }

  std::vector<std::string> problems;
  if (strict && !missing.empty()) problems.push_back("missing key(s): " + joined(missing));
  if (strict && !unexpected.empty()) problems.push_back("unexpected key(s): " + joined(unexpected));
  if (!mismatched.empty()) problems.push_back("size mismatch for " + joined(mismatched));
  if (!twice.empty()) problems.push_back("given more than once: " + joined(twice));
  if (strict && hint && (!missing.empty() || !unexpected.empty()))
    if (std::string h = hint(); !h.empty()) problems.push_back(h);
  if (!problems.empty())
    detail::fail(kOp, fmt::format("{}: {}", module, fmt::join(problems, "; ")));

  for (const auto& [destination, source] : copies) destination->copy_from(*source);
  return result;
}

// A sentence about the given names when they are another convention's, or torch's
// other layout of the input projection.
std::string names_hint(const MultiHeadAttention& module, const NamedTensors& given, Names names) {
  const std::set<std::string> names_given = names_of(given);
  for (Names other : {Names::torch, Names::d2l, Names::transformer_tutorial, Names::self_attention}) {
    if (other == names) continue;
    try {
      if (names_of(state_dict(module, other)) == names_given)
        return fmt::format("the tensors have the names of Names::{}: pass {{.names = "
                           "attn::io::Names::{}}}",
                           names_str(other), names_str(other));
    } catch (const Error&) {
      // The module has parameters that convention cannot name; it is not the one.
    }
  }
  if (names == Names::torch && names_given.contains("q_proj_weight") != module.q_proj_weight.defined())
    return "nn.MultiheadAttention packs q, k and v into in_proj_weight exactly when kdim and "
           "vdim equal embed_dim; the module's widths must be the ones the weights were "
           "trained with";
  return "";
}

}  // namespace

LoadResult load_state_dict(MultiHeadAttention& module, const NamedTensors& tensors,
                           const LoadOptions& options) {
  return load(fmt::format("MultiHeadAttention, {} names", names_str(options.names)),
              state_dict(module, options.names), tensors, options.strict,
              [&] { return names_hint(module, tensors, options.names); });
}

LoadResult load_state_dict(AdditiveAttention& module, const NamedTensors& tensors,
                           const LoadOptions& options) {
  return load("AdditiveAttention", state_dict(module), tensors, options.strict);
}

LoadResult load_state_dict(Linear& module, const NamedTensors& tensors, const LoadOptions& options) {
  return load("Linear", state_dict(module), tensors, options.strict);
}

}  // namespace attn::io
