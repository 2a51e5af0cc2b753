"""A customer's answer to a question, checked and normalized by kind.

The checks are the well-kept libraries' (``validate-docbr`` for CPF and CNPJ check digits,
``phonenumbers`` for Brazilian numbers, ``email-validator`` for addresses), not regexes of our
own: "111.111.111-11" has the shape of a CPF and is not one. Each check returns the value as it
is stored (a CPF as its 11 digits, a phone in E.164) or None when the answer is not valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

import phonenumbers
import regex
from email_validator import EmailNotValidError, validate_email
from validate_docbr import CNPJ, CPF

REGEX_SECONDS = 0.05  # a flow's pattern gets this long on one answer (see _matching)
_CPF = CPF()
_CNPJ = CNPJ()
_DIGITS = re.compile(r"\D+")
_NUMBER = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$|^[+-]?\d+(\.\d+)?$")


def _text(answer: str) -> str | None:
    return answer or None


def _email(answer: str) -> str | None:
    try:
        # No DNS look-up: the step is pure, and a typo'd domain is for a person to notice.
        return validate_email(answer, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def _cpf(answer: str) -> str | None:
    digits = _DIGITS.sub("", answer)
    if len(digits) != 11 or re.search(r"[^\d.\-\s]", answer):
        return None
    return digits if _CPF.validate(digits) else None


def _cnpj(answer: str) -> str | None:
    digits = _DIGITS.sub("", answer)
    if len(digits) != 14 or re.search(r"[^\d./\-\s]", answer):
        return None
    return digits if _CNPJ.validate(digits) else None


def _phone_br(answer: str) -> str | None:
    try:
        number = phonenumbers.parse(answer, "BR")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 55 or not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _date(answer: str) -> str | None:
    """dd/mm/aaaa, a real day (31/02 is not); stored zero-padded."""
    if not re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", answer):
        return None
    try:
        return datetime.strptime(answer, "%d/%m/%Y").strftime("%d/%m/%Y")
    except ValueError:
        return None


def parse_number(text: str) -> Decimal | None:
    """A number as Brazilians write it ("1.234,56", "12,5") or plainly ("12.5"), or None."""
    text = text.strip().replace(" ", "")
    if not _NUMBER.match(text):
        return None
    if "," in text or re.fullmatch(r"[+-]?\d{1,3}(\.\d{3})+", text):  # "12.500" is 12500
        text = text.replace(".", "").replace(",", ".")
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _number(answer: str) -> str | None:
    value = parse_number(answer)
    return None if value is None else format(value.normalize(), "f")


CHECKS: dict[str, Callable[[str], str | None]] = {
    "text": _text, "email": _email, "cpf": _cpf, "cnpj": _cnpj, "phone_br": _phone_br,
    "date": _date, "number": _number,
}
KINDS = frozenset(CHECKS) | {"regex"}

# Said when an answer is refused, unless the question sets its own ``error_text``.
ERROR_TEXTS = {
    "text": "Não recebi uma resposta em texto. Pode escrever de novo?",
    "email": "Esse e-mail não parece válido. Pode conferir e enviar de novo?",
    "cpf": "Esse CPF não é válido. Pode conferir os 11 números e enviar de novo?",
    "cnpj": "Esse CNPJ não é válido. Pode conferir os 14 números e enviar de novo?",
    "phone_br": "Esse telefone não parece válido. Envie com DDD, por exemplo (11) 98765-4321.",
    "date": "Não entendi a data. Envie no formato dd/mm/aaaa, por exemplo 25/12/2024.",
    "number": "Não entendi o número. Pode enviar só os algarismos?",
    "regex": "Essa resposta não está no formato esperado. Pode conferir e enviar de novo?",
}


def check(kind: str, answer: str, pattern: regex.Pattern[str] | None = None) -> str | None:
    """The answer as stored, or None when it is not a valid answer of this kind."""
    answer = answer.strip()
    if kind == "regex":
        if pattern is None:
            raise ValueError("a regex question needs its pattern")
        try:
            return _matching(pattern, answer)
        except TimeoutError:  # a pattern that backtracks without end on this answer: refused
            return None
    return CHECKS[kind](answer)


def _matching(pattern: regex.Pattern[str], answer: str) -> str | None:
    # Whoever edits a flow writes the pattern and any customer writes the answer: "(a|aa)+$"
    # against forty a's would hold the server for minutes. ``regex`` takes a time limit.
    if pattern.fullmatch(answer, timeout=REGEX_SECONDS):
        return answer
    # "meu pedido é AU20250417": customers wrap the value in a sentence; the first part
    # that matches, standing as whole words, is the answer.
    for found in pattern.finditer(answer, timeout=REGEX_SECONDS):
        start, end = found.span()
        if (end > start and (start == 0 or not answer[start - 1].isalnum())
                and (end == len(answer) or not answer[end].isalnum())):
            return str(found.group(0))
    return None
