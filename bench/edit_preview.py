"""Edit-to-preview time of one regenerated line in a long job, against the full re-render of the language
that an edit used to cost, both measured in this process on the same job.

    .venv/bin/python bench/edit_preview.py [--minutes 60] [--rounds 3] [--work DIR] [--stt deepgram|offline]

The job is made once and kept under DIR (default: <tmp>/dubstudio-bench-edit-<minutes>m) for the next
run: conversational speech looped to `minutes` (common.long_input), dubbed into Spanish with espeak-ng
for the voices (the offline engine, so speaking the line is real local work), the translator and, unless
`--stt offline` (pocketsphinx: slow on an hour), the speech-to-text engine as instant fakes on loopback.

Then, on a line in the middle, each with a translation never spoken before (no cache helps):
* baseline: the old path, `actions.edit_lines` and the queued run of the language (`tasks.execute`:
  synthesize, fit, mix, captions, deliver, manifest);
* fast path: `actions.regenerate_line`, from the click to a master WAV the UI plays with the new line in
  it (save the edit, speak and fit the line, patch its stretch of the master); the first round with the
  engines not yet built (a server's first regenerate), the next ones warm. After each, the queued run
  that remakes the other deliverables is timed too (the preview does not wait for it).
Goal (issue 6): edit-to-preview under 2 s of local processing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import fakes, long_input

from dubstudio import actions
from dubstudio.config import Settings
from dubstudio.runtime import Database, prepare
from dubstudio.tasks import Queue

LANG = "es"
GOAL = 2.0


def environment(data: Path, stt: str, urls: dict[str, str] | None) -> None:
    """This process's settings, as `dubstudio serve` would read them."""
    for name in [n for n in os.environ if n.startswith("DUBSTUDIO_")]:
        del os.environ[name]
    os.environ.update(DUBSTUDIO_DATA_DIR=str(data), DUBSTUDIO_STT=stt, DUBSTUDIO_TTS="offline",
                      DEEPGRAM_API_KEY="dg-test-key", OPENAI_API_KEY="sk-test", DUBSTUDIO_MAX_DURATION="36000",
                      PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    if urls:  # only the first run calls them; later runs reuse every answer
        os.environ.update(DUBSTUDIO_DEEPGRAM_BASE_URL=urls["deepgram"], OPENAI_BASE_URL=urls["openai"])


async def session_call(settings: Settings, fn: Any, *args: Any) -> Any:
    db = Database.connect(settings)
    try:
        async with db.session() as s:
            return await fn(s, *args)
    finally:
        await db.close()


def build(work: Path, minutes: float, stt: str) -> tuple[Settings, str]:
    """The finished job under `work`, made now if it is not there yet."""
    record = work / "job.json"
    if record.exists():
        environment(work / "data", stt, None)
        return Settings(), json.loads(record.read_text())["id"]
    work.mkdir(parents=True, exist_ok=True)
    source = long_input(minutes, work / "input.wav")
    with fakes() as urls:
        environment(work / "data", stt, urls)
        settings = Settings()
        storage = prepare(settings)

        async def create(s: Any) -> str:
            job = await actions.create_job(settings, s, storage, "local", source.name, [source.read_bytes()],
                                           "en", LANG)
            return job.id

        job_id = asyncio.run(session_call(settings, create))
        started = time.monotonic()
        Queue(settings).run_job.call_local(job_id)
        print(f"built the {minutes:g}-minute job in {time.monotonic() - started:.0f} s")
    status = asyncio.run(session_call(settings, lambda s: actions.get_job(s, "local", job_id))).status
    if status != "done":
        raise SystemExit(f"the job ended {status}")
    record.write_text(json.dumps({"id": job_id}))
    return settings, job_id


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=3, help="fast-path rounds (the first with cold engines)")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--stt", choices=("deepgram", "offline"), default="deepgram")
    args = ap.parse_args()
    work = args.work or Path(tempfile.gettempdir()) / f"dubstudio-bench-edit-{args.minutes:g}m"
    settings, job_id = build(work, args.minutes, args.stt)
    lines = asyncio.run(session_call(settings, lambda s: actions.language_lines(settings, s, "local", job_id, LANG)))
    line = lines[len(lines) // 2]
    counter = work / "edits.count"  # every round speaks a sentence never spoken before
    n = int(counter.read_text()) if counter.exists() else 0

    def fresh() -> str:
        nonlocal n
        n += 1
        counter.write_text(str(n))
        return f"Versión {n}: {line['translation']}"[: max(24, len(line["translation"]) + 4)]

    queue = Queue(settings)
    print(f"job: {args.minutes:g} min, {len(lines)} lines in {LANG}; editing line {len(lines) // 2 + 1} "
          f"({line['source_start']:.1f}-{line['source_end']:.1f} s)")

    started = time.monotonic()  # the baseline: the old path, the whole language made again
    asyncio.run(session_call(settings, lambda s: actions.edit_lines(settings, s, "local", job_id, LANG,
                                                                    {line["id"]: fresh()})))
    queue.run_job.call_local(job_id)
    full = time.monotonic() - started
    print(f"baseline, full re-render of the language: {full:.2f} s")

    previews, behind = [], []
    for round_ in range(args.rounds):
        engines = Queue(settings).engines if round_ == 0 else queue.engines  # first: engines built on the click
        started = time.monotonic()
        made = asyncio.run(session_call(settings, lambda s, e=engines: actions.regenerate_line(
            settings, s, e, "local", job_id, LANG, line["id"], fresh())))
        seconds = time.monotonic() - started
        if made is None:
            raise SystemExit("the fast path did not patch the master")
        previews.append(seconds)
        started = time.monotonic()
        queue.run_job.call_local(job_id)  # the other deliverables, behind the preview
        behind.append(time.monotonic() - started)
        print(f"fast path round {round_ + 1}{' (cold engines)' if round_ == 0 else ''}: edit-to-preview "
              f"{seconds:.3f} s, master patched over {made.end - made.start:.2f} s; the run behind it: "
              f"{behind[-1]:.1f} s")
    warm = statistics.median(previews[1:]) if len(previews) > 1 else previews[0]
    print(f"edit-to-preview: {previews[0]:.3f} s cold, {warm:.3f} s warm (median); full re-render {full:.2f} s")
    print(f"ratio preview / full re-render: {warm / full:.4f} warm, {previews[0] / full:.4f} cold "
          f"({full / warm:.0f}x faster warm)")
    print(f"under {GOAL:g} s: {'yes' if max(previews) < GOAL else 'no'} (worst {max(previews):.3f} s)")


if __name__ == "__main__":
    main()
