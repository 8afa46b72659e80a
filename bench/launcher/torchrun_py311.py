"""torchrun (torch.distributed.run) of Debian's PyTorch 1.13, made to run on Python 3.11.

On Python 3.11, iterating an IntFlag skips its zero member, so torch 1.13's Std.from_str("0")
(the default of --redirects and --tee) returns None and torchrun crashes in to_map with
"'NoneType' object has no attribute 'get'". This wrapper maps a missing value to Std.NONE and then
runs torchrun's own main() with the given arguments (use torchrun's underscore flags:
--nproc_per_node, --max_restarts, --no_python, ...).
"""
import sys

from torch.distributed.elastic.multiprocessing import api

_from_str = api.Std.from_str.__func__


def _from_str_fixed(cls, vm):
    value = _from_str(cls, vm)
    if value is None:
        return api.Std.NONE
    if isinstance(value, dict):
        return {k: api.Std.NONE if v is None else v for k, v in value.items()}
    return value


api.Std.from_str = classmethod(_from_str_fixed)

from torch.distributed.run import main  # noqa: E402  (after the patch, as run.py reads Std)

if __name__ == "__main__":
    sys.exit(main())
