"""preview: an edited line heard within a second or two of local work, whatever the job's length.

A run after an edit speaks only the changed line again (clips are cached by content), but it fits, mixes,
masters, encodes and muxes the whole language: minutes for an hour of media. Right after the edit this
module does only what the line needs: it speaks and fits that line (the very code of a run, so the run
that follows reuses both), then patches the master WAV and the voice WAV where the line was and where it
is now (remaster.py) with the gain and limit of the last full master: byte for byte what a full mix and
master at that gain would write, every other sample untouched.

The caller queues the full run behind it: it measures the loudness again (a line moves an hour's loudness
by a few thousandths of a dB, a short clip's by more), and remakes the AAC file, the video, the captions
and the manifest. Until then the manifest and its checksums describe the master as it was, and
`preview.json` in the language's folder says which stretch was patched and with what line.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import soundfile as sf

from ..domain import Transcript
from ..vendors.base import Engines
from . import costs, fit, layout, manifest, mix, remaster, run, synthesize
from .run import JobSpec

log = logging.getLogger(__name__)
OnCall = Callable[[str | None, str, float, str, float], None]  # as Reporter.vendor_call


@dataclass(frozen=True)
class Preview:
    segment_id: str
    start: float  # seconds: the stretch of the master that was rewritten
    end: float
    row: dict[str, Any]  # the line as the manifest will give it once the full run is done
    version: str  # differs from one state of the master to another: for caches of its audio


def line(spec: JobSpec, engines: Engines, lang: str, segment_id: str, on_call: OnCall | None = None) -> Preview | None:
    """Make `lang`'s master current for the line `segment_id`, whose translation was just typed (and saved
    in the language's EDITS). None, with the master and the stage outputs untouched, when the master is
    not current apart from that line (a run is due anyway) or cannot be patched. A paid engine call is
    reported to `on_call`."""
    wd, ld = spec.workdir, spec.workdir / lang
    needed = [ld / layout.MASTER, ld / "dub.wav", ld / "voice.wav", ld / "lines.json", wd / "transcript.json"]
    translations, edits = run.translations_of(ld)
    if not all(p.exists() for p in needed) or not translations.get(segment_id, "").strip() or segment_id not in edits:
        return None
    made = layout.read_json(ld / layout.MASTER)
    transcript = Transcript.from_dict(layout.read_json(wd / "transcript.json"))
    layout.apply_speaker_edits(transcript, wd)  # the voices as the run assigns them
    segments = transcript.segments
    ids = [seg.id for seg in segments]
    old_lines = synthesize.load(ld / "lines.json")
    if segment_id not in ids or [x.segment_id for x in old_lines] != ids:
        return None
    # The master must be the last run's for every line but this one, with this line as it was then.
    before = {k: v for k, v in translations.items() if k != segment_id}
    if segment_id in made["translations"]:
        before[segment_id] = made["translations"][segment_id]
    voices = synthesize.assign_voices(segments, engines.tts, lang, spec.voices.get(lang))
    marker = wd / "stages" / f"deliver.{lang}.key"
    if run.output_key(spec, engines, lang, before, voices) != made["key"] or \
            not marker.exists() or marker.read_text() != made["key"]:
        return None

    k = ids.index(segment_id)
    seg, rate = segments[k], spec.sample_rate
    source_edits = layout.read_json(wd / layout.SOURCE_EDITS) if (wd / layout.SOURCE_EDITS).exists() else {}
    seg.text = source_edits.get(seg.id, "").strip() or seg.text  # as the run shows it in the manifest
    fitted = ld / "fitted" / f"{seg.id}.wav"
    at = round(seg.start * rate)  # where fit.run places the line
    old_end = at + sf.info(fitted).frames if old_lines[k].clip and fitted.exists() else at

    meter = costs.Meter(spec.prices, wd / "costs.json", on_call or (lambda *a: None))
    paid = costs.metered(engines, meter)
    duration = float(layout.read_json(wd / "work" / "ingest.json")["duration"])
    [new] = synthesize.run(paid.tts, paid.translator, segments, translations, transcript.language, lang, duration,
                           run.clips_folder(spec, lang), rate, spec.max_stretch, voices, typed=frozenset(edits),
                           only=frozenset({segment_id}))
    # Fitted aside: the fitted folder keeps matching the master until the master is patched.
    decisions, placed = fit.run([seg], [new], run.clips_folder(spec, lang), rate, wd / "work" / "source.wav",
                                ld / "fitted" / "preview", spec.max_stretch)
    new_end = at + sf.info(placed[0].clip).frames if placed else at
    lines = [new if i == k else x for i, x in enumerate(old_lines)]
    placements = [fit.Placement(round(s.start * rate), ld / "fitted" / f"{s.id}.wav")
                  for s, x in zip(segments, lines, strict=True) if x.clip and s.id != seg.id] + placed
    ramp = mix.ramp_samples(spec.duck_ramp_ms, rate)
    background = wd / "work" / "background.wav" if spec.background else None
    try:
        start, stop = remaster.patch(
            wd / "work" / "source.wav", placements, (at - ramp, max(old_end, new_end) + ramp), ld / "dub.wav",
            ld / "voice.wav", remaster.Mastering(made["gain_db"], made["limit_db"], spec.duck_db, spec.duck_ramp_ms),
            background)
    except remaster.NotPatchable as why:  # raised before anything is written
        log.info("no preview of line %s in %s: %s", segment_id, lang, why)
        return None
    except BaseException:  # the master may be half patched: no preview patches it again before a run remakes it
        (ld / layout.MASTER).unlink(missing_ok=True)
        raise
    for p in placed:
        p.clip.replace(fitted)
    synthesize.save(ld / "lines.json", lines)
    row = manifest.language_entry([seg], {seg.id: new.text}, decisions, {}, [])["segments"][0]
    version = hashlib.sha256(f"{made['key']}\0{seg.id}\0{new.clip}\0{start}\0{stop}".encode()).hexdigest()[:16]
    preview = Preview(seg.id, round(start / rate, 3), round(stop / rate, 3), row, version)
    layout.write_json(ld / layout.PREVIEW, asdict(preview))
    return preview

