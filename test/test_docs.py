"""The README and docs/ hold together: every relative link and every repository path they quote
exists, every command the README quotes is a real entry point, make target, launch file or
tool, the README stays short, the generated experiments index and node-graph picture are
current, and the licence and changelog are what package.xml declares."""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
PAGES = [README, os.path.join(ROOT, "CONTRIBUTING.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
sys.path.insert(0, ROOT)


def _text(path):
    with open(path) as f:
        return f.read()


def _links(text):
    """Markdown link targets that are not URLs or pure anchors, without their #anchor."""
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        yield target.split("#")[0]


def _anchors(text):
    """GitHub's heading anchors of a markdown page."""
    out = set()
    for heading in re.findall(r"(?m)^#+ (.+)$", text):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_and_anchors_resolve(page):
    text = _text(page)
    base = os.path.dirname(page)
    missing = [t for t in _links(text) if not os.path.exists(os.path.normpath(os.path.join(base, t)))]
    assert not missing, f"{os.path.relpath(page, ROOT)} links to missing files: {missing}"
    for target, anchor in re.findall(r"\]\(([^)\s#]*)#([^)\s]+)\)", text):
        linked = os.path.normpath(os.path.join(base, target)) if target else page
        if linked.endswith(".md"):
            assert anchor in _anchors(_text(linked)), f"{os.path.relpath(page, ROOT)}: no #{anchor} in {target or 'itself'}"


PATH_LIKE = re.compile(r"`((?:approxbit_ros|how2compress_ros|offload_common|tools|bench|test|config|launch|msg|models|docs|scripts)"
                       r"/[\w./-]+)`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_quoted_repository_paths_exist(page):
    text = _text(page)
    base = os.path.dirname(page)
    missing = []
    for path in PATH_LIKE.findall(text):
        if any(c in path for c in "*<>") or path.endswith("/"):
            path = path.split("*")[0].split("<")[0].rstrip("/")
            if not path or os.path.exists(os.path.join(ROOT, path)):
                continue
        if not (os.path.exists(os.path.join(ROOT, path)) or os.path.exists(os.path.join(base, path))):
            missing.append(path)
    # paths made only by running a command (build outputs, a user's folders) are not quoted this way
    assert not missing, f"{os.path.relpath(page, ROOT)} quotes paths that do not exist: {missing}"


def _commands(text):
    """The first word of every command line in the README's shell blocks, and of every
    `ros2 launch` / `ros2 run` it quotes."""
    words = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("#")[0].strip().rstrip("\\").strip()
            for part in re.split(r"&&|;", line):
                part = part.strip()
                if part:
                    words.append(shlex.split(part)[:4])
    return words


def _setup_commands():
    import ast

    tree = ast.parse(_text(os.path.join(ROOT, "setup.py")))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            names |= {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return names


def test_every_command_the_readme_quotes_exists():
    text = _text(README)
    entry_points = _setup_commands()
    make_targets = set(re.findall(r"(?m)^([\w-]+):", _text(os.path.join(ROOT, "Makefile"))))
    launch_files = {os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "launch", "*.launch.py"))}
    shell_builtins = {"cd", "source", "export", "git", "pip3", "rosdep", "colcon"}
    seen = 0
    for words in _commands(text):
        head = words[0]
        seen += 1
        if head == "make":
            assert words[1] in make_targets, words
        elif head == "ros2":
            assert words[1] in ("launch", "run", "param"), words
            if words[1] == "launch":
                assert words[2] == "edge_offload" and words[3] in launch_files, words
        elif head in shell_builtins:
            continue
        else:
            assert head in entry_points or os.path.exists(os.path.join(ROOT, head)), words
    assert seen >= 10
    # inline `make <target>` and console commands quoted in the prose
    for target in re.findall(r"`make (\w+)", text):
        assert target in make_targets, target
    quoted = re.findall(r"`((?:approxbit|h2c|offload)_\w+) -", text)     # `approxbit_profile --backbone ...`
    assert quoted and all(name in entry_points for name in quoted), quoted


def test_readme_is_short_and_has_the_sections_a_newcomer_needs():
    text = _text(README)
    assert len(text.splitlines()) <= 250
    headings = re.findall(r"(?m)^## (.+)$", text)
    assert headings[:5] == ["Two commands", "On a robot", "Nodes, topics, messages", "Results at a glance",
                            "Where to go next"], headings


def test_experiments_index_is_current():
    from tools import gen_experiments_index

    with open(gen_experiments_index.OUT) as f:
        assert f.read() == gen_experiments_index.build(), "rerun python3 tools/gen_experiments_index.py"
    listed = _text(gen_experiments_index.OUT)
    for path in glob.glob(os.path.join(ROOT, "docs", "experiments", "**", "*"), recursive=True):
        if os.path.isfile(path):
            assert os.path.relpath(path, os.path.join(ROOT, "docs")) in listed


@pytest.mark.skipif(shutil.which("approxbit_edge") is None, reason="node entry points not installed")
def test_node_graph_picture_is_current():
    """The topics each node publishes and subscribes, asked of a running graph, are those the
    README's picture was drawn from."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "draw_node_graph.py"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_license_and_changelog_match_the_package():
    import catkin_pkg.package as catkin_pkg
    from catkin_pkg.changelog import get_changelog_from_path

    pkg = catkin_pkg.parse_package(os.path.join(ROOT, "package.xml"))
    assert [str(lic) for lic in pkg.licenses] == ["Apache-2.0"]
    assert "Apache License" in _text(os.path.join(ROOT, "LICENSE")) and \
        "Version 2.0, January 2004" in _text(os.path.join(ROOT, "LICENSE"))
    log = get_changelog_from_path(os.path.join(ROOT, "CHANGELOG.rst"), "edge_offload")
    versions = [v for v, _, _ in log.foreach_version()]
    assert pkg.version in versions
