"""``vx-engine probe``: know the source before spending hours on it.

``probe(path)`` samples the file (``vx_engine.analysis.sampling``), turns the measured
values into warnings with stable codes and recommended ``run`` flags
(``vx_engine.analysis.report``), and returns one JSON-ready dict::

    {...measured values..., "content": {...}, "warnings": [{"code", "message"}],
     "recommend": {...}}

``"content"`` is the verdict of ``vx_engine.analysis.content`` (anime / cg / live-action,
or unsure), as ``ContentVerdict.as_json`` writes it.

Bad input raises the same ``InputError`` lines ``vx-engine run`` gives (the file is
opened by ``VideoReader`` first). A file that breaks part-way is measured up to the break,
and the report says where (``decode_stopped`` and the ``decode-stopped`` warning).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FULL = (8, 24)  # samples x frames: vx-engine probe
FAST = (3, 8)  # what vx-engine run checks before it starts


def probe(path: Path | str, samples: int = FULL[0], run_frames: int = FULL[1]) -> dict[str, Any]:
    from vx_engine.analysis.report import recommend, values, warnings
    from vx_engine.analysis.sampling import sample_file
    from vx_engine.errors import InputError
    from vx_engine.video import VideoReader

    path = Path(path)
    with VideoReader(path) as reader:
        info = reader.info
        sampled = sample_file(reader, samples, run_frames)
    if not sampled.pts:  # the reader decoded a frame, the sampling none: nothing to report
        raise InputError(
            f"{path} has no measurable video frames; {sampled.stopped or 'none decoded'}"
        )
    measured = values(info, sampled)
    found = warnings(measured)
    measured["warnings"] = found
    measured["recommend"] = recommend({w["code"] for w in found})
    return measured


def format_text(report: dict[str, Any]) -> str:
    """The probe for people: values, then warnings, then the recommended flags."""
    from vx_engine.analysis.content import ContentVerdict

    colour, held, interlace = report["colour"], report["held"], report["interlace"]
    degradation = report["degradation"]
    sampled = "every frame" if report["whole_file"] else f"{report['sampled_frames']} frames"
    if report["sampled_from_start"]:
        sampled = f"the first {report['sampled_frames']} frames (seeks found none)"
    cuts = ", ".join(f"{t:.2f}s" for t in report["scene_cut_times"]) or "-"
    lines = [
        f"{report['path']}",
        f"  video       {report['width']}x{report['height']} {report['codec']} "
        f"{report['pix_fmt']} ({report['bit_depth']}-bit), {report['fps']:.3f} fps"
        + (" (variable)" if report["vfr"] else ""),
        f"  colour      primaries {report['primaries']}, transfer {report['transfer']}"
        + (" (HDR)" if report["hdr"] else ""),
        f"  sampled     {sampled} ({report['sampled_s']:.1f} s of video)",
        f"  blockiness  {report['blockiness']} (off the 8x8 grid "
        f"{report['blockiness_offgrid']})   blur {report['blur']}   noise {report['noise']}",
        f"  degradation {degradation['class'] or 'not measured'}"
        + (f" ({degradation['evidence']})" if degradation["evidence"] else ""),
        f"  scene cuts  {report['scene_cuts']} at {cuts}",
        f"  interlace   {interlace['verdict']} ({interlace['share']:.0%} of frames with fields)",
        f"  held frames {held['share']:.0%} ({held['pattern']})",
        f"  content     {ContentVerdict.from_json(report['content']).describe()}",
        f"  luma        {colour['luma_low']}-{colour['luma_high']} (spread {colour['contrast']}), "
        f"saturation {colour['saturation']}",
    ]
    if report["warnings"]:
        lines.append("warnings:")
        lines += [f"  [{w['code']}] {w['message']}" for w in report["warnings"]]
    else:
        lines.append("warnings: none")
    flags = run_arguments(report["recommend"])
    lines.append(f"recommended: vx-engine run {flags or '(defaults)'}")
    return "\n".join(lines)


def run_arguments(recommend: dict[str, Any]) -> str:
    """The recommendation as ``run`` arguments: ``{"pre": ["deblock"]}`` -> ``--pre deblock``
    (a repeatable flag once per value), each spelled as ``RUN_FLAGS`` spells it."""
    from vx_engine.run_flags import FLAGS

    words = []
    for key, value in recommend.items():
        for each in value if isinstance(value, list) else [value]:
            words += [FLAGS[key].spellings[0], str(each)]
    return " ".join(words)
