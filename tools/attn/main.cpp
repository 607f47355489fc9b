// attn: the command-line tool of the attn library. Each subcommand lives in its
// own file and registers here.
#include <exception>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "demo.hpp"
#include "heatmap_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"attn: exact attention mechanisms in C++"};
  app.require_subcommand(1);

  int status = 0;
  attn::tools::DemoOptions demo;
  CLI::App* demo_command = app.add_subcommand(
      "demo", "Walk through the worked example of each tutorial (documents 000..004)");
  demo_command
      ->add_option("--json", demo.json_path,
                   "Write every example's inputs, parameters and outputs to FILE")
      ->option_text("FILE");
  demo_command
      ->add_option("--out", demo.out_dir,
                   "Folder for the heatmap of every attention and their index.html "
                   "(created if missing)")
      ->option_text("DIR")
      ->capture_default_str();
  demo_command
      ->add_option("--seed", demo.seed,
                   "Seed of the attn::Rng that draws every input and parameter")
      ->capture_default_str();
  demo_command->callback([&] { status = attn::tools::run_demo(demo); });
  attn::tools::add_heatmap_command(app, status);

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
