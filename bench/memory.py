"""Peak memory of a job as the input grows: a 10-minute and a 120-minute input, same engines.

    .venv/bin/python bench/memory.py [--short 10] [--long 120]

Goal (issue 3): the ratio of the peaks at most 1.3, each under 500 MB.
"""

from __future__ import annotations

import argparse
import sys

from common import dub_env, fakes, long_input, measured, workdir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", type=float, default=10.0)
    ap.add_argument("--long", type=float, default=120.0)
    args = ap.parse_args()
    tmp = workdir()
    peaks = {}
    with fakes() as urls:
        for minutes in (args.short, args.long):
            source = long_input(minutes, tmp / f"input-{minutes:g}.wav")
            cmd = [sys.executable, "-m", "dubstudio", "dub", str(source), "--to", "es", "--out",
                   str(tmp / f"out-{minutes:g}")]
            seconds, rss = measured(cmd, env=dub_env(urls, tmp / f"data-{minutes:g}"))
            peaks[minutes] = rss
            print(f"{minutes:g} min: peak RSS {rss:.0f} MB, {seconds:.1f} s, "
                  f"realtime factor {minutes * 60 / seconds:.1f}x")
    print(f"peak ratio {args.long:g} min / {args.short:g} min: {peaks[args.long] / peaks[args.short]:.2f} "
          "(goal <= 1.3, each under 500 MB)")


if __name__ == "__main__":
    main()
