#!/usr/bin/env python3
"""Makes a whisper-rs-sys source tree build and read offline (item 3 of FRONTDESK-PATCH.md).

Edits by structure, not by quoting upstream text, so that this repository never carries the
links being removed: the body of ggml-cpu's `if (GGML_CPU_KLEIDIAI)` block (which downloads
KleidiAI with CMake's FetchContent) becomes a configure error, and the model-hub link in a comment
of ggml-cpu/ops.cpp (MPT's ALiBi code) becomes a plain reference. Idempotent; exits non-zero if
the tree still fetches or links afterwards.

usage: python3 make-offline.py [DIR]   (DIR: the crate directory, default: this script's)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent)
CPU = ROOT / "whisper.cpp" / "ggml" / "src" / "ggml-cpu"

KLEIDIAI_BODY = [
    "        # Front Desk: upstream downloads the KleidiAI sources here (FetchContent). The appliance\n",
    "        # builds offline and for x86-64 only, so the option is refused rather than fetched.\n",
    '        message(FATAL_ERROR "GGML_CPU_KLEIDIAI needs KleidiAI sources fetched from the internet; '
    'this offline build does not support it. Leave GGML_CPU_KLEIDIAI OFF.")\n',
]
ALIBI_NOTE = "(compare the ALiBi slopes in MosaicML MPT-7B's attention.py)"


def kleidiai(path: pathlib.Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, l in enumerate(lines) if l.strip() == "if (GGML_CPU_KLEIDIAI)")
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    # The block's own endif() is the first one at the if's indentation.
    end = next(i for i in range(start + 1, len(lines)) if lines[i].rstrip("\n") == indent + "endif()")
    lines[start + 1 : end] = KLEIDIAI_BODY
    path.write_text("".join(lines))


def alibi_link(path: pathlib.Path) -> None:
    text = path.read_text()
    text = re.sub(r"(//\s*)https?://\S*mpt-7b\S*attention\.py\S*", lambda m: m.group(1) + ALIBI_NOTE, text)
    path.write_text(text)


def main() -> int:
    cmake, ops = CPU / "CMakeLists.txt", CPU / "ops.cpp"
    kleidiai(cmake)
    alibi_link(ops)
    left = []
    if re.search(r"include\(FetchContent\)|FetchContent_", cmake.read_text()):
        left.append(f"{cmake}: FetchContent")
    if re.search(r"https?://\S*mpt-7b", ops.read_text()):
        left.append(f"{ops}: model-hub link")
    for l in left:
        print(f"make-offline: still there: {l}", file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
