"""ser-train: reproduce the shipped model from the corpora."""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from emovox.train.corpora import LOADERS, load_corpora
from emovox.train.features import DEFAULT_CACHE
from emovox.train.fit import TrainSettings
from emovox.train.recipe import Recipe, ship

REPO_MODELS = Path("models")  # run from the repository root


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ser-train", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("ship", help="evaluate folds, train on all data, export int8 + metadata")
    run.add_argument("--data", type=Path, default=Path("../shared/data"), help="corpora root (default %(default)s)")
    run.add_argument("--corpora", default=",".join(LOADERS),
                     help="comma-separated corpora to use (default: all of %(default)s)")
    run.add_argument("--folds", default="1", help="EmoBox folds to evaluate, e.g. 1 or 1,2,3,4,5,6 (default 1)")
    run.add_argument("--epochs", type=int, default=TrainSettings.epochs)
    run.add_argument("--seed", type=int, default=TrainSettings.seed)
    run.add_argument("--limit-per-speaker", type=int, default=0,
                     help="use at most N files per speaker (smoke runs; 0 = all)")
    run.add_argument("--out", type=Path, default=REPO_MODELS, help="where the model goes (default: %(default)s)")
    run.add_argument("--results", type=Path, default=Path("benchmarks/results"), help="default: %(default)s")
    run.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    return parser


def _limit(items, per_speaker: int):
    if per_speaker <= 0:
        return items
    kept, seen = [], {}
    for item in items:
        seen[item.speaker] = seen.get(item.speaker, 0) + 1
        if seen[item.speaker] <= per_speaker:
            kept.append(item)
    return kept


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        names = tuple(name.strip() for name in args.corpora.split(",") if name.strip())
        unknown = [n for n in names if n not in LOADERS]
        if unknown:
            raise ValueError(f"unknown corpus {unknown[0]!r}; known: {', '.join(LOADERS)}")
        folds = [int(f) for f in args.folds.split(",") if f.strip()]
        items = _limit(load_corpora(args.data, names), args.limit_per_speaker)
    except (ValueError, FileNotFoundError) as error:
        print(f"ser-train: error: {error}", file=sys.stderr)
        return 2
    recipe = Recipe(train=replace(TrainSettings(), epochs=args.epochs, seed=args.seed))
    ship(items, recipe, folds, args.out, args.cache, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
