// `attn train`: the training loop of the reverse task. Each step draws a fresh
// batch, runs the model forward, takes cross-entropy's gradient through the
// model's explicit backward and lets Adam update the weights. Every
// `--eval-every` steps a fixed held-out set measures token accuracy; training
// stops at `--target` accuracy, after `--steps` steps or after `--seconds`.
//
//   attn train --out run/   # run/reverse.safetensors, run/attention.png, run/attention.npy
#include "train_command.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <unistd.h>

#include "attn/io.hpp"
#include "attn/optim.hpp"
#include "attn/plot.hpp"
#include "attn/safetensors.hpp"
#include "reverse_task.hpp"

namespace attn::tools {
namespace {

struct TrainCommand {
  ReverseTaskSizes sizes;
  std::int64_t batch = 64;
  std::int64_t steps = 5000;      // at most
  double seconds = 60;            // at most
  double lr = 3e-3;
  double target = 0.999;          // held-out token accuracy that ends training
  std::int64_t eval_every = 20;
  std::int64_t eval_size = 512;
  std::uint64_t seed = 0;
  std::string out = "attn-train";
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One line of progress: a bar over the step budget on a terminal (rewritten in
// place), a plain line per evaluation otherwise (logs, tests).
class Progress {
 public:
  explicit Progress(std::int64_t steps) : steps_(steps), terminal_(isatty(fileno(stdout)) != 0) {}

  void show(std::int64_t step, double loss, double train_acc, double eval_acc, double elapsed) {
    constexpr int kWidth = 24;
    const auto filled = static_cast<int>(kWidth * step / std::max<std::int64_t>(steps_, 1));
    const std::string line = fmt::format(
        "step {:>5}  loss {:.4f}  train acc {:5.1f}%  held-out acc {:5.1f}%  {:.1f} s", step, loss,
        100 * train_acc, 100 * eval_acc, elapsed);
    if (terminal_) {
      fmt::print("\r[{}{}] {}", std::string(static_cast<std::size_t>(filled), '#'),
                 std::string(static_cast<std::size_t>(kWidth - filled), '-'), line);
    } else {
      fmt::print("{}\n", line);
    }
    std::fflush(stdout);
  }
  void done() {
    if (terminal_) fmt::print("\n");
  }

 private:
  std::int64_t steps_;
  bool terminal_;
};

std::string token_label(std::int64_t token) { return std::to_string(token); }

void run_train(const TrainCommand& c) {
  ReverseModel model(c.sizes, c.seed);
  optim::Adam adam(model.named_parameters(), {.lr = c.lr});
  Rng data(c.seed + 10), held_out_rng(c.seed + 20);
  const ReverseBatch held_out = reverse_batch(c.eval_size, c.sizes, held_out_rng);

  fmt::print(
      "reverse task: {} tokens of {} symbols; model: embeddings of width {}, {} attention head{}, "
      "a linear read-out; Adam lr {}, batch {}\n",
      c.sizes.length, c.sizes.vocab, c.sizes.width, c.sizes.heads, c.sizes.heads == 1 ? "" : "s", c.lr,
      c.batch);
  const Clock::time_point start = Clock::now();
  Progress progress(c.steps);
  double held_out_acc = 0, reached_99_at = -1;
  std::int64_t step = 0;
  while (step < c.steps && seconds_since(start) < c.seconds && held_out_acc < c.target) {
    ++step;
    const ReverseBatch batch = reverse_batch(c.batch, c.sizes, data);
    const ReverseModel::Output out = model.forward(batch.tokens);
    const CrossEntropy ce = cross_entropy(out.logits, batch.targets);
    adam.step(model.backward(ce.dlogits));
    if (step % c.eval_every == 0 || step == c.steps) {
      held_out_acc = cross_entropy(model.forward(held_out.tokens).logits, held_out.targets).accuracy;
      if (held_out_acc >= 0.99 && reached_99_at < 0) reached_99_at = seconds_since(start);
      progress.show(step, ce.loss, ce.accuracy, held_out_acc, seconds_since(start));
    }
  }
  progress.done();

  const ReverseModel::Output final = model.forward(held_out.tokens);
  const CrossEntropy ce = cross_entropy(final.logits, held_out.targets);
  const double mirrored = mirrored_fraction(final.weights);
  fmt::print("trained {} steps in {:.1f} s; held-out token accuracy {:.2f}% on {} sequences{}\n", step,
             seconds_since(start), 100 * ce.accuracy, c.eval_size,
             reached_99_at < 0 ? std::string(", never 99%")
                               : fmt::format(" (99% after {:.1f} s)", reached_99_at));
  fmt::print("attention: the largest weight of {:.2f}% of query rows is on the mirrored position\n",
             100 * mirrored);

  std::filesystem::create_directories(c.out);
  const std::filesystem::path dir(c.out);
  const std::string weights_path = (dir / "reverse.safetensors").string();
  io::save_safetensors(weights_path, model.named_parameters(),
                       {{"task", "reverse"},
                        {"length", std::to_string(c.sizes.length)},
                        {"vocab", std::to_string(c.sizes.vocab)},
                        {"width", std::to_string(c.sizes.width)},
                        {"heads", std::to_string(c.sizes.heads)}});
  const std::string npy_path = (dir / "attention.npy").string();
  io::write_npy(npy_path, final.weights);

  // The first held-out sequence: output positions (queries) over input positions.
  plot::HeatmapOptions options;
  options.xlabel = "Input position (token)";
  options.ylabel = "Output position (token)";
  options.colormap = plot::Colormap::reds;
  const std::vector<std::int64_t> tokens = held_out.tokens.to_vector();
  for (std::int64_t i = 0; i < c.sizes.length; ++i) {
    options.x_tokens.push_back(token_label(tokens[static_cast<std::size_t>(i)]));
    options.y_tokens.push_back(token_label(tokens[static_cast<std::size_t>(c.sizes.length - 1 - i)]));
  }
  const std::string picture = (dir / "attention.png").string();
  plot::heatmaps(final.weights.slice(0, 0, 1), options).save(picture);
  fmt::print("wrote {} (the weights, with the sizes as metadata), {} (held-out attention, {})\nand {}\n",
             weights_path, npy_path, final.weights.shape_string(), picture);
}

}  // namespace

void add_train_command(CLI::App& app, int& status) {
  auto c = std::make_shared<TrainCommand>();
  CLI::App* sub = app.add_subcommand(
      "train", "Train an attention model from scratch on the reverse task and show what it attends to");
  sub->add_option("--length", c->sizes.length, "Tokens per sequence")->check(CLI::Range(2, 4096))->capture_default_str();
  sub->add_option("--vocab", c->sizes.vocab, "Symbols")->check(CLI::Range(2, 1 << 20))->capture_default_str();
  sub->add_option("--width", c->sizes.width, "Embedding width E")->check(CLI::Range(1, 1 << 16))->capture_default_str();
  sub->add_option("--heads", c->sizes.heads, "Attention heads (must divide the width)")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--batch", c->batch, "Sequences per step")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--steps", c->steps, "Steps at most")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--seconds", c->seconds, "Seconds at most")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--lr", c->lr, "Adam's learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--target", c->target, "Held-out token accuracy that ends training")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  sub->add_option("--eval-every", c->eval_every, "Steps between held-out evaluations")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--eval-size", c->eval_size, "Held-out sequences")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--seed", c->seed, "Seed of the weights and the data")->capture_default_str();
  sub->add_option("-o,--out", c->out, "Folder for reverse.safetensors, attention.npy and attention.png")->capture_default_str();
  sub->callback([c, &status] {
    run_train(*c);
    status = 0;
  });
}

}  // namespace attn::tools
