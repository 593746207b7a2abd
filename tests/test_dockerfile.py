"""The Dockerfile's and .dockerignore's promises, read from the files themselves (no image is built here;
bench/docker_smoke.sh builds and runs one)."""
from __future__ import annotations

import json
import re
import shlex

import pytest
from conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
# What the app reads at run time besides its code: the shipped checkpoint, the Train tab's configs, the
# example pictures, and the MNIST sample the Train tab falls back to (nextnum/data.py's FIXTURE).
RUNTIME_PATHS = ["app.py", "nextnum", "checkpoints", "configs", "examples", "tests/fixtures"]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comment lines dropped, as Docker does."""
    out, pending = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue  # a comment, also inside a continued instruction
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(ins: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, its FROM first; what comes before the first FROM is left out."""
    out: list[list[tuple[str, str]]] = []
    for word, rest in ins:
        if word == "FROM":
            out.append([])
        if out:
            out[-1].append((word, rest))
    return out


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for word, rest in stage:
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def ignore_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as a regex over slash-separated paths: * and ? stop at a slash, ** does not."""
    rx, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            rx, i = rx + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            rx, i = rx + ".*", i + 2
        elif pattern[i] == "*":
            rx, i = rx + "[^/]*", i + 1
        elif pattern[i] == "?":
            rx, i = rx + "[^/]", i + 1
        elif pattern[i] == "[":
            j = pattern.index("]", i)
            rx, i = rx + pattern[i:j + 1], j + 1
        else:
            rx, i = rx + re.escape(pattern[i]), i + 1
    return re.compile(rx)


def dockerignored(path: str, lines: list[str]) -> bool:
    """Whether .dockerignore keeps path out of the context: a pattern that matches the path or a folder
    above it excludes it, a later !pattern brings it back."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rx = ignore_regex(line.lstrip("!").strip("/"))
        if any(rx.fullmatch(p) for p in prefixes):
            ignored = not negate
    return ignored


@pytest.fixture(scope="module")
def ins():
    return instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(ins):
    return stages(ins)[-1]


@pytest.fixture(scope="module")
def ignore_lines():
    return DOCKERIGNORE.read_text().splitlines()


def test_base_image_is_a_build_arg_declared_before_from(ins):
    words = [w for w, _ in ins]
    first_from = words.index("FROM")
    args = [rest for w, rest in ins[:first_from] if w == "ARG"]
    assert "BASE=python:3.11-slim" in args, "ARG BASE=python:3.11-slim must come before the first FROM"
    froms = [rest.split()[0] for w, rest in ins if w == "FROM"]
    assert froms and all(f == "${BASE}" for f in froms), f"every stage starts FROM ${{BASE}}, got {froms}"


def test_app_runs_as_unprivileged_user_app_uid_1000(final):
    users = [rest for w, rest in final if w == "USER"]
    assert users, "the app stage sets no USER, so it would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert users[-1] == "app"
    assert any(w == "RUN" and re.search(r"useradd\b.*--uid 1000 app\b", rest) for w, rest in final)


def test_healthcheck_polls_gradio_api_info(final):
    checks = [rest for w, rest in final if w == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition(" CMD ")
    assert command, "HEALTHCHECK without a CMD"
    assert "/gradio_api/info" in command


def test_exposed_port_is_the_port_gradio_serves(final):
    exposed = [rest.split("/")[0] for w, rest in final if w == "EXPOSE"]
    assert exposed == ["7860"]
    assert env_of(final).get("GRADIO_SERVER_PORT") == exposed[0]


def test_app_listens_on_all_interfaces(final):
    assert env_of(final).get("GRADIO_SERVER_NAME") == "0.0.0.0"


def test_cmd_runs_app_py(final):
    cmds = [rest for w, rest in final if w == "CMD"]
    assert len(cmds) == 1
    assert json.loads(cmds[0]) == ["python", "app.py"]  # exec form: the app gets the container's signals


def test_wheelhouse_is_optional_and_installed_from_without_an_index(ins):
    copies = [rest.split() for w, rest in ins if w == "COPY"]
    deps = [c for c in copies if "wheelhouse*" in c]
    assert deps, "no COPY of wheelhouse*"
    # the glob may match nothing; requirements.txt in the same COPY keeps it from having no source at all
    assert "requirements.txt" in deps[0] and "requirements-serve.txt" in deps[0]
    runs = [rest for w, rest in ins if w == "RUN" and "--find-links" in rest]
    assert runs, "no pip install --find-links"
    assert all("--no-index" in r for r in runs)
    branch = runs[0]
    assert re.search(r'pip install --no-index --find-links \S+ -r "\$req"', branch)
    # without a wheelhouse: CPU torch from TORCH_INDEX (training only), then the requirements from the default index
    assert '--index-url "$TORCH_INDEX"' in branch
    assert [rest for w, rest in ins if w == "ARG" and rest.startswith("TORCH_INDEX=")] \
        == ["TORCH_INDEX=https://download.pytorch.org/whl/cpu"]


def test_the_default_image_serves_without_pytorch_and_a_build_argument_adds_it(ins):
    """TRAINING=0 (default) installs requirements-serve.txt (no torch); TRAINING=1 installs requirements.txt."""
    assert [rest for w, rest in ins if w == "ARG" and rest.startswith("TRAINING")] == ["TRAINING=0"]
    run = next(rest for w, rest in ins if w == "RUN" and "--find-links" in rest)
    m = re.search(r'if \[ "\$TRAINING" = 1 \]; then req=(\S+); else req=(\S+); fi', run)
    assert m and m.groups() == ("/tmp/deps/requirements.txt", "/tmp/deps/requirements-serve.txt")
    serve = (ROOT / "requirements-serve.txt").read_text().split()
    full = (ROOT / "requirements.txt").read_text().split()
    pins = [p for p in serve if "==" in p]
    assert pins and not [p for p in pins if p.split("==")[0] in ("torch", "torchvision")]
    assert set(pins) <= set(full), "requirements-serve.txt pins what requirements.txt pins"
    assert "onnxruntime" in {p.split("==")[0] for p in pins} and "safetensors" in {p.split("==")[0] for p in pins}


def test_app_stage_copies_named_paths_not_the_whole_context(final):
    """A COPY of the whole context would put wheelhouse/ (several GB) into the image."""
    sources = []
    for w, rest in final:
        if w == "COPY" and "--from=" not in rest:
            words = [a for a in rest.split() if not a.startswith("--")]
            sources += [s.rstrip("/") for s in words[:-1]]
    assert "." not in sources and "*" not in sources
    for path in RUNTIME_PATHS:
        assert path in sources, f"the image lacks {path}"
        assert (ROOT / path).exists()


def test_dockerignore_keeps_runs_venvs_and_caches_out(ignore_lines):
    for path in ["runs/full1/train.log", "venv/bin/python", ".venv/bin/python", "nextnum/__pycache__/model.pyc",
                 ".pytest_cache/v/cache", ".git/HEAD", "bench/out/docker/build.log",
                 "bench/out/docker/nextnum-base-bookworm.tar"]:
        assert dockerignored(path, ignore_lines), f"{path} would be sent to the build"


def test_dockerignore_lets_wheelhouse_and_runtime_files_in(ignore_lines):
    for path in ["wheelhouse/torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl", "requirements.txt",
                 "checkpoints/nextnum/model.safetensors", "checkpoints/nextnum/config.json",
                 "checkpoints/nextnum/.onnx/greedy-0123456789abcdef01234567.onnx",  # what serving reads with
                 "tests/fixtures/mnist_sample.npz", "examples/17.png", "nextnum/model.py", *RUNTIME_PATHS]:
        assert not dockerignored(path, ignore_lines), f"{path} is kept out of the build"
