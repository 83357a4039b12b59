"""Training the CNN-LSTM backbone on cached log-mels, and window -> utterance prediction."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import librosa
import numpy as np
import torch
from torch import nn

from emovox.train.calibration import softmax
from emovox.train.corpus_heads import KEPT_CORPUS, CorpusOffsets, kept_corpus_index
from emovox.train.model import CNNLSTM, FrontendSpec, LogMel, mel_power
from emovox.train.phone_line import random_phone_line
from emovox.train.room_reverb import random_room
from emovox.train.speaker_adversary import SpeakerAdversary, ramp, speaker_indices

BABBLE_TALKERS = 4
"""Windows summed into one babble noise, as many talkers as the robustness test's babble."""
WHITE_NOISE_WINDOWS = 128


@dataclass(frozen=True)
class TrainSettings:
    """A bounded, seeded run: same settings + same data = same model."""

    epochs: int = 25
    """Fixed length: no early stopping on any test speaker."""
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    freq_masks: int = 2
    """SpecAugment: frequency masks per example (up to 8 mel bands each)."""
    time_masks: int = 2
    """SpecAugment: time masks per example (up to 10 frames each)."""
    gain_db: float = 6.0
    """Random level change, +-dB, applied in the log-mel domain."""
    noise_probability: float = 0.0
    """Share of training windows mixed with white noise or babble (0: off, as in the v1 recipe)."""
    noise_snr_db: tuple[float, float] = (0.0, 30.0)
    """The mixing SNR is drawn uniformly from this range (dB)."""
    pitch_shift_semitones: float = 0.0
    """Pitch shift on cached log-mels: every mel band moves up or down by one factor per window, drawn
    uniformly within +-this many semitones; harmonics and formants move together, as in a resampled
    voice, a shorter or longer vocal tract (0: off, as in the v1 recipe)."""
    tempo_change: float = 0.0
    """Time stretch on cached log-mels: each window is read at a rate drawn uniformly in
    [1 - x, 1 + x] (0: off). Both at once, with equal factors, are speed perturbation."""
    mixup_alpha: float = 0.0
    """Mixup: each batch is blended with a shuffled copy of itself, log-mels and labels, at a weight
    drawn from Beta(alpha, alpha) (0: off, as in the v1 recipe)."""
    mask_absent_labels: bool = False
    """Each window's softmax spans only the classes its corpus labels (TurEV has no neutral, nEMO no
    disgust...): a corpus is never taught "not X" for an X it could not say. Off in the v1 recipe."""
    class_balance: str = "pooled"
    """Loss weights: "pooled", each class's inverse frequency over all training windows (v1), or
    "per_corpus", each (corpus, class) pair's, so that no corpus's label set tilts another's classes."""
    corpus_share: str = "classes"
    """With the per-corpus balance, each corpus's share of the loss: "classes", in proportion to the
    classes it labels (every (corpus, class) pair weighs alike, #10), or "windows", its share of the
    training windows (the balance then only moves weight between the classes of each corpus)."""
    ravdess_share: float = 0.0
    """With the per-corpus balance, RAVDESS's share of the loss, the other corpora keeping their
    proportions to one another (0: as ``corpus_share`` gives)."""
    speed_change: float = 0.0
    """Speed perturbation on cached log-mels: frequency and time scaled by one factor per window,
    drawn uniformly in [1 - x, 1 + x], as a recording played faster or slower (0: off)."""
    phone_probability: float = 0.0
    """Share of training windows sent through an emulated narrowband phone line (band-pass around
    300-3400 Hz, nothing above 4 kHz, mu-law codec noise; ``phone_line.LINE_VARIETY``), after any
    noise, as noise at the caller's end would be (0: off)."""
    reverb_probability: float = 0.0
    """Share of training windows recorded, as emulated, in a reverberant room (RT60 and
    direct-to-reverberant ratio drawn from ``room_reverb.ROOM_VARIETY``), before any noise, as a
    room's noise is not its talker's echo (0: off)."""
    gender_balance: bool = False
    """Within each class, the windows of women and of men carry equal total weight (speakers of
    unknown sex keep theirs; each class's total is kept), applied after the class balance: no class
    is learnt mostly from one sex's voices. Off: every class leans female (TESS's two women)."""
    window_mean: bool = False
    """Subtract each window's per-band log-mel mean over its real frames inside the network
    (``model.subtract_window_mean``), at training and at run time (False: as in the v1 recipe)."""
    distill_weight: float = 0.0
    """Share of the loss given to matching the teachers' averaged window probabilities, both sides
    softened at ``distill_temperature`` (knowledge distillation: one network learns what an average
    of models knows; 0: off). The teachers are the recipe's (``Recipe.teachers``)."""
    distill_temperature: float = 2.0
    """Softmax temperature of the distillation term; its loss is scaled by its square, so that its
    gradients keep the hard-label term's scale (Hinton et al. 2015)."""
    average_last_epochs: int = 0
    """Weight averaging (SWA, Izmailov et al. 2018): the model returned is the mean of the weights at
    the end of each of the last N epochs, its batch-norm statistics then recomputed over one more
    augmented pass of the training windows; one network, with some of what averaging models gains
    (0: off, the last epoch's weights)."""
    swa_rate: float = 0.0
    """With ``average_last_epochs``, the learning rate of the averaged epochs as a share of the peak
    (classic SWA): the one-cycle schedule then runs over the epochs before them, and these hold this
    constant rate, so the averaged weights differ more. 0: the one-cycle runs over all epochs and the
    average follows its decay (#30)."""
    speaker_adversary: float = 0.0
    """Speaker-adversarial training (``speaker_adversary.py``): the strength, reached by the end of
    training on DANN's ramp, of the reversed gradient from a classifier of the training speakers on
    the pooled embedding, so the backbone learns less of what identifies a voice (0: off)."""
    time_shift_s: float = 0.0
    """Time shift: each training window moved later or earlier by up to this many seconds (whole
    frames, drawn uniformly), the frames it leaves at digital silence (``random_time_shift``; 0: off)."""
    corpus_heads: bool = False
    """Per-corpus output heads (``corpus_heads.py``): each training window's logits are the shared
    head's plus an offset head of its own corpus, and the network returned classifies with the shared
    head plus RAVDESS's offset, folded into one layer; what one corpus alone means stays in its offset
    (False: one head for every corpus, as in the v1 recipe)."""
    seed: int = 0
    threads: int = 2
    """CPU threads for training: how a run uses the machine, not what it learns (left out of the
    checkpoint key)."""


def spec_augment(batch: torch.Tensor, settings: TrainSettings, generator: torch.Generator,
                 log_floor: float) -> torch.Tensor:
    """Gain shift (a level change is an offset in log-mel), then frequency and time masks."""
    b, n_mels, frames = batch.shape
    floor = float(np.log(log_floor))
    gain = (torch.rand(b, 1, 1, generator=generator) * 2 - 1) * settings.gain_db * np.log(10) / 10
    batch = torch.clamp(batch + gain, min=floor)
    for _ in range(settings.freq_masks):
        width = torch.randint(0, 9, (b, 1, 1), generator=generator)
        start = (torch.rand(b, 1, 1, generator=generator) * (n_mels - width)).long()
        bins = torch.arange(n_mels).view(1, -1, 1)
        batch = batch.masked_fill((bins >= start) & (bins < start + width), floor)
    for _ in range(settings.time_masks):
        width = torch.randint(0, 11, (b, 1, 1), generator=generator)
        start = (torch.rand(b, 1, 1, generator=generator) * (frames - width)).long()
        steps = torch.arange(frames).view(1, 1, -1)
        batch = batch.masked_fill((steps >= start) & (steps < start + width), floor)
    return batch


def source_bands(frontend: FrontendSpec, factor: np.ndarray) -> np.ndarray:
    """[len(factor), n_mels] fractional mel-band index that each output band reads when the
    spectrum is scaled by ``factor`` in frequency: band k (centre f_k) takes f_k / factor. The bands
    are equally spaced in (Slaney) mel, so the index extrapolates past both ends, into silence."""
    centres = librosa.mel_frequencies(frontend.n_mels + 2, fmin=frontend.fmin, fmax=frontend.fmax)[1:-1]
    step = librosa.hz_to_mel(centres[1]) - librosa.hz_to_mel(centres[0])
    read = centres[None, :] / np.asarray(factor, dtype=np.float64)[:, None]
    return (librosa.hz_to_mel(read) - librosa.hz_to_mel(centres[0])) / step


def warp_logmel(batch: torch.Tensor, pitch: torch.Tensor, tempo: torch.Tensor, frontend: FrontendSpec) -> torch.Tensor:
    """Scale each window's spectrum by ``pitch`` in frequency and its time axis by ``tempo``
    (output frame t reads input frame t * tempo), interpolating log-mels bilinearly. What falls
    outside the window or the band range reads as silence (the log floor)."""
    b, n_mels, frames = batch.shape
    floor = float(np.log(frontend.log_floor))
    rows = torch.from_numpy(source_bands(frontend, pitch.numpy())).float()  # b, n_mels
    columns = torch.arange(frames, dtype=torch.float32)[None, :] * tempo[:, None].float()  # b, frames
    grid = torch.stack([(2 * columns / (frames - 1) - 1)[:, None, :].expand(b, n_mels, frames),
                        (2 * rows / (n_mels - 1) - 1)[:, :, None].expand(b, n_mels, frames)], dim=-1)
    warped = nn.functional.grid_sample((batch - floor)[:, None], grid, mode="bilinear",
                                       padding_mode="zeros", align_corners=True)
    return warped[:, 0] + floor


def random_warp(batch: torch.Tensor, settings: TrainSettings, generator: torch.Generator,
                frontend: FrontendSpec) -> torch.Tensor:
    """Pitch shift, time stretch and speed change at factors drawn per window from the settings'
    ranges; a speed factor scales both axes at once, on top of the other two."""
    b = batch.shape[0]
    semitones = (torch.rand(b, generator=generator) * 2 - 1) * settings.pitch_shift_semitones
    tempo = 1 + (torch.rand(b, generator=generator) * 2 - 1) * settings.tempo_change
    speed = (1 + (torch.rand(b, generator=generator) * 2 - 1) * settings.speed_change
             if settings.speed_change else torch.ones(b))  # off: no draw, so #11 trains as before
    return warp_logmel(batch, 2 ** (semitones / 12) * speed, tempo * speed, frontend)


def random_time_shift(batch: torch.Tensor, max_seconds: float, generator: torch.Generator,
                      frontend: FrontendSpec) -> torch.Tensor:
    """Each window moved in time by a whole number of frames drawn uniformly within +-``max_seconds``,
    the frames it leaves at the log floor (digital silence, as the runtime pads a short utterance's
    window). The cached windows sit where the windowing put them, every epoch; at run time the VAD's
    onsets and the 1 s hop place speech anywhere in a window."""
    b, _, frames = batch.shape
    limit = round(max_seconds * frontend.sample_rate / frontend.hop_length)
    shifts = torch.randint(-limit, limit + 1, (b, 1), generator=generator)
    source = torch.arange(frames)[None, :] - shifts  # frame t shows what was at frame t - shift
    inside = ((source >= 0) & (source < frames))[:, None, :]
    moved = batch.gather(2, source.clamp(0, frames - 1)[:, None, :].expand_as(batch))
    return torch.where(inside, moved, torch.full_like(batch, float(np.log(frontend.log_floor))))


def white_noise_power(frontend: FrontendSpec, frames: int, seed: int) -> torch.Tensor:
    """Mel power of white noise [WHITE_NOISE_WINDOWS, n_mels, frames], through the model's own front end."""
    samples = (frames - 1) * frontend.hop_length + frontend.win_length
    noise = torch.randn(WHITE_NOISE_WINDOWS, samples, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return mel_power(LogMel(frontend)(noise), frontend.log_floor)


def mix_noise(batch: torch.Tensor, settings: TrainSettings, generator: torch.Generator,
              white: torch.Tensor, log_floor: float) -> torch.Tensor:
    """Additive noise at a random SNR on cached log-mels: speech and noise powers add in each mel
    band (their cross term averages out over a band's bins), so no waveform has to be cached.

    Half the noisy windows get white noise, half babble: the sum of ``BABBLE_TALKERS`` other windows of
    the batch (other training utterances), each at unit power, as the robustness test builds it.
    The SNR is mean speech power over mean noise power in the window.
    """
    b = batch.shape[0]
    noisy = torch.rand(b, generator=generator) < settings.noise_probability
    use_babble = torch.rand(b, generator=generator) < 0.5
    low, high = settings.noise_snr_db
    snr_db = low + (high - low) * torch.rand(b, generator=generator)
    speech = mel_power(batch, log_floor)
    speech_power = speech.mean(dim=(1, 2))
    noise = white[torch.randint(0, len(white), (b,), generator=generator)]
    if b > 1:
        unit = speech / (speech_power[:, None, None] + 1e-12)
        shifts = torch.randint(1, b, (BABBLE_TALKERS,), generator=generator)
        babble = sum(unit.roll(int(shift), dims=0) for shift in shifts)
        noise = torch.where(use_babble[:, None, None], babble, noise)
    gain = speech_power / (noise.mean(dim=(1, 2)) + 1e-12) / 10 ** (snr_db / 10)
    mixed = torch.log(speech + gain[:, None, None] * noise + log_floor)
    return torch.where(noisy[:, None, None], mixed, batch)


class WindowLoss:
    """Label-smoothed cross-entropy over the training windows, called with a batch's row indices.

    Each window is weighted by its class's inverse frequency (v1), or, given ``window_weight``, by
    its own weight; given ``allowed`` [windows, classes], its softmax and smoothing span only the
    classes its corpus can label.
    """

    def __init__(self, targets: torch.Tensor, class_weight: torch.Tensor, smoothing: float,
                 allowed: torch.Tensor | None = None, window_weight: torch.Tensor | None = None) -> None:
        self.targets, self.class_weight, self.smoothing = targets, class_weight, smoothing
        self.allowed, self.window_weight = allowed, window_weight
        self.plain = nn.CrossEntropyLoss(weight=class_weight, label_smoothing=smoothing)

    def weights(self, index: torch.Tensor) -> torch.Tensor:
        """Each window's weight in the loss: its own, or its class's."""
        return self.class_weight[self.targets[index]] if self.window_weight is None else self.window_weight[index]

    def __call__(self, logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        targets = self.targets[index]
        if self.allowed is None and self.window_weight is None:
            return self.plain(logits, targets)  # the v1 recipe's loss, bit for bit
        allowed = torch.ones_like(logits, dtype=torch.bool) if self.allowed is None else self.allowed[index]
        log_probs = torch.log_softmax(logits.masked_fill(~allowed, -1e9), dim=1).masked_fill(~allowed, 0.0)
        nll = -log_probs.gather(1, targets[:, None]).squeeze(1)
        uniform = -log_probs.sum(dim=1) / allowed.sum(dim=1)
        per_window = (1 - self.smoothing) * nll + self.smoothing * uniform
        weights = self.weights(index)
        return (weights * per_window).sum() / weights.sum()


def distillation_loss(logits: torch.Tensor, teacher_probs: torch.Tensor, weights: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """Weighted KL divergence from the teachers' softened probabilities to the network's, times
    temperature squared; weighted as the hard-label loss weighs each window (class balance)."""
    log_probs = torch.log_softmax(logits / temperature, dim=1)
    kl = (teacher_probs * (torch.log(teacher_probs.clamp(min=1e-12)) - log_probs)).sum(dim=1)
    return temperature ** 2 * (weights * kl).sum() / weights.sum()


def backbone_logits(backbone: nn.Module, logmel: np.ndarray) -> np.ndarray:
    """Logits of [n, n_mels, frames] log-mels (float16 ok), 256 windows at a time."""
    with torch.no_grad():
        return np.concatenate([backbone(torch.from_numpy(logmel[i:i + 256]).float()).numpy()
                               for i in range(0, len(logmel), 256)])


def teacher_probabilities(teachers: list[nn.Module], logmel: np.ndarray, temperature: float) -> np.ndarray:
    """The teachers' window probabilities at ``temperature``, averaged with equal weights: the
    targets a distilled network learns from (the clean windows; the student sees them augmented)."""
    return np.mean([softmax(backbone_logits(t.eval(), logmel), temperature) for t in teachers],
                   axis=0).astype(np.float32)


def augmented_batch(windows: torch.Tensor, settings: TrainSettings, generator: torch.Generator,
                    white: torch.Tensor | None, frontend: FrontendSpec) -> torch.Tensor:
    """One batch of training windows as the network sees it: shifted, warped, reverberant, noisy,
    phone-lined, masked, as ``settings`` asks. Each step that is off draws nothing, so the v1 recipe
    trains as before."""
    batch = windows.float()
    if settings.time_shift_s:
        batch = random_time_shift(batch, settings.time_shift_s, generator, frontend)
    if settings.pitch_shift_semitones or settings.tempo_change or settings.speed_change:
        batch = random_warp(batch, settings, generator, frontend)
    if settings.reverb_probability:
        batch = random_room(batch, settings.reverb_probability, generator, frontend)
    if white is not None:
        batch = mix_noise(batch, settings, generator, white, frontend.log_floor)
    if settings.phone_probability:
        batch = random_phone_line(batch, settings.phone_probability, generator, frontend)
    return spec_augment(batch, settings, generator, frontend.log_floor)


def mixup_loss(model: nn.Module, batch: torch.Tensor, index: torch.Tensor, loss_fn: WindowLoss,
               alpha: float, generator: torch.Generator) -> torch.Tensor:
    """Blend the batch with a shuffled copy of itself at one Beta(alpha, alpha) weight; the loss
    blends both label sets alike (mixup: smoother class boundaries from few speakers)."""
    # torch's Beta takes no generator: seed numpy's from ours, so the run stays reproducible
    draw = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    weight = float(np.random.default_rng(draw).beta(alpha, alpha))
    partner = torch.randperm(len(batch), generator=generator).to(batch.device)
    logits = model(weight * batch + (1 - weight) * batch[partner])
    return weight * loss_fn(logits, index) + (1 - weight) * loss_fn(logits, index[partner])


def class_weights(targets: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse frequency (normalised to mean 1 over present classes): UA counts every class alike."""
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / np.count_nonzero(counts), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def per_corpus_class_weights(targets: np.ndarray, corpus_ids: np.ndarray) -> torch.Tensor:
    """Per window: the inverse frequency of its (corpus, class) pair, mean 1 over the windows.
    Each corpus is class-balanced within itself, whatever the other corpora label."""
    pairs = corpus_ids.astype(np.int64) * (int(targets.max()) + 1) + targets
    _, inverse, counts = np.unique(pairs, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def share_corpora(weights: torch.Tensor, corpus_ids: np.ndarray, corpus_names: list[str],
                  settings: TrainSettings) -> torch.Tensor:
    """Rescale per-window weights so that each corpus carries the share of the loss the settings
    give it (``corpus_share``, ``ravdess_share``), keeping the weights' ratios within a corpus."""
    ids = torch.from_numpy(corpus_ids.astype(np.int64))
    current = torch.zeros(len(corpus_names), dtype=torch.float64).index_add_(0, ids, weights.double())
    if settings.corpus_share == "windows":
        target = torch.bincount(ids, minlength=len(corpus_names)).double()
    else:
        target = current.clone()
    target = target / target.sum()
    if settings.ravdess_share and "ravdess" in corpus_names:
        ravdess = corpus_names.index("ravdess")
        others = target.sum() - target[ravdess]
        if others > 0:
            target = target * (1 - settings.ravdess_share) / others
            target[ravdess] = settings.ravdess_share
    scaled = weights.double() * (target / current.clamp(min=1e-12))[ids]
    return (scaled / scaled.mean()).float()


def balance_genders(weights: torch.Tensor, targets: np.ndarray, genders: np.ndarray) -> torch.Tensor:
    """Per-window weights rescaled so that, within each class, female windows (``genders`` 0) and
    male windows (1) carry equal total weight, the class's total unchanged; unknown (-1) untouched."""
    scaled = weights.double().clone()
    for label in np.unique(targets):
        female = torch.from_numpy((targets == label) & (genders == 0))
        male = torch.from_numpy((targets == label) & (genders == 1))
        female_total, male_total = scaled[female].sum(), scaled[male].sum()
        if female_total > 0 and male_total > 0:
            half = (female_total + male_total) / 2
            scaled[female] *= half / female_total
            scaled[male] *= half / male_total
    return (scaled / scaled.mean()).float()


def corpus_label_masks(targets: np.ndarray, corpus_ids: np.ndarray, n_classes: int) -> np.ndarray:
    """[windows, classes] bool: the classes that each window's corpus labels among these windows."""
    present = np.zeros((int(corpus_ids.max()) + 1, n_classes), dtype=bool)
    present[corpus_ids, targets] = True
    return present[corpus_ids]


def new_backbone(n_classes: int, settings: TrainSettings, frontend: FrontendSpec,
                 network: dict | None = None) -> CNNLSTM:
    """An untrained CNN-LSTM with the graph switches ``settings`` asks for: the one network
    that training builds and a cached checkpoint loads into."""
    return CNNLSTM(frontend.n_mels, n_classes, window_mean=settings.window_mean, log_floor=frontend.log_floor,
                   **(network or {}))


def train_backbone(logmel: np.ndarray, targets: np.ndarray, n_classes: int, settings: TrainSettings,
                   frontend: FrontendSpec, log: Callable[[str], None] = print,
                   corpus_ids: np.ndarray | None = None, corpus_names: list[str] | None = None,
                   device: str = "cpu", network: dict | None = None,
                   teacher_probs: np.ndarray | None = None, genders: np.ndarray | None = None,
                   speakers: np.ndarray | None = None) -> CNNLSTM:
    """Train on [n, n_mels, frames] log-mels (float16 ok) with one label per window.

    ``corpus_ids`` [n], each window's corpus (an index into ``corpus_names``): needed only when
    ``settings.mask_absent_labels`` is on or the class balance is per corpus; ``corpus_names``
    only when ``settings.ravdess_share`` is set (it has to know which corpus is RAVDESS).

    ``device``: where the network runs ("cuda" on a GPU); the augmentation always runs on the CPU,
    so the random draws, and every batch, are the same on any device. ``network``: other
    ``CNNLSTM`` shape arguments (``channels``, ``hidden``) than the shipped one's (``quick_screen``).
    ``teacher_probs`` [n, classes]: the teachers' softened probabilities of each window, needed
    when ``settings.distill_weight`` is set (``teacher_probabilities``). ``genders`` [n]: each
    window's speaker, 0 female, 1 male, -1 unknown; needed for ``settings.gender_balance``.
    ``speakers`` [n]: each window's speaker (any labels that tell speakers apart); needed for
    ``settings.speaker_adversary``.
    Returns the model on the CPU."""
    per_corpus = settings.class_balance == "per_corpus"
    if (per_corpus or settings.mask_absent_labels) and corpus_ids is None:
        raise ValueError("the corpus label mask and the per-corpus class balance need each window's corpus")
    if settings.ravdess_share and corpus_names is None:
        raise ValueError("ravdess_share needs corpus_names, to know which corpus is RAVDESS")
    if settings.gender_balance and (genders is None or len(genders) != len(logmel)):
        raise ValueError("gender_balance needs each training window's speaker sex")
    if settings.distill_weight and (teacher_probs is None or teacher_probs.shape != (len(logmel), n_classes)):
        raise ValueError("distill_weight needs the teachers' probabilities of every training window, one per class")
    if not 0 <= settings.average_last_epochs <= settings.epochs:
        raise ValueError(f"average_last_epochs takes 0-{settings.epochs} (the epochs), "
                         f"got {settings.average_last_epochs}")
    if settings.swa_rate and not (0 < settings.swa_rate <= 1 and 0 < settings.average_last_epochs < settings.epochs):
        raise ValueError("swa_rate takes a share of the peak rate in (0, 1], and averaged epochs after at least "
                         "one epoch of the one-cycle schedule")
    if settings.speaker_adversary and (speakers is None or len(speakers) != len(logmel)):
        raise ValueError("speaker_adversary needs each training window's speaker")
    if settings.speaker_adversary and settings.mixup_alpha:
        raise ValueError("the speaker adversary does not combine with mixup: a mixed window has two speakers")
    if settings.corpus_heads and (corpus_ids is None or len(corpus_ids) != len(logmel)):
        raise ValueError("corpus_heads needs each training window's corpus")
    kept_corpus = kept_corpus_index(corpus_names) if settings.corpus_heads else None
    if settings.corpus_heads and (settings.mixup_alpha or settings.average_last_epochs):
        raise ValueError("the corpus heads do not combine with mixup (a mixed window has two corpora) or weight "
                         "averaging (the averaged head would miss the folded offset)")
    if settings.distill_weight and (settings.mixup_alpha or settings.mask_absent_labels):
        raise ValueError("distillation does not combine with mixup or the corpus label mask: the teachers' "
                         "targets span every class, unmixed")
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    generator = torch.Generator().manual_seed(settings.seed)
    model = new_backbone(n_classes, settings, frontend, network).to(device)
    features = torch.from_numpy(logmel)
    white = white_noise_power(frontend, logmel.shape[2], settings.seed) if settings.noise_probability else None
    labels = torch.from_numpy(targets.astype(np.int64))
    steps_per_epoch = (len(features) + settings.batch_size - 1) // settings.batch_size
    adversary, speaker_ids = None, None
    if settings.speaker_adversary:
        speaker_ids, n_speakers = speaker_indices(speakers)
        speaker_ids = torch.from_numpy(speaker_ids).to(device)
        adversary = SpeakerAdversary(model.head.in_features, n_speakers).to(device)
    offsets, window_corpus = None, None
    if settings.corpus_heads:
        window_corpus = torch.from_numpy(corpus_ids.astype(np.int64)).to(device)
        offsets = CorpusOffsets(model.head.in_features, n_classes, len(corpus_names)).to(device)
    trained = [*model.parameters(), *(adversary.parameters() if adversary is not None else ()),
               *(offsets.parameters() if offsets is not None else ())]
    optimizer = torch.optim.AdamW(trained, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    average_from = settings.epochs - settings.average_last_epochs  # the first averaged epoch
    cycle_epochs = average_from if settings.swa_rate else settings.epochs
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.learning_rate,
                                                   total_steps=cycle_epochs * steps_per_epoch)
    class_weight = class_weights(targets, n_classes)
    window_weight = per_corpus_class_weights(targets, corpus_ids) if per_corpus else None
    if per_corpus and (settings.corpus_share != "classes" or settings.ravdess_share):
        names = corpus_names or [str(i) for i in range(int(corpus_ids.max()) + 1)]
        window_weight = share_corpora(window_weight, corpus_ids, names, settings)
    if settings.gender_balance:
        window_weight = balance_genders(class_weight[labels] if window_weight is None else window_weight,
                                        targets, genders)
    allowed = (torch.from_numpy(corpus_label_masks(targets, corpus_ids, n_classes))
               if settings.mask_absent_labels else None)
    loss_fn = WindowLoss(labels.to(device), class_weight.to(device), settings.label_smoothing,
                         None if allowed is None else allowed.to(device),
                         None if window_weight is None else window_weight.to(device))
    soft = torch.from_numpy(teacher_probs).to(device) if settings.distill_weight else None
    averaged = torch.optim.swa_utils.AveragedModel(model) if settings.average_last_epochs else None
    for epoch in range(settings.epochs):
        strength = settings.speaker_adversary * ramp(epoch / settings.epochs)
        if epoch == cycle_epochs:  # classic SWA: a constant rate over the averaged epochs
            for group in optimizer.param_groups:
                group["lr"] = settings.swa_rate * settings.learning_rate
        model.train()
        began, total = time.monotonic(), 0.0
        for index in torch.randperm(len(features), generator=generator).split(settings.batch_size):
            batch = augmented_batch(features[index], settings, generator, white, frontend).to(device)
            index = index.to(device)
            if settings.mixup_alpha:  # off: no random draws, as in augmented_batch
                loss = mixup_loss(model, batch, index, loss_fn, settings.mixup_alpha, generator)
            else:
                embedding = model.embed(batch)
                if offsets is None:
                    logits = model.classify(embedding)
                else:  # classify's dropout, once, for the shared head and the offset alike
                    dropped = model.dropout(embedding)
                    logits = model.head(dropped) + offsets(dropped, window_corpus[index])
                loss = loss_fn(logits, index)
                if settings.distill_weight:
                    distill = distillation_loss(logits, soft[index], loss_fn.weights(index),
                                                settings.distill_temperature)
                    loss = (1 - settings.distill_weight) * loss + settings.distill_weight * distill
                if adversary is not None:
                    loss = loss + adversary(embedding, speaker_ids[index], strength)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if epoch < cycle_epochs:
                schedule.step()
            total += loss.item()
        if averaged is not None and epoch >= average_from:
            averaged.update_parameters(model)
        log(f"epoch {epoch + 1}/{settings.epochs}: loss {total / steps_per_epoch:.3f} "
            f"({time.monotonic() - began:.0f} s)")
    if offsets is not None:
        offsets.fold_into(model.head, kept_corpus)
        log(f"the {KEPT_CORPUS} offset folded into the shared head")
    if averaged is not None:
        model = averaged.module
        batches = (augmented_batch(features[index], settings, generator, white, frontend).to(device)
                   for index in torch.randperm(len(features), generator=generator).split(settings.batch_size))
        with torch.no_grad():
            torch.optim.swa_utils.update_bn(batches, model)
        log(f"weights averaged over the last {settings.average_last_epochs} epochs, batch norm recomputed")
    return model.cpu().eval()


def per_utterance(window_probs: np.ndarray, owner: np.ndarray, n_utterances: int) -> np.ndarray:
    """Mean window probabilities per utterance: what the runtime's Aggregator reports."""
    sums = np.zeros((n_utterances, window_probs.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, window_probs)
    counts = np.bincount(owner, minlength=n_utterances)[:, None]
    return (sums / np.maximum(counts, 1)).astype(np.float32)
