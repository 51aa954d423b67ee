"""The words of every problem a dataset can fail with, in one place.

A problem is kept as its code and the parameters of its message (line, column,
counts, delimiter, encoding...) and worded only when it is shown. Validation runs in
a worker whose language is the site's default, so wording it there would show a
Chinese user English; ``describe`` words it in the language of the request instead.

``english`` gives the same words in English without Django: ``CsvError`` uses it for
its ``message`` (kept on the dataset for logs and for API clients that read only
that), and the rest of this package never imports Django. ``describe`` imports
Django's translation functions only when it is called.

Every writer below receives ``gettext`` and ``ngettext`` as arguments, so one text
serves both languages, and ``makemessages`` still finds each msgid because it reads
calls by their name.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import show_name, show_value

Gettext = Callable[[str], str]
Ngettext = Callable[[str, str, int], str]


def _same(text: str) -> str:
    return text


def _english_plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def _sentences(*parts: str) -> str:
    """Sentences of one message, in order, leaving out empty ones.

    English separates sentences with a space; Chinese does not (its full stop and
    closing bracket are wide characters). Deciding by the last character keeps the
    rule out of the translations.
    """
    out = ""
    for part in parts:
        if not part:
            continue
        if out and out[-1] < "\u2e80":
            out += " "
        out += part
    return out


def delimiter_name(delimiter: str, gettext: Gettext = _same) -> str:
    names = {
        ",": gettext("comma (,)"),
        ";": gettext("semicolon (;)"),
        "\t": gettext("tab"),
        "|": gettext("vertical bar (|)"),
    }
    return names.get(delimiter, f"“{delimiter}”")


def _encoding_hint(gettext: Gettext) -> str:
    return gettext(
        "Choose the encoding the file was saved in (for example UTF-8, GBK/GB18030 for Chinese Excel or WPS "
        "exports, Big5, Latin-1 or UTF-16) and try again."
    )


def _where(p: dict, gettext: Gettext) -> str:
    """ "Line 3, column “x”", "Line 3, column 2", "Line 3" or "Column “x”"."""
    line, column, index = p.get("line"), p.get("column"), p.get("index")
    if line:
        if column is not None:
            return gettext("Line %(line)s, column %(column)s") % {"line": line, "column": show_name(column)}
        if index is not None:
            return gettext("Line %(line)s, column %(index)s") % {"line": line, "index": index}
        return gettext("Line %(line)s") % {"line": line}
    return gettext("Column %(column)s") % {"column": show_name(column)}


# --- One writer per code ---------------------------------------------------------------


def _empty_file(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    if p.get("blank"):
        return gettext("The file is empty: it contains only blank space.")
    return gettext("The file is empty: it contains no header and no data.")


def _not_csv(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    what = {
        "xlsx": gettext("an Excel workbook (.xlsx) or another ZIP archive"),
        "xls": gettext("an old Excel workbook (.xls) or another Office file"),
        "pdf": gettext("a PDF document"),
        "parquet": gettext("a Parquet file"),
    }[p["kind"]]
    return gettext(
        "This file is %(what)s, not a CSV text file. Open it in Excel or WPS and save it as "
        "“CSV UTF-8 (comma delimited)”, then upload the CSV file."
    ) % {"what": what}


def _unknown_encoding(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return gettext(
        "The encoding “%(encoding)s” is not known. Choose an encoding such as UTF-8, GBK, GB18030, "
        "Big5, Latin-1 or UTF-16."
    ) % {"encoding": p["encoding"]}


def _encoding_not_detected(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return _sentences(
        gettext(
            "The file's encoding could not be recognised: it is not UTF-8 (line %(line)s has bytes that are "
            "not UTF-8) and it does not look like Chinese GBK/GB18030 text either."
        )
        % {"line": p["line"]},
        _encoding_hint(gettext),
    )


def _bad_encoding(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return _sentences(
        gettext("Line %(line)s contains bytes that are not valid %(encoding)s text.")
        % {"line": p["line"], "encoding": p["encoding"]},
        _encoding_hint(gettext),
    )


def _bad_delimiter(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return gettext(
        "The delimiter must be a single character such as a comma (,), semicolon (;), tab or vertical bar (|)."
    )


def _nul_byte(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return gettext(
        "Line %(line)s contains a NUL character (a zero byte), which never appears in CSV text. The file may "
        "be a spreadsheet or a UTF-16 text file: save it as “CSV UTF-8”, or choose UTF-16 as the encoding if "
        "it is UTF-16."
    ) % {"line": p["line"]}


def _no_rows(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return gettext("The file has a header (line %(line)s) but no data rows below it.") % {"line": p["line"]}


def _empty_column_name(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    hint = ""
    if p.get("trailing"):
        hint = gettext("The header line probably ends with an extra %(delimiter)s.") % {
            "delimiter": delimiter_name(p["delimiter"], gettext)
        }
    return _sentences(
        gettext("Column %(index)s has no name in the header (line %(line)s). Every column needs a name.")
        % {"index": p["index"], "line": p["line"]},
        hint,
    )


def _duplicate_column_name(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return gettext(
        "The column name %(column)s appears twice in the header (line %(line)s, columns %(first)s and "
        "%(second)s). Column names must be unique: rename one of them."
    ) % {"column": show_name(p["column"]), "line": p["line"], "first": p["first"], "second": p["second"]}


def _ragged_row(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    found, ncols = p["values"], p["columns"]
    words = {
        "line": p["line"],
        "end": p.get("end") or p["line"],
        "values": ngettext("%(count)s value", "%(count)s values", found) % {"count": found},
        "columns": ngettext("%(count)s column", "%(count)s columns", ncols) % {"count": ncols},
    }
    if words["end"] > words["line"]:
        main = gettext(
            "Line %(line)s has %(values)s but the header has %(columns)s (this row runs from line %(line)s to "
            "line %(end)s, because a quoted value in it spans several lines)."
        )
    else:
        main = gettext("Line %(line)s has %(values)s but the header has %(columns)s.")
    delimiter = {"delimiter": delimiter_name(p["delimiter"], gettext)}
    hint = ""
    if found == 1 and p.get("blank"):
        hint = gettext("The line contains only spaces.")
    elif found > ncols:
        hint = gettext('A value may contain an unquoted %(delimiter)s: put such values in quotes ("...").') % delimiter
    elif ncols > 1:
        hint = gettext("Check that the values are separated by the %(delimiter)s.") % delimiter
    return _sentences(main % words, hint)


def _unbalanced_quote(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return gettext(
        'Line %(line)s: a quoted value starts here but its closing quote (") is never found. '
        'Close the quote, or write a quote that is part of a value as two quotes ("").'
    ) % {"line": p["line"]}


def _bad_quote(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    if "detail" in p:
        # The csv module's own words, for a case strict parsing should never reach.
        return gettext('Line %(line)s: the row could not be read (%(detail)s). Check the quotes (") on this line.') % {
            "line": p["line"],
            "detail": p["detail"],
        }
    return gettext(
        "%(where)s: a quoted value has other characters after its closing quote. Inside a quoted value, "
        'write a quote as two quotes (""), or remove the quotes around the value.'
    ) % {"where": _where(p, gettext)}


def _value_too_long(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    words = {"line": p["line"], "limit": f"{p['limit']:,}"}
    if "length" not in p:
        # Kept by an older version, which did not find the value itself.
        return gettext(
            "Line %(line)s: a value in the row starting here is longer than %(limit)s characters, the most "
            "a cell may hold."
        ) % words
    words.update(where=_where(p, gettext), length=f"{p['length']:,}", end=p.get("end") or p["line"])
    if p.get("quoted") and words["end"] > p["line"]:
        return gettext(
            '%(where)s: a quoted value starts here and its closing quote (") comes only on line %(end)s, so '
            "the value is %(length)s characters long, more than the %(limit)s characters a cell may hold. If "
            'this quote is a mistake, remove it, or write a quote that is part of a value as two quotes ("").'
        ) % words
    return gettext(
        "%(where)s: the value is %(length)s characters long, more than the %(limit)s characters a cell may "
        "hold. Shorten the value, or remove this column from the file before uploading it."
    ) % words


def _too_many_rows(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return gettext(
        "The file has more than %(limit)s data rows, the most a dataset may have (the first extra row is on "
        "line %(line)s). Split the file or remove rows, then upload it again."
    ) % {"limit": f"{p['limit']:,}", "line": p["line"]}


def _empty_id(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return gettext(
        "Line %(line)s: the id column %(column)s is empty. Every row needs an id, because ids are how rows "
        "are matched with the other parties' data. Fill in the id or remove the row."
    ) % {"line": p["line"], "column": show_name(p["column"])}


def _not_a_number(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    words = {"where": _where({"line": p.get("line"), "column": p["column"]}, gettext), "value": show_value(p["value"])}
    if p.get("too_large"):
        first = gettext(
            "%(where)s: %(value)s is not a number (it is too large), but the column is set to numeric."
        )
    else:
        first = gettext("%(where)s: %(value)s is not a number, but the column is set to numeric.")
    if p.get("version"):
        # A new version keeps its columns' types: making the column categorical is no way out.
        hint = gettext("In version %(version)s this column holds numbers, and a new version keeps the types of its "
                       "columns: fix the value.") % {"version": p["version"]}
    else:
        hint = gettext("Fix the value, or make the column categorical.")
    return _sentences(
        first % words,
        hint,
        gettext(
            "(Numbers are written like 12, -3.5 or 1e6; empty, NA, N/A, null, NaN and - count as missing.)"
        ),
    )


def _listed(names: list[str], count: int) -> str:
    """“a”, “b”, “c” (and “…” when there are more than listed)."""
    text = ", ".join(show_name(n) for n in names)
    return text + (", …" if count > len(names) else "")


def _version_columns(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    version = {"version": p["version"]}
    parts = [
        gettext("This file's columns are not those of version %(version)s, and a new version must have the same columns.")
        % version
    ]
    if p.get("id_missing"):
        parts.append(gettext("The id column %(column)s is missing.") % {"column": show_name(p["id_missing"])})
    if p.get("label_missing"):
        parts.append(gettext("The label column %(column)s is missing.") % {"column": show_name(p["label_missing"])})
    if p.get("missing_count"):
        n = p["missing_count"]
        parts.append(
            ngettext("%(count)s other column is missing: %(columns)s.", "%(count)s other columns are missing: %(columns)s.", n)
            % {"count": n, "columns": _listed(p["missing"], n)}
        )
    if p.get("extra_count"):
        n = p["extra_count"]
        parts.append(
            ngettext(
                "%(count)s column is not in version %(version)s: %(columns)s.",
                "%(count)s columns are not in version %(version)s: %(columns)s.",
                n,
            )
            % {"count": n, "columns": _listed(p["extra"], n), **version}
        )
    parts.append(gettext("Rename or remove columns so that they match, or upload the file as a new dataset."))
    return _sentences(*parts)


def _unknown_column(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    text = {
        "id": gettext("The id column %(column)s is not a column of this file."),
        "label": gettext("The label column %(column)s is not a column of this file."),
        "feature": gettext("The feature column %(column)s is not a column of this file."),
    }[p["role"]]
    return text % {"column": show_name(p["column"])}


def _column_role_conflict(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    text = {
        "id_label": gettext("The column %(column)s cannot be both the id and the label."),
        "id_feature": gettext("The column %(column)s is the id column, so it cannot also be a feature."),
        "label_feature": gettext("The column %(column)s is the label column, so it cannot also be a feature."),
    }[p["conflict"]]
    return text % {"column": show_name(p["column"])}


def _bad_column_type(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return gettext("The feature %(column)s must be “numeric” or “categorical”, not %(type)s.") % {
        "column": show_name(p["column"]),
        "type": show_value(p["type"]),
    }


def _no_columns(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return gettext("Choose at least one column to use: the id, the label or a feature.")


def _not_a_dataset(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    return gettext("This file is not a text Parquet file written by the CSV import.")


def _export_encoding(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    if "character" in p:
        return gettext(
            "The character “%(character)s” cannot be written in the encoding %(encoding)s. Export as UTF-8 instead."
        ) % {"character": p["character"], "encoding": p["encoding"]}
    return gettext("The encoding “%(encoding)s” is not known.") % {"encoding": p["encoding"]}


def _internal_error(p: dict, gettext: Gettext, ngettext: Ngettext) -> str:
    # Not a CsvError: what a dataset shows when its check crashed.
    return gettext(
        "Something went wrong while checking this file. Nothing was lost: the file is kept, "
        "and an administrator can find the details in the worker log."
    )


_WRITERS: dict[str, Callable[[dict, Gettext, Ngettext], str]] = {
    "empty_file": _empty_file,
    "not_csv": _not_csv,
    "unknown_encoding": _unknown_encoding,
    "encoding_not_detected": _encoding_not_detected,
    "bad_encoding": _bad_encoding,
    "bad_delimiter": _bad_delimiter,
    "nul_byte": _nul_byte,
    "no_rows": _no_rows,
    "empty_column_name": _empty_column_name,
    "duplicate_column_name": _duplicate_column_name,
    "ragged_row": _ragged_row,
    "unbalanced_quote": _unbalanced_quote,
    "bad_quote": _bad_quote,
    "value_too_long": _value_too_long,
    "too_many_rows": _too_many_rows,
    "empty_id": _empty_id,
    "not_a_number": _not_a_number,
    "unknown_column": _unknown_column,
    "column_role_conflict": _column_role_conflict,
    "bad_column_type": _bad_column_type,
    "no_columns": _no_columns,
    "not_a_dataset": _not_a_dataset,
    "export_encoding": _export_encoding,
    "internal_error": _internal_error,
    "version_columns": _version_columns,
}


def _render(code: str, params: dict | None, gettext: Gettext, ngettext: Ngettext) -> str | None:
    writer = _WRITERS.get(code)
    if writer is None or not isinstance(params, dict):
        return None
    try:
        return writer(params, gettext, ngettext)
    except (KeyError, TypeError, ValueError):
        # Parameters written by another version of this module: the caller's stored text is better.
        return None


def english(code: str, params: dict | None = None) -> str:
    """The message in English, without Django (what ``CsvError.message`` holds)."""
    text = _render(code, params if params is not None else {}, _same, _english_plural)
    if text is None:
        raise ValueError(f"no message for {code!r} with {params!r}")
    return text


def describe(code: str, params: dict | None, fallback: str = "") -> str:
    """The message in the active language; ``fallback`` (the stored English) when it
    cannot be worded: an unknown code, or a dataset that failed before parameters were
    kept (``params`` None)."""
    if params is None:
        return fallback
    from django.utils.translation import gettext, ngettext

    return _render(code, params, gettext, ngettext) or fallback
