"""Rebuild the trimmed Karlsruhe OParl sample in this folder from the full data folder.

    python tests/data/karlsruhe-oparl/trim.py FULL_DIR [--out DIR]

FULL_DIR holds ``papers.json``, ``meetings.json`` and ``organizations.json`` (lists of OParl objects,
as described in SOURCE.md). The selection depends on the data alone and is deterministic:

* the papers named in ``NAMED`` (the ones tests/test_karlsruhe.py replays step by step);
* the papers in ``SKIP_EXAMPLES``, one per kind of reason the importer gives for not importing a paper;
* per number of consultations (0, 1, 2, 3, 4 or more), the first ``PER_BUCKET`` papers in the order of
  the SHA-256 of their id.

Paper objects are kept unchanged. Meetings are kept if a chosen consultation points to them (by
``meeting`` or through one of their agenda items), with only the agenda items chosen consultations
point to (the importer reads no others). Organizations are kept if a chosen paper (consultation,
``underDirectionOf``) or a kept meeting refers to them. Objects stay in the order of the full files;
each file is a JSON list with one object per line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NAMED = ("vo/51585", "vo/52415", "vo/52596")  # 2025/0161, 2025/0916, 2025/1069
SKIP_EXAMPLES = {
    "vo/38243": "'verwiesen in Fachausschuss', and the committee's consultation is not recorded",
    "vo/37283": "a consultation without an organization",
    "vo/47906": "a Kenntnisnahme in a committee after the paper was settled",
    "vo/49898": "a hearing of an Ortschaftsrat that could happen in several states",
    "vo/54191": "a second consultation of an Ortschaftsrat that was heard already",
}
PER_BUCKET = {0: 3, 1: 12, 2: 12, 3: 12, 4: 12}


def _tail(obj: dict[str, Any]) -> str:
    """``vo/51585`` of ``https://…/papers/vo/51585``."""
    return "/".join(str(obj["id"]).rsplit("/", 2)[-2:])


def select(papers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    chosen = {_tail(p) for p in papers if _tail(p) in NAMED or _tail(p) in SKIP_EXAMPLES}
    missing = (set(NAMED) | set(SKIP_EXAMPLES)) - chosen
    if missing:
        raise SystemExit(f"papers not in the full data: {', '.join(sorted(missing))}")
    ranked = sorted(papers, key=lambda p: hashlib.sha256(str(p["id"]).encode()).hexdigest())
    for bucket, wanted in PER_BUCKET.items():
        taken = 0
        for p in ranked:
            if taken == wanted:
                break
            if min(len(p.get("consultation") or []), 4) == bucket and _tail(p) not in chosen:
                chosen.add(_tail(p))
                taken += 1
    return [p for p in papers if _tail(p) in chosen]


def trim(papers: list[dict[str, Any]], meetings: list[dict[str, Any]], organizations: list[dict[str, Any]]
         ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    sample = select(papers)
    consultations = [c for p in sample for c in p.get("consultation") or []]
    items = {c["agendaItem"] for c in consultations if c.get("agendaItem")}
    meeting_ids = {c["meeting"] for c in consultations if c.get("meeting")}
    kept_meetings = []
    for m in meetings:
        own = [i for i in m.get("agendaItem") or [] if i["id"] in items]
        if m["id"] in meeting_ids or own:
            kept_meetings.append({**m, "agendaItem": own} if "agendaItem" in m else m)
    org_ids = {o for c in consultations for o in c.get("organization") or []}
    org_ids |= {o for p in sample for o in p.get("underDirectionOf") or []}
    org_ids |= {o for m in kept_meetings for o in m.get("organization") or []}
    return sample, kept_meetings, [o for o in organizations if o["id"] in org_ids]


def _load(path: Path) -> list[dict[str, Any]]:
    value = json.loads(path.read_text(encoding="utf-8"))
    objects: list[dict[str, Any]] = value["data"] if isinstance(value, dict) else value
    return objects


def _dump(path: Path, objects: list[dict[str, Any]]) -> int:
    text = "[\n" + ",\n".join(json.dumps(o, ensure_ascii=False, separators=(",", ":")) for o in objects) + "\n]\n"
    path.write_text(text, encoding="utf-8")
    return len(text.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("full", type=Path, help="folder with the full papers.json, meetings.json, organizations.json")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the sample (default: this folder)")
    args = parser.parse_args()
    names = ("papers", "meetings", "organizations")
    parts = trim(*(_load(args.full / f"{name}.json") for name in names))
    total = 0
    for name, objects in zip(names, parts, strict=True):
        size = _dump(args.out / f"{name}.json", objects)
        total += size
        print(f"{name}.json: {len(objects)} objects, {size:,} bytes")
    print(f"total {total:,} bytes")


if __name__ == "__main__":
    main()
