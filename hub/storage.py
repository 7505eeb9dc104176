"""Static files storage for production: compressed, with hashed names cached forever (WhiteNoise)."""

from __future__ import annotations

from typing import Any

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """A file `collectstatic` has not gathered (a test run, a dev server) keeps its plain name.

    Production runs `collectstatic`, so every file is in the manifest; without it, pages still
    render instead of failing on a missing manifest entry.
    """

    manifest_strict = False

    def hashed_name(self, name: str, content: Any = None, filename: str | None = None) -> str:
        try:
            return super().hashed_name(name, content, filename)
        except ValueError:
            return name
