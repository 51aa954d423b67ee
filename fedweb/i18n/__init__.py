"""Pages in the user's language, including the texts the engine declares in English.

The engine never imports Django, so its components describe themselves in English
(titles and descriptions of parameters, ports and roles). The pages show those texts
through the helpers here, which look them up in the site's catalog; ``engine_text.py``
lists them for ``makemessages`` and is regenerated with ``manage.py engine_strings``.

``translate_schema(schema)`` is what a form built from a component's parameters calls::

    schema = translate_schema(get_component("psi").describe()["parameters"])
    schema["properties"]["reveal"]["title"]           # "结果告知"
    schema["properties"]["reveal"]["x-enum-labels"]   # {"both": "双方", ...}

A text the catalog does not know (a component added since the last ``make messages``)
is shown in English rather than failing.
"""

from __future__ import annotations

from django.utils.translation import gettext, pgettext

from .schema import ENUM_LABELS, walk_component, walk_schema

__all__ = ["ENUM_LABELS", "translate", "translate_schema", "translate_component"]


def translate(context: str | None, text: str) -> str:
    """``text`` in the active language (``context`` as in ``pgettext``, or None)."""
    if not text:
        return text
    return pgettext(context, text) if context else gettext(text)


def translate_schema(schema: dict) -> dict:
    """A copy of a component's parameter JSON Schema with its texts in the active language.

    Every ``title`` and ``description`` is translated. A parameter with an ``enum`` also
    gets ``x-enum-labels``, a dict from each value to its label; the values stay as they
    are because a job spec holds them. The argument is not changed.
    """
    return walk_schema(schema, translate)


def translate_component(description: dict) -> dict:
    """A copy of one ``Registry.describe()`` entry with its texts in the active language.

    Besides the parameters (as :func:`translate_schema`), translates the component's
    description, each role's description (and adds its ``label``: 标签方 for guest,
    特征方 for host) and each port's description (and adds its ``type_label``).
    """
    return walk_component(description, translate)
