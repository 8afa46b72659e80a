#!/usr/bin/python3
"""The tiny strun-train config of the training tests: tiny_config.yaml.in with each test's values.

A Llama of 2 layers, hidden size 32 and GPT-2's vocabulary, float32, AdamW, debug loss lines at
every step. Each test names its own run, dp, train_steps, checkpoint_interval and
checkpoints_path; the other values have the defaults below unless the test names them too (the
parallel-layout tests change the model's shape and vocabulary, pp and the TP/PP modes).
A key whose value is empty is left out of the config, so that strun-train's default applies: the
OPTIONAL keys are left out unless a test names them.

Python:  import tiny_config; tiny_config.write("a.yaml", run="a", dp=2, ...)
Shell:   tiny_config.py FILE KEY=VALUE...   (FILE may be /dev/stdout; a later KEY=VALUE wins)
"""
import os
import re
import string
import sys

TEMPLATE = os.path.join(os.path.dirname(os.path.realpath(__file__)), "tiny_config.yaml.in")
REQUIRED = ("run", "dp", "train_steps", "checkpoint_interval", "checkpoints_path")
DEFAULTS = {
    "project": "test",
    "seed": 7,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 50257,
    "learning_rate": 0.003,
    "lr_warmup_steps": 2,
    "zero_stage": 1,
    "tp": 1,
    "pp": 1,
    "dataset": "tiny",  # the test's `strun-train prepare --output tiny`
    "batch_accumulation_per_replica": 1,
    "save_final_state": "true",
}
OPTIONAL = ("pp_engine", "tp_mode", "tp_linear_async_communication", "save_initial_state",
            "load_optimizer")
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def render(**values):
    """The config text; raises ValueError for a missing (or empty) required key, an unknown key."""
    missing = [k for k in REQUIRED if str(values.get(k, "")) == ""]
    unknown = sorted(set(values) - set(REQUIRED) - set(DEFAULTS) - set(OPTIONAL))
    if missing or unknown:
        raise ValueError("tiny_config: missing or empty required keys %s, unknown keys %s (the known "
                         "ones: REQUIRED, DEFAULTS and OPTIONAL in %s)" % (missing, unknown, __file__))
    values = {k: str(v) for k, v in {**dict.fromkeys(OPTIONAL, ""), **DEFAULTS, **values}.items()}
    with open(TEMPLATE) as f:
        lines = f.read().splitlines(keepends=True)
    kept = [l for l in lines if all(values[k] != "" for k in PLACEHOLDER.findall(l))]
    return string.Template("".join(kept)).substitute(values)


def write(path, **values):
    """Writes the config to `path` and returns `path`."""
    text = render(**values)
    with open(path, "w") as f:
        f.write(text)
    return path


def main(argv):
    if len(argv) < 2 or any("=" not in a for a in argv[2:]):
        sys.exit("usage: tiny_config.py FILE KEY=VALUE...")
    try:
        write(argv[1], **dict(a.split("=", 1) for a in argv[2:]))
    except ValueError as e:
        sys.exit(str(e))


if __name__ == "__main__":
    main(sys.argv)
