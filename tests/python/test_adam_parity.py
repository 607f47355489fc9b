"""attn::optim::Adam against torch.optim.Adam: the same parameters and gradients,
step for step, for several option sets (tests/tools/adam_case.cpp runs attn's)."""

import json
import os
import subprocess

import numpy as np
import pytest
import torch

from tolerance import adam_budget

CASES = [
    dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0),
    dict(lr=3e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.0),
    dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1),
    dict(lr=5e-3, beta1=0.0, beta2=0.5, eps=0.0, weight_decay=0.01),
]
STEPS = 6


def run_attn(options, params, grads):
    request = {
        "options": options,
        "params": [[name, list(p.shape), p.ravel().tolist()] for name, p in params],
        "grads": [[[name, g.ravel().tolist()] for name, g in step] for step in grads],
    }
    run = subprocess.run([os.environ["ADAM_CASE_BIN"]], input=json.dumps(request),
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return {name: np.array(values, dtype=np.float32)
            for name, values in json.loads(run.stdout)["params"]}


def run_torch(options, params, grads):
    tensors = {name: torch.tensor(p.copy(), requires_grad=True) for name, p in params}
    adam = torch.optim.Adam(tensors.values(), lr=options["lr"],
                            betas=(options["beta1"], options["beta2"]), eps=options["eps"],
                            weight_decay=options["weight_decay"])
    for step in grads:
        for name, g in step:
            tensors[name].grad = torch.tensor(g)
        adam.step()
    return {name: t.detach().numpy().ravel() for name, t in tensors.items()}


@pytest.mark.parametrize("options", CASES)
def test_adam_steps_as_torch(options):
    rng = np.random.default_rng(7)
    params = [("w", rng.standard_normal((5, 7)).astype(np.float32)),
              ("b", rng.standard_normal(7).astype(np.float32)),
              ("scale", rng.standard_normal((1, 1, 3)).astype(np.float32))]
    # Gradients of mixed scales, some zero, listed in another order than the params.
    grads = [[(name, (rng.standard_normal(p.shape) * 10.0 ** rng.integers(-3, 2)).astype(np.float32)
               * (rng.random(p.shape) > 0.2))
              for name, p in reversed(params)] for _ in range(STEPS)]
    got = run_attn(options, params, grads)
    want = run_torch(options, params, grads)
    for name, p0 in params:
        change = want[name].astype(np.float64) - p0.ravel()
        error = np.linalg.norm(got[name].astype(np.float64) - want[name]) / np.linalg.norm(change)
        assert error <= adam_budget(STEPS), (name, error)


def test_adam_refuses_a_missing_gradient():
    params = [("w", np.ones((2, 2), np.float32)), ("b", np.ones(2, np.float32))]
    request = {"options": CASES[0],
               "params": [[n, list(p.shape), p.ravel().tolist()] for n, p in params],
               "grads": [[["w", [1.0] * 4]]]}
    run = subprocess.run([os.environ["ADAM_CASE_BIN"]], input=json.dumps(request),
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert "no gradient for parameter 'b'" in run.stderr
