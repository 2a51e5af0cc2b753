"""Contacts in and out as CSV, the way a company keeps them in a spreadsheet.

Import: a header row names the columns (``nome``, ``telefone``, ``etiquetas`` and custom field
keys; ``name``, ``phone``, ``tags`` also read); the export's own extra columns are skipped, so
an export imports back. A phone is read as contacts' identities keep it (``contact_checks``:
country code, a Brazilian mobile's ninth digit), so a row finds the customer who writes on
WhatsApp, and importing a file twice changes nothing the second time. Every row is checked
whole before anything is written: a refused row is reported (its line, why) and leaves no trace,
and the accepted ones are applied together in one transaction. An unknown column refuses the
file, so a misspelled field key never drops a column silently. Tags are added, never removed;
an empty cell leaves a field as it is.

Export: the filtered list, streamed a page at a time, in the import's columns; ``;`` between
cells and a BOM, as Excel in Portuguese expects, and a cell that a spreadsheet would run as a
formula starts with ``'``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.schema import Contact, ContactField, ContactIdentity, CustomField
from server.services import access, contact_checks, contact_data, contact_search
from server.services.access import Principal
from server.services.contact_card import check_fields
from server.services.contact_checks import Refused, Why
from server.services.contact_search import ContactFilter

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 10_000
NAME, PHONE, TAGS = "nome", "telefone", "etiquetas"
ALIASES = {"name": NAME, "phone": PHONE, "tags": TAGS, "celular": PHONE, "whatsapp": PHONE}
SKIPPED = {"id", "ultima_mensagem"}  # the export's, not the contact's data
_SPLIT = re.compile(r"[,;|]")
OTHER_TEAM = Why("o telefone é de um cliente de outra equipe")  # one ``who`` may not see
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class Rejected:
    line: int  # as a spreadsheet numbers it: the header is line 1
    why: Why
    column: str = ""  # the column at fault, when one is


@dataclass
class Report:
    created: int = 0
    updated: int = 0  # rows that found a contact already there (by its phone)
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    line: int
    phone: str
    name: str
    tags: list[str]
    fields: dict[str, str]


def import_csv(sessions: sessionmaker[Session], who: Principal, data: bytes) -> Report:
    """Read ``data`` and apply its accepted rows; the report says what was made, found and
    refused. A file that cannot be read at all is ``Refused`` (by ``file``). A row whose phone
    is a contact ``who`` may not see (another team's customer) is refused, not applied: an
    import is no way around the teams."""
    if len(data) > MAX_BYTES:
        raise _file("o arquivo passa de {n} MB", n=str(MAX_BYTES // 1024 // 1024))
    reader = csv.reader(io.StringIO(_decode(data)), _dialect(data))
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise _file("o arquivo está vazio: a primeira linha nomeia as colunas")
    report = Report()
    with sessions() as s:
        columns = _columns(s, header)
        rows: list[_Row] = []
        seen: dict[str, int] = {}
        line = 1
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(rows) + len(report.rejected) >= MAX_ROWS:
                raise _file("o arquivo passa de {n} linhas: divida-o", n=str(MAX_ROWS))
            row = _row(s, who, columns, cells, start)
            if isinstance(row, Rejected):
                report.rejected.append(row)
            elif row.phone in seen:
                report.rejected.append(Rejected(start, Why(
                    "o telefone já veio na linha {line}", {"line": str(seen[row.phone])}), PHONE))
            else:
                seen[row.phone] = start
                rows.append(row)
    with sessions.begin() as s:
        for row in rows:
            made = _apply(s, who, row)
            if made is None:  # a customer of another team wrote with this phone meanwhile
                report.rejected.append(Rejected(row.line, OTHER_TEAM, PHONE))
            elif made:
                report.created += 1
            else:
                report.updated += 1
    return report


def _file(text: str, **values: str) -> Refused:
    return Refused({"file": Why(text, values)})


def _decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM), else Windows-1252: what Excel saves in Brazil."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _dialect(data: bytes) -> type[csv.Dialect]:
    first = data.split(b"\n", 1)[0]
    delimiter = max((b";", b",", b"\t"), key=first.count).decode()

    class Sheet(csv.excel):
        pass

    Sheet.delimiter = delimiter
    return Sheet


def _columns(s: Session, header: list[str]) -> list[str | None]:
    """Each column's meaning (None: skipped); an unknown or repeated one refuses the file."""
    keys = contact_data.field_keys(s)
    out: list[str | None] = []
    for raw in header:
        name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name in SKIPPED:
            out.append(None)
            continue
        key = next((k for k in keys if k.lower() == name), None)
        if name not in (NAME, PHONE, TAGS) and key is None:
            raise _file("coluna desconhecida: {col}. As colunas são nome, telefone, etiquetas "
                        "e as chaves dos campos ({keys})", col=raw.strip(),
                        keys=", ".join(sorted(keys)) or "-")
        if (key or name) in out:
            raise _file("a coluna {col} aparece duas vezes", col=raw.strip())
        out.append(key or name)
    if PHONE not in out:
        raise _file("falta a coluna telefone: é por ele que um contato é encontrado")
    return out


def _row(s: Session, who: Principal, columns: list[str | None], cells: list[str],
         line: int) -> _Row | Rejected:
    if len(cells) != len(columns):
        return Rejected(line, Why("a linha tem {n} colunas e o cabeçalho {m}",
                                  {"n": str(len(cells)), "m": str(len(columns))}))
    by = {c: v.strip() for c, v in zip(columns, cells, strict=True) if c is not None}
    phone = contact_checks.phone(by.pop(PHONE))
    if isinstance(phone, Why):
        return Rejected(line, phone, PHONE)
    owner = _owner(s, phone)
    if owner is not None and not access.sees_contact(s, who, owner):
        return Rejected(line, OTHER_TEAM, PHONE)
    name = contact_checks.name(by.pop(NAME, ""))
    if isinstance(name, Why):
        return Rejected(line, name, NAME)
    tags = []
    for raw in _SPLIT.split(by.pop(TAGS, "")):
        if raw.strip():
            tag = contact_checks.tag(raw)
            if isinstance(tag, Why):
                return Rejected(line, tag, TAGS)
            tags.append(tag)
    problems: dict[str, Why] = {}
    values = check_fields(s, {k: v for k, v in by.items() if v}, problems)
    if problems:
        key, why = next(iter(problems.items()))
        return Rejected(line, why, key)
    return _Row(line, phone, name, tags, values)


def _apply(s: Session, who: Principal, row: _Row) -> bool | None:
    """Store one checked row; True if it made a new contact, None (nothing written) if its
    phone is, by now, a contact ``who`` may not see: checked again here, on the contact
    written, as a customer may have written between the check and this transaction."""
    owner = _owner(s, row.phone)
    made = owner is None
    if owner is None:
        contact = Contact(name=row.name or None, phone=row.phone)
        s.add(contact)
        s.flush()
        if contact_data.insert_new(s, ContactIdentity, {
                "contact_id": contact.id, "kind": "phone", "value": row.phone},
                ["kind", "value"]):
            owner = contact.id
        else:  # a customer with this phone wrote meanwhile: theirs
            s.delete(contact)
            owner, made = _owner(s, row.phone), False
    assert owner is not None
    if not made and not access.sees_contact(s, who, owner):
        return None
    found = s.get(Contact, owner)
    if found is not None and row.name and found.name != row.name:
        found.name = row.name
    if found is not None and not found.phone:
        found.phone = row.phone
    for tag in row.tags:
        contact_data.set_tag(s, owner, tag)
    if row.fields:
        contact_data.set_fields(s, owner, row.fields)
    return made


def _owner(s: Session, phone: str) -> int | None:
    return s.scalar(select(ContactIdentity.contact_id).where(
        ContactIdentity.kind == "phone", ContactIdentity.value == phone))


def export_csv(sessions: sessionmaker[Session], who: Principal,
               f: ContactFilter) -> Iterator[str]:
    """The filtered list as CSV text, a page at a time (the caller streams it)."""
    with sessions() as s:
        keys = [c.key for c in s.scalars(select(CustomField).order_by(CustomField.key))]
        ids = {c.key: c.id for c in s.scalars(select(CustomField))}
        yield "\ufeff" + _line([NAME, PHONE, TAGS, *keys, "ultima_mensagem", "id"])
        for rows in contact_search.pages(s, who, f):
            values = _values(s, [r.id for r in rows])
            for r in rows:
                mine = values.get(r.id, {})
                yield _line([r.name or "", r.phone or "", ", ".join(r.tags),
                             *(mine.get(ids[k], "") for k in keys),
                             r.last_inbound_at.date().isoformat() if r.last_inbound_at else "",
                             str(r.id)])


def _values(s: Session, ids: list[int]) -> dict[int, dict[int, str]]:
    out: dict[int, dict[int, str]] = {}
    for contact_id, field_id, value in s.execute(
            select(ContactField.contact_id, ContactField.field_id, ContactField.value)
            .where(ContactField.contact_id.in_(ids))).tuples():
        out.setdefault(contact_id, {})[field_id] = value
    return out


def _line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerow(
        [f"'{c}" if c[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMBER.match(c) else c
         for c in cells])
    return out.getvalue()
