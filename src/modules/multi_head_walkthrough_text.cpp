// walkthrough_text: the walk-through as document 000 prints it, one line per stage
// with the shape after it, and the parameters' shapes first.
#include <fmt/format.h>

#include <algorithm>

#include "attn/explain.hpp"

namespace attn {

std::string walkthrough_text(const MultiHeadWalkthrough& w) {
  const MultiHeadSizes& s = w.sizes;
  std::string out = fmt::format(
      "MultiHeadAttention(embed_dim={}, num_heads={}, kdim={}, vdim={}, batch_first={})\n"
      "batch {}, {} {}, {} key-value {}; head dim E/H = {} / {} = {}\n",
      s.embed_dim, s.num_heads, s.kdim.value_or(s.embed_dim), s.vdim.value_or(s.embed_dim),
      s.batch_first ? "True" : "False", s.batch, s.queries, s.queries == 1 ? "query" : "queries",
      s.keys, s.keys == 1 ? "pair" : "pairs", s.embed_dim, s.num_heads, w.head_dim);

  // Columns as wide as their widest entry, so that the shapes line up.
  std::size_t name_w = 0, weight_letters_w = 0, weight_w = 0, op_w = 0, letters_w = 0, shape_w = 0;
  for (const Stage& st : w.stages) {
    op_w = std::max(op_w, st.operation.size());
    letters_w = std::max(letters_w, st.letters.size());
    shape_w = std::max(shape_w, shape_str(st.shape).size());
    if (st.weight_name.empty()) continue;
    name_w = std::max(name_w, st.weight_name.size());
    weight_letters_w = std::max(weight_letters_w, st.weight_letters.size());
    weight_w = std::max(weight_w, shape_str(st.weight).size());
  }

  out += "\nparameters, as nn.Linear keeps them (out, in):\n";
  for (const Stage& st : w.stages)
    if (!st.weight_name.empty())
      out +=
          fmt::format("  {:<{}}  {:<{}}  {:<{}}  {}\n", st.weight_name, name_w, st.weight_letters,
                      weight_letters_w, shape_str(st.weight), weight_w, st.torch_name);
  out += fmt::format("  with bias=True each also has a bias of E = {} entries (d2l: bias=False)\n",
                     s.embed_dim);

  out += "\nstages:\n";
  for (const Stage& st : w.stages) {
    std::string line = fmt::format("  {:<{}}  {:<{}}  {:<{}}", st.operation, op_w, st.letters,
                                   letters_w, shape_str(st.shape), shape_w);
    if (!st.note.empty()) line += "  " + st.note;
    line.erase(line.find_last_not_of(' ') + 1);
    out += line + "\n";
  }
  return out;
}

}  // namespace attn
