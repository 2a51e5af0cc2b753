"""Portuguese text to sparse term vectors for the lexical half of hybrid retrieval.

Tokens are lower-cased, stemmed (Snowball, Portuguese) and accent-folded, stop words dropped,
and hashed to sparse indices. Passages carry BM25 term-frequency weights; Qdrant's ``IDF``
modifier on the sparse vector supplies the inverse document frequency, so no second index.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

K1 = 1.2
B = 0.75
AVG_TOKENS = 80.0  # typical passage length after stop words; fixed so weights never go stale

_WORD = re.compile(r"\w+", re.UNICODE)
_STEMMER = snowballstemmer.stemmer("portuguese")

# Informal WhatsApp spellings, expanded on the query side only (documents are written formally).
ABBREVIATIONS = {
    "vc": "você", "vcs": "vocês", "qto": "quanto", "qtos": "quantos", "qnt": "quanto",
    "qnts": "quantos", "qdo": "quando", "qd": "quando", "pq": "porque", "tb": "também",
    "tbm": "também", "hj": "hoje", "msm": "mesmo", "td": "tudo", "p": "para", "pra": "para",
    "pro": "para", "q": "que", "n": "não", "nao": "não", "obg": "obrigado", "sp": "são paulo",
    "rj": "rio de janeiro", "cep": "cep", "vlw": "valeu", "dps": "depois", "agr": "agora",
}

STOP_WORDS = frozenset(
    """a à ao aos as às até com como da das de dela dele deles do dos e é ela elas ele eles em
    entre era essa esse esta está estão este eu foi for há isso isto já la lhe lhes mais mas me
    mesmo meu minha muito na nas nem no nos nós nossa nosso num numa o os ou para pela pelas
    pelo pelos por qual quando que quem se sem ser seu seus só sua suas também te tem têm ter
    teu tua um uma umas uns você vocês vos sou são foram será seria tá ta to tô então aí lá aqui
    oi olá bom boa dia tarde noite gostaria queria saber por favor obrigado obrigada tudo
    bem beleza blz ok valeu""".split()
)


def fold(text: str) -> str:
    """Lower-case and strip accents (ç -> c, ã -> a), keeping everything else."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_FOLDED_STOPS = frozenset(fold(w) for w in STOP_WORDS)


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    """Stem of the accent-folded word, so "devolução" and "devolucao" meet.

    Folding first loses Snowball's -ões plural rule; it is put back by hand (ões -> ão).
    """
    folded = fold(word)
    if folded.endswith(("oes", "aes")) and len(folded) > 4:
        folded = folded[:-3] + "ao"
    return _STEMMER.stemWord(folded)


def stem(word: str) -> str:
    """A word's stem, as ``tokens`` gives it."""
    return _stem(word)


def words(text: str) -> set[str]:
    """The distinct words of a text, lower-cased and accent-folded, nothing dropped."""
    return {fold(w) for w in _WORD.findall(text.lower())}


def tokens(text: str, *, query: bool = False) -> list[str]:
    """Stemmed, accent-folded terms of a text, stop words dropped."""
    out: list[str] = []
    for raw in _WORD.findall(text.lower()):
        words = ABBREVIATIONS.get(fold(raw), raw).split() if query else [raw]
        for word in words:
            if fold(word) in _FOLDED_STOPS or (len(word) == 1 and not word.isdigit()):
                continue
            out.append(_stem(word))
    return out


def idf(counts: Counter[str], total: int) -> Callable[[str], float]:
    """Inverse document frequency of a term among ``total`` passages, ``counts`` holding each
    term's passage count (BM25's form, as Qdrant's IDF modifier computes it)."""
    return lambda term: math.log(1 + (total - counts[term] + 0.5) / (counts[term] + 0.5))


def held(question: str, texts: Sequence[str],
         weight: Callable[[str], float] | None = None, *, typos: bool = False) -> list[float]:
    """Share of the question's distinct terms each text holds, each term counted once or, with
    ``weight`` (a term's idf), by its weight; 0 where the question names no term. With
    ``typos``, a word of five letters or more that a text lacks counts as held where the text
    holds a word of five or more one typo from it ("vizita" for "visita")."""
    terms = set(tokens(question, query=True))
    weigh = weight or (lambda _t: 1.0)
    total = sum(map(weigh, terms))
    if not total:
        return [0.0] * len(texts)
    near = _misspelt(question) if typos else {}
    out = []
    for text in texts:
        got = terms & set(tokens(text))
        if near and terms - got:
            written = words(text)
            got |= {term for term in terms - got if near.get(term, frozenset()) & written}
        out.append(sum(map(weigh, got)) / total)
    return out


def _misspelt(question: str) -> dict[str, frozenset[str]]:
    """Each term of the question (a word of five letters or more, no digits) with the words
    one typo away, as a text writes them (folded): words, not stems, since stemming would make
    "botox" one typo from "botos", the plural of "boto"."""
    return {_stem(word): _typos(word) for word in map(fold, _WORD.findall(question.lower()))
            if len(word) >= 5 and not any(c.isdigit() for c in word)
            and word not in _FOLDED_STOPS}


@lru_cache(maxsize=20_000)
def _typos(word: str) -> frozenset[str]:
    return frozenset(v for v in one_edit(word) if len(v) >= 5)  # "botox" is not "boto"


def term_id(term: str) -> int:
    """Stable sparse index of a term."""
    return zlib.crc32(term.encode())


def passage_vector(text: str) -> tuple[list[int], list[float]]:
    """Sparse BM25 term-frequency weights of a passage."""
    counts = Counter(tokens(text))
    length = sum(counts.values()) or 1
    norm = K1 * (1 - B + B * length / AVG_TOKENS)
    return _sparse({t: tf * (K1 + 1) / (tf + norm) for t, tf in counts.items()})


def query_vector(text: str) -> tuple[list[int], list[float]]:
    """Sparse vector of a query: each distinct term once."""
    return _sparse({t: 1.0 for t in tokens(text, query=True)})


def _sparse(weights: dict[str, float]) -> tuple[list[int], list[float]]:
    merged: dict[int, float] = {}
    for term, w in weights.items():
        idx = term_id(term)
        merged[idx] = merged.get(idx, 0.0) + w
    return list(merged), list(merged.values())


# --- The question's specific terms (rag.evidence's near-miss signal) ----------------------------
# Words customers write around what they ask, which name nothing a company's documents could
# lack: question words, WhatsApp spellings, the verbs of asking and telling, time, family, the
# channels they write on, fillers. A missing one says nothing about whether the documents answer.
CHAT_WORDS = frozenset(fold(w) for w in """
    quais qual quanto quanta quantos quantas onde aonde cade kd oq oque porque pq qnd qdo qnto
    qntos qnts qtos qto qta qtas qts qtd qnt como quem quando mt mto mts muito muita muitos
    muitas vdd blz tmj pfv pfvr qro qr vo vou to ta eh ne tbm tb hj amanha ontem anteontem cmg
    ctg dnv msg fds aki aqui la ai oii oie ola opa eae gente pessoal moco moca obrigada obg
    grato grata desde ja ainda agora logo sempre nunca antes depois hoje semana semanas mes
    meses ano anos dia dias hora horas minuto minutos vez vezes coisa coisas algo algum alguma
    alguns algumas nenhum nenhuma cada outro outra outros outras todo toda todos todas tanto
    pouco pouca bastante menos tipo assim entao certo sim tal mesma mesmos enquanto porem pois
    quase mil parte inteiro inteira completo completa primeiro primeira segundo segunda ultimo
    ultima proximo proxima cedo manha madrugada domingo sabado terca quarta quinta sexta
    feriado janeiro fevereiro marco abril maio junho julho agosto setembro outubro novembro
    dezembro eu meu minha meus minhas mim comigo filho filha filhos filhas marido esposa
    esposo mulher namorado namorada mae pai pais irmao irma irmaos primo prima tio tia avo
    vizinho vizinha amigo amiga sogra sogro sobrinho sobrinha neto neta chefe familia bebe
    crianca criancas pessoa pessoas dono dona whats wpp zap zapzap app aplicativo cel celular
    insta instagram site email sms telefone fone ligacao ap apto facul trampo pras pros dao
    vao kkk kkkk rs haha bora tchau favor desculpa desculpe tenho tem temos tinha tive teve
    tiver quero queria qria preciso precisava posso pode podem poderia podia consigo consegue
    conseguem vai vamos vem veio vieram venho fui foi fiz fez faco faz fazem fizer fica fico
    da deu dei der sei sabe sabia acho visto gosto abri abro sou somos compro pago uso levo
    trago mando sai cai dura demora custa custo serve funciona abre fecha passa perco ganho
    quer era eram ia iam tava tavam estiver vida real reais normal aberto aberta abertos
    abertas fechado fechada bom boa ruim novo nova velho velha grande pequeno pequena barato
    barata caro cara errado errada melhor pior possivel rapido rapida urgente direito certinho
    socorro numero fora jogo fazer ter ver poder saber querer comer beber vender receber
    escolher conhecer chover perder entender escrever aprender resolver devolver correr mexer
    trazer dizer ler viver descer esquecer parecer oferecer acontecer aparecer atender
    responder abrimos ajuda arrependi boto caiu chega coloco conseguiria dar deixa disse
    durante entendi esqueci estava estragado explica hein indo ir lembro liga perdi precisaria
    quebrada quebrado recebi sair saiu serviu sozinha sozinho trouxe usar usei vi vir moro
    mora estou esta estao tempo acha achar
    """.split())
# Verb forms (gerund, past, plural, infinitive in -ar/-ir) say what the customer did or wants
# done; what a near-miss names (a city, a plan, a brand, a product) is a noun. Infinitives in
# -er are listed above instead: loanwords in -er name products ("hamster", "freezer").
_VERB_ENDINGS = ("ando", "endo", "indo", "ei", "ou", "am", "ar", "ir")
_POSSESSIVES = frozenset({"meu", "minha", "meus", "minhas"})
_HAVING = frozenset({"tem", "tenho", "tinha", "temos", "ha"})  # "tenho 67 anos": the customer
# Units customers measure their own case in ("moro a 5 km", "meu cão tem 30 kg"), where the
# documents give ranges ("até 10 kg"): a number before one of them, or a chat word ("20 dias"),
# is never a sibling of what is offered, as "500 mega" is of "300 Mega".
MEASURES = frozenset("km kg kilo kilos quilo quilos g gr gramas litro litros l metro metros m cm "
                     "h hr hrs min".split())
_LETTERS = "abcdefghijklmnopqrstuvwxyzç"
_NUMBER_UNIT = re.compile(r"(\d+(?:[.,]\d+)?)\s*([a-z]+)")


@dataclass(frozen=True)
class Term:
    """A word of a question that may name what the documents lack."""

    word: str  # folded, abbreviations expanded ("sp" -> "sao", "paulo")
    stem: str
    written: str  # the abbreviation as written, where expanded: a passage may hold it as is
    unit: str  # for a number, the word after it ("500 mega" -> "mega"), not a measure


def number_units(text: str) -> set[tuple[str, str]]:
    """(number, the word right after it) pairs of a text: "300 Mega" -> ("300", "mega")."""
    return set(_NUMBER_UNIT.findall(fold(text)))


def specific_terms(question: str) -> list[Term]:
    """The question's words that could name something no document holds: not stop words, chat
    words (or a one-letter typo of one: "fika"), verb forms, nor the customer's own things ("meu
    cachorro", "tenho 67 anos")."""
    units = dict(number_units(question))
    out: list[Term] = []
    before: list[str] = []
    for raw in _WORD.findall(question.lower()):
        written = fold(raw)
        for word in (fold(w) for w in ABBREVIATIONS.get(written, raw).split()):
            owned = bool(before) and (before[-1] in _POSSESSIVES or (
                word[:1].isdigit() and before[-1] in _HAVING))
            before.append(word)
            if not (owned or _chatter(word)):
                unit = units.get(word, "")
                out.append(Term(word, _stem(word), written if written != word else "",
                                "" if unit in MEASURES or unit in CHAT_WORDS else unit))
    return out


def _chatter(word: str) -> bool:
    """A stop or chat word, a typo of one, or a verb form (see CHAT_WORDS)."""
    if word in _FOLDED_STOPS or word in CHAT_WORDS or (len(word) == 1 and not word.isdigit()):
        return True
    if len(word) >= 5 and word.endswith(_VERB_ENDINGS):
        return True
    # A letter dropped or mistyped from a chat word ("qero", "fika"), never one added: "botox" is
    # not "boto". Short words only by how they sound ("fika", "axo"), or "giga" would be "liga".
    near = ({v for v in one_edit(word) if len(v) >= len(word)} if len(word) >= 5 else
            _sounds(word) if len(word) >= 3 else set())
    return any(v in CHAT_WORDS or v in _FOLDED_STOPS for v in near)


_SOUNDS = (("k", "c"), ("k", "qu"), ("x", "ch"), ("s", "z"), ("z", "s"), ("s", "c"), ("i", "e"),
           ("u", "o"), ("e", "i"), ("o", "u"), ("ss", "s"), ("s", "ss"))


def _sounds(word: str) -> set[str]:
    """Spellings of a word that sound alike: one letter (or pair) swapped for its like."""
    return {word[:i] + b + word[i + len(a):] for a, b in _SOUNDS for i in range(len(word))
            if word.startswith(a, i)}


@lru_cache(maxsize=20_000)
def one_edit(word: str) -> frozenset[str]:
    """Every spelling one typo away (a letter dropped, added, swapped with the next or changed;
    "k" for "qu"): how customers mistype a word the documents hold."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    out |= {a + c + b for a, b in splits for c in _LETTERS}
    if word.startswith("k"):
        out.add("qu" + word[1:])
    return frozenset(out - {word})
