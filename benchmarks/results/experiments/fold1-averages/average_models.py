"""Ad hoc (session 8): UA of averaged fold-1 models on the validation and test actors, from cached
checkpoints named by their key: `python benchmarks/results/experiments/fold1-averages/average_models.py e10=<key> e16=<key> ...` from the repository
root. The keys depend on the training code's bytes, so a rerun needs the checkpoints retrained."""
import itertools
import json
import sys
from pathlib import Path
import numpy as np
import torch
from emovox.train.corpora import LABELS, load_corpora
from emovox.train.recipe import Recipe, full_model, raw_windows
from emovox.train import folds as emobox
from emovox.train.model import CNNLSTM
from emovox.train.fit import backbone_logits
from emovox.train.calibration import utterance_probs
from emovox.train.metrics import evaluate
torch.set_num_threads(1)
CK = Path(".cache/features/checkpoints")
models = dict(arg.split("=") for arg in sys.argv[1:])
items = load_corpora(Path("../shared/data"), ("ravdess",))
recipe = Recipe()
N_MELS, N_CLASSES = recipe.frontend.n_mels, len(LABELS)  # the recipe's network shape
tr, va, te = emobox.split_with_validation(items, 1)
sets = {}
for name, idx in (("val", va), ("test", te)):
    its = [items[i] for i in idx]
    w, owner = raw_windows(its, recipe)
    with torch.no_grad():
        mel = full_model(CNNLSTM(N_MELS, N_CLASSES), recipe).frontend(torch.from_numpy(w)).numpy()
    sets[name] = (mel, owner, np.array([u.label_index for u in its]))
probs = {}
for m, key in models.items():
    b = CNNLSTM(N_MELS, N_CLASSES); b.load_state_dict(torch.load(CK / f"backbone-{key}.pt")); b.eval()
    for name, (mel, owner, truth) in sets.items():
        probs[m, name] = utterance_probs(backbone_logits(b, mel), owner, len(truth))
out = {}
for r in range(1, len(models) + 1):
    for combo in itertools.combinations(models, r):
        row = {}
        for name, (_, _, truth) in sets.items():
            p = np.mean([probs[m, name] for m in combo], axis=0)
            row[name] = round(evaluate(truth, p.argmax(1), LABELS)["ua"], 4)
        out["+".join(combo)] = row
        print("+".join(combo), row, flush=True)
json.dump(out, open("averages-last-run.json", "w"), indent=1)
