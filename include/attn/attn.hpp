// The whole public API of attn.
#pragma once

#include "attn/backward.hpp"
#include "attn/error.hpp"
#include "attn/explain.hpp"
#include "attn/io.hpp"
#include "attn/mask.hpp"
#include "attn/modules.hpp"
#include "attn/optim.hpp"
#include "attn/ops.hpp"
#include "attn/plot.hpp"
#include "attn/plot_chart.hpp"
#include "attn/plot_network.hpp"
#include "attn/rng.hpp"
#include "attn/safetensors.hpp"
#include "attn/state_dict.hpp"
#include "attn/tensor.hpp"
#include "attn/threads.hpp"
