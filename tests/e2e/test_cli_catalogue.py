"""`genhub catalogue apply|export` as an operator runs it (real subprocesses, embedded SQLite)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cli import GENHUB, genhub

ROOT = Path(__file__).resolve().parents[2]
SIMULATED = str(ROOT / "deploy" / "catalogue" / "simulated.yaml")
KIE = str(ROOT / "deploy" / "catalogue" / "kie.yaml")


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    result = genhub(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    return tmp_path


def export(cwd: Path, *args: str) -> str:
    result = genhub(cwd, "catalogue", "export", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_preview_then_apply_then_apply_again(migrated: Path) -> None:
    # when the operator previews the simulated sample
    preview = genhub(migrated, "catalogue", "apply", SIMULATED, "--dry-run")
    # then the diff lists what would be created, and nothing was written
    assert preview.returncode == 0, preview.stderr
    assert "+ model sim-image: created" in preview.stdout
    assert '    + preset "Square sketch": created' in preview.stdout
    assert "dry run: nothing was written" in preview.stdout
    assert "models: []" in export(migrated)
    # when it is applied, then what was previewed is applied
    applied = genhub(migrated, "catalogue", "apply", SIMULATED)
    assert applied.returncode == 0 and applied.stdout.rstrip().endswith(": applied")
    assert "created: 2 model(s), 3 preset(s)" in applied.stdout
    # when it is applied again, then nothing changes
    again = genhub(migrated, "catalogue", "apply", SIMULATED)
    assert again.returncode == 0 and again.stdout.rstrip().endswith(": nothing to change")
    assert "unchanged: 2 model(s), 3 preset(s)" in again.stdout


def test_a_changed_field_is_previewed_then_applied(migrated: Path) -> None:
    # given the sample applied, and a copy with one price changed
    genhub(migrated, "catalogue", "apply", SIMULATED)
    text = Path(SIMULATED).read_text(encoding="utf-8").replace("costCredits: 40", "costCredits: 45")
    (migrated / "changed.yaml").write_text(text, encoding="utf-8")
    # when the copy is previewed, then exactly that change is shown
    changed = genhub(migrated, "catalogue", "apply", "changed.yaml", "--dry-run")
    assert "~ model sim-video: changed\n    costCredits: 40 -> 45\n" in changed.stdout
    assert "= model sim-image: unchanged" in changed.stdout
    # when it is applied, then it is stored
    assert genhub(migrated, "catalogue", "apply", "changed.yaml").returncode == 0
    assert "costCredits: 45" in export(migrated)


def test_an_export_applies_back_as_unchanged_in_both_formats(migrated: Path) -> None:
    # given the sample applied, exported as YAML and as JSON
    assert genhub(migrated, "catalogue", "apply", SIMULATED).returncode == 0
    (migrated / "export.yaml").write_text(export(migrated), encoding="utf-8")
    assert genhub(migrated, "catalogue", "export", "--format", "json", "--output", "export.json").returncode == 0
    exported = json.loads((migrated / "export.json").read_text(encoding="utf-8"))
    assert [m["slug"] for m in exported["models"]] == ["sim-image", "sim-video"]
    # when either export is applied, then nothing changes
    for name in ("export.yaml", "export.json"):
        result = genhub(migrated, "catalogue", "apply", name)
        assert result.returncode == 0 and result.stdout.rstrip().endswith(": nothing to change"), result.stdout


def test_an_invalid_file_is_refused_with_lines_and_writes_nothing(migrated: Path) -> None:
    # given a file with a valid first model and mistakes after it
    (migrated / "bad.yaml").write_text(
        "version: 1\n"
        "models:\n"
        "  - {slug: fine, name: Fine, provider: simulated, kind: image, costCredits: 1}\n"
        "  - slug: broken\n"
        "    name: Broken\n"
        "    provider: nobody\n"
        "    kind: image\n"
        "    costCredits: 1\n"
        "    presets: [{name: x, params: {steps: 1}}]\n",
        encoding="utf-8",
    )
    # when it is applied
    result = genhub(migrated, "catalogue", "apply", "bad.yaml")
    # then every problem is named with its line, and the catalogue is still empty
    assert result.returncode == 2
    assert "bad.yaml has 1 problem(s); nothing was written" in result.stdout
    # (every registered provider is named, in order)
    named = re.search(r"line 6: models\[1\]\.provider: must be one of \[(.*)\]", result.stdout)
    assert named is not None, result.stdout
    providers = re.findall(r"'([a-z]+)'", named.group(1))
    assert providers == sorted(providers) and {"kie", "replicate", "simulated"} <= set(providers)
    # and an alias bomb is refused as soon as its first anchor is read
    (migrated / "bomb.yaml").write_text(
        'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n', encoding="utf-8"
    )
    bomb = genhub(migrated, "catalogue", "apply", "bomb.yaml")
    assert bomb.returncode == 2
    assert "error: bomb.yaml: line 1, column 4: anchors (&name) are not allowed; nothing was written" in bomb.stdout
    assert "models: []" in export(migrated)


def test_prune_deactivates_what_the_file_does_not_name(migrated: Path) -> None:
    genhub(migrated, "catalogue", "apply", SIMULATED)
    kept = genhub(migrated, "catalogue", "apply", KIE)
    assert "? model sim-image: not in the file: left alone (--prune deactivates it)" in kept.stdout
    pruned = genhub(migrated, "catalogue", "apply", KIE, "--prune")
    assert "- model sim-image: deactivated\n    isActive: true -> false" in pruned.stdout
    assert export(migrated).count("isActive: false") == 2


def test_a_file_on_standard_input_with_hostile_names_prints_them_escaped(migrated: Path) -> None:
    # given a preset name with a terminal escape's bracket part and a right-to-left override
    document = {
        "version": 1,
        "models": [
            {
                "slug": "sim-image",
                "name": "Simulated image",
                "provider": "simulated",
                "kind": "image",
                "costCredits": 1,
                "presets": [{"name": "evil\u202egnp.exe", "params": {}}],
            }
        ],
    }
    # when it is piped in as JSON
    result = subprocess.run(
        [GENHUB, "catalogue", "apply", "-", "--format", "json"],
        cwd=migrated,
        env=genhub_env(migrated),
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then it is applied and the override is shown escaped, not obeyed by the terminal
    assert result.returncode == 0, result.stdout + result.stderr
    assert '+ preset "evil\\u202egnp.exe": created' in result.stdout
    assert "\u202e" not in result.stdout
    # and the export writes it as an escape too, in either format
    as_yaml, as_json = export(migrated), export(migrated, "--format", "json")
    assert '"evil\\u202Egnp.exe"' in as_yaml and "\u202e" not in as_yaml
    assert '"evil\\u202egnp.exe"' in as_json and "\u202e" not in as_json


def genhub_env(cwd: Path) -> dict[str, str]:
    """The environment `genhub` of tests/e2e/test_cli.py runs with (embedded SQLite under cwd)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "STORAGE_"))}
    env.update({"DATA_DIR": str(cwd / "data"), "LOG_LEVEL": "WARNING"})
    return env
