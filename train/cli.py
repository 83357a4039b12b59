"""ser-train: the speaker-independent evaluation and the shipped model, from the corpora.

    ser-train cv     6 EmoBox folds on RAVDESS -> benchmarks/results/ravdess_cv.{json,md,_confusion.png}
    ser-train ship   the same folds, then the model trained on all data -> models/
    ser-train baselines   the seed systems on RAVDESS, random split vs by actor -> benchmarks/results/baselines.*
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import replace
from pathlib import Path

from emovox.train.corpora import LOADERS, Utterance, load_corpora
from emovox.train.features import DEFAULT_CACHE
from emovox.train.recipe import DEFAULT_STEM, SHIPPED_CHANNELS, SHIPPED_HIDDEN, SHIPPED_TRAINING, TEACHERS
from emovox.train.folds import EMOBOX_TEST_ACTORS
from emovox.train.model import FrontendSpec

REPO_MODELS = Path("models")  # run from the repository root
ALL_FOLDS = ",".join(str(f) for f in EMOBOX_TEST_ACTORS)
BASELINE_NAMES = ("mlp", "lstm", "cnn1d", "fusionnet", "spec_cnn_lgbm", "cnn_lstm")
"""The seed systems, then this project's recipe on their data (RAVDESS alone)."""
MAX_DISTILL_TEMPERATURE = 20.0
"""Beyond it every teacher's softened probabilities are all but uniform: nothing left to learn."""
MAX_FRAME_SAMPLES = 1024
"""64 ms: beyond it a frame blurs the pitch movements it was lengthened to resolve."""
MAX_TIME_SHIFT_S = 1.25
"""Half a 2.5 s window: a window moved further would be mostly silence."""
MAX_MASKS = 8
"""SpecAugment masks of each kind: 8 of 0-10 frames already blank up to 80 of a window's 125 frames."""
MAX_WIDTH = 512
"""Upper bound for --channels and --hidden: far above anything that meets 2 ms a window."""


def _common_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--data", type=Path, default=Path("../shared/data"), help="corpora root (default %(default)s)")
    command.add_argument("--corpora", default=",".join(LOADERS),
                         help="comma-separated corpora to use (default: all of %(default)s)")
    command.add_argument("--limit-per-speaker", type=int, default=0,
                         help="use at most N files per speaker (smoke runs; 0 = all)")
    command.add_argument("--results", type=Path, default=Path("benchmarks/results"), help="default: %(default)s")
    command.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                         help="features and checkpoints (default %(default)s); identical runs reuse them")


def _recipe_arguments(command: argparse.ArgumentParser) -> None:
    _common_arguments(command)
    command.add_argument("--folds", default=ALL_FOLDS, help="EmoBox folds to evaluate (default %(default)s)")
    command.add_argument("--epochs", type=int, default=SHIPPED_TRAINING.epochs)
    command.add_argument("--seed", type=int, default=SHIPPED_TRAINING.seed)
    command.add_argument("--noise-probability", type=float, default=SHIPPED_TRAINING.noise_probability,
                         help="share of training windows mixed with white noise or babble at a random SNR "
                              "(default %(default)s; an experiment: write it to its own --results)")
    command.add_argument("--noise-snr-db", default="{},{}".format(*SHIPPED_TRAINING.noise_snr_db),
                         help="LOW,HIGH: the mixing SNR range in dB (default %(default)s)")
    command.add_argument("--phone-probability", type=float, default=SHIPPED_TRAINING.phone_probability,
                         help="share of training windows sent through an emulated narrowband phone line "
                              "(default %(default)s: off)")
    command.add_argument("--reverb-probability", type=float, default=SHIPPED_TRAINING.reverb_probability,
                         help="share of training windows put in an emulated reverberant room "
                              "(default %(default)s: off)")
    command.add_argument("--time-shift", type=float, default=SHIPPED_TRAINING.time_shift_s, metavar="S",
                         help="move each training window later or earlier by up to S seconds, the frames it "
                              "leaves silent (default %(default)s: off)")
    command.add_argument("--pitch-shift-semitones", type=float, default=SHIPPED_TRAINING.pitch_shift_semitones,
                         help="shift each training window's spectrum by up to +-N semitones "
                              "(default %(default)s: off)")
    command.add_argument("--tempo-change", type=float, default=SHIPPED_TRAINING.tempo_change,
                         help="stretch each training window's time axis by a rate in [1-x, 1+x] "
                              "(default %(default)s: off)")
    command.add_argument("--speed-change", type=float, default=SHIPPED_TRAINING.speed_change,
                         help="speed perturbation: scale each training window's frequency and time axes by "
                              "one factor in [1-x, 1+x] (default %(default)s: off)")
    command.add_argument("--freq-masks", type=int, default=SHIPPED_TRAINING.freq_masks, metavar="N",
                         help="SpecAugment: N bands of 0-8 mel bins masked in each training window "
                              "(default %(default)s)")
    command.add_argument("--time-masks", type=int, default=SHIPPED_TRAINING.time_masks, metavar="N",
                         help="SpecAugment: N spans of 0-10 frames (0-200 ms) masked in each training window "
                              "(default %(default)s)")
    command.add_argument("--mixup-alpha", type=float, default=SHIPPED_TRAINING.mixup_alpha,
                         help="mixup of training windows at Beta(a, a) weights (default %(default)s: off)")
    command.add_argument("--mask-absent-labels", action="store_true",
                         help="each training window's softmax spans only the classes its corpus labels")
    command.add_argument("--class-balance", choices=("pooled", "per_corpus"),
                         default=SHIPPED_TRAINING.class_balance,
                         help="loss weights: inverse class frequency over all windows, or within each corpus "
                              "(default %(default)s)")
    command.add_argument("--corpus-share", choices=("classes", "windows"), default=SHIPPED_TRAINING.corpus_share,
                         help="with --class-balance per_corpus, each corpus's share of the loss: in proportion "
                              "to its classes or to its windows (default %(default)s)")
    command.add_argument("--ravdess-share", type=float, default=SHIPPED_TRAINING.ravdess_share,
                         help="with --class-balance per_corpus, RAVDESS's share of the loss (default "
                              "%(default)s: as --corpus-share gives)")
    command.add_argument("--gender-balance", action="store_true",
                         help="within each class, women's and men's windows carry equal loss weight "
                              "(default: off)")
    command.add_argument("--speaker-adversary", type=float, default=SHIPPED_TRAINING.speaker_adversary,
                         help="speaker-adversarial training: the final strength of the reversed gradient "
                              "from a classifier of the training speakers (default %(default)s: off)")
    command.add_argument("--corpus-heads", action="store_true",
                         help="per-corpus output heads: each corpus's windows add an offset head of their own "
                              "to the shared one; the model keeps RAVDESS's (default: off)")
    command.add_argument("--window-mean", action="store_true",
                         help="subtract each window's per-band log-mel mean inside the network (default: off)")
    command.add_argument("--frame-ms", type=float, default=FrontendSpec.win_length * 1000 / FrontendSpec.sample_rate,
                         help="log-mel frame (STFT window) length in ms; longer resolves the harmonics of low "
                              "voices, and costs front-end time and file size (default %(default)s)")
    command.add_argument("--distill-from", default="",
                         help=f"comma-separated teacher recipes, some of {', '.join(TEACHERS)}: each is trained "
                              "on the same files first, and the model also learns their averaged softened "
                              "window probabilities (default: none)")
    command.add_argument("--distill-weight", type=float, default=None,
                         help="with --distill-from, the distillation term's share of the loss (default 0.5)")
    command.add_argument("--distill-temperature", type=float, default=None,
                         help=f"with --distill-from, the softmax temperature of both sides, up to "
                              f"{MAX_DISTILL_TEMPERATURE:g} (default {SHIPPED_TRAINING.distill_temperature:g})")
    command.add_argument("--average-last-epochs", type=int, default=SHIPPED_TRAINING.average_last_epochs,
                         help="weight averaging: the model is the mean of the weights at the end of the last "
                              "N epochs, batch norm recomputed (default %(default)s: off)")
    command.add_argument("--swa-rate", type=float, default=None,
                         help="with --average-last-epochs, hold the averaged epochs at this share of the peak "
                              "learning rate, the one-cycle schedule running over the epochs before them "
                              "(default: off, the average follows the one-cycle's decay)")
    command.add_argument("--ensemble", default="",
                         help=f"comma-separated recipes, two or more of {', '.join(TEACHERS)}, at --seed and "
                              "--epochs: each is trained and tempered on its own, and the model is their mean "
                              "probability, in one file (default: none, one network)")
    command.add_argument("--channels", default=",".join(map(str, SHIPPED_CHANNELS)), metavar="C1,C2,C3",
                         help="the three conv blocks' channels; narrower networks cost less per window, so more "
                              "fit an ensemble (default %(default)s)")
    command.add_argument("--hidden", type=int, default=SHIPPED_HIDDEN,
                         help="the LSTM's units per direction (default %(default)s)")
    command.add_argument("--threads", type=int, default=SHIPPED_TRAINING.threads,
                         help="CPU threads for training (default %(default)s)")
    command.add_argument("--leave-out", default="",
                         help="comma-separated corpora loaded but never trained on (e.g. tess; default: none)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ser-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    _recipe_arguments(commands.add_parser("cv", help="speaker-independent cross-validation on RAVDESS"))
    ship = commands.add_parser("ship", help="cross-validate, train on all data, export int8 + metadata")
    _recipe_arguments(ship)
    ship.add_argument("--out", type=Path, default=REPO_MODELS, help="where the model goes (default: %(default)s)")
    ship.add_argument("--name", default=DEFAULT_STEM,
                      help="the files' stem: NAME.int8.onnx, NAME.int8.json, ... (default: %(default)s)")
    baselines = commands.add_parser("baselines", help="the seed systems under both protocols (RAVDESS only)")
    _common_arguments(baselines)
    baselines.add_argument("--only", default=",".join(BASELINE_NAMES),
                           help="comma-separated baselines (default: all of %(default)s)")
    return parser


def _snr_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--noise-snr-db takes LOW,HIGH in dB, got {text!r}") from None
    if low > high:
        raise ValueError(f"--noise-snr-db: LOW above HIGH in {text!r}")
    return low, high


def parse_channels(text: str) -> tuple[int, int, int]:
    """``--channels C1,C2,C3``, checked: a ValueError that says what the option takes."""
    try:
        channels = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--channels takes C1,C2,C3, got {text!r}") from None
    if len(channels) != 3 or not all(1 <= c <= MAX_WIDTH for c in channels):
        raise ValueError(f"--channels takes three counts in 1-{MAX_WIDTH}, got {text!r}")
    return channels


def names_in(text: str) -> tuple[str, ...]:
    """The names of a comma-separated option, blanks dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def first_files_per_speaker(items: list[Utterance], per_speaker: int) -> list[Utterance]:
    """At most ``per_speaker`` files of each speaker, in corpus order (smoke runs; 0 keeps all)."""
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
        names = names_in(args.corpora)
        unknown = [n for n in names if n not in LOADERS]
        if unknown:
            raise ValueError(f"unknown corpus {unknown[0]!r}; known: {', '.join(LOADERS)}")
        if args.command == "baselines":
            names = ("ravdess",)  # the seeds' data
            only = names_in(args.only)
            if not only or any(n not in BASELINE_NAMES for n in only):
                raise ValueError(f"--only takes some of {', '.join(BASELINE_NAMES)}")
        else:
            if args.command == "ship" and not re.fullmatch(r"[A-Za-z0-9_-]+", args.name):
                raise ValueError(f"--name takes letters, digits, _ and -, got {args.name!r}")
            folds = [int(f) for f in args.folds.split(",") if f.strip()]
            if any(f not in EMOBOX_TEST_ACTORS for f in folds):
                raise ValueError(f"folds are 1-{len(EMOBOX_TEST_ACTORS)}, got {args.folds!r}")
            for flag in ("noise_probability", "phone_probability", "reverb_probability"):
                if not 0.0 <= getattr(args, flag) <= 1.0:
                    raise ValueError(f"--{flag.replace('_', '-')} is a share (0-1), got {getattr(args, flag)}")
            snr_range = _snr_range(args.noise_snr_db)
            if not 0.0 <= args.pitch_shift_semitones <= 12.0:
                raise ValueError(f"--pitch-shift-semitones takes 0-12, got {args.pitch_shift_semitones}")
            if not 0.0 <= args.time_shift <= MAX_TIME_SHIFT_S:
                raise ValueError(f"--time-shift takes 0-{MAX_TIME_SHIFT_S:g} seconds, got {args.time_shift:g}")
            for flag in ("freq_masks", "time_masks"):
                if not 0 <= getattr(args, flag) <= MAX_MASKS:
                    raise ValueError(f"--{flag.replace('_', '-')} takes 0-{MAX_MASKS}, got {getattr(args, flag)}")
            if not 0.0 <= args.tempo_change < 1.0:
                raise ValueError(f"--tempo-change takes a share in [0, 1), got {args.tempo_change}")
            if not 0.0 <= args.speed_change < 1.0:
                raise ValueError(f"--speed-change takes a share in [0, 1), got {args.speed_change}")
            if not 0.0 <= args.ravdess_share < 1.0:
                raise ValueError(f"--ravdess-share takes a share in [0, 1), got {args.ravdess_share}")
            if args.class_balance != "per_corpus" and (args.ravdess_share or args.corpus_share != "classes"):
                raise ValueError("--corpus-share and --ravdess-share need --class-balance per_corpus")
            finite = math.isfinite(args.frame_ms)
            frame_samples = round(args.frame_ms * FrontendSpec.sample_rate / 1000) if finite else 0
            if not FrontendSpec.hop_length <= frame_samples <= MAX_FRAME_SAMPLES:
                raise ValueError(f"--frame-ms takes {FrontendSpec.hop_length * 1000 / FrontendSpec.sample_rate:g}-"
                                 f"{MAX_FRAME_SAMPLES * 1000 / FrontendSpec.sample_rate:g}, got {args.frame_ms:g}")
            if args.threads < 1:
                raise ValueError(f"--threads takes 1 or more, got {args.threads}")
            channels = parse_channels(args.channels)
            if not 1 <= args.hidden <= MAX_WIDTH:
                raise ValueError(f"--hidden takes 1-{MAX_WIDTH}, got {args.hidden}")
            if not 0 <= args.average_last_epochs <= args.epochs:
                raise ValueError(f"--average-last-epochs takes 0-{args.epochs} (the epochs), "
                                 f"got {args.average_last_epochs}")
            swa_ok = 0 < args.average_last_epochs < args.epochs
            if args.swa_rate is not None and not (0 < args.swa_rate <= 1 and swa_ok):  # nan fails too
                raise ValueError(f"--swa-rate takes a share of the peak rate in (0, 1] and needs --average-last-"
                                 f"epochs below --epochs, got {args.swa_rate} with {args.average_last_epochs} of "
                                 f"{args.epochs}")
            if not 0.0 <= args.speaker_adversary <= 10.0:  # nan fails too
                raise ValueError(f"--speaker-adversary takes a strength in 0-10, got {args.speaker_adversary}")
            if args.speaker_adversary and args.mixup_alpha:
                raise ValueError("--speaker-adversary does not combine with --mixup-alpha: a mixed window has "
                                 "two speakers")
            if args.corpus_heads and "ravdess" not in names:
                raise ValueError("--corpus-heads keeps RAVDESS's head, so --corpora must include ravdess")
            for flag in ("mixup_alpha", "average_last_epochs"):
                if args.corpus_heads and getattr(args, flag):
                    raise ValueError(f"--corpus-heads does not combine with --{flag.replace('_', '-')}")
            if args.mixup_alpha < 0:
                raise ValueError(f"--mixup-alpha is a Beta parameter (>= 0), got {args.mixup_alpha}")
            teachers = names_in(args.distill_from)
            if args.distill_from.strip() and (not teachers or any(n not in TEACHERS for n in teachers)
                                              or len(set(teachers)) < len(teachers)):
                raise ValueError(f"--distill-from takes distinct names among {', '.join(TEACHERS)}, "
                                 f"got {args.distill_from!r}")
            teachers = tuple(sorted(teachers))  # the same teachers, in any order, are the same recipe
            for flag in ("distill_weight", "distill_temperature"):
                if not teachers and getattr(args, flag) is not None:
                    raise ValueError(f"--{flag.replace('_', '-')} needs --distill-from")
            distill_weight = (0.5 if args.distill_weight is None else args.distill_weight) if teachers else 0.0
            if teachers and not 0.0 < distill_weight <= 1.0:
                raise ValueError(f"--distill-weight takes a share in (0, 1], got {distill_weight}")
            distill_temperature = (SHIPPED_TRAINING.distill_temperature if args.distill_temperature is None
                                   else args.distill_temperature)
            if not 0.0 < distill_temperature <= MAX_DISTILL_TEMPERATURE:  # nan fails too
                raise ValueError(f"--distill-temperature takes a number in (0, {MAX_DISTILL_TEMPERATURE:g}], "
                                 f"got {distill_temperature}")
            for flag in ("mixup_alpha", "mask_absent_labels"):
                if teachers and getattr(args, flag):
                    raise ValueError(f"--distill-from and --{flag.replace('_', '-')} cannot be combined "
                                     "(the teachers' targets span every class, unmixed)")
            ensemble = tuple(sorted(names_in(args.ensemble)))  # the same members, in any order, are one model
            if args.ensemble.strip() and (len(ensemble) < 2 or any(n not in TEACHERS for n in ensemble)
                                          or len(set(ensemble)) < len(ensemble)):
                raise ValueError(f"--ensemble takes two or more distinct names among {', '.join(TEACHERS)}, "
                                 f"got {args.ensemble!r}")
            left_out = names_in(args.leave_out)
            if any(n not in names for n in left_out) or "ravdess" in left_out:
                raise ValueError(f"--leave-out takes loaded corpora other than ravdess, got {args.leave_out!r}")
        items = first_files_per_speaker(load_corpora(args.data, names), args.limit_per_speaker)
    except (ValueError, FileNotFoundError) as error:
        print(f"ser-train: error: {error}", file=sys.stderr)
        return 2
    if args.command == "baselines":
        return _baselines(items, only, args)
    # the evaluation's heavier imports (plots, ONNX export) only now
    from emovox.train.baselines import refresh_table
    from emovox.train.crossval import cross_validate, write_cv_results
    from emovox.train.recipe import Recipe, ensemble_member, load_corpus, ship, training_commit

    commit = training_commit()  # before this run writes results into the work tree
    recipe = Recipe(train=replace(SHIPPED_TRAINING, epochs=args.epochs, seed=args.seed,
                                  noise_probability=args.noise_probability, noise_snr_db=snr_range,
                                  phone_probability=args.phone_probability,
                                  reverb_probability=args.reverb_probability, time_shift_s=args.time_shift,
                                  pitch_shift_semitones=args.pitch_shift_semitones,
                                  tempo_change=args.tempo_change, speed_change=args.speed_change,
                                  freq_masks=args.freq_masks, time_masks=args.time_masks,
                                  mixup_alpha=args.mixup_alpha, mask_absent_labels=args.mask_absent_labels,
                                  class_balance=args.class_balance, corpus_share=args.corpus_share,
                                  ravdess_share=args.ravdess_share, window_mean=args.window_mean,
                                  speaker_adversary=args.speaker_adversary, corpus_heads=args.corpus_heads,
                                  gender_balance=args.gender_balance, average_last_epochs=args.average_last_epochs,
                                  swa_rate=args.swa_rate or 0.0,
                                  distill_weight=distill_weight, distill_temperature=distill_temperature,
                                  threads=args.threads),
                    frontend=FrontendSpec(win_length=frame_samples), left_out_of_training=left_out,
                    teachers=tuple(TEACHERS[n] for n in teachers), channels=channels, hidden=args.hidden)
    recipes = [recipe]
    if ensemble:
        plain = Recipe(train=replace(SHIPPED_TRAINING, epochs=args.epochs, seed=args.seed, threads=args.threads,
                                     corpus_heads=args.corpus_heads), channels=channels, hidden=args.hidden)
        if recipe != plain:
            print("ser-train: error: --ensemble takes its members' own settings: combine it only with --seed, "
                  "--epochs, --threads, --corpus-heads, --channels, --hidden and --folds", file=sys.stderr)
            return 2
        if args.corpus_heads and "corpus-heads" in ensemble:
            print("ser-train: error: with --corpus-heads every member has them: name its recipe default, "
                  "not corpus-heads", file=sys.stderr)
            return 2
        recipes = [ensemble_member(n, args.seed, args.epochs, args.threads, args.corpus_heads, channels, args.hidden)
                   for n in ensemble]
    corpus = load_corpus(items, recipe, args.cache, print)
    evaluation = cross_validate(corpus, folds, recipes, args.cache, print)
    evaluation["run"] = {"command": args.command, "folds": folds, "corpora": list(names),
                         "limit_per_speaker": args.limit_per_speaker, "files": len(items),
                         "speakers": len({u.speaker for u in items})}
    write_cv_results(args.results, evaluation)
    refresh_table(args.results, evaluation)
    if args.command == "ship":
        ship(corpus, recipes, evaluation, args.out, args.cache, print, commit, args.name)
    return 0


def _baselines(items, only: tuple[str, ...], args: argparse.Namespace) -> int:
    import json

    from emovox.train.baselines import empty_report, run_baselines, write_baselines
    from emovox.train.protocols import cnn_lstm_protocols
    from emovox.train.recipe import Recipe

    cv_file = args.results / "ravdess_cv.json"
    cnn_lstm = json.loads(cv_file.read_text()) if cv_file.exists() else None
    for name in only:  # written after each one: a long run keeps what it finished
        if name == "cnn_lstm":
            report = empty_report(items)
            report["baselines"][name] = cnn_lstm_protocols(items, Recipe(), args.cache, print)
        else:
            report = run_baselines(items, args.cache, print, (name,))
        write_baselines(report, args.results, cnn_lstm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
