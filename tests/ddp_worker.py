"""One rank of the DDP test: `python -m torch.distributed.run --nproc_per_node=2 tests/ddp_worker.py OUT DATA DUMP [PRECISION [KEY=VALUE ...]]`.

Trains infogan-mnist on a folder of images through the engine, then writes this rank's weights to
DUMP/rank<R>.safetensors (outside the run folder) so the test can compare the ranks.
"""

import os
import sys
import warnings

import torch

torch.set_num_threads(1)

from safetensors.torch import save_file  # noqa: E402

from genzoo_infogan.config import find_recipe  # noqa: E402
from genzoo_infogan.host import default_registry  # noqa: E402
from genzoo_infogan.config import resolve  # noqa: E402
from genzoo_infogan.engine import Trainer  # noqa: E402

out, data, dump = sys.argv[1:4]
precision = sys.argv[4] if len(sys.argv) > 4 else "fp32"  # bf16: autocast with the kept weight copies
config = resolve(find_recipe("infogan-mnist", default_registry()), default_registry(), [
    "data.name=folder", f"data.path={data}", "data.channels=1", "data.size=28", "train.batch_size=8",
    "train.steps=4", "log.every=1", "log.sample_every=0", "log.checkpoint_every=0", "log.eval_samples=16",
    f"train.precision={precision}", *sys.argv[5:]])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    result = Trainer(config, out_dir=out, device="cpu", progress=False).run()
rank = int(os.environ["RANK"])
save_file({k: v.detach().contiguous() for k, v in result.model.state_dict().items()},
          os.path.join(dump, f"rank{rank}.safetensors"))
