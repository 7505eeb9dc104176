"""What an install leaves behind is not something to commit."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


NO_GIT = shutil.which("git") is None or not (ROOT / ".git").exists()


@pytest.mark.skipif(NO_GIT, reason="needs a git checkout")
@pytest.mark.parametrize("path", ["baton.egg-info/PKG-INFO", ".venv/bin/python", "staticfiles/admin/x.css"])
def test_install_artifacts_are_ignored(path):
    ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)

    assert ignored.returncode == 0
