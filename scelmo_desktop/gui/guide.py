"""Help → User guide: the bundled ``docs/*.md`` pages in a browser inside the app, offline.

Links between the pages open in the same browser; a link that leaves the docs folder (http, mailto, a file
elsewhere) is not followed, and the browser loads no resource from outside it: nothing goes over the network.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QUrl, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout

from scelmo_desktop.core.workflows.environment import docs_dir

HOME_PAGE = "guide.md"


def heading_anchor(text: str) -> str:
    """The anchor GitHub gives a heading (lower case, punctuation dropped, spaces to hyphens), so that the
    pages' ``page.md#heading`` links land on the same heading here as on the web."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


class GuideBrowser(QTextBrowser):
    """A QTextBrowser that shows the Markdown pages of one folder and refuses everything else."""

    page_changed = Signal(str)  # the file name of the page now shown
    refused = Signal(str)  # a link that was not followed

    def __init__(self, folder: Path, parent=None):
        super().__init__(parent)
        self.folder = Path(folder).resolve()
        self.page: Path | None = None
        self.history: list[Path] = []
        self.setOpenLinks(False)  # every click comes to follow(); Qt never opens a URL by itself
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self.follow)

    # ---- pages ------------------------------------------------------------------------------------------------
    def show_page(self, path: Path, fragment: str = "", *, remember: bool = True) -> None:
        path = Path(path).resolve()
        if remember and self.page is not None and path != self.page:
            self.history.append(self.page)
        self.document().setBaseUrl(QUrl.fromLocalFile(str(path)))
        self.setMarkdown(path.read_text(encoding="utf-8"))
        self.page = path
        if fragment:
            self.scroll_to_heading(fragment)
        self.page_changed.emit(path.name)

    def back(self) -> None:
        if self.history:
            self.show_page(self.history.pop(), remember=False)

    def scroll_to_heading(self, fragment: str) -> None:
        """Scroll so that the heading whose GitHub anchor is ``fragment`` is at the top (Markdown headings carry
        no anchor names of their own here), else to a named anchor."""
        block = self.document().begin()
        while block.isValid():
            if block.blockFormat().headingLevel() > 0 and heading_anchor(block.text()) == fragment:
                top = self.document().documentLayout().blockBoundingRect(block).top()
                self.verticalScrollBar().setValue(int(top))
                return
            block = block.next()
        self.scrollToAnchor(fragment)

    # ---- links ------------------------------------------------------------------------------------------------
    def target(self, url: QUrl | str) -> tuple[Path, str] | None:
        """The docs page (and heading) a link points to, or None when it leads anywhere else."""
        url = QUrl(url) if isinstance(url, str) else url
        if url.scheme() not in ("", "file") or url.host():
            return None
        fragment = url.fragment()
        if url.scheme() == "file":
            path = Path(url.toLocalFile())
        elif not url.path():
            path = self.page
        else:
            path = (self.page.parent if self.page is not None else self.folder) / url.path()
        if path is None:
            return None
        path = path.resolve()
        if path.suffix.lower() != ".md" or not path.is_file() or not path.is_relative_to(self.folder):
            return None
        return path, fragment

    def follow(self, url: QUrl | str) -> bool:
        """Open a link if it is another page of the guide (or a heading of this one); refuse anything else."""
        found = self.target(url)
        if found is None:
            self.refused.emit(QUrl(url).toString() if isinstance(url, str) else url.toString())
            return False
        path, fragment = found
        if path == self.page:
            if fragment:
                self.scroll_to_heading(fragment)
        else:
            self.show_page(path, fragment)
        return True

    def doSetSource(self, name: QUrl, type=None) -> None:  # noqa: A002, N802  (Qt's signature)
        """setSource() from code or Qt goes the same way as a click: docs pages only."""
        self.follow(name)

    def loadResource(self, type, name: QUrl):  # noqa: A002, N802  (Qt's signature)
        """Images and other resources come from the docs folder only; nothing is fetched from elsewhere."""
        url = name if name.scheme() else self.document().baseUrl().resolved(name)
        if url.scheme() != "file":
            return None
        path = Path(url.toLocalFile()).resolve()
        if not path.is_file() or not path.is_relative_to(self.folder):
            return None
        return super().loadResource(type, QUrl.fromLocalFile(str(path)))


class GuideDialog(QDialog):
    """The user guide window: Back, Contents, the page, and a line saying when a link was not followed."""

    def __init__(self, parent=None, folder: Path | None = None):
        super().__init__(parent)
        self.setWindowTitle("scELMo Desktop — User guide")
        self.resize(980, 760)
        self.browser = GuideBrowser(folder if folder is not None else docs_dir(), self)
        self.back_button = QPushButton("Back")
        self.back_button.clicked.connect(self.browser.back)
        self.home_button = QPushButton("Contents")
        self.home_button.clicked.connect(self.home)
        self.page_label = QLabel("")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.back_button)
        row.addWidget(self.home_button)
        row.addWidget(self.page_label, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.browser, 1)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        self.browser.page_changed.connect(self._page_changed)
        self.browser.refused.connect(self._refused)
        self.home()

    def home(self) -> None:
        self.browser.show_page(self.browser.folder / HOME_PAGE)

    def _page_changed(self, name: str) -> None:
        self.page_label.setText(name)
        self.note.setText("")
        self.back_button.setEnabled(bool(self.browser.history))

    def _refused(self, url: str) -> None:
        self.note.setText(f"Not opened: {url} (the guide works offline and follows links between its own pages only).")
