"""The flops of aib's exact spectral work on a safetensors checkpoint, as the README's performance
table counts them: per 2-D tensor (s = smaller side, l = larger) its Gram matrix, one triangle,
l·s² flops, plus K·s³ for what follows (4/3 for every eigenvalue by the two-stage reduction, as
in `layers` and `report`; 1/3 for the inertia count of `stats`).

    python3 benches/count_flops.py MODEL_DIR K
"""

import glob
import json
import struct
import sys

model, k = sys.argv[1], float(sys.argv[2])
total = 0.0
for path in sorted(glob.glob(model + "/*.safetensors")):
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    for name, tensor in header.items():
        if name != "__metadata__" and len(tensor["shape"]) == 2:
            small, large = sorted(tensor["shape"])
            total += large * small * small + k * small**3
print(total)
