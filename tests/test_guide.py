"""The README a newcomer reads first (the two commands on top, short, every link landing on a file), the docs/
pages it points to, and Help → User guide: the same pages in a browser inside the app, offline (links between the
pages open there; a web link is not followed)."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)  # not inside code blocks
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def heading_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the page's headings (the app's guide scrolls to the same ones)."""
    from scelmo_desktop.gui.guide import heading_anchor

    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {heading_anchor(h.replace("`", "")) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def test_readme_opens_with_the_two_commands_and_stays_short():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# scELMo Desktop" and lines[1] == "" and lines[2] == "```bash"  # the title, then the block
    block = lines[2:6]
    assert block[1].startswith("bash packaging/setup.sh && .venv/bin/scelmo demo")
    assert block[2].startswith("bash packaging/setup.sh && ") and "-m pytest" in block[2]
    assert block[3] == "```"
    assert len(text.encode("utf-8")) < 12_000


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_relative_link_lands_on_a_file(page):
    links = relative_links(page)
    if page == README:
        assert any(link.startswith("docs/") and link.endswith(".md") for link in links)
        assert "docs/images/app.png" in links
    targets = {link: (page.parent / link.split("#")[0] if link.split("#")[0] else page) for link in links}
    missing = [link for link, target in targets.items() if not target.is_file()]
    assert missing == [], f"{page.name} links to files that do not exist: {missing}"
    no_heading = [
        link for link, target in targets.items() if "#" in link and link.split("#")[1] not in heading_anchors(target)
    ]
    assert no_heading == [], f"{page.name} links to headings that do not exist: {no_heading}"


def test_the_screenshot_is_a_real_picture_of_the_app():
    from PIL import Image

    shot = DOCS / "images" / "app.png"
    assert shot.stat().st_size < 300_000
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.width >= 1000 and image.height >= 600
        assert len(image.convert("RGB").resize((64, 40)).getcolors(64 * 40)) > 50  # not a blank window


def test_the_wheel_carries_every_docs_page():
    """The installed app finds the guide in <prefix>/share/scelmo-desktop/docs: every page and picture goes there."""
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    listed = {
        f for target, files in data_files.items() if target.startswith("share/scelmo-desktop/docs") for f in files
    }
    on_disk = {p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*") if p.is_file()}
    assert listed == on_disk
    for target, files in data_files.items():
        if target.startswith("share/scelmo-desktop/docs"):
            assert all(
                Path(f).parent.as_posix() == "docs" + target.removeprefix("share/scelmo-desktop/docs") for f in files
            )


def test_docs_dir_is_the_checkout_docs():
    from scelmo_desktop.core.workflows.environment import docs_dir

    assert docs_dir() == DOCS and (docs_dir() / "guide.md").is_file()


# ---- Help → User guide ---------------------------------------------------------------------------------------------
def _link_position(browser, href: str):
    """Where the link to ``href`` is drawn in the browser's viewport."""
    from PySide6.QtGui import QTextCursor

    block = browser.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().anchorHref() == href:
                cursor = QTextCursor(browser.document())
                cursor.setPosition(fragment.position() + fragment.length() // 2)
                browser.setTextCursor(cursor)
                browser.ensureCursorVisible()
                return browser.cursorRect(cursor).center()
            it += 1
        block = block.next()
    raise AssertionError(f"no link to {href} on the page")


@pytest.fixture
def web_opened():
    """Anything Qt would hand to the system browser (http/https/mailto) is recorded here instead."""
    from PySide6.QtCore import QObject, Slot
    from PySide6.QtGui import QDesktopServices

    class Recorder(QObject):
        def __init__(self):
            super().__init__()
            self.urls = []

        @Slot("QUrl")
        def open(self, url):
            self.urls.append(url.toString())

    recorder = Recorder()
    for scheme in ("http", "https", "mailto"):
        QDesktopServices.setUrlHandler(scheme, recorder, "open")
    yield recorder.urls
    for scheme in ("http", "https", "mailto"):
        QDesktopServices.unsetUrlHandler(scheme)


def test_help_user_guide_shows_the_docs_offline(qtbot, window, web_opened):
    from PySide6.QtCore import Qt, QUrl
    from PySide6.QtGui import QKeySequence

    from scelmo_desktop.gui.guide import GuideDialog

    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    assert window.guide_action in help_menu.actions()
    assert window.guide_action.shortcut() == QKeySequence("F1")
    window.guide_action.trigger()
    dialog = window.guide
    assert isinstance(dialog, GuideDialog)
    qtbot.waitUntil(dialog.isVisible)
    browser = dialog.browser
    title = (DOCS / "guide.md").read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
    assert browser.page == DOCS / "guide.md" and title in browser.toPlainText()
    assert "Cell Ranger output, several samples, and quality control" in browser.toPlainText()

    # a click on a link to another page opens it in the same browser
    with qtbot.waitSignal(browser.page_changed):
        qtbot.mouseClick(browser.viewport(), Qt.LeftButton, pos=_link_position(browser, "method.md"))
    assert browser.page == DOCS / "method.md"
    assert "The scELMo method, as implemented" in browser.toPlainText()

    # setting a relative link from code goes the same way; a heading anchor is kept
    browser.setSource(QUrl("benchmarks.md#first-result-time-to-the-first-umap"))
    assert browser.page == DOCS / "benchmarks.md" and "First result: time to the first UMAP" in browser.toPlainText()
    browser.back()
    assert browser.page == DOCS / "method.md"

    # web links and files outside docs/ are not followed, whether clicked or set
    shown = browser.toPlainText()
    browser.anchorClicked.emit(QUrl("https://example.org/scelmo.md"))
    browser.setSource(QUrl("http://example.org/guide.md"))
    browser.setSource(QUrl("../README.md"))
    assert browser.page == DOCS / "method.md" and browser.toPlainText() == shown
    assert "Not opened" in dialog.note.text()
    assert browser.loadResource(0, QUrl("https://example.org/logo.png")) is None

    dialog.home()
    assert browser.page == DOCS / "guide.md" and browser.verticalScrollBar().value() == 0
    qtbot.mouseClick(browser.viewport(), Qt.LeftButton, pos=_link_position(browser, "#troubleshooting"))
    assert browser.page == DOCS / "guide.md" and browser.verticalScrollBar().value() > 0  # the contents lead down
    window.guide_action.trigger()  # the same window again, not a second one
    assert window.guide is dialog
    assert web_opened == []
