// The Python module `attn`: torch's names and signatures over numpy float32 arrays.
#include <pybind11/pybind11.h>

#include <exception>

#include "attn/error.hpp"
#include "attn/rng.hpp"
#include "attn/threads.hpp"
#include "bindings.hpp"

namespace attn::python {

namespace {

// The stream behind next_seed. Its start is fixed, as torch's default generator's
// is, so a script that never seeds still runs the same way twice.
Rng& seed_stream() {
  static Rng stream(0);
  return stream;
}

// attn.Error: both a ValueError (bad input, what the library reports) and a
// RuntimeError (what torch raises for the same mistakes), so either except
// clause catches it. Created once; the module holds it for the process's life.
PyObject* error_type = nullptr;

}  // namespace

std::uint64_t next_seed() { return seed_stream().next_u64(); }

}  // namespace attn::python

PYBIND11_MODULE(attn, m) {
  namespace py = pybind11;
  using namespace attn::python;
  using namespace pybind11::literals;

  m.doc() = R"(Exact attention over numpy float32 arrays, with PyTorch's names and signatures.

scaled_dot_product_attention and MultiheadAttention take and return what
torch.nn.functional's and torch.nn's do, as numpy arrays; masked_softmax,
AdditiveAttention and DotProductAttention are d2l's. Arrays are read in place
(no copy for float32 input of any strides); a wrong dtype raises TypeError, a
wrong shape or value attn.Error (a ValueError and a RuntimeError), each naming
the argument.)";

  const py::tuple bases = py::make_tuple(py::handle(PyExc_ValueError), py::handle(PyExc_RuntimeError));
  error_type = PyErr_NewExceptionWithDoc(
      "attn.Error", "Bad input to attn: a shape, size or value; the message names the argument.", bases.ptr(),
      nullptr);
  if (error_type == nullptr) throw py::error_already_set();
  m.add_object("Error", py::handle(error_type));
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const attn::Error& e) {
      PyErr_SetString(error_type, e.what());
    }
  });

  py::options options;  // signatures in the docstrings, as in the other files
  options.disable_function_signatures();
  m.def(
      "manual_seed", [](std::uint64_t seed) { seed_stream() = attn::Rng(seed); }, "seed"_a,
      R"(manual_seed(seed)
--

Restarts the stream that seeds dropout and parameter initialisation, as
torch.manual_seed does for torch's.)");

  m.def("set_num_threads", &attn::set_num_threads, "n"_a,
        R"(set_num_threads(n)
--

Threads for attn's kernels from now on, n >= 1, for the whole process (every
thread, and OpenBLAS's for the projections), as torch.set_num_threads. The
default is the cores OpenMP sees (OMP_NUM_THREADS if set). Results are the same
bits for any thread count.)");
  m.def("get_num_threads", &attn::num_threads,
        R"(get_num_threads()
--

The threads attn's kernels use, as torch.get_num_threads.)");

  register_ops(m);
  register_modules(m);
  register_safetensors(m);
}
