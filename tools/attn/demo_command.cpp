#include "demo_command.hpp"

#include <memory>

#include "demo.hpp"

namespace attn::tools {

void add_demo_command(CLI::App& app, int& status) {
  auto demo = std::make_shared<DemoOptions>();
  CLI::App* command = app.add_subcommand(
      "demo", "Walk through the worked example of each tutorial (documents 000..004)");
  command
      ->add_option("--json", demo->json_path,
                   "Write every example's inputs, parameters and outputs to FILE")
      ->option_text("FILE");
  command
      ->add_option("--out", demo->out_dir,
                   "Folder for the heatmap of every attention, the network of document 000 "
                   "and their index.html (created if missing)")
      ->option_text("DIR")
      ->capture_default_str();
  command
      ->add_option("--seed", demo->seed,
                   "Seed of the attn::Rng that draws every input and parameter")
      ->capture_default_str();
  command->callback([demo, &status] { status = run_demo(*demo); });
}

}  // namespace attn::tools
