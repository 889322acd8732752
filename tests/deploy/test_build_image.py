"""tools/build-image.sh, the Dockerfile's build steps, run here without Docker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wenu_stream.drivers.kcl.properties import check_properties

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "build-image.sh"


def build(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


@pytest.mark.slow
@pytest.mark.integration  # needs the KCL jars of `make kcl` (copied from the installed amazon-kclpy)
def test_local_build_makes_the_wheel_and_lays_out_app_as_the_image_does(tmp_path: Path) -> None:
    done = build("local", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "wheels").iterdir()] == ["wenu_stream-0.1.0-py3-none-any.whl"]
    app = tmp_path / "app"
    assert sorted(p.name for p in (app / "consumers").iterdir()) == ["alarms.py", "processing.py"]
    for name in ("entrypoint.sh", "healthcheck.sh"):
        assert os.access(app / "deploy" / "ecs" / name, os.X_OK), name
    assert (app / "deploy" / "ecs" / "logback.xml").is_file()
    jars = sorted(p.name for p in (app / ".kcl" / "jars").glob("*.jar"))
    import amazon_kclpy  # the jars the package ships, all of them and nothing else

    shipped = sorted(p.name for p in (Path(amazon_kclpy.__file__).parent / "jars").glob("*.jar"))
    assert jars == shipped and len(jars) > 50
    assert any(j.startswith("amazon-kinesis-client-multilang-") for j in jars)
    for app_name in ("alarms", "processing"):  # executableName resolves from the image root
        assert check_properties(app / "properties" / f"{app_name}.properties", cwd=app) == []


def test_layout_refuses_an_incomplete_classpath_before_writing_anything(tmp_path: Path) -> None:
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / "amazon-kinesis-client-3.1.3.jar").write_bytes(b"")
    out = tmp_path / "app"
    done = build("layout", str(out), str(jars))
    assert done.returncode == 1
    assert "has 1 jars but lacks: amazon-kinesis-client-multilang kinesis dynamodb" in done.stderr
    assert "fix: make kcl" in done.stderr
    assert not out.exists()


def test_unknown_mode_is_a_usage_error() -> None:
    done = build("push", "/tmp/nowhere")
    assert done.returncode == 2 and "tools/build-image.sh venv" in done.stderr


def test_dockerfile_runs_only_script_modes_and_copies_existing_paths() -> None:
    """Every RUN of the build is a mode of tools/build-image.sh; every COPY source exists and is in the context."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    script = SCRIPT.read_text()
    modes = re.findall(r"RUN bash tools/build-image.sh (\w+) ", dockerfile)
    assert modes == ["venv", "layout"]
    assert all(f"\n  {mode}) do_{mode}" in script for mode in modes)
    ignore = (ROOT / "Dockerfile.dockerignore").read_text().split()
    for source in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.MULTILINE):
        assert (ROOT / source).exists(), source
        top = source.split("/")[0] + ("/" if "/" in source else "")
        assert f"!{top}" in ignore or f"!{source}" in ignore, source
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert "USER 10001:10001" in runtime and "HEALTHCHECK" in runtime
    assert 'ENTRYPOINT ["/app/deploy/ecs/entrypoint.sh"]' in runtime


def test_base_images_are_pinned_by_digest_and_installs_by_constraints() -> None:
    """Every FROM is a pinned ARG image (name:tag@sha256:...) or an earlier stage; pip installs with -c."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", dockerfile, re.MULTILINE))
    stages: set[str] = set()
    for image, stage in re.findall(r"^FROM (\S+) AS (\w+)", dockerfile, re.MULTILINE):
        ref = args[image[2:-1]] if image.startswith("${") else image
        assert ref in stages or re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", ref), ref
        stages.add(stage)
    assert '-c "$ROOT/constraints.txt"' in SCRIPT.read_text()


def test_pin_tool_refuses_without_docker_and_leaves_the_dockerfile_alone(tmp_path: Path) -> None:
    before = (ROOT / "Dockerfile").read_text()
    import shutil

    for tool in ("dirname", "grep", "sed", "tr"):  # what the script needs besides docker
        (tmp_path / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no docker on PATH
    done = subprocess.run(
        ["/bin/bash", str(ROOT / "tools" / "pin-images.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "fix: run this where Docker" in done.stderr
    assert (ROOT / "Dockerfile").read_text() == before
