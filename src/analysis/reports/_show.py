"""What a report section shows through: IPython's display, Markdown, HTML and ``plt.show``.

Imported when a section runs, so that the report package does not need IPython to import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def default_display() -> Callable[[Any], Any]:
    """Return IPython's ``display`` (a section's default ``show``)."""
    from IPython.display import display

    return display


def markdown(text: str) -> Any:
    """Return ``text`` as IPython Markdown."""
    from IPython.display import Markdown

    return Markdown(text)


def html(text: str) -> Any:
    """Return ``text`` as IPython HTML."""
    from IPython.display import HTML

    return HTML(text)


def plt_show_default() -> None:
    """Show the current matplotlib figure (``plt.show()``)."""
    import matplotlib.pyplot as plt

    plt.show()
