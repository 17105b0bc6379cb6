"""mkdocs hooks (mkdocs.yml ``hooks:``): pages made at build time from files outside docs/.

``architecture.md`` is ARCHITECTURE.md of the repository's root, which stays there (the
issue tracker and the code point at it), so the site shows it without a copy to keep in
step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    text = (ROOT / "ARCHITECTURE.md").read_text()
    files.append(File.generated(config, "architecture.md", content=text))
    return files
