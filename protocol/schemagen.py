"""Generate ``schemas/*.schema.json`` from the protocol models.

Usage::

    python -m protocol.schemagen            # write schemas/
    python -m protocol.schemagen --check    # exit 1 if schemas/ differs

The schemas are JSON Schema 2020-12, one file per top-level message, each
self-contained (shared definitions are repeated under ``$defs``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from protocol.models import SCHEMA_MODELS, adapter

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:openseats:schema:1:{name}"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "schemas"


def schema_for(name: str) -> dict[str, Any]:
    generated = adapter(SCHEMA_MODELS[name]).json_schema(mode="validation")
    schema: dict[str, Any] = {"$schema": DIALECT, "$id": SCHEMA_ID.format(name=name)}
    schema.update(generated)
    return schema


def render(name: str) -> str:
    return json.dumps(schema_for(name), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocol.schemagen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    stale = []
    for name in SCHEMA_MODELS:
        path = args.dir / f"{name}.schema.json"
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("schemas out of date: " + ", ".join(stale), file=sys.stderr)
        print("run: python -m protocol.schemagen", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
