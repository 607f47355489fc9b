// attn: the command-line tool of the attn library. Each subcommand lives in its
// own file and registers here.
#include <exception>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "bench_command.hpp"
#include "demo_command.hpp"
#include "explain_command.hpp"
#include "heatmap_command.hpp"
#include "train_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"attn: exact attention mechanisms in C++"};
  app.require_subcommand(1);

  int status = 0;
  attn::tools::add_bench_command(app, status);
  attn::tools::add_demo_command(app, status);
  attn::tools::add_explain_command(app, status);
  attn::tools::add_heatmap_command(app, status);
  attn::tools::add_train_command(app, status);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    fmt::print(stderr, "attn: {}\n", e.what());
    return 1;
  }
  return status;
}
