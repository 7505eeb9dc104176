"""`PORT=... make run` serves on that port, and the links it prints follow."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_make_run_serves_on_the_port_it_is_given():
    plan = subprocess.run(
        ["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout

    assert "runserver 127.0.0.1:8123" in plan
    assert "8000" not in plan


def test_the_printed_and_handed_out_links_follow_the_port():
    env = {k: v for k, v in os.environ.items() if k != "SITE_URL"} | {"PORT": "8123"}
    code = "import django; django.setup(); from django.conf import settings; print(settings.SITE_URL)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "hub.settings"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert out.strip() == "http://127.0.0.1:8123"
