"""The notebooks as a person runs them: JupyterLab in headless Chromium (Debian's package, driven through
Playwright's Python API), on one emulator shared by every kernel.

The test opens the start page, then each step notebook in file order (the first through its link in the
checklist, the others from the file browser), then the start page again, runs all the cells of each from
the Run menu and checks what shows on the screen: the start page's checklist (every step not built, then
every step done), the plan table, no error output, and "No changes" at the end of each step. A notebook
freshly opened must not show as modified. A screenshot of
each notebook's final state is written under the test's temporary folder, and kept in the run record
``runs/<timestamp>-browser/`` with the executed notebooks.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from pointapp import shared_emulator
from pointapp.runbook import NOTEBOOKS
from pointapp.steps import STEPS
from tests.conftest import shared_emulator_environment
from tests.test_cli import free_port
from tests.test_notebooks import secret_values

ROOT = Path(__file__).resolve().parents[1]
START_PAGE = "00_start_here.ipynb"
STEP_NOTEBOOKS = [step.notebook for step in STEPS if step.available]  # file order is dependency order
#: The step its notebook does not build as stored: the frontend needs a repository, which the defaults leave unset.
UNCONFIGURED = "frontend"
#: Steps the checklist shows as "nothing to build" with the defaults: the frontend, and the domain step (no domain set).
NOTHING_TO_BUILD = {UNCONFIGURED, "domain"}

#: Headless Chromium as root on a closed network: no sandbox (it refuses to run as root with one), no GPU,
#: and nothing that calls out (updates, sync, QUIC probes); every host name but this machine fails at once.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
#: JupyterLab with nothing that reaches the network: no news feed, no update check, no PyPI extension manager.
LAB_OFFLINE = ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"]
#: The announcements plugin asks about news in a pop-up over the notebook: off (the page_config of the lab).
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}

#: How long one notebook may take from Run All to its last cell (each takes a few seconds on the emulator).
NOTEBOOK_TIMEOUT_S = 180
#: The viewport: tall enough that a step notebook's last cells and the plan above them show in one screenshot.
VIEWPORT = {"width": 1400, "height": 1800}

#: The status bar's kernel item once the notebook's kernel is attached and idle.
KERNEL_IDLE = re.compile(r"^Python 3 \(ipykernel\) \| Idle$")
#: Every code cell has run (a number in its prompt) or one failed and Run All stopped there; none is queued
#: ([*]) and the notebook's execution indicator says idle.
ALL_RUN = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return false;
  const status = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
  const failed = panel.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
  const idle = !status || status.getAttribute('data-status') === 'idle';
  return idle && !prompts.includes('[*]:') && (failed !== null || prompts.every(p => /^\\[\\d+\\]:$/.test(p)));
}"""


def _missing_tools() -> str | None:
    """Why the browser test cannot run here, or None. Missing tools fail the test: a skip would hide them."""
    if shutil.which("chromium") is None:
        return ("chromium is not installed: `make test` installs Debian's package (scripts/ensure-chromium.sh), "
                "or apt-get install chromium")
    for module in ("playwright", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            return f"the Python package {module} is missing: pip install -e '.[test]'"
    return None


def _wait_for(url: str, process: subprocess.Popen[Any], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"JupyterLab did not answer in {seconds:.0f} s: {log.read_text()[-2000:]}")


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a person's machine with nothing configured (the shared emulator, started by the first
    notebook that needs it), its state in this test's folder and on a free port; stopped at the end."""
    with shared_emulator_environment(tmp_path / "state") as environ:
        yield environ


@dataclass
class Lab:
    """A JupyterLab server over a copy of the notebooks, with its token."""

    url: str
    token: str
    folder: Path

    def api(self, path: str) -> Any:
        """GET a path of the server's REST API (the kernels, when a notebook is stuck)."""
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())


@contextlib.contextmanager
def running_lab(tmp_path: Path, shared: dict[str, str]) -> Iterator[Lab]:
    """JupyterLab (as root where the tests run as root) serving a copy of notebooks/; its kernels find the
    shared emulator by themselves."""
    folder = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, folder, ignore=shutil.ignore_patterns("conftest.py", ".ipynb_checkpoints"))
    config = tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
    env = {**shared, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--notebook-dir={folder}",
               f"--LabApp.user_settings_dir={tmp_path / 'lab-settings'}", f"--LabApp.workspaces_dir={tmp_path / 'lab-workspaces'}",
               *LAB_OFFLINE, *(["--allow-root"] if os.geteuid() == 0 else [])]
    log = tmp_path / "jupyterlab.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/api/status?token={token}", process, log, 60)
        yield Lab(url, token, folder)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Seen:
    """What one notebook showed once all its cells had run."""

    name: str
    seconds: float
    code_cells: int
    prompts: list[str]
    errors: list[str]
    tables: list[dict[str, Any]]
    outputs: list[str]  # the text of each code cell's outputs, in order
    dirty_on_open: bool
    screenshot: Path


#: Every table in the notebook's outputs, as its caption, header cells, rows of cell texts and links.
TABLES = """panel => [...panel.querySelectorAll('.jp-OutputArea-output table')].map(t => ({
  caption: t.caption ? t.caption.textContent.trim() : '',
  headers: [...t.querySelectorAll('thead th')].map(c => c.textContent.trim()),
  rows: [...t.querySelectorAll('tbody tr')].map(r => [...r.querySelectorAll('td')].map(c => c.textContent.trim())),
  links: [...t.querySelectorAll('tbody a')].map(a => a.getAttribute('href')),
}))"""


#: The text each code cell shows below it, one string per code cell.
OUTPUTS = """panel => [...panel.querySelectorAll('.jp-CodeCell')].map(cell =>
  [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => o.textContent.trim()).join('\\n'))"""


class Browser:
    """Chromium on JupyterLab, doing what a person does: open a notebook, Run All, look, save, close."""

    def __init__(self, page: Any, lab: Lab, shots: Path) -> None:
        self.page = page
        self.lab = lab
        self.shots = shots

    def start(self) -> None:
        self.page.goto(f"{self.lab.url}/lab?token={self.lab.token}")
        self.page.locator(".jp-DirListing-itemText", has_text=START_PAGE).wait_for(timeout=60_000)

    def _panel(self) -> Any:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")

    def _menu(self, menu: str, item: str) -> None:
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}…?$")).click()

    def run(self, name: str, shot: str = "", from_link: bool = False, keep_open: bool = False) -> Seen:
        """Open ``name`` from the file browser (or, ``from_link``, from its link in the current notebook's
        outputs), run all its cells, read what the page shows (a screenshot named after the notebook, or
        ``shot``), save it and, unless ``keep_open``, close it."""
        started = time.monotonic()
        if from_link:
            self._panel().locator(".jp-OutputArea-output a", has_text=re.compile(f"^{re.escape(name)}$")).click()
        else:
            self.page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$")).dblclick()
        tab = self.page.locator("li.lm-TabBar-tab.jp-mod-current", has_text=name)
        tab.wait_for(timeout=30_000)
        # The status bar names the kernel and says Idle once it is attached to the notebook and has answered:
        # cells run before that are not sent (JupyterLab clears them).
        self.page.locator("#jp-main-statusbar .jp-StatusBar-TextItem", has_text=KERNEL_IDLE).wait_for(timeout=60_000)
        self.page.wait_for_timeout(500)  # the kernel's language_info reaches the notebook with its first answer
        dirty_on_open = "jp-mod-dirty" in (tab.get_attribute("class") or "")
        self._menu("Run", "Run All Cells")
        try:
            self.page.wait_for_function(ALL_RUN, timeout=NOTEBOOK_TIMEOUT_S * 1000, polling=250)
        except Exception as error:  # playwright's TimeoutError: say where it stopped, with a picture
            stuck = self.shots / f"{Path(name).stem}-stuck.png"
            self.page.screenshot(path=str(stuck))
            prompts = self._panel().locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()
            pytest.fail(f"{name}: the cells did not all run in {NOTEBOOK_TIMEOUT_S} s (prompts {prompts}, kernels "
                        f"{self.lab.api('/api/kernels')}; screenshot {stuck}): {error}")
        seconds = time.monotonic() - started
        panel = self._panel()
        screenshot = self.shots / f"{shot or Path(name).stem}.png"
        cells = panel.locator(".jp-CodeCell")
        if name == START_PAGE:  # the checklist at the top of the screenshot
            panel.locator(".jp-OutputArea-output table").first.evaluate("table => table.scrollIntoView({block: 'start'})")
        else:  # the plan and the last cells, "No changes" at the bottom
            cells.last.scroll_into_view_if_needed()
        self.page.screenshot(path=str(screenshot))
        seen = Seen(
            name=name, seconds=seconds, code_cells=cells.count(),
            prompts=[p.strip() for p in panel.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()],
            errors=panel.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').all_text_contents(),
            tables=panel.evaluate(TABLES),
            outputs=panel.evaluate(OUTPUTS),
            dirty_on_open=dirty_on_open, screenshot=screenshot)
        self.page.keyboard.press("Control+s")  # the executed copy (in the temporary folder) becomes the record
        self.page.locator("li.lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)", has_text=name).wait_for(timeout=30_000)
        if not keep_open:
            self.close(name)
        return seen

    def close(self, name: str) -> None:
        """Bring ``name``'s tab to the front, close it and shut its kernel down, as the File menu does."""
        tab = self.page.locator("#jp-main-dock-panel li.lm-TabBar-tab", has_text=name)
        tab.click()
        self._menu("File", "Close and Shut Down Notebook")
        self.page.locator(".jp-Dialog", has_text="Shut down the notebook?").locator(".jp-mod-accept").click()
        tab.wait_for(state="detached", timeout=30_000)


def _stored_code(name: str) -> list[str]:
    notebook = json.loads((NOTEBOOKS / name).read_text())
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def _applies(name: str) -> bool:
    """Whether the stored parameters cell of ``name`` sets ``apply = True`` (Run All then builds the step)."""
    tree = ast.parse(_stored_code(name)[0])
    return any(isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "apply" for t in node.targets)
               and isinstance(node.value, ast.Constant) and node.value.value is True for node in tree.body)


def _check_common(seen: Seen) -> None:
    assert not seen.dirty_on_open, (
        f"{seen.name} shows as modified as soon as it opens: its stored kernelspec or language_info differs from "
        "what the kernel reports (Python " + ".".join(map(str, sys.version_info[:3])) + ")")
    assert not seen.errors, f"{seen.name} shows error output: {seen.errors[0][:1500]}"
    assert seen.code_cells == len(_stored_code(seen.name)), seen.name
    assert all(re.fullmatch(r"\[\d+\]:", p) for p in seen.prompts), (seen.name, seen.prompts)


def _checklist(seen: Seen) -> list[dict[str, str]]:
    """The start page's checklist: one row per step, each as {column: text}; its links."""
    (table,) = [t for t in seen.tables if t["headers"][:2] == ["step", "status"]]
    # JupyterLab points a link to a notebook beside this one at the server's copy, and opens it on a click.
    assert [urlparse(href).path for href in table["links"]] == [f"/files/{step.notebook}" for step in STEPS], table["links"]
    return [dict(zip(table["headers"], row, strict=True)) for row in table["rows"]]


def _check_start_page(seen: Seen, before: bool) -> None:
    """The checklist lists every step in order with its notebook: before the steps, none is built (the
    frontend, with no repository configured, has nothing to build); after them, each is done."""
    _check_common(seen)
    rows = _checklist(seen)
    assert [(row["step"], row["notebook"]) for row in rows] == [(step.name, step.notebook) for step in STEPS]
    states = {row["step"]: row["status"] for row in rows}
    expected = "not built" if before else "done"
    assert states == {step.name: "nothing to build" if step.name in NOTHING_TO_BUILD else expected for step in STEPS}, states
    if not before:
        assert all(not row["waits for"] for row in rows), rows


def _check_step(seen: Seen, step: str) -> None:
    _check_common(seen)
    if step in NOTHING_TO_BUILD - {UNCONFIGURED}:  # no domain set: its plan is empty, and so is what it applies
        assert seen.outputs[-1].startswith("No changes"), (seen.name, seen.outputs[-1])
        return
    plans = [t for t in seen.tables if t["headers"] == ["step", "action", "resource", "name", "detail"]]
    assert plans, f"{seen.name}: no plan table on the page"
    first = plans[0]
    assert first["caption"].startswith("Plan: ") and first["rows"], (seen.name, first["caption"])
    assert {row[0] for row in first["rows"]} == {step}, (seen.name, first["rows"][:3])
    assert "create" in {row[1] for row in first["rows"]}, (seen.name, first["rows"][:3])
    if step == UNCONFIGURED:  # it shows an example plan and applies nothing
        assert "nothing applied: frontend.repository is not set" in seen.outputs, seen.outputs
        return
    assert seen.outputs[-1].startswith("No changes"), (seen.name, seen.outputs[-1])


def _record(shots: Path, lab: Lab, seen: list[Seen]) -> Path:
    """Keep one screenshot of each notebook's final state, the executed notebooks and the timings in
    ``runs/<timestamp>-browser/`` (the folder of pointapp's run records)."""
    record = ROOT / "runs" / (datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-browser")
    record.mkdir(parents=True, exist_ok=True)
    for one in seen:
        shutil.copy2(one.screenshot, record / one.screenshot.name)
        shutil.copy2(lab.folder / one.name, record / one.name)
    timings = {one.screenshot.stem: round(one.seconds, 1) for one in seen}
    (record / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")
    return record


def test_the_notebooks_in_a_browser(shared: dict[str, str], tmp_path: Path) -> None:
    """A person's first session: nothing configured, the notebooks opened in order in JupyterLab and run."""
    missing = _missing_tools()
    if missing:
        pytest.fail(missing)
    assert all(_applies(name) for name in STEP_NOTEBOOKS), "a step notebook's parameters cell does not set apply = True"
    with running_lab(tmp_path, shared) as lab:
        seen = _run_in_chromium(lab, tmp_path / "screenshots")
    assert sorted(p.name for p in (tmp_path / "screenshots").iterdir()) == sorted(one.screenshot.name for one in seen)
    # One emulator throughout: the first notebook that needed it started it, every later one found it.
    found = shared_emulator.running(shared)
    assert found is not None, "no shared emulator runs after the notebooks"
    for one in seen[1:]:
        assert any(f"on shared emulator {found.url} (pid {found.pid};" in text for text in one.outputs), one.outputs[:3]
    # The saved notebooks (what the page showed) hold no secret the emulator keeps.
    shown = "".join((lab.folder / one.name).read_text() for one in seen)
    kept = secret_values(found.url)
    assert kept and not [value for value in kept if value in shown]  # the database's password, at least
    # Run in file order on the one emulator, the step notebooks leave nothing to change.
    plan = subprocess.run([sys.executable, "-m", "pointapp", "plan"], env=shared, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-2000:]


def _run_in_chromium(lab: Lab, shots: Path) -> list[Seen]:
    """The start page, each step notebook in file order, the start page again, each checked as it ends; the
    record is kept whatever happens."""
    from playwright.sync_api import sync_playwright

    shots.mkdir()
    seen: list[Seen] = []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        try:
            browser = Browser(chromium.new_page(viewport=VIEWPORT), lab, shots)
            browser.start()
            seen.append(browser.run(START_PAGE, keep_open=True))
            _check_start_page(seen[-1], before=True)
            first, *others = [step for step in STEPS if step.available]
            seen.append(browser.run(first.notebook, from_link=True))  # the checklist's link opens it
            _check_step(seen[-1], first.name)
            browser.close(START_PAGE)
            for step in others:
                seen.append(browser.run(step.notebook))
                _check_step(seen[-1], step.name)
            seen.append(browser.run(START_PAGE, shot=f"{Path(START_PAGE).stem}-after"))
            _check_start_page(seen[-1], before=False)
        finally:
            chromium.close()
            if seen:
                record = _record(shots, lab, seen)
                print(f"browser run record: {record.relative_to(ROOT)}; "
                      + ", ".join(f"{one.name} {one.seconds:.1f} s" for one in seen))
    return seen
