"""Run every benchmark in ``bench/``; each writes ``bench/results/<name>.md`` and prints it.

Usage::

    python bench/run.py [--quick] [--only NAME]    # or: make bench

``--quick`` uses smaller sizes (a few minutes in all); without it the sizes are those the
goals name. ``--only`` runs one benchmark (repeatable).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.evaluation import BENCHMARKS  # noqa: E402
from bench.multitable import BENCHMARKS as MULTITABLE_BENCHMARKS  # noqa: E402
from bench.privacy_scale import BENCHMARKS as PRIVACY_BENCHMARKS  # noqa: E402
from bench.quality import BENCHMARKS as QUALITY_BENCHMARKS  # noqa: E402
from bench.rekey import BENCHMARKS as REKEY_BENCHMARKS  # noqa: E402
from bench.scale import BENCHMARKS as SCALE_BENCHMARKS  # noqa: E402
from bench.store_latency import BENCHMARKS as STORE_BENCHMARKS  # noqa: E402

BENCHMARKS = {
    **BENCHMARKS,
    **PRIVACY_BENCHMARKS,
    **STORE_BENCHMARKS,
    **MULTITABLE_BENCHMARKS,
    **QUALITY_BENCHMARKS,
    **REKEY_BENCHMARKS,
    **SCALE_BENCHMARKS,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only this benchmark"
    )
    args = parser.parse_args(argv)
    for name in args.only or list(BENCHMARKS):
        start = time.perf_counter()
        print(f"== {name} ...", flush=True)
        print(BENCHMARKS[name](args.quick), flush=True)
        print(f"== {name} took {time.perf_counter() - start:.0f} s\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
