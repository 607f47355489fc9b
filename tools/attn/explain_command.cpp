// `attn explain [--embed-dim E] [--heads H] [--batch B] [--queries Lq] [--keys Lk]
//               [--kdim K] [--vdim V] [-o FILE]`
//
// The defaults are document 000's example (num_hiddens=100, num_heads=5,
// batch_size=2, num_queries=4, num_kvpairs=6). The sizes are checked by the
// library (attn::multi_head_walkthrough), so the messages are the library's.
#include "explain_command.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "attn/explain.hpp"
#include "attn/plot_network.hpp"

namespace attn::tools {
namespace {

struct ExplainOptions {
  MultiHeadSizes sizes{.embed_dim = 100, .num_heads = 5, .batch = 2, .queries = 4, .keys = 6};
  std::string out;  // the picture; empty: text only
};

int run_explain(const ExplainOptions& options) {
  const MultiHeadWalkthrough walkthrough = multi_head_walkthrough(options.sizes);
  // The picture first: a path that cannot be written fails before anything is printed.
  if (!options.out.empty()) plot::network(walkthrough).save(options.out);
  fmt::print("{}", walkthrough_text(walkthrough));
  if (!options.out.empty()) fmt::print("\nwrote {}\n", options.out);
  return 0;
}

}  // namespace

void add_explain_command(CLI::App& app, int& status) {
  auto options = std::make_shared<ExplainOptions>();
  MultiHeadSizes& s = options->sizes;
  CLI::App* command = app.add_subcommand(
      "explain",
      "The shape after every stage of one multi-head attention forward, as document 000 "
      "prints them; -o draws the network with the shape on every edge");
  command->add_option("--embed-dim", s.embed_dim, "E: width of the projections and the output")
      ->capture_default_str();
  command->add_option("--heads", s.num_heads, "H: number of heads, must divide E")
      ->capture_default_str();
  command->add_option("--batch", s.batch, "B: batch size")->capture_default_str();
  command->add_option("--queries", s.queries, "Lq: number of queries")->capture_default_str();
  command->add_option("--keys", s.keys, "Lk: number of key-value pairs")->capture_default_str();
  command->add_option("--kdim", s.kdim, "Width of the keys (default: E)");
  command->add_option("--vdim", s.vdim, "Width of the values (default: E)");
  command->add_option("-o,--out", options->out, "Draw the network to FILE (.png, .svg or .pdf)")
      ->option_text("FILE");
  command->callback([options, &status] { status = run_explain(*options); });
}

}  // namespace attn::tools
