"""The project's own promises: the README's test command is what CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"# run the tests\n(.+)\n", readme).group(1).strip()
    assert command in (ROOT / ".ci" / "run").read_text()


def test_torch_is_pinned_everywhere_it_is_installed():
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch==\d+\.\d+\.\d+$", requirements, re.M)
    assert "grep -m1 '^torch==' requirements.txt" in (ROOT / "scripts" / "setup.sh").read_text()


def test_spaces_front_matter_pins_the_gradio_of_requirements():
    readme = (ROOT / "README.md").read_text()
    front_matter = re.match(r"---\n(.*?)\n---\n", readme, re.S).group(1)
    fields = dict(line.split(": ", 1) for line in front_matter.splitlines())
    assert fields["sdk"] == "gradio" and fields["app_file"] == "app.py"
    pinned = re.search(r"^gradio==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert fields["sdk_version"] == pinned
