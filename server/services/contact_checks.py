"""The checks a person's input about contacts goes through, with the reason in their words.

A filter, a CSV row and the contact page's form are written by a person reading a pt-BR page,
so a refusal says why in pt-BR, and the page says it in English when asked: a ``Why`` keeps
the text (a msgid of ``server/web/locale/en.po``) apart from the values put in it. The rules
are ``contact_data``'s (a field's type, a tag's name) and ``contacts``' (one phone, one form).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import phonenumbers

from server.schema import CustomField
from server.services import contact_data
from server.services.contacts import normalize_phone

MAX_NAME = 200


@dataclass(frozen=True)
class Why:
    """A reason: pt-BR text with ``{name}`` blanks, and what fills them."""

    text: str
    values: dict[str, str] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        return self.text.format(**self.values)

    def say(self, gettext: Callable[[str], str]) -> str:
        """In the reader's language (``gettext`` is a page's ``_``)."""
        return gettext(self.text).format(**self.values)


class Refused(ValueError):
    """Input refused, each reason by the name of what it refers to (a query parameter, a form
    field, a CSV column), so the reason can stand next to it."""

    def __init__(self, problems: dict[str, Why]) -> None:
        super().__init__("; ".join(f"{k}: {why}" for k, why in problems.items()))
        self.problems = problems


_FIELD_WHY = {
    "number": "não é um número: escreva 1234,56 ou 1.234,56",
    "date": "não é uma data: escreva dd/mm/aaaa (25/12/2024), um dia que o calendário tem",
    "choice": "não é uma das opções: {choices}",
    "text": "tem mais de {n} caracteres",
}


def field_value(custom: CustomField, value: str) -> str | Why:
    """The value as it is stored ("" for none), or why the field's type refuses it."""
    try:
        return contact_data.check_value(custom, value)
    except ValueError:
        if len(value.strip()) > contact_data.MAX_VALUE:
            return Why(_FIELD_WHY["text"], {"n": str(contact_data.MAX_VALUE)})
        return Why(_FIELD_WHY[custom.type], {"choices": ", ".join(custom.choices or [])})


def tag(name: str) -> str | Why:
    """A tag's name as kept, or why it cannot be one."""
    try:
        return contact_data.tag_name(name)
    except ValueError:
        if len(name) > 64:
            return Why("uma etiqueta tem no máximo 64 caracteres")
        return Why("uma etiqueta precisa de uma letra ou um número")


def name(text: str) -> str | Why:
    text = " ".join(text.split())
    if len(text) > MAX_NAME:
        return Why("um nome tem no máximo {n} caracteres", {"n": str(MAX_NAME)})
    return text


def phone(text: str) -> str | Why:
    """A phone as contacts' identities keep it (digits with the country code; a Brazilian
    mobile with its ninth digit), so it finds the customer who writes on WhatsApp; or why not.
    Without a country code the number is read as Brazilian."""
    digits = "".join(c for c in text if c.isdigit())
    if not digits:
        return Why("falta o telefone")
    plus = text.strip().startswith("+") or (digits.startswith("55") and len(digits) >= 12)
    try:
        number = phonenumbers.parse(("+" if plus else "") + digits, "BR")
    except phonenumbers.NumberParseException:
        return Why("{phone} não é um telefone", {"phone": text.strip()})
    canonical = normalize_phone(phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.E164))
    if not phonenumbers.is_valid_number(phonenumbers.parse("+" + canonical)):
        return Why("{phone} não é um telefone válido: escreva com DDD, como (11) 98765-4321",
                   {"phone": text.strip()})
    return canonical


def shown(digits: str | None) -> str:
    """A kept phone as people read it ("+55 11 98765-4321"); as kept when it is not one."""
    if not digits or not digits.isdigit():
        return digits or ""
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
