"""`genhub serve`'s first lines name the URLs a newcomer opens; `make run PORT=` reaches the server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from entrypoints.cli import startup_banner

ROOT = Path(__file__).resolve().parents[2]


def test_the_banner_names_the_demo_page_and_graphiql_when_they_are_on() -> None:
    lines = startup_banner("http://127.0.0.1:3000", developer_pages=True)
    assert lines[0] == "genhub on http://127.0.0.1:3000"
    assert "  demo page: http://127.0.0.1:3000/demo" in lines
    assert "  GraphiQL:  http://127.0.0.1:3000/graphql" in lines


def test_the_banner_offers_no_url_that_would_answer_404() -> None:
    (line,) = startup_banner("http://127.0.0.1:8000", developer_pages=False)
    assert "/demo" not in line and "/graphql" not in line


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_make_run_takes_the_port_from_port(how: str) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    # given `make run PORT=3017` (or PORT in the environment); -n prints the command without running it
    args, env = (
        ([make, "-n", "run", "PORT=3017"], None) if how == "argument" else ([make, "-n", "run"], {"PORT": "3017"})
    )
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **(env or {})})
    # then genhub serve is started on that port
    assert done.returncode == 0, done.stderr
    assert "genhub serve --host 127.0.0.1 --port 3017" in done.stdout
