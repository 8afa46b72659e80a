#!/usr/bin/python3
"""The tiny strun-train config of the training tests: tiny_config.yaml.in with each test's values.

A Llama of 2 layers, hidden size 32 and GPT-2's vocabulary, float32, AdamW, debug loss lines at
every step. Each test names its own run, dp, train_steps, checkpoint_interval and
checkpoints_path; the other values have the defaults below unless the test names them too.

Python:  import tiny_config; tiny_config.write("a.yaml", run="a", dp=2, ...)
Shell:   tiny_config.py FILE KEY=VALUE...   (FILE may be /dev/stdout)
"""
import os
import string
import sys

TEMPLATE = os.path.join(os.path.dirname(os.path.realpath(__file__)), "tiny_config.yaml.in")
REQUIRED = ("run", "dp", "train_steps", "checkpoint_interval", "checkpoints_path")
DEFAULTS = {
    "project": "test",
    "seed": 7,
    "learning_rate": 0.003,
    "lr_warmup_steps": 2,
    "zero_stage": 1,
    "tp": 1,
    "dataset": "tiny",  # the test's `strun-train prepare --output tiny`
    "batch_accumulation_per_replica": 1,
    "save_final_state": "true",
}


def render(**values):
    """The config text; raises ValueError for a missing or unknown key."""
    missing = [k for k in REQUIRED if k not in values]
    unknown = sorted(set(values) - set(REQUIRED) - set(DEFAULTS))
    if missing or unknown:
        raise ValueError("tiny_config: missing %s, unknown %s" % (missing, unknown))
    with open(TEMPLATE) as f:
        template = string.Template(f.read())
    return template.substitute({k: str(v) for k, v in {**DEFAULTS, **values}.items()})


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
